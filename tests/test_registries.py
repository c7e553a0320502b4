"""One registry per kind: a mechanism family, an RCA method or a benchmark family (synthetic or real data) written
as one new class is usable by its name (the recipes of CONTRIBUTING.md), and a name cannot be taken twice."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

import networkx as nx
import numpy as np
import pandas as pd
import pytest
import torch

from bayes_rca import BayesianSCM
from bayes_rca.harness.benchmarks import Benchmark, OutlierCase, SyntheticSystem
from bayes_rca.harness.cell import run_cell
from bayes_rca.harness.config import expand_cells
from bayes_rca.harness.families import (
    BENCHMARK_FAMILIES,
    BenchmarkOptions,
    OutlierFamily,
)
from bayes_rca.harness.families.synthetic import SyntheticFamily
from bayes_rca.harness.methods import METHODS, make_method
from bayes_rca.harness.methods.base import Attribution, RCAMethod
from bayes_rca.model.mechanisms import FAMILIES, LinearGaussian, Mechanism, make_mechanism


class StrongRidgeGaussian(LinearGaussian):
    """The recipe's family: linear-Gaussian with weights shrunk towards 0 (prior precision ``ridge``)."""

    name: ClassVar[str] = "strong_ridge_gaussian"

    def __init__(self, ridge: float = 100.0) -> None:
        super().__init__(ridge=ridge)


class LargestDeviation(RCAMethod):
    """The recipe's method: blame the node furthest from its normal median, in normal MADs."""

    name: ClassVar[str] = "largest_deviation"
    variants: ClassVar[dict] = {"largest_deviation_wide": {"floor": 1.0}}

    def __init__(self, floor: float = 1e-9) -> None:
        self.floor = floor

    def fit(self, graph: nx.DiGraph, data: pd.DataFrame) -> LargestDeviation:
        self.median_ = data.median()
        self.mad_ = (data - self.median_).abs().median().clip(lower=self.floor)
        return self

    def attribute(self, target, outlier: pd.DataFrame) -> Attribution:
        return Attribution(((outlier.iloc[0] - self.median_).abs() / self.mad_).astype(float))


class LinearChain(SyntheticFamily):
    """The recipe's synthetic family: a chain X0 -> X1 -> ... with weights U(0.5, 2) and N(0, 1) noise."""

    name: ClassVar[str] = "linear_chain"
    node_range: ClassVar[tuple[int, int]] = (5, 8)

    def make_system(self, num_nodes: int, rng: np.random.Generator) -> SyntheticSystem:
        from bayes_rca.data.synthetic import LinearGaussianSystem
        from bayes_rca.harness.benchmarks import _linear_functions

        graph = nx.DiGraph([(f"X{j}", f"X{j + 1}") for j in range(num_nodes - 1)])
        weights = {edge: float(rng.uniform(0.5, 2.0)) for edge in graph.edges}
        scale = {node: 1.0 for node in graph}
        linear = LinearGaussianSystem(graph, weights, {node: 0.0 for node in graph}, scale)
        return SyntheticSystem(graph, _linear_functions(graph, weights), scale, linear=linear)


class IncidentFolderOptions(BenchmarkOptions):
    """The recipe's real-data keys: a folder with ``edges.csv``, ``normal.csv`` and ``incidents.csv``."""

    folder: str = "incidents"


class IncidentFolder(OutlierFamily):
    """The recipe's real-data family: normal rows, incident rows with their target and root cause, a graph."""

    name: ClassVar[str] = "incident_folder"
    options: ClassVar[type[BenchmarkOptions]] = IncidentFolderOptions
    real: ClassVar[bool] = True

    def load(self, options: IncidentFolderOptions, seed: int) -> Benchmark:
        folder = Path(options.folder)
        graph = nx.DiGraph(pd.read_csv(folder / "edges.csv").itertuples(index=False, name=None))
        normal = pd.read_csv(folder / "normal.csv")
        incidents = pd.read_csv(folder / "incidents.csv")
        cases = [OutlierCase(row.target, incidents.loc[[index], list(graph)], row.root_cause, name=f"incident{index}")
                 for index, row in incidents.iterrows()]
        return Benchmark(self.name, graph, normal[list(graph)], cases)

    def problem(self, options: IncidentFolderOptions) -> str | None:
        return None if Path(options.folder).is_dir() else f"no folder {options.folder!r}"


def test_a_new_mechanism_family_is_registered_by_its_name_and_fits():
    assert FAMILIES["strong_ridge_gaussian"] is StrongRidgeGaussian
    assert make_mechanism("strong_ridge_gaussian(ridge=400)").ridge == 400
    rng = np.random.default_rng(0)
    x = rng.standard_normal(300)
    data = pd.DataFrame({"x": x, "y": 2.0 * x + 0.5 * rng.standard_normal(300)})
    graph = nx.DiGraph([("x", "y")])
    weights = {}
    for family in ("linear_gaussian", "strong_ridge_gaussian(ridge=300)"):
        model = BayesianSCM(graph, mechanisms={"y": family}, num_draws=400, progress=False).fit(data)
        _, weight = model.node("y").linear_coefficients()
        weights[family] = float(weight.mean())
    assert weights["linear_gaussian"] == pytest.approx(2.0, abs=0.1)
    # ridge = n shrinks the standardised weight by about a half: the new family's prior is the one fitted
    assert weights["strong_ridge_gaussian(ridge=300)"] == pytest.approx(1.0, abs=0.15)


