"""The mean-deviation game: its shares add up to the target's deviation per draw, agree with the closed form of a
chain, and the harness's ``ranking: auto`` uses them only for rows that are not outliers."""

from __future__ import annotations

import networkx as nx
import numpy as np
import pandas as pd
import pytest
import torch

from bayes_rca.attribution.latent import abduct_sampled_noise
from bayes_rca.attribution.linear_game import total_effects
from bayes_rca.attribution.mean_deviation import mean_deviation_shares
from bayes_rca.errors import BayesRCAError, MechanismError
from bayes_rca.harness.methods import make_method
from bayes_rca.model.scm import BayesianSCM

GRAPH = nx.DiGraph([("A", "B"), ("B", "C"), ("D", "C")])
LINEAR = {"A": "gaussian_root", "D": "gaussian_root", "B": "linear_gaussian", "C": "linear_gaussian"}


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(3)
    a, d = rng.normal(size=800), rng.normal(size=800)
    b = 1.5 * a + 0.5 * rng.normal(size=800)
    c = 2.0 * b - 1.0 * d + 0.5 * rng.normal(size=800)
    return pd.DataFrame({"A": a, "B": b, "C": c, "D": d})


@pytest.fixture(scope="module")
def model(data):
    return BayesianSCM(GRAPH, mechanisms=LINEAR, num_draws=80, progress=False, seed=1).fit(data)


def _target_means(model, row):
    players = ["A", "B", "D", "C"]
    nodes = [model.nodes_[p] for p in players]
    values = torch.tensor(row[players].to_numpy(float), dtype=torch.float64).unsqueeze(0)
    abducted = abduct_sampled_noise(nodes, values, 20, torch.Generator().manual_seed(0))
    effect, intercept = total_effects(abducted)
    return (effect * intercept).sum(-1).numpy()


@pytest.mark.parametrize("row", [{"A": 3.0, "B": 4.0, "C": 9.0, "D": 0.2}, {"A": -0.5, "B": 0.1, "C": -4.0, "D": 2.5}])
def test_shares_add_up_to_the_deviation_per_draw(model, row):
    row = pd.Series(row)
    shares = mean_deviation_shares(model, "C", row)
    deviation = np.abs(row["C"] - _target_means(model, row))
    np.testing.assert_allclose(shares.sum(axis=1).to_numpy(), deviation, rtol=1e-9, atol=1e-9)


def test_shares_match_the_closed_form_of_the_true_chain(model):
    """With 800 rows the posterior is close to the truth: A's share of C's deviation is about
    2 * 1.5 * a (its noise is its value), D's about -1 * d signed towards C's deviation."""
    row = pd.Series({"A": 2.0, "B": 3.0, "C": 6.5, "D": 0.5})
    shares = mean_deviation_shares(model, "C", row).mean()
    assert shares["A"] == pytest.approx(2.0 * 1.5 * 2.0, abs=0.3)
    assert shares["D"] == pytest.approx(-1.0 * 0.5, abs=0.1)  # pushed C down while C deviated up
    assert shares["B"] == pytest.approx(2.0 * (3.0 - 1.5 * 2.0), abs=0.3)


def test_nonlinear_players_are_refused(data):
    model = BayesianSCM(GRAPH, mechanisms={**LINEAR, "C": "linear_student_t"}, num_draws=20, progress=False,
                        inference="svi").fit(data)
    with pytest.raises(MechanismError, match="'C'"):
        mean_deviation_shares(model, "C", data.iloc[0])


def test_auto_ranking_switches_only_for_rows_that_are_not_outliers(data):
    method = make_method("bayes_rca", mechanisms="linear", num_draws=60, ranking="auto", keep_posterior=False)
    method.fit(GRAPH, data)
    it_score = make_method("bayes_rca", mechanisms="linear", num_draws=60, keep_posterior=False).fit(GRAPH, data)
    outlier = pd.DataFrame([{"A": 4.0, "B": 6.0, "C": 12.0, "D": 0.0}])
    ordinary = pd.DataFrame([{"A": 0.3, "B": 0.5, "C": 1.1, "D": 0.1}])  # C about 0.5 sd from its mean
    pd.testing.assert_series_equal(method.attribute("C", outlier).scores, it_score.attribute("C", outlier).scores)
    answer = method.attribute("C", ordinary)
    shares = mean_deviation_shares(method.model_, "C", ordinary.iloc[0])
    np.testing.assert_allclose(answer.scores[["A", "B", "C", "D"]].to_numpy(), shares.mean()[["A", "B", "C", "D"]])
    assert answer.reported == []  # the decision rule still says: no root cause
    with pytest.raises(BayesRCAError, match="ranking"):
        make_method("bayes_rca", ranking="largest")
