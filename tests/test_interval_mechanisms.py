"""Mechanisms that are not invertible: threshold (binary), count (Poisson) and censored nodes.

An observed value of such a node bounds its noise to an interval; the noise posterior is the noise law restricted
to it. Tests: the output map and its noise bounds agree (hypothesis), the truncated sampler is exact far out in the
tails, fitting recovers known parameters, bad values give clear errors, and on a system with a binary node the
attribution matches an independent brute-force computation (closed-form game, Shapley by enumeration, the noise
posterior integrated by quadrature).
"""

from __future__ import annotations

import itertools
import math

import networkx as nx
import numpy as np
import pandas as pd
import pytest
import scipy.integrate
import scipy.optimize
import scipy.stats
import torch
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from bayes_rca import BayesianSCM, attribute_outliers
from bayes_rca.errors import BayesRCAError, DataError, MechanismError
from bayes_rca.harness.methods import make_method
from bayes_rca.inference import PosteriorFit
from bayes_rca.model.mechanisms import (
    CensoredGaussian,
    GaussianRoot,
    LinearGaussian,
    PoissonCount,
    ProbitThreshold,
    make_mechanism,
)
from bayes_rca.model.node import FittedNode, Standardizer
from bayes_rca.model.noise import GaussianNoise, sample_truncated
from bayes_rca.numerics.special import log_ndtri

DOUBLE = torch.float64


def _censored(lower: float, upper: float) -> CensoredGaussian:
    return CensoredGaussian(lower, upper).bind(torch.tensor([lower, upper], dtype=DOUBLE), 0.0, 1.0)


MECHANISMS = {"probit": ProbitThreshold(), "poisson": PoissonCount(), "censored": _censored(-1.0, 2.0)}


@settings(max_examples=60, deadline=None)
@given(family=st.sampled_from(sorted(MECHANISMS)), location=st.floats(-3, 3), noise=st.floats(-6, 6),
       value=st.integers(-2, 30))
def test_noise_bounds_are_the_preimages_of_the_output_map(family: str, location: float, noise: float,
                                                          value: int) -> None:
    mechanism = MECHANISMS[family]
    loc, n, v = (torch.tensor([x], dtype=DOUBLE) for x in (location, noise, float(value) / 4 if family == "censored"
                                                             else float(value)))
    output = mechanism.output(loc, n)
    at_most, at_least = mechanism.noise_at_most(loc, v), mechanism.noise_at_least(loc, v)
    # a boundary point (probability zero) may go either way, and so may one within rounding of it
    # (location + noise rounds to the bound while noise < bound - location): hypothesis found 2 - 2e-165 == 2
    assume(all(bool((n - bound).abs() > 1e-9 * (1 + bound.abs())) for bound in (at_most, at_least)
               if bool(torch.isfinite(bound))))
    assert bool((output <= v) == (n <= at_most))
    assert bool((output >= v) == (n >= at_least))


def test_poisson_output_is_the_poisson_quantile_of_the_noise() -> None:
    noise = torch.linspace(-5, 5, 2001, dtype=DOUBLE)
    for rate in (0.05, 2.0, 40.0, 5000.0):
        counts = PoissonCount().output(torch.full_like(noise, math.log(rate)), noise).numpy()
        expected = scipy.stats.poisson.ppf(scipy.stats.norm.cdf(noise.numpy()), rate)
        assert np.array_equal(counts, expected)


def test_log_ndtri_inverts_log_ndtr_in_both_tails() -> None:
    log_p = torch.tensor([-1e4, -700.0, -50.0, -3.0, -0.7, -0.1, -1e-8, -1e-30], dtype=DOUBLE)
    x = log_ndtri(log_p)
    assert torch.allclose(torch.special.log_ndtr(x), log_p, rtol=1e-9, atol=0.0)
    assert x[-1] > 11.0  # log_p within rounding of 0: the upper tail, not +inf


