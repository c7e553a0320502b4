"""Mechanism families and inference engines: one posterior three ways, the Student-t CDF, family choice."""

from __future__ import annotations

import math

import networkx as nx
import numpy as np
import pandas as pd
import pytest
import torch
from scipy import stats

from bayes_rca import BayesianSCM, InferenceOptions, attribute_outliers
from bayes_rca.inference import fit_posterior
from bayes_rca.model.mechanisms import LinearGaussian
from bayes_rca.numerics.special import student_t_log_cdf

# ---------------------------------------------------------------------------------------------------------------
# the LinearGaussian posterior: exact conjugate draws, NUTS and SVI target the same distribution


@pytest.fixture(scope="module")
def regression():
    """Standardised-scale data: y = 0.3 + 0.8 x1 - 0.5 x2 + 0.6 N, 200 rows."""
    rng = np.random.default_rng(0)
    x = torch.tensor(rng.standard_normal((200, 2)))
    y = 0.3 + x @ torch.tensor([0.8, -0.5], dtype=torch.float64) + 0.6 * torch.tensor(rng.standard_normal(200))
    return x, y


def flat(params: dict) -> dict:
    return {"bias": params["bias"], "weight0": params["weight"][:, 0], "weight1": params["weight"][:, 1],
            "noise_var": params["noise_var"]}


@pytest.fixture(scope="module")
def conjugate(regression):
    x, y = regression
    torch.manual_seed(0)
    return flat(fit_posterior(LinearGaussian(), x, y, "conjugate", 4000).params)


def test_conjugate_draws_match_the_normal_inverse_gamma_posterior(regression, conjugate):
    """Posterior moments computed here in numpy from the prior of LinearGaussian."""
    x, y = (t.numpy() for t in regression)
    mechanism = LinearGaussian()
    design = np.column_stack([np.ones(len(y)), x])
    precision = np.diag([1 / mechanism.bias_var, mechanism.ridge, mechanism.ridge]) + design.T @ design
    mean = np.linalg.solve(precision, design.T @ y)
    shape = mechanism.a0 + len(y) / 2
    rate = mechanism.b0 + 0.5 * (y @ y - mean @ precision @ mean)
    noise_var_mean = rate / (shape - 1)
    noise_var_sd = noise_var_mean / math.sqrt(shape - 2)
    coef_cov = rate / (shape - 1) * np.linalg.inv(precision)  # marginal (Student-t) covariance
    draws = conjugate
    n = len(draws["bias"])
    for k, name in enumerate(["bias", "weight0", "weight1"]):
        sd = math.sqrt(coef_cov[k, k])
        assert draws[name].mean().item() == pytest.approx(mean[k], abs=4 * sd / math.sqrt(n))
        assert draws[name].std().item() == pytest.approx(sd, rel=0.06)
    assert draws["noise_var"].mean().item() == pytest.approx(noise_var_mean, abs=4 * noise_var_sd / math.sqrt(n))
    assert draws["noise_var"].std().item() == pytest.approx(noise_var_sd, rel=0.08)
    empirical = np.corrcoef(torch.stack([draws["weight0"], draws["weight1"]]).numpy())[0, 1]
    exact = coef_cov[1, 2] / math.sqrt(coef_cov[1, 1] * coef_cov[2, 2])
    assert empirical == pytest.approx(exact, abs=0.05)


def assert_same_posterior(draws: dict, reference: dict, sds: float, sd_ratio: tuple[float, float] | None):
    for name, values in reference.items():
        mean, sd = values.mean().item(), values.std().item()
        assert abs(draws[name].mean().item() - mean) <= sds * sd, (name, draws[name].mean().item(), mean, sd)
        if sd_ratio is not None:
            assert sd_ratio[0] < draws[name].std().item() / sd < sd_ratio[1], name


