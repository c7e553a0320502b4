"""The harness's root-cause methods on small linear-Gaussian systems with one injected root cause."""

from __future__ import annotations

import networkx as nx
import numpy as np
import pandas as pd
import pytest

from bayes_rca.data.synthetic import random_linear_system
from bayes_rca.errors import BayesRCAError, DataError
from bayes_rca.graph.dag import ancestors_of
from bayes_rca.harness.methods import METHODS, make_method
from bayes_rca.harness.methods._common import MarginalOutlierScorer
from bayes_rca.harness.methods.base import Attribution
from bayes_rca.harness.methods.circa import CIRCA

# X0 -> X1 -> X2 -> X4 <- X3, and X0 -> X5: X5 is not an ancestor of the target X4.
EDGES = [("X0", "X1"), ("X1", "X2"), ("X2", "X4"), ("X3", "X4"), ("X0", "X5")]
TARGET = "X4"
FAST = ["bayes_rca", "naive", "score_ordering", "traversal", "smooth_traversal", "circa"]
GRAPH_AWARE = ["bayes_rca", "traversal", "smooth_traversal", "circa"]


@pytest.fixture(scope="module")
def system():
    return random_linear_system(nx.DiGraph(EDGES), seed=1)


@pytest.fixture(scope="module")
def data(system):
    return system.sample(500, seed=0)


@pytest.fixture(scope="module")
def fitted(system, data):
    return {name: make_method(name).fit(system.graph, data) for name in [*FAST, "random"]}


def check_answer(answer: Attribution, graph: nx.DiGraph, root: str, blame_outside: bool,
                 target: str = TARGET) -> None:
    assert isinstance(answer, Attribution)
    assert set(answer.scores.index) == set(graph.nodes) and len(answer.scores) == graph.number_of_nodes()
    assert not answer.scores.isna().any()
    others = answer.scores.drop(root)
    assert (others < answer.scores[root]).all(), f"{root} should rank first alone:\n{answer.scores}"
    if not blame_outside:
        outside = [n for n in graph if n not in {*ancestors_of(graph, target), target}]
        assert (answer.scores[outside] < answer.scores[root]).all()
    if answer.draws is not None:
        assert set(answer.draws.columns) == set(answer.scores.index) and np.isfinite(answer.draws.to_numpy()).all()
    if answer.top_probability is not None:
        assert list(answer.top_probability.index) == list(answer.scores.index)
        assert answer.top_probability.sum() == pytest.approx(1.0)
        assert answer.top_probability.idxmax() == root


@pytest.mark.parametrize("root", ["X0", "X1"])
@pytest.mark.parametrize("name", FAST)
def test_injected_root_cause_ranks_first(fitted, system, name, root):
    answer = fitted[name].attribute(TARGET, system.outlier({root: 6.0}))
    check_answer(answer, system.graph, root, blame_outside=name not in GRAPH_AWARE)


@pytest.mark.parametrize("name", GRAPH_AWARE)
def test_non_ancestors_never_blamed_above_the_root_cause(fitted, system, name):
    # X5 gets its own large injection, but it is not an ancestor of the target
    row = system.outlier({"X3": 5.0, "X5": 8.0})
    answer = fitted[name].attribute(TARGET, row)
    assert answer.scores["X5"] < answer.scores["X3"]
    assert answer.scores.idxmax() == "X3"


def test_bayes_rca_returns_posterior_draws(fitted, system):
    answer = fitted["bayes_rca"].attribute(TARGET, system.outlier({"X0": 6.0}))
    assert answer.draws.shape == (200, 6)
    assert np.allclose(answer.scores, answer.draws.mean())
    assert (answer.draws["X5"] == 0).all()
    assert answer.posterior is not None and "contribution" in answer.posterior.posterior
    low, high = answer.interval(0.9)
    assert (low <= answer.scores).all() and (answer.scores <= high).all()


def test_random_is_reproducible_and_floors_non_candidates(system, data):
    row = system.outlier({"X0": 6.0})

    def answers(seed):
        method = make_method("random", seed=seed).fit(system.graph, data)
        return [method.attribute(TARGET, row).scores for _ in range(3)]

    first, again, other = answers(3), answers(3), answers(4)
    for a, b in zip(first, again):
        pd.testing.assert_series_equal(a, b)
    assert not first[0].equals(first[1])  # a new ranking for every outlier
    assert not first[0].equals(other[0])
    assert first[0]["X5"] == -np.inf and np.isfinite(first[0].drop("X5")).all()


def test_registry_and_errors(system, data):
    assert {"bayes_rca", "bayes_rca_svi", "bayes_rca_nuts", "dowhy", "dowhy_bootstrap", "naive", "traversal",
            "smooth_traversal", "score_ordering", "circa", "random"} <= set(METHODS)
    with pytest.raises(BayesRCAError, match=r"unknown method 'nope'; known methods: .*bayes_rca.*circa.*random"):
        make_method("nope")
    with pytest.raises(BayesRCAError, match="bad options .* 'circa'"):
        make_method("circa", thresh=1.0)
    with pytest.raises(BayesRCAError, match="unknown option.*'num_sample'"):
        make_method("bayes_rca", num_sample=10)
    assert make_method("bayes_rca_svi").inference == "svi"
    assert make_method("bayes_rca_nuts", num_draws=20).num_draws == 20
    assert make_method("bayes_rca_svi", inference="nuts").inference == "nuts"
    with pytest.raises(RuntimeError, match="not fitted"):
        make_method("naive").attribute(TARGET, system.outlier({"X0": 6.0}))
    method = make_method("traversal").fit(system.graph, data)
    with pytest.raises(BayesRCAError, match="target 'nope' is not a node"):
        method.attribute("nope", system.outlier({"X0": 6.0}))
    with pytest.raises(DataError, match="one outlier row, got 2"):
        method.attribute(TARGET, pd.concat([system.outlier({"X0": 6.0})] * 2))