@pytest.mark.parametrize("low, high", [(-math.inf, 0.3), (1.0, math.inf), (8.0, 8.5), (-40.0, -39.0),
                                       (-0.5, 0.5), (30.0, math.inf)])
def test_truncated_sampler_matches_the_truncated_normal(low: float, high: float) -> None:
    scale = 1.7
    noise = GaussianNoise(torch.tensor([[scale]], dtype=DOUBLE))
    shape = (1, 20_000)
    draws = sample_truncated(noise, torch.full(shape, low * scale, dtype=DOUBLE),
                             torch.full(shape, high * scale, dtype=DOUBLE), torch.Generator().manual_seed(0))
    standard = draws.numpy().ravel() / scale
    assert np.all((standard >= low) & (standard <= high))
    assert scipy.stats.kstest(standard, scipy.stats.truncnorm(low, high).cdf).pvalue > 0.001


def test_identified_noise_is_returned_as_it_is() -> None:
    noise = GaussianNoise(torch.tensor([[2.0]], dtype=DOUBLE))
    point = torch.tensor([[0.75, -3.0]], dtype=DOUBLE)
    assert torch.equal(sample_truncated(noise, point, point, torch.Generator()), point)


# --- fitting ---------------------------------------------------------------------------------------------------


def _fit(graph: nx.DiGraph, data: pd.DataFrame, mechanisms: dict, num_draws: int = 200) -> BayesianSCM:
    return BayesianSCM(graph, mechanisms=mechanisms, num_draws=num_draws, progress=False, seed=1).fit(data)


def test_fits_recover_known_parameters() -> None:
    rng = np.random.default_rng(0)
    n = 3000
    a = rng.normal(size=n)
    data = pd.DataFrame({"A": a, "up": (0.5 + 1.2 * a + rng.normal(size=n) > 0).astype(float),
                         "requests": rng.poisson(np.exp(2.0 + 0.4 * a)).astype(float),
                         "latency": np.minimum(1.0 + 2.0 * a + rng.normal(size=n), 3.0)})
    graph = nx.DiGraph([("A", "up"), ("A", "requests"), ("A", "latency")])
    model = _fit(graph, data, {"requests": "poisson_count", "latency": CensoredGaussian(upper=3.0)})
    assert model.fit_report_.loc["up", "family"] == "probit_threshold"  # 0/1 values: chosen automatically
    a_scale = float(data["A"].std())

    def mean(node: str, site: str) -> float:
        return float(model.node(node).params[site].mean())

    a_loc = float(data["A"].mean())
    assert mean("up", "weight") / a_scale == pytest.approx(1.2, abs=0.12)
    assert mean("up", "bias") - mean("up", "weight") * a_loc / a_scale == pytest.approx(0.5, abs=0.08)
    assert mean("requests", "weight") / a_scale == pytest.approx(0.4, abs=0.03)
    latency = model.node("latency")
    slope = latency.standardizer.scale * mean("latency", "weight") / a_scale
    assert slope == pytest.approx(2.0, abs=0.1)  # a Gaussian fit ignoring the cap would flatten the slope
    assert latency.standardizer.scale * mean("latency", "noise_scale") == pytest.approx(1.0, abs=0.08)


