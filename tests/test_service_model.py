"""The service-metric model: pass-through weights, the robust (Student-t) game, constant nodes' noise.

Checks mathematics: the conjugate posterior against its closed form, the robust game's Student-t tail against
scipy and against a brute-force Monte Carlo of the common-scale noise it stands for, the axioms per draw, and a
call graph in which an intermediate caller must not be blamed for its callee's fault.
"""

from __future__ import annotations

import math
import warnings

import networkx as nx
import numpy as np
import pandas as pd
import pytest
import torch
from scipy import stats

from bayes_rca import BayesianSCM, attribute_outliers
from bayes_rca.attribution.abduction import Players
from bayes_rca.attribution.linear_game import LinearGaussianGame
from bayes_rca.attribution.scores import get_feature_map, student_t_log_tail
from bayes_rca.errors import BayesRCAError
from bayes_rca.model.mechanisms import PassThroughGaussian, make_mechanism


def _chain_data(rng: np.random.Generator, n: int, callee_sd: float, weight: float) -> pd.DataFrame:
    callee = 0.05 + callee_sd * rng.standard_normal(n)
    caller = 0.2 + weight * callee + 0.01 * rng.standard_normal(n)
    return pd.DataFrame({"callee": callee, "caller": caller})


GRAPH = nx.DiGraph([("callee", "caller")])
MECHANISMS = {"callee": "gaussian_root", "caller": "pass_through_gaussian"}


def _weight_in_data_units(model: BayesianSCM) -> torch.Tensor:
    node = model.node("caller")
    return node.params["weight"][:, 0] * node.standardizer.scale / node.standardizer.parent_scale[0]


def test_pass_through_weight_is_learned_where_the_parent_varies():
    data = _chain_data(np.random.default_rng(0), 2000, callee_sd=0.05, weight=0.4)
    model = BayesianSCM(GRAPH, mechanisms=MECHANISMS, num_draws=400, progress=False).fit(data)
    weight = _weight_in_data_units(model)
    assert abs(float(weight.mean()) - 0.4) < 0.02  # the data override the prior mean of 1
    assert float(weight.std()) < 0.02


def test_pass_through_weight_keeps_its_prior_where_the_parent_barely_varies():
    data = _chain_data(np.random.default_rng(1), 600, callee_sd=1e-5, weight=1.0)
    model = BayesianSCM(GRAPH, mechanisms=MECHANISMS, num_draws=2000, progress=False).fit(data)
    weight = _weight_in_data_units(model)
    # the regression sees a callee 1000 times quieter than the caller's own noise: the posterior is the prior
    assert abs(float(weight.mean()) - 1.0) < 0.05
    assert 0.35 < float(weight.std()) < 0.65  # prior sd 0.5 at the node's own variance
    flat = BayesianSCM(GRAPH, num_draws=2000, progress=False).fit(data)
    assert float(_weight_in_data_units(flat).std()) > 5  # a vague zero-mean prior: anything goes


def test_conjugate_posterior_mean_is_the_closed_form_with_the_prior_mean():
    data = _chain_data(np.random.default_rng(2), 300, callee_sd=0.002, weight=1.0)
    model = BayesianSCM(GRAPH, mechanisms=MECHANISMS, num_draws=20000, progress=False).fit(data)
    node = model.node("caller")
    std = node.standardizer
    x = (torch.tensor(data["callee"].to_numpy()) - std.parent_loc[0]) / std.parent_scale[0]
    y = (torch.tensor(data["caller"].to_numpy()) - std.loc) / std.scale
    design = torch.stack([torch.ones_like(x), x], 1)
    mean0, precision0 = node.mechanism.coefficient_prior(1, torch.float64)
    assert float(mean0[1]) == pytest.approx(float(std.parent_scale[0]) / std.scale)  # weight 1 in data units
    expected = torch.linalg.solve(torch.diag(precision0) + design.T @ design, design.T @ y + precision0 * mean0)
    drawn = torch.stack([node.params["bias"], node.params["weight"][:, 0]], 1).mean(0)
    assert torch.allclose(drawn, expected, atol=0.02)


