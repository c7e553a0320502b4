"""Bad input fails early with an error from bayes_rca.errors that names the culprit."""

from __future__ import annotations

import networkx as nx
import numpy as np
import pandas as pd
import pytest
import torch

from bayes_rca import (
    BayesianSCM,
    BayesRCAError,
    DataError,
    GraphError,
    InferenceOptions,
    MechanismError,
    attribute_outliers,
    causal_graph_from_dependencies,
)
from tests.conftest import TARGET


@pytest.fixture(scope="module")
def small_data(system) -> pd.DataFrame:
    return system.sample(60, seed=4)


@pytest.fixture(scope="module")
def row(system) -> pd.DataFrame:
    return system.outlier({"B": 3.0})


def fit(graph, data, **kwargs):
    return BayesianSCM(graph, progress=False, num_draws=10, **kwargs).fit(data)


# graph


def test_cyclic_graph_names_the_cycle():
    graph = nx.DiGraph([("db", "api"), ("api", "web"), ("web", "db"), ("web", "cdn")])
    with pytest.raises(GraphError, match=r"acyclic.*cycle .*(db -> api -> web -> db|api -> web -> db -> api|"
                                         r"web -> db -> api -> web)"):
        BayesianSCM(graph)


def test_self_loop_is_a_cycle():
    with pytest.raises(GraphError, match="cycle a -> a"):
        BayesianSCM(nx.DiGraph([("a", "a")]))


@pytest.mark.parametrize("graph, message", [(nx.DiGraph(), "no nodes"), (nx.Graph([("a", "b")]), "DiGraph, got Graph")])
def test_empty_or_undirected_graph(graph, message):
    with pytest.raises(GraphError, match=message):
        BayesianSCM(graph)


def test_target_not_in_graph(oracle, row):
    with pytest.raises(GraphError, match=r"target 'Website' is not a node of the causal graph \(nodes: A, B, C"):
        attribute_outliers(oracle, "Website", row)


def test_mechanism_override_for_unknown_node(system):
    with pytest.raises(GraphError, match=r"mechanism override for 'Cache' is not a node"):
        BayesianSCM(system.graph, mechanisms={"B": "linear_gaussian", "Cache": "linear_gaussian"})


def test_causal_graph_from_dependencies_reverses_edges():
    calls = [("Website", "Frontend"), ("Frontend", "Auth"), ("Frontend", "Cache"), ("Auth", "UserDB")]
    graph = causal_graph_from_dependencies(calls)
    assert set(graph.edges) == {(callee, caller) for caller, callee in calls}
    assert causal_graph_from_dependencies(nx.DiGraph(calls)).edges == graph.edges
    assert set(nx.ancestors(graph, "Website")) == {"Frontend", "Auth", "Cache", "UserDB"}
    with pytest.raises(GraphError, match="cycle"):
        causal_graph_from_dependencies([("a", "b"), ("b", "a")])


# training data


def test_training_data_missing_a_column(system, small_data):
    with pytest.raises(DataError, match=r"training data has no column for graph node\(s\) 'C'"):
        fit(system.graph, small_data.drop(columns="C"))


@pytest.mark.parametrize("bad", [["x"] * 60, [True, False] * 30])
def test_non_numeric_column(system, small_data, bad):
    data = small_data.assign(C=bad)
    with pytest.raises(DataError, match=r"non-numeric column\(s\) 'C' \(dtype"):
        fit(system.graph, data)


def test_all_nan_column(system, small_data):
    with pytest.raises(DataError, match=r"column\(s\) 'E' contain only missing values"):
        fit(system.graph, small_data.assign(E=np.nan))


def test_infinite_value(system, small_data):
    data = small_data.copy()
    data.loc[7, "A"] = -np.inf
    with pytest.raises(DataError, match=r"infinite values in column\(s\) 'A'"):
        fit(system.graph, data)


def test_duplicate_columns(system, small_data):
    data = pd.concat([small_data, small_data[["B"]]], axis=1)
    with pytest.raises(DataError, match="duplicate column names: B"):
        fit(system.graph, data)