def test_impossible_values_are_clear_errors() -> None:
    rng = np.random.default_rng(0)
    a = rng.normal(size=200)
    data = pd.DataFrame({"A": a, "up": (a > 0).astype(float)})
    graph = nx.DiGraph([("A", "up")])
    bad = data.assign(up=data["up"].where(data.index != 7, 0.5))
    with pytest.raises(MechanismError, match=r"node 'up' has a probit_threshold mechanism, but its training "
                                             r"value 0.5 is not 0 or 1"):
        _fit(graph, bad, {"up": "probit_threshold"})
    model = _fit(graph, data, {})
    row = pd.DataFrame({"A": [0.0, 1.0], "up": [1.0, 2.0]}, index=["ok", "odd"])
    with pytest.raises(DataError, match=r"outlier row 'odd', column 'up': value 2.0 is not 0 or 1"):
        attribute_outliers(model, "up", row)
    constant = pd.DataFrame({"A": a, "B": np.full(200, 100.0)})
    with pytest.raises(MechanismError, match=r"node 'B': every training value is 100.0"):
        _fit(nx.DiGraph([("A", "B")]), constant, {"B": "censored_gaussian"})
    counts = pd.DataFrame({"A": a, "C": np.abs(a)})
    with pytest.raises(MechanismError, match=r"node 'C' .* is not a non-negative integer count"):
        _fit(nx.DiGraph([("A", "C")]), counts, {"C": "poisson_count"})


# --- attribution against brute force ---------------------------------------------------------------------------

BETA, EFFECT, SIGMA_T = 1.0, 3.0, 1.0  # B = 1[BETA A + N_B > 0], T = EFFECT B + SIGMA_T N_T, A ~ Normal(0, 1)
OBSERVED = {"A": 0.2, "B": 1.0, "T": 5.5}
PLAYERS = ["A", "B", "T"]


def _node(name: str, parents: tuple, mechanism, params: dict) -> FittedNode:
    identity = Standardizer(torch.zeros(len(parents), dtype=DOUBLE), torch.ones(len(parents), dtype=DOUBLE), 0.0,
                            1.0)
    params = {key: torch.tensor(value, dtype=DOUBLE) for key, value in params.items()}
    return FittedNode(name, parents, mechanism, identity, PosteriorFit(params, "conjugate", 1))


def _binary_model() -> BayesianSCM:
    """A -> B (probit) -> T, and B -> D (not an ancestor of T), at known parameters (one posterior draw)."""
    graph = nx.DiGraph([("A", "B"), ("B", "T"), ("B", "D")])
    model = BayesianSCM(graph, num_draws=1, progress=False)
    model.nodes_ = {
        "A": _node("A", (), GaussianRoot(), {"bias": [0.0], "noise_var": [1.0]}),
        "B": _node("B", ("A",), ProbitThreshold(), {"bias": [0.0], "weight": [[BETA]]}),
        "T": _node("T", ("B",), LinearGaussian(), {"bias": [0.0], "weight": [[EFFECT]], "noise_var": [SIGMA_T**2]}),
        "D": _node("D", ("B",), LinearGaussian(), {"bias": [0.0], "weight": [[1.0]], "noise_var": [1.0]}),
    }
    return model


def _brute_force_shapley(noise_b: float) -> dict[str, float]:
    """Shapley values of the closed-form game for one abducted noise of B (the other noises are identified)."""
    p_up = scipy.stats.norm.cdf(0.0)  # P(B = 1) = P(A + N_B > 0) with A, N_B ~ Normal(0, 1): 1/2

    def cdf(x: float) -> float:
        return (1 - p_up) * scipy.stats.norm.cdf(x / SIGMA_T) + p_up * scipy.stats.norm.cdf((x - EFFECT) / SIGMA_T)

    tail = 1 - cdf(OBSERVED["T"])  # the observed value is in the upper tail
    lo = scipy.optimize.brentq(lambda x: cdf(x) - tail, -30, 30, xtol=1e-14)
    hi = OBSERVED["T"]
    noise_t = (OBSERVED["T"] - EFFECT) / SIGMA_T

    def value(coalition: frozenset) -> float:
        if not coalition:
            return 0.0
        if "A" in coalition and "B" in coalition:
            up = p_up
        elif "A" in coalition:
            up = scipy.stats.norm.cdf(noise_b / BETA)  # P(BETA A' + n_B > 0), A' ~ Normal(0, 1)
        elif "B" in coalition:
            up = scipy.stats.norm.cdf(BETA * OBSERVED["A"])
        else:
            up = 1.0
        probability = 0.0
        for b, weight in ((1.0, up), (0.0, 1.0 - up)):
            mean = EFFECT * b
            if "T" in coalition:
                hit = scipy.stats.norm.cdf((lo - mean) / SIGMA_T) + scipy.stats.norm.sf((hi - mean) / SIGMA_T)
            else:
                t = mean + SIGMA_T * noise_t
                hit = float(t <= lo + 1e-12 or t >= hi - 1e-12)
            probability += weight * hit
        return -math.log(probability)

    shapley = dict.fromkeys(PLAYERS, 0.0)
    orders = list(itertools.permutations(PLAYERS))
    for order in orders:
        for k, player in enumerate(order):
            before = frozenset(order[:k])
            shapley[player] += (value(before | {player}) - value(before)) / len(orders)
    return shapley