def test_pass_through_abduction_round_trip():
    """Noise abducted from rows (incident-sized ones too) reproduces them through the mechanism, per draw."""
    data = _chain_data(np.random.default_rng(4), 500, callee_sd=0.001, weight=1.0)
    model = BayesianSCM(GRAPH, mechanisms=MECHANISMS, num_draws=50, progress=False).fit(data)
    node = model.node("caller")
    parents = torch.tensor([[0.05], [0.09], [1.5]], dtype=torch.float64)  # normal, 40 sd and 1450 sd out
    value = torch.tensor([0.25, 0.31, 1.9], dtype=torch.float64)
    noise = node.abduct(value, parents)
    location = node.location(parents.unsqueeze(0).expand(node.num_draws, -1, -1))
    rebuilt = node.value_at(location, noise)
    torch.testing.assert_close(rebuilt, value.expand_as(rebuilt), rtol=1e-12, atol=1e-12)
    bias, weight, _ = node.linear_gaussian()  # data units; the noise is in the node's standardised units
    by_hand = (value - bias[:, None] - weight[:, :1] * parents[:, 0]) / node.standardizer.scale
    torch.testing.assert_close(noise, by_hand, rtol=1e-9, atol=1e-9)


def test_pass_through_needs_its_parent_scales():
    with pytest.raises(RuntimeError, match="bind_parents"):
        PassThroughGaussian().coefficient_prior(2, torch.float64)
    assert make_mechanism("pass_through_gaussian(weight_sd=0.3)").weight_sd == 0.3


@pytest.mark.parametrize("num_parents", [1, 3, 11])
def test_request_share_prior_is_the_moment_matched_flat_dirichlet_marginal(num_parents):
    """The share of requests on one of K callees under Dirichlet(1, ..., 1) over (own work, K callees)."""
    mechanism = make_mechanism("request_share_gaussian").bind_parents(torch.full((num_parents,), 2.0), 4.0)
    mean, precision = mechanism.coefficient_prior(num_parents, torch.float64)
    shares = np.random.default_rng(0).dirichlet(np.ones(num_parents + 1), 200_000)[:, 1]
    ratio = 2.0 / 4.0  # data-unit weight -> standardised weight
    assert float(mean[1]) == pytest.approx(shares.mean() * ratio, rel=0.01)
    assert float(precision[1]) ** -0.5 == pytest.approx(shares.std() * ratio, rel=0.01)


def test_request_share_weight_keeps_its_prior_where_the_parent_never_moved_and_learns_otherwise():
    graph = nx.DiGraph([("a", "caller"), ("b", "caller")])
    rng = np.random.default_rng(5)
    n = 800
    data = pd.DataFrame({"a": 100 - np.abs(rng.normal(0, 2, n)), "b": np.full(n, 100.0)})
    data["caller"] = 100 - 0.3 * (100 - data["a"]) - np.abs(rng.normal(0, 0.05, n))
    mechanisms = {"a": "gaussian_root", "b": "gaussian_root", "caller": "request_share_gaussian"}
    model = BayesianSCM(graph, mechanisms=mechanisms, num_draws=4000, progress=False,
                        constant_noise="finest").fit(data)
    _, weight = model.node("caller").linear_coefficients()
    assert abs(float(weight[:, 0].mean()) - 0.3) < 0.02  # the data decide the share of the parent that moved
    # the parent that never moved keeps the prior share of 1 in 3 (the noise variance scales the prior sd)
    assert abs(float(weight[:, 1].mean()) - 1 / 3) < 0.03


