"""The grid posterior of the shrinkage regression (``fourier_gaussian``'s exact inference): its closed forms against
direct linear algebra and against the Pyro model's joint density, its priors with no data, recovery of a known
function, and the fit through :class:`BayesianSCM`."""

from __future__ import annotations

import functools
import math

import numpy as np
import pandas as pd
import pyro
import pytest
import torch

from bayes_rca import BayesianSCM
from bayes_rca.inference.diagnostics import convergence_problems
from bayes_rca.inference.engines import fit_posterior
from bayes_rca.inference.shrinkage_grid import (_coefficient_posterior, _log_posterior, _spectra,
                                                sample_shrinkage_regression)
from bayes_rca.model.mechanisms.fourier import FourierGaussian

_f64 = functools.partial(torch.tensor, dtype=torch.float64)


def _problem(n: int = 30, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    design = torch.randn(n, 6, generator=generator, dtype=torch.float64)
    shrunk = torch.tensor([False, False, True, True, True, True])
    value = design[:, 1] + 0.5 * torch.cos(design[:, 2]) + 0.3 * torch.randn(n, generator=generator,
                                                                           dtype=torch.float64)
    return design, shrunk, value


@pytest.mark.parametrize(("tau", "sigma"), [(0.01, 0.3), (0.7, 0.3), (2.0, 1.5), (0.3, 1e-3)])
def test_marginal_likelihood_equals_the_gaussian_of_the_data(tau: float, sigma: float) -> None:
    design, shrunk, value = _problem()
    scale = torch.where(shrunk, _f64(tau), torch.ones((), dtype=torch.float64))
    covariance = sigma**2 * torch.eye(len(value), dtype=torch.float64) + (design * scale) @ (design * scale).T
    exact = torch.distributions.MultivariateNormal(torch.zeros_like(value), covariance).log_prob(value)
    log_prior = -0.5 * tau**2 + math.log(tau) - 0.5 * sigma**2 + math.log(sigma)  # HalfNormal(1) in log units
    eigenvalues, _, projected = _spectra(design.T @ design, design.T @ value, shrunk, _f64([tau]))
    ours = _log_posterior(eigenvalues, projected, value @ value, len(value), _f64([math.log(tau)]),
                          _f64([math.log(sigma)]))
    assert float(ours[0]) == pytest.approx(float(exact) + log_prior, rel=1e-9, abs=1e-8)


def test_coefficient_posterior_equals_the_direct_inverse() -> None:
    design, shrunk, value = _problem()
    tau, var = _f64([0.4, 1.3]), _f64([0.09, 0.5])
    mean, root = _coefficient_posterior(design.T @ design, design.T @ value, shrunk, tau, var)
    for k in range(2):
        d = torch.diag(torch.where(shrunk, tau[k], torch.ones((), dtype=torch.float64)))
        precision = torch.eye(6, dtype=torch.float64) + d @ design.T @ design @ d / var[k]
        covariance = torch.linalg.inv(precision)
        torch.testing.assert_close(mean[k], covariance @ d @ design.T @ value / var[k], rtol=1e-9, atol=1e-10)
        torch.testing.assert_close(root[k] @ root[k].T, covariance, rtol=1e-9, atol=1e-10)


def test_without_data_the_draws_are_the_priors() -> None:
    torch.manual_seed(1)
    draws, diagnostics = sample_shrinkage_regression(torch.zeros(0, 4, dtype=torch.float64),
                                                     torch.tensor([False, True, True, True]),
                                                     torch.zeros(0, dtype=torch.float64), 20_000)
    half_normal_mean, half_normal_var = math.sqrt(2 / math.pi), 1 - 2 / math.pi
    for name in ("shrinkage", "noise_scale"):
        se = math.sqrt(half_normal_var / 20_000)
        assert abs(float(draws[name].mean()) - half_normal_mean) < 4 * se, name
        assert float(draws[name].var()) == pytest.approx(half_normal_var, rel=0.05)
    coefficients = draws["coefficients"]
    assert coefficients.mean(0).abs().max() < 4 / math.sqrt(20_000)
    torch.testing.assert_close(coefficients.var(0), torch.ones(4, dtype=torch.float64), rtol=0.05, atol=0.0)
    assert diagnostics["grid_edge_mass"] < 1e-4 and not convergence_problems(diagnostics)


def _fourier_problem(n: int, seed: int) -> tuple[FourierGaussian, torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    parents = torch.randn(n, 1, generator=generator, dtype=torch.float64)
    value = torch.sin(2 * parents[:, 0]) + 0.3 * parents[:, 0] + 0.3 * torch.randn(n, generator=generator,
                                                                                  dtype=torch.float64)
    mechanism = FourierGaussian(num_features=8)
    mechanism.setup(1, seed)
    return mechanism, parents, (value - value.mean()) / value.std()


@pytest.mark.parametrize(("tau", "sigma"), [(0.05, 0.2), (0.8, 0.4), (2.5, 1.1)])
def test_the_grid_factorises_the_pyro_models_joint_density(tau: float, sigma: float) -> None:
    """``log p(y, beta, tau, sigma)`` of ``FourierGaussian.model`` (the Pyro model SVI and NUTS condition on)
    equals ``log N(beta; posterior given tau, sigma) + log p(y | tau, sigma) + log p(tau) + log p(sigma)`` for any
    ``beta``: the grid's closed forms are that model's, priors included. The grid's density is in log coordinates
    (its Jacobian ``log tau + log sigma`` removed here) and leaves out the HalfNormal normalisers
    ``log sqrt(2 / pi)``, which is the whole difference."""
    mechanism, parents, value = _fourier_problem(40, 1)
    design, shrunk = mechanism.shrinkage_design(parents)
    gram, cross = design.T @ design, design.T @ value
    generator = torch.Generator().manual_seed(2)
    differences = []
    for _ in range(3):
        coefficients = torch.randn(design.shape[1], generator=generator, dtype=torch.float64)
        sites = {"bias": coefficients[0], "weight": coefficients[1:2], "shrinkage": _f64(tau),
                 "coef_raw": coefficients[2:], "noise_scale": _f64(sigma)}
        trace = pyro.poutine.trace(pyro.condition(mechanism.model, data=sites)).get_trace(parents, value)
        joint = float(trace.log_prob_sum())
        t, v = _f64([tau]), _f64([sigma**2])
        mean, root = _coefficient_posterior(gram, cross, shrunk, t, v)
        covariance = root[0] @ root[0].T
        conditional = float(torch.distributions.MultivariateNormal(mean[0], covariance).log_prob(coefficients))
        eigenvalues, _, projected = _spectra(gram, cross, shrunk, t)
        marginal = float(_log_posterior(eigenvalues, projected, value @ value, len(value), t.log(), v.log() / 2))
        differences.append(joint - conditional - (marginal - math.log(tau) - math.log(sigma)))
    assert max(differences) - min(differences) < 1e-8
    assert differences[0] == pytest.approx(2 * math.log(math.sqrt(2 / math.pi)), abs=1e-8)


def test_grid_posterior_covers_the_true_function() -> None:
    """On 400 rows of ``sin(2x) + 0.3 x`` plus noise 0.3, the 99 % interval of the location covers the truth at
    points inside the data, and the noise scale's posterior covers 0.3 (standardised back)."""
    generator = torch.Generator().manual_seed(3)
    parents = torch.randn(400, 1, generator=generator, dtype=torch.float64)
    truth = torch.sin(2 * parents[:, 0]) + 0.3 * parents[:, 0]
    value = truth + 0.3 * torch.randn(400, generator=generator, dtype=torch.float64)
    mechanism = FourierGaussian()
    mechanism.setup(1, 0)
    pyro.set_rng_seed(0)
    fit = fit_posterior(mechanism, parents, value, "shrinkage_grid", 2000)
    points = torch.linspace(-1.5, 1.5, 7, dtype=torch.float64).reshape(1, 7, 1)
    location = mechanism.location(points.expand(2000, 7, 1), fit.params)
    low, high = torch.quantile(location, 0.005, 0), torch.quantile(location, 0.995, 0)
    expected = torch.sin(2 * points[0, :, 0]) + 0.3 * points[0, :, 0]
    assert bool(((low <= expected) & (expected <= high)).all()), (low, expected, high)
    noise = fit.params["noise_scale"]
    assert float(torch.quantile(noise, 0.005)) < 0.3 < float(torch.quantile(noise, 0.995))
    assert (high - low).max() < 0.5  # and the intervals are informative


def test_fourier_nodes_are_fitted_on_the_grid_by_default() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=500)
    data = pd.DataFrame({"x": x, "y": np.tanh(2 * x) + 0.2 * rng.normal(size=500)})
    import networkx as nx

    model = BayesianSCM(nx.DiGraph([("x", "y")]), mechanisms={"y": "fourier_gaussian"}, num_draws=50,
                        progress=False).fit(data)
    report = model.fit_report_
    assert report.loc["y", "method"] == "shrinkage_grid" and bool(report.loc["y", "converged"])
    again = BayesianSCM(nx.DiGraph([("x", "y")]), mechanisms={"y": "fourier_gaussian"}, num_draws=50,
                        progress=False).fit(data)
    for name, draws in model.node("y").posterior.params.items():  # the same seed gives the same draws
        torch.testing.assert_close(draws, again.node("y").posterior.params[name], rtol=0, atol=0)


def test_a_grid_that_cuts_the_posterior_is_not_converged() -> None:
    assert convergence_problems({"grid_edge_mass": 0.3, "grid_cell_mass": 0.01})
    assert convergence_problems({"grid_edge_mass": 0.0, "grid_cell_mass": 0.5})
    assert not convergence_problems({"grid_edge_mass": 1e-4, "grid_cell_mass": 0.01})


def test_a_nearly_exact_function_is_flagged_with_advice_for_the_grid() -> None:
    """``y = sin(x)`` without noise: the noise sd's posterior runs into the grid's lower edge; the fit is flagged
    (not silently trusted) and the warning says what to do for a grid fit, not SVI's advice."""
    import networkx as nx

    from bayes_rca.errors import BayesRCAWarning

    x = np.random.default_rng(0).normal(size=300)
    data = pd.DataFrame({"x": x, "y": np.sin(x)})
    with pytest.warns(BayesRCAWarning, match="nearly exact function of its parents") as caught:
        model = BayesianSCM(nx.DiGraph([("x", "y")]), mechanisms={"y": "fourier_gaussian"}, num_draws=20,
                            progress=False).fit(data)
    assert not model.converged_
    assert not any("svi_steps" in str(w.message) for w in caught if "'y'" in str(w.message))