def test_binary_node_attribution_matches_brute_force() -> None:
    row = pd.DataFrame([{**OBSERVED, "D": 0.0}])
    result = attribute_outliers(_binary_model(), "T", row, num_samples=4000, num_latent_samples=200, seed=3)
    assert result.settings["latent_samples"] == 200
    noise_b = result.noise[:, 0, PLAYERS.index("B")]
    # the noise posterior of B given B = 1 and A = 0.2: Normal(0, 1) restricted to (-0.2, inf)
    posterior = scipy.stats.truncnorm(-BETA * OBSERVED["A"], np.inf)
    assert scipy.stats.kstest(noise_b, posterior.cdf).pvalue > 0.001
    nodes = result.nodes
    ours = result.contributions[:, 0, :]
    assert np.all(ours[:, nodes.index("D")] == 0.0)  # null player: not an ancestor of T
    assert np.allclose(ours.sum(-1), result.scores[:, 0])  # efficiency per (draw, sample)
    brute = np.array([[_brute_force_shapley(float(n))[p] for p in PLAYERS] for n in noise_b])
    errors = result.standard_errors[:, 0, [nodes.index(p) for p in PLAYERS]]
    mean_error = np.sqrt((errors**2).mean(0) / len(noise_b))
    ours_players = ours[:, [nodes.index(p) for p in PLAYERS]]
    assert np.all(np.abs(ours_players.mean(0) - brute.mean(0)) < 4 * mean_error + 0.003)
    # and the posterior expectation over the exact noise posterior, by quadrature
    expected = [scipy.integrate.quad(lambda n, p=p: _brute_force_shapley(n)[p] * posterior.pdf(n),
                                     -BETA * OBSERVED["A"], 12)[0] for p in PLAYERS]
    sampling = brute.std(0) / np.sqrt(len(noise_b))
    assert np.all(np.abs(ours_players.mean(0) - expected) < 4 * (mean_error + sampling) + 0.003)
    assert expected[PLAYERS.index("T")] > expected[PLAYERS.index("B")] > 0.1  # its own noise first, then B = 1