@pytest.mark.parametrize("rows", [0, 1])
def test_fewer_than_two_rows(system, small_data, rows):
    with pytest.raises(DataError, match=f"at least 2 rows, got {rows}"):
        fit(system.graph, small_data.iloc[:rows])


def test_training_data_must_be_a_frame(system, small_data):
    with pytest.raises(DataError, match="must be a pandas DataFrame, got ndarray"):
        fit(system.graph, small_data.to_numpy())


def test_partly_missing_rows_are_left_out_per_node(system, small_data):
    data = small_data.copy()
    data.loc[:9, "C"] = np.nan  # C and its child D lose 10 rows; others keep all 60
    model = fit(system.graph, data)
    rows = model.fit_report_["rows"]
    assert rows["C"] == rows["D"] == 50 and rows["A"] == rows["B"] == rows["E"] == 60


# outliers


def test_outlier_row_with_nan_at_the_target_names_row_and_column(oracle, row):
    bad = row.copy()
    bad.index = ["incident-42"]
    bad.loc["incident-42", TARGET] = np.nan
    with pytest.raises(DataError, match=rf"outlier row 'incident-42' has a missing value in column '{TARGET}'"):
        attribute_outliers(oracle, TARGET, bad)


def test_nan_at_an_ancestor_is_inferred(oracle, row):
    hidden = row.copy()
    hidden.index = ["incident-42"]
    hidden.loc["incident-42", "C"] = np.nan
    result = attribute_outliers(oracle, TARGET, hidden, num_latent_samples=5)
    assert result.settings["missing"] == {"incident-42": ["C"]} and result.contributions.shape[0] == 5


def test_nan_outside_the_target_ancestors_is_fine(oracle, row):
    """Only the target and its ancestors are needed: E (a child of D) and F may be missing."""
    result = attribute_outliers(oracle, TARGET, row.assign(E=np.nan).drop(columns="F"))
    assert np.isfinite(result.contributions).all()


def test_outlier_missing_a_column(oracle, row):
    with pytest.raises(DataError, match=r"outlier data has no column for graph node\(s\) 'A'"):
        attribute_outliers(oracle, TARGET, row.drop(columns="A"))


def test_outlier_without_rows_or_wrong_type(oracle, row):
    with pytest.raises(DataError, match="outlier data has no rows"):
        attribute_outliers(oracle, TARGET, row.iloc[:0])
    with pytest.raises(DataError, match="must be a pandas DataFrame, got list"):
        attribute_outliers(oracle, TARGET, [1.0, 2.0])


def test_non_numeric_outlier_column(oracle, row):
    with pytest.raises(DataError, match=r"outlier data has non-numeric column\(s\) 'B'"):
        attribute_outliers(oracle, TARGET, row.assign(B="slow"))


# mechanisms


def test_unknown_mechanism_family(system, small_data):
    with pytest.raises(MechanismError, match=r"unknown mechanism family 'gaussian_process' for node 'B'; known: "
                                             r".*linear_gaussian"):
        fit(system.graph, small_data, mechanisms={"B": "gaussian_process"})


@pytest.mark.parametrize("family", ["gaussian_root", "student_t_root"])
def test_root_only_family_on_a_node_with_parents(system, small_data, family):
    with pytest.raises(MechanismError, match=rf"node 'D' has parents \['B', 'C'\], but the {family} mechanism is "
                                             "for root nodes"):
        fit(system.graph, small_data, mechanisms={"D": family})


def test_family_that_needs_parents_on_a_root(system, small_data):
    with pytest.raises(MechanismError,
                       match="node 'A' is a root node, but the fourier_gaussian mechanism needs parents"):
        fit(system.graph, small_data, mechanisms={"A": "fourier_gaussian"})