@pytest.mark.parametrize("df", [1.0, 2.0, 3.5, 10.0])
def test_student_t_tail_matches_scipy_and_stays_exact_far_out(df):
    z = torch.tensor([0.0, 0.3, 2.0, 7.0, 40.0, 1e4, 1e80], dtype=torch.float64)
    zero, one = torch.zeros_like(z), torch.ones_like(z)
    got = student_t_log_tail(zero, one, -z, z, df).numpy()
    with np.errstate(divide="ignore"):
        expected = np.log(2 * stats.t.sf(z.numpy(), df))
    finite = np.isfinite(expected)
    np.testing.assert_allclose(got[finite], np.minimum(expected[finite], 0.0), rtol=1e-10, atol=1e-12)
    huge = torch.tensor([1e150, 1e300], dtype=torch.float64)  # beyond stdtr: the power-law tail
    far = student_t_log_tail(torch.zeros(2, dtype=torch.float64), torch.ones(2, dtype=torch.float64), -huge, huge, df)
    log_constant = (math.lgamma((df + 1) / 2) - math.lgamma(df / 2) - 0.5 * math.log(df * math.pi)
                    + 0.5 * (df - 1) * math.log(df))
    np.testing.assert_allclose(far.numpy(), math.log(2) + log_constant - df * np.log(huge.numpy()), rtol=1e-12)
    # a zero scale: the value sits on the threshold, the event is certain
    assert float(student_t_log_tail(zero[:1], zero[:1], -one[:1], zero[:1], df)) == 0.0


@pytest.mark.parametrize("df", [2.0, 3.0])
def test_student_t_two_tails_at_any_location_match_scipy(df):
    """Asymmetric thresholds, the mean inside or beyond them (a near side below the median), scales of 1e-6 to 1e3."""
    rng = np.random.default_rng(11)
    mean = torch.tensor(rng.uniform(-60, 60, 5000))
    scale = torch.tensor(10.0 ** rng.uniform(-6, 3, 5000))
    lo = torch.tensor(rng.uniform(-40, 0, 5000))
    hi = lo + torch.tensor(rng.uniform(0, 80, 5000))
    got = student_t_log_tail(mean, scale, lo, hi, df).numpy()
    m, s, a, b = (t.numpy() for t in (mean, scale, lo, hi))
    expected = np.logaddexp(stats.t.logcdf((a - m) / s, df), stats.t.logsf((b - m) / s, df))
    np.testing.assert_allclose(got, np.minimum(expected, 0.0), rtol=1e-9, atol=1e-12)


def _three_node_game(tail_df: float):
    rng = np.random.default_rng(3)
    n = 3000
    a = 1.0 + rng.standard_normal(n)
    b = 0.5 + 0.8 * a + 0.6 * rng.standard_normal(n)
    t = -1.0 + 1.3 * b + 0.4 * rng.standard_normal(n)
    graph = nx.DiGraph([("A", "B"), ("B", "T")])
    model = BayesianSCM(graph, num_draws=4, progress=False).fit(pd.DataFrame({"A": a, "B": b, "T": t}))
    nodes = [model.node(name) for name in ["A", "B", "T"]]
    values = torch.tensor([[1.2, 4.3, 5.4]], dtype=torch.float64)  # B's noise far out, A and T normal
    return LinearGaussianGame(Players.abduct(nodes, values), get_feature_map("median_cdf_quantile"), tail_df)


def test_robust_game_is_the_common_scale_mixture_it_claims(tail_df=2.0):
    """Brute force: redraw the coalition's noise with one common variance factor InvGamma(df/2, df/2)."""
    game = _three_node_game(tail_df)
    masks = torch.tensor([[m >> k & 1 for k in range(3)] for m in range(1, 8)], dtype=torch.bool)
    exact = game(masks)[0][0, 0]  # draw 0, row 0, (C,)
    generator = torch.Generator().manual_seed(0)
    samples = 400_000
    lam = 1.0 / torch.distributions.Gamma(tail_df / 2, tail_df / 2).sample((samples,))
    z = torch.randn(samples, 3, generator=generator, dtype=torch.float64)
    alpha_sd = torch.sqrt(game.variance_share[0])  # each standardised noise's sd on X_t
    for c, mask in enumerate(masks):
        weights = mask.to(torch.float64)
        mean = game.observed[0] - (game.shift[0, 0] * weights).sum()
        x_t = mean + torch.sqrt(lam.to(torch.float64)) * (z * alpha_sd * weights).sum(1)
        hit = ((x_t <= game.lo[0, 0]) | (x_t >= game.hi[0, 0])).double().mean()
        p = float(torch.exp(-exact[c]))
        se = math.sqrt(p * (1 - p) / samples)
        assert abs(float(hit) - p) < 5 * se + 1e-4, (mask.tolist(), float(hit), p)


