"""The brute-force truth of nonlinear systems (bayes_rca.harness.truth_nonlinear): it agrees with the exact
linear-Gaussian truth where the functions are linear, its standard errors are honest, it is efficient."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

from bayes_rca.errors import BayesRCAWarning
from bayes_rca.graph.dag import blameable_nodes, parents_of
from bayes_rca.harness import truth_nonlinear
from bayes_rca.harness.benchmarks import make_benchmark, make_case
from bayes_rca.harness.truth import true_attribution
from bayes_rca.harness.truth_nonlinear import (
    nonlinear_true_attribution,
    shapley_weights,
)

BUDGET = {"num_samples": 1 << 14, "marginal_samples": 1 << 18}


@pytest.fixture(autouse=True)
def _quiet():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", BayesRCAWarning)
        yield


def test_shapley_weights_are_those_of_the_definition():
    masks, weights = shapley_weights(3)
    game = np.array([0.0, 1.0, 2.0, 4.0, 3.0, 5.0, 6.0, 10.0])  # g of the coalitions coded by their bits
    values = weights.T @ game
    # player 0 by the definition: mean over orders of its marginal contribution
    orders = [(0, 1, 2), (0, 2, 1), (1, 0, 2), (1, 2, 0), (2, 0, 1), (2, 1, 0)]
    code = lambda members: sum(1 << j for j in members)
    expected = np.mean([game[code(o[:o.index(0) + 1])] - game[code(o[:o.index(0)])] for o in orders])
    assert values[0] == pytest.approx(expected) and values.sum() == pytest.approx(game[-1])
    assert masks.shape == (8, 3) and masks[5].tolist() == [True, False, True]


def test_brute_force_agrees_with_the_exact_linear_gaussian_truth():
    """On linear systems (whose game is exact) the brute force agrees within its standard errors, and the
    z-scores are those of honest standard errors (neither too large nor too small)."""
    z_scores = []
    for seed in (0, 1):
        bench = make_benchmark("icml2022", seed=seed, num_rows=10, num_outliers=2, num_nodes=8, min_ancestors=4)
        for case in bench.cases:
            players = blameable_nodes(bench.graph, case.target)
            exact = true_attribution(bench, case).contributions
            values, errors, score = nonlinear_true_attribution(bench.system, case.target, case.row, seed=5,
                                                               **BUDGET)
            assert (errors[players] > 0).all() and errors[players].max() < 0.05
            assert values.sum() == pytest.approx(score, abs=1e-9)  # efficiency: the IT score
            assert score == pytest.approx(exact.sum(), abs=0.05)  # ... the true one
            outside = [n for n in bench.graph if n not in players]
            assert (values[outside] == 0).all() and (errors[outside] == 0).all()
            z_scores.extend(((values - exact)[players] / errors[players]).tolist())
    z = np.array(z_scores)
    assert len(z) >= 20 and np.abs(z).max() < 4.5
    assert 0.4 < math.sqrt(np.mean(z**2)) < 1.8


def _nonlinear_case(seed: int):
    bench = make_benchmark("nonlinear", seed=seed, num_rows=10, num_outliers=1, num_nodes=9, min_ancestors=4)
    return bench, bench.cases[0]


def test_two_seeds_agree_within_their_standard_errors():
    z_scores = []
    for seed in (0, 3):
        bench, case = _nonlinear_case(seed)
        players = blameable_nodes(bench.graph, case.target)
        first, first_se, _ = nonlinear_true_attribution(bench.system, case.target, case.row, seed=1, **BUDGET)
        second, second_se, _ = nonlinear_true_attribution(bench.system, case.target, case.row, seed=2, **BUDGET)
        assert not np.allclose(first[players], second[players])
        spread = np.sqrt(first_se[players] ** 2 + second_se[players] ** 2)
        z_scores.extend(((first - second)[players] / spread).tolist())
    z = np.array(z_scores)
    assert np.abs(z).max() < 4.5 and 0.3 < math.sqrt(np.mean(z**2)) < 1.8


def test_contributions_sum_to_the_it_score_of_plain_simulation():
    """Efficiency against an independent score: ``-log(2 min(F, 1 - F))`` at the outlier's target value, ``F``
    the empirical CDF of two million rows simulated from the true system (a moderate outlier, so plain
    simulation sees its tail)."""
    bench, _ = _nonlinear_case(0)
    target = bench.cases[0].target
    case = make_case(bench.system, target, np.random.default_rng(4), injected_range=(1.5, 2.5))
    values, _, score = nonlinear_true_attribution(bench.system, target, case.row, seed=1, **BUDGET)
    assert values.sum() == pytest.approx(score, abs=1e-9)
    rng = np.random.default_rng(11)
    below = sum(int((bench.system.sample(500_000, rng)[target] <= float(case.row[target].iloc[0])).sum())
                for _ in range(4))
    q = min(below, 2_000_000 - below) / 2_000_000
    simulated = -math.log(2 * q)
    assert 1.0 < score < 8.0  # in the range where 2e6 rows estimate the tail well
    assert score == pytest.approx(simulated, abs=4 * math.sqrt((1 - q) / (2_000_000 * q)) + 0.01)


def test_true_attribution_dispatches_to_the_nonlinear_truth(monkeypatch):
    monkeypatch.setattr(truth_nonlinear, "TRUTH_SAMPLES", 1 << 13)
    monkeypatch.setattr(truth_nonlinear, "TRUTH_MARGINAL_SAMPLES", 1 << 16)
    bench, case = _nonlinear_case(1)
    truth = true_attribution(bench, case)
    players = blameable_nodes(bench.graph, case.target)
    assert truth is not None and (truth.standard_errors[players] > 0).all()
    large = make_benchmark("nonlinear", seed=2, num_rows=10, num_outliers=1)  # >= 11 players: not enumerated
    assert len(blameable_nodes(large.graph, large.cases[0].target)) > truth_nonlinear.TRUTH_MAX_PLAYERS
    assert true_attribution(large, large.cases[0]) is None
    micro = make_benchmark("microservice", seed=0, num_rows=10, num_outliers=1, min_ancestors=2)
    assert true_attribution(micro, micro.cases[0]) is None  # not Gaussian noise


def _plain_monte_carlo_attribution(system, target, row, num_samples: int, rng: np.random.Generator):
    """The same game by plain simulation (no importance sampling, no design points), for a moderate outlier:
    thresholds from the simulated marginal with the target's noise integrated, then every coalition from
    ``num_samples`` fresh noises (common to all coalitions) in 16 batches. Contributions and standard errors."""
    from scipy import special

    players = blameable_nodes(system.graph, target)
    size, sd = len(players), system.noise_scale[target]
    parents = [[players.index(p) for p in parents_of(system.graph, node)] for node in players]
    values = row[players].to_numpy(dtype=float)[0]
    noise = np.array([(values[k] - system.functions[node](values[None, parents[k]])[0]) / system.noise_scale[node]
                      for k, node in enumerate(players)])

    def location(fresh: np.ndarray) -> np.ndarray:  # (R, K) noise -> the target's location
        simulated = np.empty_like(fresh)
        for k, node in enumerate(players):
            here = system.functions[node](simulated[:, parents[k]])
            if k == size - 1:
                return here
            simulated[:, k] = here + system.noise_scale[node] * fresh[:, k]

    marginal = location(rng.standard_normal((1 << 21, size)))
    x = values[-1]
    upper = special.ndtr((marginal - x) / sd).mean() < 0.5
    q = special.ndtr(((marginal - x) if upper else (x - marginal)) / sd).mean()
    lower, higher = (x - 50.0, x) if upper else (x, x + 50.0)
    for _ in range(100):  # the other tail with mass q
        middle = 0.5 * (lower + higher)
        mass = special.ndtr(((middle - marginal) if upper else (marginal - middle)) / sd).mean()
        if (mass > q) == upper:
            higher = middle
        else:
            lower = middle
    lo, hi = (middle, x) if upper else (x, middle)
    masks, weights = shapley_weights(size)
    fresh = rng.standard_normal((num_samples, size))
    probabilities = np.empty((len(masks), 16))
    for c, mask in enumerate(masks):
        here = location(np.where(mask, fresh, noise))
        if mask[-1]:
            terms = special.ndtr((lo - here) / sd) + special.ndtr((here - hi) / sd)
        else:
            terms = ((here + sd * noise[-1] <= lo) | (here + sd * noise[-1] >= hi)).astype(float)
        probabilities[c] = terms.reshape(16, -1).mean(-1)
    mean = probabilities.mean(-1)
    game = -np.log(mean)
    game[0], game[-1] = 0.0, -math.log(2 * q)
    deviation = -(probabilities / mean[:, None] - 1.0)
    deviation[0], deviation[-1] = 0.0, 0.0
    return weights.T @ game, (weights.T @ deviation).std(-1, ddof=1) / 4.0, players


def test_agrees_with_plain_simulation_on_a_nonlinear_system():
    """For a moderate outlier of a nonlinear system plain simulation needs no importance sampling: the two
    estimates of the same game agree within their standard errors."""
    bench = make_benchmark("nonlinear", seed=3, num_rows=10, num_outliers=1, num_nodes=8, min_ancestors=4)
    target = bench.cases[0].target
    case = make_case(bench.system, target, np.random.default_rng(2), max_injected=2, injected_range=(1.0, 1.5))
    plain, plain_se, players = _plain_monte_carlo_attribution(bench.system, target, case.row, 1 << 17,
                                                              np.random.default_rng(8))
    values, errors, score = nonlinear_true_attribution(bench.system, target, case.row, seed=1, **BUDGET)
    assert score > 1.0 and len(players) >= 4
    z = (values[players].to_numpy() - plain) / np.sqrt(errors[players].to_numpy() ** 2 + plain_se**2)
    assert np.abs(z).max() < 4.5
