"""Each node's anomaly score given its parents (``bayes_rca.anomaly_scores``): closed forms per posterior draw, far
tails, the input errors, and DoWhy's ``tests/gcm/test_anomaly.py`` anomaly-score tests (dowhy 0.14) ported.

DoWhy scores with five scorers (median-CDF quantile, its rescaled form, mean and median deviation, inverse
density), each of the residual. For symmetric unimodal noise every one of them is a decreasing function of the
two-sided tail ``P(|N| >= |n|)`` that ours is ``-log`` of, so one test of ours stands for the five; their claims are
kept with their thresholds, except where a claim is tied to DoWhy's floor of an empirical probability at ``EPS``
(``-log(EPS) = 36.0`` nats), which is replaced by the exact statement.
"""

from __future__ import annotations

import networkx as nx
import numpy as np
import pandas as pd
import pytest
import scipy.stats
import torch

from bayes_rca import BayesianSCM, DataError, anomaly_scores
from bayes_rca.data.synthetic import random_linear_system


def _closed_form(model: BayesianSCM, node, row: pd.Series) -> np.ndarray:
    """``-log(2 P(N >= |residual|))`` per draw of a linear-Gaussian node, by scipy in log space."""
    bias, weight, sd = (t.numpy() for t in model.node(node).linear_gaussian())
    parents = row[list(model.node(node).parents)].to_numpy(dtype=float)
    residual = row[node] - (bias + weight @ parents)
    sd = sd * model.node(node).standardizer.scale  # data units
    return -np.minimum(0.0, np.log(2.0) + scipy.stats.norm.logsf(np.abs(residual) / sd))


@pytest.fixture(scope="module")
def chain():
    graph = nx.DiGraph([("db", "api"), ("api", "web")])
    system = random_linear_system(graph, seed=3)
    model = BayesianSCM(graph, num_draws=200, seed=0, progress=False).fit(system.sample(400, seed=4))
    return graph, system, model


def test_every_draw_equals_the_closed_form_also_far_out(chain):
    graph, system, model = chain
    rows = pd.concat([system.outlier({"api": 5.0}), system.outlier({"db": 40.0}), system.outlier({})],
                     ignore_index=True)
    scores = anomaly_scores(model, rows)
    assert scores.draws.shape == (200, 3, 3)
    for row in range(3):
        for k, node in enumerate(scores.nodes):
            np.testing.assert_allclose(scores.draws[:, row, k], _closed_form(model, node, rows.iloc[row]),
                                       rtol=1e-9, atol=1e-9)
    means = scores.mean()
    assert means.loc[0].idxmax() == "api" and means.loc[1].idxmax() == "db"
    assert means.loc[1, "db"] > 750  # 40 sd: -log(2 P(Z >= 40)) = 804.6 at the true parameters, no underflow
    assert means.loc[1, "api"] < 5 and means.loc[1, "web"] < 5  # normal given their (anomalous) causes


def test_student_t_root_against_scipy():
    rng = np.random.default_rng(0)
    data = pd.DataFrame({"x": rng.standard_t(3, 2000)})
    graph = nx.DiGraph()
    graph.add_node("x")
    model = BayesianSCM(graph, mechanisms={"x": "student_t_root"}, num_draws=100, seed=0, progress=False).fit(data)
    node = model.node("x")
    noise = node.noise()
    row = pd.DataFrame({"x": [25.0]})
    got = anomaly_scores(model, row).draws[:, 0, 0]
    z = (25.0 - node.location(torch.zeros(100, 1, 0, dtype=torch.float64))[:, 0].numpy()) / node.standardizer.scale
    expected = -(np.log(2.0) + scipy.stats.t.logsf(z / noise.scale[:, 0].numpy(), noise.df[:, 0].numpy()))
    np.testing.assert_allclose(got, expected, rtol=1e-6)


def test_bad_input_is_named(chain):
    graph, system, model = chain
    row = system.outlier({"api": 5.0})
    with pytest.raises(DataError, match="'cache'"):
        anomaly_scores(model, row, nodes=["cache"])
    with pytest.raises(DataError, match="db"):
        anomaly_scores(model, row.drop(columns="db"), nodes=["api"])  # api's parent is needed
    with pytest.raises(DataError, match="db"):
        anomaly_scores(model, row.assign(db=np.nan))
    assert anomaly_scores(model, row.drop(columns="web"), nodes=["db", "api"]).nodes == ["db", "api"]


# --- DoWhy's tests/gcm/test_anomaly.py ---------------------------------------------------------------------------

