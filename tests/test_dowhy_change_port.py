"""DoWhy's distribution-change tests of ``tests/gcm/test_anomaly.py`` (dowhy 0.14), ported to
:func:`~bayes_rca.attribute_distribution_change` with our automatic assignment.

DoWhy's ``estimate_distribution_change_scores`` scores each node by how much its own mechanism changed: the
difference (a function of two samples) between the node's values from the old and from the new mechanism, both
fed the new data's parents. Ours is the same quantity as an attribution: the change of node ``j``'s own
distribution, with ``j`` as the target, split over the mechanisms by Shapley values; ``j``'s own share is DoWhy's
score (for these linear systems exactly the change of ``j``'s mechanism). DoWhy returns exactly 0 for a mechanism
whose change its independence test does not find significant; where a claim says ``== 0`` the equivalent is a
posterior mean within three posterior sds of 0.
"""

from __future__ import annotations

import warnings

import networkx as nx
import numpy as np
import pandas as pd
import pytest

from bayes_rca import BayesianSCM, attribute_distribution_change
from bayes_rca.errors import BayesRCAWarning

GRAPH = nx.DiGraph([("X0", "X1"), ("X0", "X2"), ("X2", "X3")])


def _system(rng: np.random.Generator, x0_low: float = -1.0, x2_weight: float = 0.5, x2_shift: float = 0.0,
            x2_sd: float = 0.1) -> pd.DataFrame:
    x0 = rng.uniform(x0_low, 1, 1000)
    x1 = 2 * x0 + rng.normal(0, 0.1, 1000)
    x2 = x2_shift + x2_weight * x0 + rng.normal(0, x2_sd, 1000)
    x3 = 0.5 * x2 + rng.normal(0, 0.1, 1000)
    return pd.DataFrame({"X0": x0, "X1": x1, "X2": x2, "X3": x3})


def _own_changes(graph: nx.DiGraph, old: pd.DataFrame, new: pd.DataFrame, functional: str, seed: int):
    """Per node: the posterior draws of its own mechanism's share of the change of its own distribution."""
    old_model = BayesianSCM(graph, num_draws=200, seed=2 * seed, progress=False).fit(old)
    new_model = BayesianSCM(graph, num_draws=200, seed=2 * seed + 1, progress=False).fit(new)  # independent draws
    shares = {}
    for node in graph:
        result = attribute_distribution_change(old_model, new_model, node, functional, seed=seed)
        shares[node] = result.contributions[:, result.nodes.index(node)]
    return shares


def _zero(draws: np.ndarray) -> bool:
    return abs(draws.mean()) <= 3 * draws.std() + 1e-12


@pytest.mark.parametrize("seed", [0, 1])
def test_changed_mechanism_has_the_largest_score(seed: int):
    """``test_given_data_with_change_in_mechanism_when_estimate_distribution_change_score_then_returns_expected_result``
    (DoWhy's default difference: a KL divergence)."""
    rng = np.random.default_rng(seed)
    old, new = _system(rng), _system(rng, x2_weight=2.0)
    shares = _own_changes(GRAPH, old, new, "kl", seed)
    means = {node: draws.mean() for node, draws in shares.items()}
    assert max(means, key=means.get) == "X2", means


@pytest.mark.parametrize("seed", [0, 1])
def test_difference_in_means_of_a_changed_mechanism(seed: int):
    """``..._using_difference_in_means_then_returns_expected_result``: X2 = 2 + 0.5 X0 instead of 0.5 X0."""
    rng = np.random.default_rng(seed)
    shares = _own_changes(GRAPH, _system(rng), _system(rng, x2_shift=2.0), "mean", seed)
    assert abs(shares["X2"].mean() - 2.0) < 0.1
    for node in ("X0", "X1", "X3"):
        assert abs(shares[node].mean()) < 0.1, (node, shares[node].mean())


@pytest.mark.parametrize("seed", [0, 1])
def test_difference_in_means_of_a_changed_root(seed: int):
    """``test_given_data_with_change_in_root_node_..._difference_in_means``: X0 ~ U(-1.5, 1) instead of U(-1, 1)
    (DoWhy scores ``|mean difference|``, 0.25; ours is signed)."""
    rng = np.random.default_rng(seed)
    shares = _own_changes(GRAPH, _system(rng), _system(rng, x0_low=-1.5), "mean", seed)
    assert abs(abs(shares["X0"].mean()) - 0.25) < 0.1
    for node in ("X1", "X2", "X3"):
        assert abs(shares[node].mean()) < 0.1, (node, shares[node].mean())


@pytest.mark.parametrize("seed", [0, 1])
def test_graph_with_multiple_parents(seed: int):
    """``test_given_graph_with_multiple_parents_when_estimate_distribution_change_scores_then_returns_expected_result``:
    X2 = X0 + X1 (+ 1 in the new period); DoWhy's X0, X1 ``== 0`` come from its significance test (see module)."""
    rng = np.random.default_rng(seed)
    x0, x1 = rng.uniform(-1, 1, 1000), rng.uniform(-1, 1, 1000)
    old = pd.DataFrame({"X0": x0, "X1": x1, "X2": x0 + x1})
    x0, x1 = rng.uniform(-1, 1, 1000), rng.uniform(-1, 1, 1000)
    new = pd.DataFrame({"X0": x0, "X1": x1, "X2": x0 + x1 + 1})
    shares = _own_changes(nx.DiGraph([("X0", "X2"), ("X1", "X2")]), old, new, "mean", seed)
    assert _zero(shares["X0"]) and _zero(shares["X1"])
    assert abs(shares["X2"].mean() - 1.0) < 0.005


@pytest.mark.parametrize("seed", [0, 1])
def test_difference_in_variance_of_a_changed_mechanism(seed: int):
    """``..._using_difference_in_variance_then_returns_expected_result``: X2's noise sd 2 instead of 0.1."""
    rng = np.random.default_rng(seed)
    shares = _own_changes(GRAPH, _system(rng), _system(rng, x2_sd=2.0), "variance", seed)
    assert abs(shares["X2"].mean() - 4.0) < 0.5
    for node in ("X0", "X1", "X3"):
        assert abs(shares[node].mean()) < 0.1, (node, shares[node].mean())


def test_one_seed_for_both_periods_is_warned_about():
    """With one seed both posteriors' draw ``d`` come from the same random numbers: the pairs are coupled and the
    intervals of the change too narrow (here the sd of X0's mean change shrinks by a factor of about 50)."""
    rng = np.random.default_rng(0)
    old, new = _system(rng), _system(rng)
    graph = nx.DiGraph([("X0", "X1")])
    fits = [BayesianSCM(graph, num_draws=200, seed=seed, progress=False).fit(frame[["X0", "X1"]])
            for seed, frame in ((0, old), (0, new), (1, new))]
    with pytest.warns(BayesRCAWarning, match="seed=0"):
        coupled = attribute_distribution_change(fits[0], fits[1], "X0").contributions[:, 0]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        independent = attribute_distribution_change(fits[0], fits[2], "X0").contributions[:, 0]
    assert independent.std() > 10 * coupled.std()