def test_too_few_rows_for_the_family(system, small_data):
    # fourier_gaussian on D (two parents): 3 + 2 + 48 = 53 parameters, 40 rows
    with pytest.raises(MechanismError, match=r"node 'D' has 40 usable training rows .* fourier_gaussian mechanism "
                                             r"has 53 parameters and needs at least 53 rows"):
        fit(system.graph, small_data.iloc[:40], mechanisms={"D": "fourier_gaussian"})
    # the default linear-Gaussian family of D has 4 parameters: 3 rows are too few
    with pytest.raises(MechanismError, match=r"node 'D' has 3 usable training rows .* linear_gaussian mechanism has "
                                             r"4 parameters"):
        fit(system.graph, small_data.iloc[:3])


def test_conjugate_inference_for_a_non_conjugate_family(system, small_data):
    with pytest.raises(MechanismError, match="node 'D': the linear_student_t mechanism has no conjugate posterior"):
        fit(system.graph, small_data, inference="conjugate", mechanisms={"D": "linear_student_t"})


@pytest.mark.parametrize("kwargs, message", [({"inference": "mcmc"}, "unknown inference 'mcmc'"),
                                             ({"num_draws": 10, "num_chains": 3}, "num_draws=10 must be a positive"),
                                             ({"num_draws": 0}, "num_draws=0 must be a positive")])
def test_bad_model_settings(system, kwargs, message):
    with pytest.raises(MechanismError, match=message):
        BayesianSCM(system.graph, **kwargs)


# attribution settings


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
@pytest.mark.parametrize("device", ["cuda", "cuda:1"])
def test_cuda_without_cuda(oracle, row, device):
    with pytest.raises(BayesRCAError, match=f"device '{device}' requested, but torch finds no CUDA device"):
        attribute_outliers(oracle, TARGET, row, device=device)


def test_unknown_feature_map_is_named(oracle, row):
    with pytest.raises(ValueError, match=r"unknown feature map 'iqr'; known: zscore, median_cdf_quantile"):
        attribute_outliers(oracle, TARGET, row, feature_map="iqr")


def test_unknown_feature_map_raises_a_bayes_rca_error(oracle, row):
    with pytest.raises(BayesRCAError, match="unknown feature map 'iqr'"):
        attribute_outliers(oracle, TARGET, row, feature_map="iqr")


def test_unknown_estimator(oracle, row):
    with pytest.raises(BayesRCAError, match="unknown estimator 'exact'"):
        attribute_outliers(oracle, TARGET, row, estimator="exact")


def test_analytic_estimator_needs_linear_gaussian_mechanisms(system):
    graph = nx.DiGraph([("x", "y")])
    rng = np.random.default_rng(0)
    data = pd.DataFrame({"x": rng.normal(size=200), "y": rng.normal(size=200)})
    model = fit(graph, data, mechanisms={"y": "linear_student_t"}, options=InferenceOptions(svi_steps=20))
    with pytest.raises(BayesRCAError, match=r"analytic estimator needs linear-Gaussian mechanisms; not so for "
                                            r"\{'y': 'linear_student_t'\}"):
        attribute_outliers(model, "y", data.iloc[[0]], estimator="analytic")


def test_unfitted_model(system, row):
    model = BayesianSCM(system.graph)
    with pytest.raises(RuntimeError, match="not fitted yet; call model.fit"):
        attribute_outliers(model, TARGET, row)
    with pytest.raises(RuntimeError, match="not fitted yet"):
        model.posterior_draws()
    with pytest.raises(RuntimeError, match="not fitted yet"):
        model.node("A")


def test_error_classes_are_value_errors():
    for error in (GraphError, DataError, MechanismError):
        assert issubclass(error, BayesRCAError) and issubclass(error, ValueError)


def test_extra_text_columns_in_outlier_frames_are_ignored(oracle, row):
    result = attribute_outliers(oracle, TARGET, row.assign(host="web-1"))
    np.testing.assert_array_equal(result.contributions, attribute_outliers(oracle, TARGET, row).contributions)


def test_series_row_from_a_frame_with_a_text_column(oracle, row):
    table = row.assign(host="web-1")
    result = attribute_outliers(oracle, TARGET, table.iloc[0])
    np.testing.assert_array_equal(result.contributions, attribute_outliers(oracle, TARGET, row).contributions)
