"""One registry per kind: a mechanism family or an RCA method written as one new class is usable by its name
(the recipes of CONTRIBUTING.md), and a name cannot be taken twice."""

from __future__ import annotations

from typing import ClassVar

import networkx as nx
import numpy as np
import pandas as pd
import pytest
import torch

from bayes_rca import BayesianSCM
from bayes_rca.harness.methods import METHODS, make_method
from bayes_rca.harness.methods.base import Attribution, RCAMethod
from bayes_rca.mechanisms import FAMILIES, LinearGaussian, Mechanism, make_mechanism


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
    with pytest.raises(TypeError, match="'linear_gaussian' of Impostor is taken by bayes_rca.mechanisms.linear"):
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