def test_a_new_rca_method_and_its_variant_are_registered_by_name():
    assert METHODS["largest_deviation"] is LargestDeviation
    data = pd.DataFrame({"a": [1.0, 2.0, 3.0, 2.0], "b": [5.0, 5.0, 5.0, 5.0]})
    method = make_method("largest_deviation").fit(nx.DiGraph([("a", "b")]), data)
    scores = method.attribute("b", pd.DataFrame({"a": [2.0], "b": [6.0]})).scores
    assert scores.idxmax() == "b"  # a constant column that moves is the most anomalous
    wide = make_method("largest_deviation_wide").fit(nx.DiGraph([("a", "b")]), data)
    assert wide.floor == 1.0
    assert wide.attribute("b", pd.DataFrame({"a": [2.0], "b": [6.0]})).scores["b"] == pytest.approx(1.0)


def test_a_name_cannot_be_registered_twice():
    with pytest.raises(TypeError, match="'linear_gaussian' of Impostor is taken by bayes_rca.model.mechanisms.linear"):
        type("Impostor", (LinearGaussian,), {"name": "linear_gaussian", "__module__": __name__})
    with pytest.raises(TypeError, match="'naive' of Impostor is taken"):
        type("Impostor", (LargestDeviation,), {"name": "naive", "__module__": __name__})
    assert FAMILIES["linear_gaussian"] is LinearGaussian


def test_registries_hold_every_shipped_family_and_method():
    assert {"linear_gaussian", "gaussian_root", "linear_student_t", "student_t_root", "fourier_gaussian",
            "pass_through_gaussian", "probit_threshold", "poisson_count", "censored_gaussian"} <= set(FAMILIES)
    assert all(issubclass(cls, Mechanism) and cls.name == name for name, cls in FAMILIES.items())
    assert {"bayes_rca", "bayes_rca_linear", "dowhy", "dowhy_petshop", "mad_traversal", "traversal", "naive",
            "circa", "random"} <= set(METHODS)
    assert torch.is_tensor(make_mechanism("gaussian_root").coefficient_prior(0, torch.float64)[0])


def test_a_new_synthetic_benchmark_family_is_registered_and_runs_a_cell():
    assert BENCHMARK_FAMILIES["linear_chain"] is LinearChain
    raw = {"name": "chain", "methods": {"naive": {}, "random": {}},
           "benchmark": {"family": "linear_chain", "num_rows": 200, "num_outliers": 3, "min_ancestors": 3}}
    cells = expand_cells(raw)
    assert cells[0]["benchmark"] == {"family": "linear_chain", "num_nodes": None, "num_rows": 200,
                                     "num_outliers": 3, "min_ancestors": 3}  # its own keys only
    results = {cell["method"]: run_cell(cell) for cell in cells}
    assert all(result.error is None for result in results.values()), results
    naive = results["naive"].metrics
    assert 5 <= naive["num_nodes"] <= 8 and naive["num_cases"] == 3 and naive["failed_cases"] == 0
    assert 0 <= naive["ndcg_at_1"] <= 1 and 0 <= naive["top3_recall"] <= 1
    assert 0 <= naive["shapley_top1_agreement"] <= 1  # linear-Gaussian: the truth at the true parameters is known
    with pytest.raises(Exception, match="unknown key 'benchmark.folder'"):
        expand_cells({**raw, "benchmark": {"family": "linear_chain", "folder": "x"}})


def test_a_new_real_data_benchmark_family_is_registered_and_runs_a_cell(tmp_path, monkeypatch):
    from bayes_rca.harness.loading import benchmark_problem

    assert BENCHMARK_FAMILIES["incident_folder"] is IncidentFolder
    rng = np.random.default_rng(0)
    a = rng.standard_normal(300)
    normal = pd.DataFrame({"a": a, "b": a + 0.3 * rng.standard_normal(300), "c": 0.3 * rng.standard_normal(300)})
    (tmp_path / "incidents").mkdir()
    pd.DataFrame({"cause": ["a", "b"], "effect": ["b", "c"]}).to_csv(tmp_path / "incidents" / "edges.csv",
                                                                     index=False)
    normal.to_csv(tmp_path / "incidents" / "normal.csv", index=False)
    pd.DataFrame({"a": [0.1, 0.0], "b": [6.0, 0.0], "c": [0.1, 8.0], "target": ["c", "c"],
                  "root_cause": ["b", "c"]}).to_csv(tmp_path / "incidents" / "incidents.csv", index=False)
    monkeypatch.chdir(tmp_path)
    raw = {"name": "incidents", "methods": {"largest_deviation": {}}, "benchmark": {"family": "incident_folder"}}
    (cell,) = expand_cells(raw)
    assert benchmark_problem(cell["benchmark"]) is None
    assert benchmark_problem({"family": "incident_folder", "folder": "nowhere"}) == "no folder 'nowhere'"
    result = run_cell(cell)
    assert result.error is None, result.error
    assert result.metrics["top1_recall"] == 1.0 and result.metrics["num_cases"] == 2  # the furthest node is blamed


def test_a_benchmark_family_name_cannot_be_registered_twice():
    with pytest.raises(TypeError, match="benchmark family name 'petshop' of Impostor is taken by "
                                        "bayes_rca.harness.families.petshop.PetShop"):
        type("Impostor", (IncidentFolder,), {"name": "petshop", "__module__": __name__})
    assert {"icml2022", "nonlinear", "student_t", "wide", "microservice", "petshop",
            "distribution_change"} <= set(BENCHMARK_FAMILIES)