def test_svi_agrees_with_the_conjugate_posterior(regression, conjugate):
    x, y = regression
    torch.manual_seed(1)
    fit = fit_posterior(LinearGaussian(), x, y, "svi", 500, options=InferenceOptions(svi_steps=1000))
    assert fit.method == "svi" and fit.diagnostics["elbo_relative_change"] < 0.01
    # SVI's Gaussian guide gets the means; its spread is only roughly right (see the report)
    assert_same_posterior(flat(fit.params), conjugate, sds=1.0, sd_ratio=(0.3, 1.5))


def test_nuts_agrees_with_the_conjugate_posterior(regression, conjugate):
    x, y = regression
    torch.manual_seed(2)
    fit = fit_posterior(LinearGaussian(), x, y, "nuts", 200, options=InferenceOptions(warmup_steps=200))
    assert fit.method == "nuts" and fit.diagnostics["divergences"] == 0
    assert_same_posterior(flat(fit.params), conjugate, sds=0.5, sd_ratio=(0.7, 1.4))


def test_fitted_linear_gaussian_node_in_data_units(system, fitted):
    """Posterior draws mapped back to data units recover the true coefficients, intercept and noise sd."""
    for node in ("A", "B", "C", "D"):
        bias, weight, noise_sd = fitted.node(node).linear_gaussian()
        sd = noise_sd * fitted.node(node).standardizer.scale
        assert sd.mean().item() == pytest.approx(system.noise_sd[node], rel=0.06)
        parents = fitted.node(node).parents
        for k, parent in enumerate(parents):
            truth, draws = system.coefficients[parent, node], weight[:, k]
            assert abs(draws.mean().item() - truth) < 4 * draws.std().item() + 1e-3
        assert abs(bias.mean().item() - system.intercepts[node]) < 4 * bias.std().item() + 1e-3


def test_fit_report_and_posterior_draws_layout(fitted):
    report = fitted.fit_report_
    assert list(report.index) == ["A", "B", "C", "D", "E", "F"]  # topological, smallest available name first
    assert set(report["family"]) == {"gaussian_root", "linear_gaussian"}
    assert (report["method"] == "conjugate").all() and (report["rows"] == 3000).all()
    assert report.loc["D", "parameters"] == 4
    draws = fitted.posterior_draws()
    assert draws["D:weight"].shape == (1, 100, 2) and draws["A:noise_var"].shape == (1, 100)
    assert (draws["D:noise_var"] > 0).all()


# ---------------------------------------------------------------------------------------------------------------
# Student-t log CDF


DFS = [2.05, 2.5, 3.0, 4.7, 10.0, 30.0, 100.0]
_MAGNITUDES = np.concatenate([np.logspace(-4, 3, 400), np.logspace(3, 100, 100)[1:]])
GRID = np.concatenate([-_MAGNITUDES[::-1], [0.0], _MAGNITUDES])


def ours(t: np.ndarray, df: float) -> np.ndarray:
    return student_t_log_cdf(torch.tensor(t, dtype=torch.float64),
                             torch.full((len(t),), df, dtype=torch.float64)).numpy()


@pytest.mark.parametrize("df", DFS)
def test_student_t_log_cdf_matches_scipy(df):
    reference = stats.t.logcdf(GRID, df)
    value = ours(GRID, df)
    # scipy's log of a subnormal CDF (below about -708) and subnormal results (|log cdf| < 1e-290) are not
    # accurate to 1e-10 themselves
    usable = np.isfinite(reference) & (reference > -700) & (np.abs(reference) > 1e-290)
    assert usable.sum() > 300
    np.testing.assert_allclose(value[usable], reference[usable], rtol=1e-10, atol=0)
    assert np.all(np.diff(value) >= -1e-12 * np.abs(value[:-1]))  # monotone in t
    assert np.all(value <= 0.0) and value[GRID == 0.0][0] == pytest.approx(math.log(0.5), rel=1e-14)


