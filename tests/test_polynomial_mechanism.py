"""``polynomial_gaussian``: exact conjugate posterior of a polynomial regression, its abduction, the Shapley axioms
per draw under the Monte Carlo game, and its place in the automatic assignment."""

from __future__ import annotations

import networkx as nx
import numpy as np
import pandas as pd
import pytest
import torch

from bayes_rca import BayesianSCM, attribute_outliers
from bayes_rca.errors import MechanismError
from bayes_rca.model.mechanisms import PolynomialGaussian, make_mechanism
from bayes_rca.model.mechanisms.polynomial import monomial_exponents

GRAPH = nx.DiGraph([("a", "y"), ("b", "y")])


def _quadratic(rows: int, seed: int, noise_sd: float = 0.5) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    a, b = rng.normal(0, 1, rows), rng.uniform(-2, 2, rows)
    y = 1.0 + 2.0 * a - b + 0.8 * a**2 + 1.5 * a * b + noise_sd * rng.standard_normal(rows)
    return pd.DataFrame({"a": a, "b": b, "y": y})


def _true_location(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return 1.0 + 2.0 * a - b + 0.8 * a**2 + 1.5 * a * b


def _fit(data: pd.DataFrame, draws: int = 200, degree: int = 2) -> BayesianSCM:
    mechanisms = {"y": PolynomialGaussian(degree=degree)}
    return BayesianSCM(GRAPH, mechanisms=mechanisms, num_draws=draws, seed=0, progress=False).fit(data)


def test_monomials_count_every_product_up_to_the_degree():
    assert len(monomial_exponents(3, 2)) == 3 + 6
    assert len(monomial_exponents(2, 3)) == 2 + 3 + 4
    assert make_mechanism("polynomial_gaussian(degree=3)").num_parameters(2) == 9 + 2


def test_parameter_recovery_in_data_units_and_noise_scale():
    """The posterior mean of the regression function (data units) matches the truth inside and beyond the training
    range, within what the posterior itself says, and the noise sd is recovered."""
    data = _quadratic(3000, seed=1)
    node = _fit(data).node("y")
    a, b = np.array([0.0, 1.0, -1.5, 3.0]), np.array([0.0, -1.0, 1.5, 2.0])  # the last point is 3 sd out
    parents = torch.tensor(np.column_stack([a, b]), dtype=torch.float64)
    location = node.location(parents.unsqueeze(0).expand(node.num_draws, -1, -1))
    mean, sd = location.mean(0).numpy(), location.std(0).numpy()
    assert np.all(np.abs(mean - _true_location(a, b)) < 4 * sd + 0.02)
    noise_sd = (node.noise().scale.squeeze(-1) * node.standardizer.scale).mean().item()
    assert noise_sd == pytest.approx(0.5, rel=0.05)
    assert _fit(data, draws=10).fit_report_.loc["y", "method"] == "conjugate"


def test_conjugate_draws_have_the_closed_form_posterior_mean():
    data = _quadratic(400, seed=2)
    node = _fit(data, draws=20000).node("y")
    std, mechanism = node.standardizer, node.mechanism
    parents = (torch.tensor(data[["a", "b"]].to_numpy()) - std.parent_loc) / std.parent_scale
    value = (torch.tensor(data["y"].to_numpy()) - std.loc) / std.scale
    design = torch.cat([torch.ones(len(value), 1, dtype=torch.float64), mechanism.regressors(parents)], 1)
    mean0, precision0 = mechanism.coefficient_prior(design.shape[1] - 1, torch.float64)
    expected = torch.linalg.solve(torch.diag(precision0) + design.T @ design, design.T @ value + precision0 * mean0)
    drawn = torch.cat([node.params["bias"][:, None], node.params["weight"]], 1).mean(0)
    torch.testing.assert_close(drawn, expected, atol=0.01, rtol=0)


def test_abduction_round_trip_far_outside_the_training_range():
    node = _fit(_quadratic(500, seed=3), draws=50).node("y")
    parents = torch.tensor([[0.1, 0.2], [4.0, -1.0], [30.0, 5.0]], dtype=torch.float64)  # normal, 4 and 30 sd out
    value = torch.tensor([1.0, 30.0, 1000.0], dtype=torch.float64)
    noise = node.abduct(value, parents)
    location = node.location(parents.unsqueeze(0).expand(node.num_draws, -1, -1))
    torch.testing.assert_close(node.value_at(location, noise), value.expand(node.num_draws, -1), rtol=1e-12,
                               atol=1e-9)


def test_shapley_axioms_hold_per_draw_under_the_monte_carlo_game():
    model = _fit(_quadratic(1000, seed=4), draws=20)
    rows = pd.DataFrame({"a": [3.0, 0.1], "b": [0.5, 0.2], "y": [15.0, 6.0]})
    result = attribute_outliers(model, "y", rows, num_samples=400, seed=1)
    assert result.settings["estimator"] == "monte_carlo"
    np.testing.assert_allclose(result.contributions.sum(-1), result.scores, rtol=1e-9, atol=1e-9)  # efficiency
    again = attribute_outliers(model, "y", rows, num_samples=400, seed=1)
    np.testing.assert_array_equal(again.contributions, result.contributions)  # deterministic


def test_automatic_assignment_picks_the_polynomial_for_a_quadratic_and_keeps_fourier_for_a_sine():
    quadratic = BayesianSCM(GRAPH, num_draws=50, seed=0, progress=False).fit(_quadratic(1500, seed=5))
    report = quadratic.fit_report_.loc["y"]
    assert report["family"] == "polynomial_gaussian", report.to_dict()
    rng = np.random.default_rng(6)
    x = rng.standard_normal(1500)
    sine = pd.DataFrame({"x": x, "z": np.sin(2 * x) + 0.1 * rng.standard_normal(1500)})
    model = BayesianSCM(nx.DiGraph([("x", "z")]), num_draws=50, seed=2, progress=False).fit(sine)
    assert model.fit_report_.loc["z", "family"] == "extrapolating_fourier"


def test_a_degree_that_is_not_a_positive_integer_is_an_error_before_fitting():
    with pytest.raises(MechanismError, match="degree must be a positive integer, got 0"):
        _fit(_quadratic(100, seed=7), degree=0)