def _pcm_data(seed: int) -> tuple[nx.DiGraph, pd.DataFrame, pd.DataFrame]:
    """``_create_pcm_and_outlier_observation``: X1 of the first row moved by 3 of its sds."""
    rng = np.random.default_rng(seed)
    x0 = rng.uniform(-1, 1, 1000)
    x1 = 2 * x0 + rng.normal(0, 0.1, 1000)
    x2 = 0.5 * x0 + rng.normal(0, 0.1, 1000)
    x3 = 0.5 * x2 + rng.normal(0, 0.1, 1000)
    data = pd.DataFrame({"X0": x0, "X1": x1, "X2": x2, "X3": x3})
    outlier = pd.DataFrame({"X0": x0[:1], "X1": x1[:1] + np.std(x1) * 3, "X2": x2[:1], "X3": x3[:1]})
    return nx.DiGraph([("X0", "X1"), ("X0", "X2"), ("X2", "X3")]), data, outlier


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_outlier_observation_scores_x1_highest(seed: int):
    """``test_given_outlier_observation_when_estimate_anomaly_scores_using_*_scorer`` (all five scorers)."""
    graph, data, outlier = _pcm_data(seed)
    model = BayesianSCM(graph, num_draws=200, seed=seed, progress=False).fit(data)  # automatic assignment
    scores = anomaly_scores(model, outlier)
    assert scores.mean().loc[0].idxmax() == "X1"
    assert scores.summary().loc[(0, "X1"), "p_top"] > 0.99


@pytest.mark.parametrize("seed", [0, 1])
def test_multivariate_inputs(seed: int):
    """``test_given_multivariate_inputs_when_estimate_anomaly_scores_then_does_not_raise_error``.

    DoWhy asserts X1's score (X1 = 10, a standard normal root) is ``-log(EPS)`` within 3: its empirical score is
    floored at ``EPS`` when no training row is as extreme. The exact statement: X1's posterior covers the score of
    the true root, ``-log(2 P(Z >= 10)) = 52.5`` nats, and X0, the exact sum of its parents, scores about 0.
    """
    rng = np.random.default_rng(seed)
    parents = rng.normal(0, 1, (10000, 4))
    data = pd.DataFrame({"X0": parents.sum(1), **{f"X{i + 1}": parents[:, i] for i in range(4)}})
    graph = nx.DiGraph([(f"X{i}", "X0") for i in range(1, 5)])
    model = BayesianSCM(graph, num_draws=200, seed=seed, progress=False).fit(data)
    row = pd.DataFrame({"X0": [13.0], "X1": [10.0], "X2": [1.0], "X3": [1.0], "X4": [1.0]})
    scores = anomaly_scores(model, row)
    truth = -(np.log(2.0) + scipy.stats.norm.logsf(10.0))
    low, high = np.quantile(scores.draws[:, 0, scores.nodes.index("X1")], [0.005, 0.995])
    assert low <= truth <= high, (low, truth, high)
    assert scores.mean().loc[0, "X0"] < 1.0


@pytest.mark.parametrize("seed", [0, 1])
def test_conditional_scores_are_those_of_the_residual(seed: int):
    """``test_given_simple_linear_data_when_estimate_conditional_anomaly_scores_then_returns_expected_result``:
    the score of Y given X is the score of the residual, within DoWhy's 0.1 of its value under the fitted line (DoWhy
    compares with the true residual ``Y - 2 X`` scored by a scorer fitted on the true noise; both tools estimate the
    line from the same 1000 rows, and the estimation error alone moves a score by up to 0.12 nats here)."""
    rng = np.random.default_rng(seed)
    x = rng.normal(0, 1, 1000)
    y = 2 * x + rng.normal(0, 1, 1000)
    model = BayesianSCM(nx.DiGraph([("X", "Y")]), num_draws=400, seed=seed, progress=False).fit(
        pd.DataFrame({"X": x, "Y": y}))
    rows = pd.DataFrame({"X": x[:5], "Y": y[:5]})
    got = anomaly_scores(model, rows, nodes=["Y"]).mean()["Y"].to_numpy()
    slope, intercept = np.polyfit(x, y, 1)
    sd = np.std(y - (intercept + slope * x), ddof=2)
    fitted = -(np.log(2.0) + scipy.stats.norm.logsf(np.abs(y[:5] - intercept - slope * x[:5]) / sd))
    np.testing.assert_allclose(got, fitted, atol=0.1)


def test_a_widened_noise_beyond_the_range_is_scored_in_its_own_units():
    """Beyond its parents' training range an extrapolating node's noise widens (location-scale): its score is the
    two-sided tail of the abducted noise, which :meth:`FittedNode.abduct` divides by the widening."""
    rng = np.random.default_rng(5)
    db = 10.0 + 0.2 * rng.normal(size=600)
    api = 30.0 + 0.2 * rng.normal(size=600)
    graph = nx.DiGraph([("db", "api")])
    model = BayesianSCM(graph, mechanisms={"db": "gaussian_root", "api": "extrapolating_gaussian"}, num_draws=50,
                        seed=0, progress=False).fit(pd.DataFrame({"db": db, "api": api}))
    row = pd.DataFrame({"db": [16.0], "api": [36.5]})  # db 30 sd out, far beyond its range; api followed it
    node = model.node("api")
    noise = node.abduct(torch.tensor([36.5], dtype=torch.float64), torch.tensor([[16.0]], dtype=torch.float64))
    sd = node.noise().scale
    expected = -(np.log(2.0) + torch.special.log_ndtr(-noise.abs() / sd)).clamp_max(0.0)[:, 0].numpy()
    got = anomaly_scores(model, row).draws[:, 0, 1]
    np.testing.assert_allclose(got, expected, rtol=1e-9, atol=1e-12)
    assert np.median(got) < 3.0  # a caller that passed its callee's jump on is not anomalous given it
