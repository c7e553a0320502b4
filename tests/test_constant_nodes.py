"""Nodes that never move in normal data but move in the outlier (availability at 100 until an incident).

A point-estimate tool divides by their zero scale or refuses the row. Here the noise-scale prior gives such a
node a small finite noise, and the weight of a child on it (which the data cannot identify) is drawn from the
pass-through prior; the attribution is finite, efficient, and blames the node that moved most.
"""

from __future__ import annotations

import networkx as nx
import numpy as np
import pandas as pd
import pytest

from bayes_rca import BayesianSCM, attribute_outliers
from bayes_rca.errors import BayesRCAError, BayesRCAWarning, MechanismError
from bayes_rca.harness.methods import make_method


@pytest.fixture(scope="module")
def availability() -> tuple[BayesianSCM, pd.DataFrame]:
    """T = C + B + D - 200 + noise; C and D sit at 100 in every training row, B varies."""
    rng = np.random.default_rng(0)
    rows = 300
    b = 100 + 0.5 * rng.standard_normal(rows)
    data = pd.DataFrame({"C": 100.0, "B": b, "D": 100.0, "T": b + 0.3 * rng.standard_normal(rows)})
    graph = nx.DiGraph([("C", "T"), ("B", "T"), ("D", "T")])
    with pytest.warns(BayesRCAWarning, match="constant"):
        model = BayesianSCM(graph, num_draws=400, seed=0, progress=False).fit(data)
    return model, pd.DataFrame({"C": [97.0], "B": [100.1], "D": [99.5], "T": [96.7]})


def test_unseen_parent_weight_is_its_prior(availability: tuple[BayesianSCM, pd.DataFrame]) -> None:
    model, _ = availability
    _, weight, _ = model.node("T").linear_gaussian()  # data units, parents in the order (B, C, D) or as fitted
    parents = list(model.node("T").parents)
    for node in ("C", "D"):
        draws = weight[:, parents.index(node)].numpy()
        assert abs(draws.mean() - 1.0) < 0.05 and 0.2 < draws.std() < 0.3  # Normal(1, 0.25^2)
    assert abs(weight[:, parents.index("B")].mean().item() - 1.0) < 0.1  # identified from the data


def test_moved_constant_node_gets_a_finite_large_top_contribution(
        availability: tuple[BayesianSCM, pd.DataFrame]) -> None:
    model, row = availability
    result = attribute_outliers(model, "T", row)  # verify=True: efficiency per draw, null player, finite
    assert np.isfinite(result.contributions).all() and np.isfinite(result.scores).all()
    mean = pd.Series(result.contributions[:, 0].mean(0), index=result.nodes)
    assert mean.idxmax() == "C"
    assert mean["C"] > result.scores.mean()  # large: at least the whole IT score
    assert mean["C"] > mean["D"]  # C moved 3 points, D half a point
    assert result.top_cause_probability().loc[0, "C"] > 0.9


def test_unseen_weight_prior_is_configurable_and_checked() -> None:
    graph = nx.DiGraph([("C", "T")])
    with pytest.raises(MechanismError, match="unseen_weight_prior"):
        BayesianSCM(graph, unseen_weight_prior=(1.0, -1.0))


def test_decision_rule_names_credible_causes_only() -> None:
    method = make_method("bayes_rca", delta=1.0, alpha=0.1, score_threshold=5.0)
    rng = np.random.default_rng(1)
    draws = pd.DataFrame({"A": 4 + rng.standard_normal(1000), "B": 1.2 + rng.standard_normal(1000),
                          "C": 6 + rng.standard_normal(1000)})
    high = np.full(1000, 11.0)
    assert method.decide(high, draws) == ["C", "A"]  # B exceeds 1 nat in only ~58% of draws
    assert method.decide(np.full(1000, 4.0), draws) == []  # the target is not credibly an outlier
    borderline = np.r_[np.full(850, 6.0), np.full(150, 4.0)]  # P(S > 5) = 0.85 < 0.9
    assert method.decide(borderline, draws) == []


def test_capped_game_bounds_every_value_and_keeps_the_axioms(
        availability: tuple[BayesianSCM, pd.DataFrame]) -> None:
    model, row = availability
    exact = attribute_outliers(model, "T", row)
    capped = attribute_outliers(model, "T", row, max_nats=10.0)  # verify=True: efficiency on the capped score
    assert capped.scores.max() <= 10.0 and exact.scores.mean() > 10.0
    assert np.allclose(capped.contributions.sum(-1), capped.scores)
    assert np.abs(capped.contributions).max() <= 10.0 + 1e-9  # an average of marginal gains in [-cap, cap]
    mean = pd.Series(capped.contributions[:, 0].mean(0), index=capped.nodes)
    assert mean.idxmax() == "C" and mean["C"] > mean["D"] > abs(mean["B"])
    monte_carlo = attribute_outliers(model, "T", row, estimator="monte_carlo", num_samples=500, max_nats=10.0)
    assert monte_carlo.scores.max() <= 10.0
    with pytest.raises(BayesRCAError, match="max_nats"):
        attribute_outliers(model, "T", row, max_nats=0.0)