def _chain_model(rows: int, draws: int) -> tuple[BayesianSCM, pd.DataFrame]:
    """DoWhy's chain X0 -> X1 -> X2 -> X3 (unit weights and noises) fitted on ``rows`` normal rows, and its
    outlier row: X1's noise 36 sd out, X0 perfectly normal (z = 0.18)."""
    rng = np.random.default_rng(0)
    x0 = rng.standard_normal(rows)
    x1 = x0 + rng.standard_normal(rows)
    x2 = x1 + rng.standard_normal(rows)
    x3 = x2 + rng.standard_normal(rows)
    graph = nx.DiGraph([("X0", "X1"), ("X1", "X2"), ("X2", "X3")])
    model = BayesianSCM(graph, num_draws=draws, progress=False).fit(
        pd.DataFrame({"X0": x0, "X1": x1, "X2": x2, "X3": x3}))
    return model, pd.DataFrame({"X0": [0.18], "X1": [36.18], "X2": [36.18], "X3": [36.18]})


def test_robust_game_keeps_a_normal_node_near_zero_where_the_gaussian_game_explodes():
    """DoWhy's chain example: X0 -> X1 -> X2 -> X3, X1's noise 36 sd out, X0 perfectly normal (z = 0.18)."""
    model, row = _chain_model(rows=5000, draws=100)
    gaussian = attribute_outliers(model, "X3", row).summary().xs(0)["mean"]
    robust_result = attribute_outliers(model, "X3", row, tail_df=2.0)
    robust = robust_result.summary().xs(0)["mean"]
    assert gaussian["X0"] < -10  # the exact Gaussian game: tens of nats for a normal node
    assert abs(robust["X0"]) < 0.1
    assert robust.idxmax() == "X1" and robust["X1"] > 0.9 * float(robust_result.scores.mean())
    assert robust_result.settings["tail_df"] == 2.0
    with pytest.raises(BayesRCAError, match="tail_df"):
        attribute_outliers(model, "X3", row, tail_df=0.0)


def test_the_monte_carlo_robust_game_gives_the_normal_node_what_the_exact_one_does():
    """The chain example (X1's noise 36 sd out) through the general Monte Carlo game with ``tail_df=2``: its
    contributions agree with the closed-form robust game's within a few of their standard errors, draw by
    draw, so the normal X0 keeps a contribution near zero on that path too (the Gaussian Monte Carlo game gives
    it tens of nats of either sign, like the exact Gaussian one)."""
    model, row = _chain_model(rows=2000, draws=8)
    exact = attribute_outliers(model, "X3", row, tail_df=2.0)
    sampled = attribute_outliers(model, "X3", row, tail_df=2.0, estimator="monte_carlo", num_samples=4000)
    assert sampled.settings["estimator"] == "monte_carlo" and sampled.settings["shapley"] == "exact"
    error = sampled.standard_errors[:, 0]
    z = (sampled.contributions[:, 0] - exact.contributions[:, 0]) / np.where(error > 0, error, 1.0)
    assert np.abs(z).max() < 4.0 and error.max() < 0.2, (np.abs(z).max(), error.max())
    assert np.abs(sampled.contributions[:, 0, 0]).max() < 0.3  # X0, every draw
    np.testing.assert_allclose(sampled.contributions.sum(-1), sampled.scores, atol=1e-9)  # efficiency