@pytest.mark.parametrize("df", DFS)
def test_student_t_log_cdf_is_finite_where_scipy_underflows(df):
    mpmath = pytest.importorskip("mpmath")
    mpmath.mp.dps = 40
    t = -np.logspace(1, 150, 200)
    reference = stats.t.logcdf(t, df)
    value = ours(t, df)
    assert np.isfinite(value).all()
    underflow = ~np.isfinite(reference)
    assert underflow.any() or df < 2.5
    for point in t[underflow][::10]:
        x = mpmath.mpf(df) / (mpmath.mpf(df) + mpmath.mpf(point) ** 2)
        exact = float(mpmath.log(mpmath.betainc(mpmath.mpf(df) / 2, 0.5, 0, x, regularized=True) / 2))
        assert ours(np.array([point]), df)[0] == pytest.approx(exact, rel=1e-10)


@pytest.mark.parametrize("df", DFS)
def test_student_t_log_cdf_paths_agree(df):
    """The CPU path (scipy's ``stdtr`` where it does not underflow) and the device-agnostic continued fraction (taken
    where a gradient flows, on other devices, and for the far tail) give one function."""
    t = torch.tensor(GRID, dtype=torch.float64)
    fast = student_t_log_cdf(t, torch.full_like(t, df))
    general = student_t_log_cdf(t.clone().requires_grad_(), torch.full_like(t, df)).detach()
    np.testing.assert_allclose(fast.numpy(), general.numpy(), rtol=1e-11, atol=1e-300)


def test_student_t_log_cdf_upper_tail_and_symmetry():
    t = np.linspace(-40, 40, 161)
    for df in (2.5, 7.0, 50.0):
        lower, upper = ours(t, df), ours(-t, df)
        np.testing.assert_allclose(np.exp(lower) + np.exp(upper), 1.0, rtol=1e-12)
        np.testing.assert_allclose(upper, stats.t.logsf(t, df), rtol=1e-10)


def test_student_t_log_cdf_precision_for_large_df_near_zero():
    t = np.array([-1e-4, 1e-4, 3e-4, -0.01])
    for df in (1e4, 1e5):
        np.testing.assert_allclose(ours(t, df), stats.t.logcdf(t, df), rtol=1e-10, atol=0)


def test_student_t_log_cdf_for_astronomically_large_t():
    mpmath = pytest.importorskip("mpmath")
    mpmath.mp.dps = 40
    for df, point in [(2.05, -6.7e153), (3.0, -1e160), (3.0, -1e300)]:
        x = mpmath.mpf(df) / (mpmath.mpf(df) + mpmath.mpf(point) ** 2)
        exact = float(mpmath.log(mpmath.betainc(mpmath.mpf(df) / 2, 0.5, 0, x, regularized=True) / 2))
        assert ours(np.array([point]), df)[0] == pytest.approx(exact, rel=1e-10)


# ---------------------------------------------------------------------------------------------------------------
# automatic family assignment


def single_root(values: np.ndarray) -> BayesianSCM:
    graph = nx.DiGraph()
    graph.add_node("T")
    return BayesianSCM(graph, num_draws=100, progress=False, seed=1).fit(pd.DataFrame({"T": values}))


def test_auto_assignment_picks_student_t_for_a_heavy_tailed_root():
    rng = np.random.default_rng(0)
    model = single_root(3.0 + 2.0 * rng.standard_t(3, 1500))
    report = model.fit_report_.loc["T"]
    assert report["family"] == "student_t_root" and report["method"] == "laplace_mh"
    assert "kurtosis" in report["reason"] and "LOO gain" in report["reason"]
    noise = model.node("T").noise()
    assert 2.2 < noise.df.mean().item() < 5.0  # the true df is 3
    scale = (noise.scale.squeeze(-1) * model.node("T").standardizer.scale).mean().item()
    assert scale == pytest.approx(2.0, rel=0.15)


def test_auto_assignment_gives_no_student_t_to_a_heavy_tailed_root_with_a_point_mass():
    """75% of the rows at one value (a PetShop latency): the Student-t likelihood is unbounded as its scale
    shrinks onto that value, so the automatic assignment must not propose it."""
    rng = np.random.default_rng(0)
    values = 3.0 + 2.0 * rng.standard_t(3, 1500)
    values[rng.random(1500) < 0.75] = 3.0
    model = single_root(values)
    assert model.fit_report_.loc["T"]["family"] == "gaussian_root"
    noise_sd = float(model.node("T").noise().scale.mean()) * model.node("T").standardizer.scale
    assert noise_sd == pytest.approx(values.std(), rel=0.1)  # a proper fit, not a collapsed scale