def test_count_and_censored_parents_keep_the_axioms_and_sample_their_intervals() -> None:
    rng = np.random.default_rng(1)
    n = 800
    a = rng.normal(size=n)
    data = pd.DataFrame({"A": a, "requests": rng.poisson(np.exp(1.5 + 0.3 * a)).astype(float),
                         "cpu": np.minimum(50 + 10 * a + 5 * rng.normal(size=n), 60.0)})
    data["T"] = 0.2 * data["requests"] + 0.05 * data["cpu"] + rng.normal(size=n)
    graph = nx.DiGraph([("A", "requests"), ("A", "cpu"), ("requests", "T"), ("cpu", "T")])
    model = _fit(graph, data, {"requests": "poisson_count", "cpu": "censored_gaussian"}, num_draws=40)
    assert model.node("cpu").mechanism.bounds.upper == 60.0  # the pile-up at the cap, found from the data
    row = pd.DataFrame({"A": [0.0], "requests": [14.0], "cpu": [60.0], "T": [8.0]})
    result = attribute_outliers(model, "T", row, num_samples=500, num_latent_samples=5, seed=0)
    players = result.players
    contributions = result.contributions[:, 0]
    assert np.allclose(contributions.sum(-1), result.scores[:, 0])
    noise = torch.tensor(result.noise[:, 0], dtype=DOUBLE)
    cpu = model.node("cpu")
    draws = noise.shape[0]
    parents = torch.zeros(draws, 1, 1, dtype=DOUBLE)
    cpu_repeated = FittedNode("cpu", cpu.parents, cpu.mechanism, cpu.standardizer,
                              PosteriorFit({k: v.repeat_interleave(5, 0) for k, v in cpu.params.items()},
                                           "svi", 1))
    cpu_values = cpu_repeated.value_at(cpu_repeated.location(parents)[:, 0], noise[:, players.index("cpu")])
    assert torch.allclose(cpu_values, torch.full_like(cpu_values, 60.0))  # every sample reproduces the cap
    assert noise[:, players.index("cpu")].std() > 0  # ... and the censored noise is not a point
    requests = result.contributions[:, 0, result.nodes.index("requests")]
    assert np.median(requests) > 1.0  # 14 requests against about 4.5 expected: a main cause


def test_mechanism_specs_take_numeric_options() -> None:
    censored = make_mechanism("censored_gaussian(lower=0, upper=99.5)")
    assert (censored.lower, censored.upper) == (0, 99.5)
    assert make_mechanism("fourier_gaussian(num_features=8)").num_features == 8
    with pytest.raises(MechanismError, match=r"for node 'X': unknown option\(s\) cap; censored_gaussian accepts "
                                             r"lower, upper"):
        make_mechanism("censored_gaussian(cap=3)", "X")
    with pytest.raises(MechanismError, match=r"option upper must be a number or None, got 'high'"):
        make_mechanism("censored_gaussian(upper=high)")
    with pytest.raises(MechanismError, match=r"censoring bounds need lower < upper"):
        make_mechanism("censored_gaussian(lower=5, upper=1)")


def test_harness_method_with_censored_mechanisms() -> None:
    rng = np.random.default_rng(2)
    n = 400
    a = rng.normal(size=n)
    data = pd.DataFrame({"A": np.minimum(90 + 5 * a, 95.0)})
    data["T"] = np.minimum(data["A"] + rng.normal(size=n), 95.0)
    graph = nx.DiGraph([("A", "T")])
    method = make_method("bayes_rca_censored", bounds=[None, 95.0], num_draws=20, num_latent_samples=2,
                         num_samples=200, inference_options={"svi_steps": 300})
    attribution = method.fit(graph, data).attribute("T", pd.DataFrame({"A": [60.0], "T": [61.0]}))
    assert attribution.scores.idxmax() == "A"
    assert all(isinstance(node.mechanism, CensoredGaussian) for node in method.model_.nodes_.values())
    with pytest.raises(BayesRCAError, match=r"bounds=\[0, 1\] needs mechanisms: censored"):
        make_method("bayes_rca", bounds=[0, 1])


def test_censoring_bounds_come_from_a_pile_up_not_a_repeated_extreme() -> None:
    rng = np.random.default_rng(3)
    rounded = torch.tensor(np.round(rng.normal(50, 10, size=1000)), dtype=DOUBLE)
    rounded[:2] = rounded.max()  # the maximum of rounded data, twice: not a cap
    bounds = CensoredGaussian().bind(rounded, 50.0, 10.0).bounds
    assert (bounds.lower, bounds.upper) == (-math.inf, math.inf)
    capped = rounded.clamp(max=60.0)  # about 16% of the rows at the cap
    bounds = CensoredGaussian(lower=0.0).bind(capped, 50.0, 10.0).bounds
    assert (bounds.lower, bounds.upper, bounds.upper_std) == (0.0, 60.0, 1.0)
