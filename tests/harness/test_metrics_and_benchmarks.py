"""Ranking metrics against hand-computed values; benchmark families against their protocol."""

from __future__ import annotations

import networkx as nx
import numpy as np
import pandas as pd
import pytest

from bayes_rca.graph.dag import ancestors_of
from bayes_rca.harness import metrics
from bayes_rca.harness.benchmarks import FAMILY_NODES, make_benchmark
from bayes_rca.harness.cell import score_case
from bayes_rca.harness.methods.base import Attribution
from bayes_rca.harness.truth import true_contributions


def answer(scores: dict, draws=None, top=None) -> Attribution:
    return Attribution(pd.Series(scores, dtype=float), draws, None if top is None else pd.Series(top, dtype=float))


def test_recall_ties_share_credit():
    scores = answer({"a": 3.0, "b": 2.0, "c": 2.0, "d": 2.0, "e": 0.0})
    assert metrics.recall_at_k(scores, "a", 1) == 1.0
    assert metrics.recall_at_k(scores, "b", 1) == 0.0
    # three nodes tied for places 2-4: two of the three fit in the top 3
    assert metrics.recall_at_k(scores, "c", 3) == pytest.approx(2 / 3)
    assert metrics.recall_at_k(scores, "e", 4) == 0.0
    assert metrics.recall_at_k(answer({"a": -np.inf, "b": 1.0}), "a", 2) == 0.0


def test_ndcg_matches_hand_computation():
    relevance = pd.Series({"a": 3.0, "b": 1.0, "c": 0.0})
    perfect = answer({"a": 5.0, "b": 4.0, "c": 1.0})
    swapped = answer({"a": 4.0, "b": 5.0, "c": 1.0})
    assert metrics.ndcg_at_k(perfect, relevance, 2) == pytest.approx(1.0)
    expected = (1.0 + 3.0 / np.log2(3)) / (3.0 + 1.0 / np.log2(3))
    assert metrics.ndcg_at_k(swapped, relevance, 2) == pytest.approx(expected)
    # a tie is broken against the method
    tied = answer({"a": 1.0, "b": 1.0, "c": 1.0})
    assert metrics.ndcg_at_k(tied, relevance, 1) == 0.0


def test_interval_metrics_and_brier():
    draws = pd.DataFrame([[0.0, 1.0], [1.0, 2.0], [2.0, 3.0]] * 10, columns=["a", "b"])
    result = answer({"a": 1.0, "b": 2.0}, draws, {"a": 0.25, "b": 0.75})
    assert metrics.interval_coverage(result, pd.Series({"a": 1.5, "b": 10.0})) == 0.5
    assert metrics.interval_width(result, ["a", "b"]) == pytest.approx(2.0)
    assert metrics.top_cause_brier(result, "b") == pytest.approx(0.25**2 + 0.25**2)
    assert np.isnan(metrics.top_cause_brier(answer({"a": 1.0}), "a"))


def test_score_case_aligns_draws_by_node_label_not_position():
    """Methods list nodes in their own order (e.g. topological); coverage must not depend on it."""
    bench = make_benchmark("icml2022", seed=0, num_rows=50, num_outliers=1)
    case = bench.cases[0]
    truth = true_contributions(bench, case)
    nodes = list(reversed(truth.index))  # an order different from the graph's
    draws = pd.DataFrame([truth[nodes].to_numpy() + shift for shift in np.linspace(-0.1, 0.1, 21)], columns=nodes)
    result = score_case(Attribution(truth, draws), bench, case)
    assert result["coverage_90"] == 1.0


@pytest.mark.parametrize("family", list(FAMILY_NODES))
def test_benchmark_families_follow_protocol(family):
    bench = make_benchmark(family, seed=3, num_rows=200, num_outliers=3)
    graph = bench.system.graph
    low, high = FAMILY_NODES[family]
    assert low <= graph.number_of_nodes() <= high and nx.is_directed_acyclic_graph(graph)
    assert bench.train.shape == (200, graph.number_of_nodes()) and np.isfinite(bench.train.to_numpy()).all()
    for case in bench.cases:
        blameable = {*ancestors_of(graph, case.target), case.target}
        assert len(ancestors_of(graph, case.target)) >= 10
        assert 1 <= len(case.injected) <= 5 and set(case.injected) <= blameable
        assert all(3.0 <= v <= 5.0 for v in case.injected.values())
        assert set(case.relevance[case.relevance > 0].index) <= set(case.injected)


def test_icml2022_relevance_is_path_coefficient_times_injection():
    bench = make_benchmark("icml2022", seed=7, num_rows=10, num_outliers=4)
    graph, linear = bench.system.graph, bench.system.linear
    nodes = list(graph.nodes)
    coupling = np.zeros((len(nodes), len(nodes)))
    for (parent, child), value in linear.coefficients.items():
        coupling[nodes.index(child), nodes.index(parent)] = value
    total = np.linalg.inv(np.eye(len(nodes)) - coupling)
    roots = [n for n in graph if graph.in_degree(n) == 0]
    assert 1 <= len(roots) <= 4
    for case in bench.cases:
        t = nodes.index(case.target)
        for node, value in case.injected.items():
            assert case.relevance[node] == pytest.approx(abs(total[t, nodes.index(node)] * value))


def test_benchmarks_are_deterministic():
    first, second = make_benchmark("nonlinear", 11, 50, 2), make_benchmark("nonlinear", 11, 50, 2)
    pd.testing.assert_frame_equal(first.train, second.train)
    assert [c.injected for c in first.cases] == [c.injected for c in second.cases]