def test_auto_assignment_keeps_gaussian_for_gaussian_data():
    rng = np.random.default_rng(1)
    assert single_root(rng.normal(5.0, 2.0, 1500)).fit_report_.loc["T", "family"] == "gaussian_root"


def pair(y_of_x, seed: int = 0, rows: int = 1500) -> BayesianSCM:
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(rows)
    data = pd.DataFrame({"x": x, "y": y_of_x(x) + 0.1 * rng.standard_normal(rows)})
    return BayesianSCM(nx.DiGraph([("x", "y")]), num_draws=100, progress=False, seed=2).fit(data)


def test_auto_assignment_picks_fourier_for_a_sine():
    model = pair(lambda x: np.sin(2 * x))
    report = model.fit_report_.loc["y"]
    assert report["family"] == "extrapolating_fourier" and "held-out squared error" in report["reason"]
    node = model.node("y")
    noise_sd = (node.noise().scale.squeeze(-1) * node.standardizer.scale).mean().item()
    assert noise_sd == pytest.approx(0.1, rel=0.2)
    # the fitted function follows the sine
    grid = torch.linspace(-2, 2, 21, dtype=torch.float64)
    location = node.location(grid.view(1, -1, 1).expand(node.num_draws, -1, -1)).mean(0).numpy()
    np.testing.assert_allclose(location, np.sin(2 * grid.numpy()), atol=0.08)


def test_auto_assignment_picks_linear_gaussian_for_linear_data():
    model = pair(lambda x: 2.0 * x - 1.0)
    assert model.fit_report_.loc["y", "family"] == "linear_gaussian"
    assert model.fit_report_.loc["y", "method"] == "conjugate"


# ---------------------------------------------------------------------------------------------------------------
# constant columns


@pytest.fixture(scope="module")
def constant_model():
    """k is constant (5.0) in training; c is a constant child of x; y depends on x."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=400)
    data = pd.DataFrame({"k": 5.0, "x": x, "y": 2 * x + rng.normal(size=400), "c": 1.0})
    graph = nx.DiGraph([("x", "y"), ("x", "c")])
    graph.add_node("k")
    return BayesianSCM(graph, num_draws=50, progress=False).fit(data)


def test_constant_column_is_fitted_with_small_finite_noise(constant_model):
    for node in ("k", "c"):
        fitted = constant_model.node(node)
        sd = torch.sqrt(fitted.params["noise_var"]) * fitted.standardizer.scale
        assert torch.isfinite(sd).all() and (sd > 0).all() and (sd < 1e-3).all()
        assert fitted.standardizer.scale == 1.0
    bias, _, _ = constant_model.node("k").linear_gaussian()
    np.testing.assert_allclose(bias.numpy(), 5.0, atol=1e-3)


@pytest.mark.parametrize("node, value", [("k", 6.0), ("c", 1.5)])
def test_outlier_in_a_constant_column_gets_a_large_finite_contribution(constant_model, node, value):
    row = pd.DataFrame({"k": [5.0], "x": [0.2], "y": [0.4], "c": [1.0]}).assign(**{node: value})
    result = attribute_outliers(constant_model, node, row)
    own = result.contributions[..., result.nodes.index(node)]
    assert np.isfinite(result.contributions).all() and np.isfinite(result.scores).all()
    assert (own > 1e3).all()  # the deviation is thousands of (tiny) noise sds
    np.testing.assert_allclose(result.contributions.sum(-1), result.scores, rtol=1e-9)
    assert (result.summary().loc[0].index[0] == node) and result.summary().loc[(0, node), "p_top_cause"] == 1.0


def test_normal_value_of_a_constant_column_scores_zero(constant_model):
    row = pd.DataFrame({"k": [5.0], "x": [0.2], "y": [0.4], "c": [1.0]})
    result = attribute_outliers(constant_model, "k", row)
    assert np.abs(result.scores).max() < 1.0