def _call_graph_system(rng: np.random.Generator, n: int) -> tuple[nx.DiGraph, pd.DataFrame]:
    """Target <- Caller <- Callee (a deep dependency that barely varies) and Target <- Other; latencies add.

    The callee's latency is measured with noise that does not reach its caller (regression dilution): in normal
    data its 0.1 ms fluctuations explain nothing of the caller's 4 ms ones.
    """
    callee = 0.010 + 0.0001 * rng.standard_normal(n)
    measured_callee = callee + 0.0003 * rng.standard_normal(n)
    other = 0.050 + 0.005 * rng.standard_normal(n)
    caller = 0.030 + callee + 0.004 * rng.standard_normal(n)
    target = 0.020 + 0.7 * caller + other + 0.003 * rng.standard_normal(n)
    graph = nx.DiGraph([("Callee", "Caller"), ("Caller", "Target"), ("Other", "Target")])
    return graph, pd.DataFrame({"Callee": measured_callee, "Caller": caller, "Other": other, "Target": target})


def test_an_intermediate_caller_is_not_blamed_for_its_callees_fault():
    graph, data = _call_graph_system(np.random.default_rng(5), 600)
    # the callee slows down by 40 ms; the caller passes it on, the target 0.7 of it
    fault = {"Callee": 0.050, "Caller": 0.030 + 0.050, "Other": 0.050}
    fault["Target"] = 0.020 + 0.7 * fault["Caller"] + fault["Other"]
    row = pd.DataFrame({k: [v] for k, v in fault.items()})

    def fitted(family: str) -> BayesianSCM:
        families = {"Callee": "gaussian_root", "Other": "gaussian_root", "Caller": family, "Target": family}
        return BayesianSCM(graph, mechanisms=families, num_draws=200, progress=False).fit(data)

    result = attribute_outliers(fitted("pass_through_gaussian"), "Target", row, tail_df=2.0)
    mean = result.summary().xs(0)["mean"]
    top = result.top_cause_probability().iloc[0]
    assert mean.idxmax() == "Callee"
    assert top["Callee"] > 0.9
    assert mean["Caller"] < 0.3 * mean["Callee"]
    np.testing.assert_allclose(result.contributions[:, 0].sum(-1), result.scores[:, 0], rtol=1e-9, atol=1e-9)
    # the failure this model removes: vague zero-mean weights, capped Gaussian game -> the caller is blamed
    old = attribute_outliers(fitted("linear_gaussian"), "Target", row, max_nats=30.0)
    assert old.top_cause_probability().iloc[0]["Caller"] > 0.3


def test_constant_node_gets_the_finest_scale_of_the_varying_nodes():
    rng = np.random.default_rng(7)
    n = 400
    data = pd.DataFrame({"Stuck": np.full(n, 100.0), "Busy": 99.0 + 0.3 * rng.standard_normal(n),
                         "Quiet": 99.5 + 0.05 * rng.standard_normal(n)})
    data["Site"] = data["Stuck"] + data["Busy"] + data["Quiet"] - 200 + 0.1 * rng.standard_normal(n)
    graph = nx.DiGraph([("Stuck", "Site"), ("Busy", "Site"), ("Quiet", "Site")])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        prior = BayesianSCM(graph, num_draws=50, progress=False).fit(data)
        finest = BayesianSCM(graph, num_draws=50, progress=False, constant_noise="finest").fit(data)
    def noise_sd(model):
        return float(model.node("Stuck").linear_gaussian()[2].mean() * model.node("Stuck").standardizer.scale)
    assert noise_sd(prior) < 1e-3  # a few 1e-5 of whatever unit the column has
    assert noise_sd(finest) == pytest.approx(data["Quiet"].std(), rel=1e-9)
    with pytest.raises(Exception, match="constant_noise"):
        BayesianSCM(graph, constant_noise="median")