def test_marginal_scores_follow_their_conventions():
    train = pd.DataFrame({"a": np.arange(-50.0, 51.0)})  # 101 values, median 0
    row = pd.Series({"a": 30.5})
    # 2 * 20 values (|a| in 31..50) lie at least as far from the median as 30.5
    empirical = MarginalOutlierScorer("empirical").fit(train)
    assert empirical.score_one("a", 30.5) == pytest.approx(-np.log(40.5 / 101.5))
    assert empirical.score_one("a", 500.0) == pytest.approx(np.log(203.0))  # the cap log(2n + 1)
    gaussian = MarginalOutlierScorer("gaussian").fit(train)
    from scipy.stats import norm
    sd = train["a"].std()
    assert gaussian.score(row)["a"] == pytest.approx(-np.log(2 * norm.sf(30.5 / sd)))
    hybrid = MarginalOutlierScorer("hybrid").fit(train)
    assert hybrid.score_one("a", 30.5) == empirical.score_one("a", 30.5)
    assert hybrid.score_one("a", 51.0) == pytest.approx(np.log(203.0))
    assert hybrid.score_one("a", 500.0) == pytest.approx(gaussian.score_one("a", 500.0))
    with pytest.raises(BayesRCAError, match="unknown tail"):
        MarginalOutlierScorer("student")


def test_circa_descendant_adjustment_by_hand():
    graph = nx.DiGraph([("A", "B"), ("B", "C")])
    method = CIRCA(threshold=3.0)
    method.graph_ = graph
    scores = pd.Series({"A": 4.0, "B": 1.0, "C": 5.0})
    method.rht_scores = lambda row, nodes: scores[nodes]  # type: ignore[method-assign]
    answer = method.attribute("C", pd.DataFrame([{"A": 0.0, "B": 0.0, "C": 0.0}])).scores
    # A is adjusted by C through the sub-threshold B; B (below threshold) and C (no children) are not
    assert answer.to_dict() == {"A": 9.0, "B": 1.0, "C": 5.0}


# DoWhy: a 4-node graph, 300 rows (fewer rows make its auto-assignment pick non-linear regressors here).
SMALL_EDGES = [("X0", "X1"), ("X1", "X2"), ("X0", "X3")]


@pytest.fixture(scope="module")
def small():
    system = random_linear_system(nx.DiGraph(SMALL_EDGES), seed=0)
    return system, system.sample(300, seed=0)


def test_dowhy_point(small):
    system, data = small
    method = make_method("dowhy", seed=1).fit(system.graph, data)
    row = system.outlier({"X0": 6.0})
    answer = method.attribute("X2", row)
    check_answer(answer, system.graph, "X0", blame_outside=False, target="X2")
    assert answer.scores["X3"] == 0.0 and answer.draws is None
    pd.testing.assert_series_equal(answer.scores, method.attribute("X2", row).scores)  # seeded


def test_dowhy_bootstrap(small):
    system, data = small
    method = make_method("dowhy_bootstrap", num_bootstrap_resamples=3).fit(system.graph, data)
    answer = method.attribute("X2", system.outlier({"X1": 6.0}))
    check_answer(answer, system.graph, "X1", blame_outside=False, target="X2")
    assert answer.draws.shape == (3, 4) and (answer.draws.iloc[:, 3] == 0).all()
    assert np.allclose(answer.scores, np.median(answer.draws, axis=0))
    assert answer.top_probability["X3"] == 0.0


@pytest.mark.slow
@pytest.mark.parametrize("name", ["bayes_rca_svi", "bayes_rca_nuts"])
def test_bayes_rca_approximate_inference(system, data, name):
    options = {"svi_steps": 300} if name.endswith("svi") else {"warmup_steps": 100}
    method = make_method(name, num_draws=100, inference_options=options).fit(system.graph, data)
    assert set(method.model_.fit_report_["method"]) == {name.rsplit("_", 1)[1]}
    answer = method.attribute(TARGET, system.outlier({"X1": 6.0}))
    check_answer(answer, system.graph, "X1", blame_outside=False)


@pytest.mark.filterwarnings("ignore:.*may not have converged")  # short SVI runs: only the families matter here
def test_bayes_rca_linear_variant_fits_every_node_linear_gaussian():
    """The mis-specified variant: on a nonlinear benchmark the automatic assignment finds nonlinear nodes, the
    linear variant fits none."""
    from bayes_rca.harness.benchmarks import make_benchmark

    bench = make_benchmark("nonlinear", seed=0, num_rows=400, num_outliers=1)
    auto = make_method("bayes_rca", num_draws=20, inference_options={"svi_steps": 150}).fit(bench.system.graph,
                                                                                         bench.train)
    linear = make_method("bayes_rca_linear", num_draws=20).fit(bench.system.graph, bench.train)
    assert set(linear.model_.fit_report_["family"]) <= {"linear_gaussian", "gaussian_root"}
    assert "extrapolating_fourier" in set(auto.model_.fit_report_["family"])
    case = bench.cases[0]
    answer = linear.attribute(case.target, case.row)
    assert np.isfinite(answer.scores).all()
    with pytest.raises(BayesRCAError, match="unknown mechanisms 'cubic'"):
        make_method("bayes_rca", mechanisms="cubic")
