"""Accuracy of the general Monte Carlo game against an independent brute force (issue 15, target 4).

An 8-player system with Student-t, nonlinear (random Fourier features) and censored players, built at fixed
parameters (a one-draw posterior, as the harness's oracle models are). For outliers at moderate and about 10
marginal standard deviations out, every coalition value ``g(S)`` of :class:`MonteCarloGame` must lie within 3 of
its reported standard errors (and the brute force's, in quadrature) of a brute-force estimate.

The brute force is written here from the parameters, in numpy, and calls none of the game's code: the structural
equations, the outlier thresholds of the median-CDF quantile feature map (bisection on the target's marginal),
every coalition's tail probability (the target's own Gaussian noise integrated exactly where it is redrawn) and
a plain defensive importance-sampling proposal (each noise whose abducted value is more than 3 sd out is also
drawn around that value, ``q = (p + p(. - n)) / 2``, so that every weight is at most 2 per node). Its standard
error comes from independent chunks, each with its own thresholds, so it covers the thresholds' error too.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import special

from bayes_rca.attribution.abduction import Players
from bayes_rca.attribution.monte_carlo_game import MonteCarloGame
from bayes_rca.attribution.scores import MedianCDFQuantile, ZScore
from bayes_rca.attribution.shapley import coalition_masks
from bayes_rca.inference import PosteriorFit
from bayes_rca.model.mechanisms import (
    CensoredGaussian,
    FourierGaussian,
    GaussianRoot,
    LinearGaussian,
    LinearStudentT,
    StudentTRoot,
)
from bayes_rca.model.node import FittedNode, Standardizer

DOUBLE = torch.float64
NAMES = ["A", "B", "C", "D", "E", "F", "G", "T"]
PARENTS = {"A": (), "B": (), "C": ("A",), "D": ("B",), "E": ("C", "D"), "F": ("D",), "G": ("E", "F"),
           "T": ("G", "C")}
CAP = 2.5  # E is censored above at this value (standardised units, about 2 sd: 2-3 % of normal rows)
TARGET_LOC, TARGET_SCALE = 5.0, 2.0  # the target's standardisation (data units = 5 + 2 x standardised)
# standardised parameters: bias, weights, noise (sd of the Gaussian or scale of the Student-t) and df
BIAS = {"A": 0.0, "B": 0.0, "C": 0.1, "D": 0.0, "E": 0.0, "F": -0.1, "G": 0.0, "T": 0.0}
WEIGHT = {"C": [0.5], "D": [0.8], "E": [0.6, 0.6], "F": [0.6], "G": [0.7, 0.5], "T": [1.0, 0.4]}
NOISE = {"A": 1.0, "B": 1.0, "C": 0.5, "D": 0.7, "E": 0.6, "F": 0.5, "G": 0.5, "T": 0.6}
DF = {"A": 3.0, "D": 4.0, "G": 5.0}
FEATURES = 8
WIDE = 30.0  # the brute force's stretched Student-t component
WIDE_SCALE = 100.0  # the brute force's stretched component of the robust game's variance factor


def _fourier(seed: int) -> tuple[FourierGaussian, torch.Tensor]:
    mechanism = FourierGaussian(num_features=FEATURES, lengthscale=1.0)
    mechanism.setup(1, seed)
    coef = torch.randn(FEATURES, generator=torch.Generator().manual_seed(seed + 100), dtype=DOUBLE)
    return mechanism, coef


def build_nodes() -> list[FittedNode]:
    """The fitted nodes (one posterior draw at the true parameters), in topological order, the target last."""
    nodes = []
    for name in NAMES:
        parents = PARENTS[name]
        params = {"bias": torch.tensor([BIAS[name]], dtype=DOUBLE)}
        if parents:
            params["weight"] = torch.tensor([WEIGHT[name]], dtype=DOUBLE)
        loc, scale = (TARGET_LOC, TARGET_SCALE) if name == "T" else (0.0, 1.0)
        if name in DF:
            mechanism = LinearStudentT() if parents else StudentTRoot()
            params["noise_scale"] = torch.tensor([NOISE[name]], dtype=DOUBLE)
            params["df_minus_two"] = torch.tensor([DF[name] - 2.0], dtype=DOUBLE)
        elif name in ("C", "F"):
            mechanism, coef = _fourier(seed=ord(name))
            params.update(shrinkage=torch.tensor([1.0], dtype=DOUBLE), coef_raw=coef.unsqueeze(0),
                          noise_scale=torch.tensor([NOISE[name]], dtype=DOUBLE))
        elif name == "E":
            mechanism = CensoredGaussian(upper=CAP).bind(torch.tensor([-1.0, CAP], dtype=DOUBLE), 0.0, 1.0)
            params["noise_scale"] = torch.tensor([NOISE[name]], dtype=DOUBLE)
        else:
            mechanism = LinearGaussian() if parents else GaussianRoot()
            params["noise_var"] = torch.tensor([NOISE[name] ** 2], dtype=DOUBLE)
        standardizer = Standardizer(torch.zeros(len(parents), dtype=DOUBLE), torch.ones(len(parents), dtype=DOUBLE),
                                    loc, scale)
        nodes.append(FittedNode(name, parents, mechanism, standardizer, PosteriorFit(params, "conjugate", 1)))
    return nodes


class System:
    """The structural equations in numpy, written from the parameters (independent of the package's nodes)."""

    def __init__(self, nodes: list[FittedNode]) -> None:
        self.features = {}
        for node in nodes:
            if isinstance(node.mechanism, FourierGaussian):
                params = node.params
                self.features[node.name] = (node.mechanism.frequencies.numpy(), node.mechanism.phases.numpy(),
                                            float(params["shrinkage"][0]) * params["coef_raw"][0].numpy())

    def value(self, name: str, parents: list[np.ndarray], noise: np.ndarray) -> np.ndarray:
        """A node's value (data units) from its parents' values (data units) and its standardised noise."""
        location = BIAS[name] + sum(w * p for w, p in zip(WEIGHT.get(name, []), parents))
        if name in self.features:
            frequencies, phases, coef = self.features[name]
            stacked = np.stack(parents, -1)
            location = location + math.sqrt(2.0 / FEATURES) * np.cos(stacked @ frequencies + phases) @ coef
        if name == "T":
            return TARGET_LOC + TARGET_SCALE * (location + noise)
        if name == "E":
            return np.minimum(location + noise, CAP)
        return location + noise

    def row(self, noise: dict[str, float]) -> np.ndarray:
        values: dict[str, np.ndarray] = {}
        for name in NAMES:
            values[name] = self.value(name, [values[p] for p in PARENTS[name]], np.asarray(noise.get(name, 0.0)))
        return np.array([float(values[name]) for name in NAMES])


def _ancestor_bits() -> list[int]:
    """For each player, the bit mask of itself and its ancestors (bit ``j`` = ``NAMES[j]``)."""
    bits: list[int] = []
    for k, name in enumerate(NAMES):
        mask = 1 << k
        for parent in PARENTS[name]:
            mask |= bits[NAMES.index(parent)]
        bits.append(mask)
    return bits


def _log_density(name: str, z: np.ndarray) -> np.ndarray:
    """Log density of a node's standardised noise (Gaussian sd or Student-t scale ``NOISE``), up to a constant."""
    scale = NOISE[name]
    if name in DF:
        df = DF[name]
        return -0.5 * (df + 1.0) * np.log1p((z / scale) ** 2 / df)
    return -0.5 * (z / scale) ** 2


def _noise_sd(name: str) -> float:
    return NOISE[name] * (math.sqrt(DF[name] / (DF[name] - 2.0)) if name in DF else 1.0)


class BruteForce:
    """Every coalition value ``g(S)`` of one outlier by importance-sampled simulation, in independent chunks.

    ``noise`` is the abducted (standardised) noise of the players; the target's observed value is ``x``. Each
    chunk draws the non-target noises from ``q``, computes the thresholds of the median-CDF quantile feature map
    from its own samples (for the chunk's error estimate) and every coalition's tail probability at both the
    chunk's and the pooled thresholds. ``g(S) = -log P_S`` at the pooled thresholds, corrected for the ``log``'s
    second-order bias; its standard error is the spread of the chunks' linearised values ``g - (P_c / P - 1)``
    (``P_c`` at the chunk's own thresholds) over ``sqrt(chunks)``.

    With ``tail_df`` (the robust game) each sample also draws the coalition's common variance factor ``lambda``
    from the equal mixture of its prior ``InvGamma(a, a)`` and the prior stretched :data:`WIDE_SCALE` times
    (``InvGamma(a, a WIDE_SCALE)``), weighted by ``p / q``; a coalition's redrawn noise is ``sqrt(lambda)`` times
    the fresh one and the target's redrawn noise has sd ``sigma sqrt(lambda)``. The thresholds are those of the
    marginal without the factor, as in the game.
    """

    def __init__(self, system: System, noise: np.ndarray, x: float, chunks: int, chunk_size: int, seed: int,
                 tail_df: float | None = None) -> None:
        self.system, self.noise, self.chunks, self.chunk_size, self.seed = system, noise, chunks, chunk_size, seed
        self.tail_df = tail_df
        self.x = (x - TARGET_LOC) / TARGET_SCALE  # standardised target value
        self.sigma = NOISE["T"]
        self.shifted = [k for k, name in enumerate(NAMES[:-1]) if abs(noise[k]) > 3.0 * _noise_sd(name)]
        self.bits = _ancestor_bits()
        marginals = [self._marginal(chunk) for chunk in range(chunks)]
        self.chunk_thresholds = [self._thresholds(*m) for m in marginals]
        pooled = tuple(np.concatenate(parts) for parts in zip(*marginals))
        self.thresholds = self._thresholds(*pooled)

    def _draw(self, chunk: int) -> tuple[np.ndarray, np.ndarray]:
        """Fresh noises ``(K - 1, n)`` from ``q`` and their log weights ``log p - log q``.

        ``q`` is the equal mixture of ``p``, ``p`` moved to the abducted value (noises more than 3 sd out) and,
        for Student-t noises, ``p`` stretched :data:`WIDE` times (their power-law routes far out).
        """
        rng = np.random.default_rng([self.seed, chunk])
        n = self.chunk_size
        fresh = np.empty((len(NAMES) - 1, n))
        log_w = np.zeros((len(NAMES) - 1, n))
        for k, name in enumerate(NAMES[:-1]):
            standard = rng.standard_t(DF[name], n) if name in DF else rng.standard_normal(n)
            components = [(0.0, 1.0)] + [(self.noise[k], 1.0)] * (k in self.shifted) + [(0.0, WIDE)] * (name in DF)
            pick = rng.integers(len(components), size=n)
            shift = np.array([c[0] for c in components])[pick]
            stretch = np.array([c[1] for c in components])[pick]
            fresh[k] = shift + stretch * NOISE[name] * standard
            log_q = [_log_density(name, (fresh[k] - a) / b) - math.log(b) for a, b in components]
            log_w[k] = _log_density(name, fresh[k]) - (np.logaddexp.reduce(log_q, axis=0) - math.log(len(log_q)))
        return fresh, log_w

    def _factor(self, chunk: int) -> tuple[np.ndarray, np.ndarray]:
        """The robust game's ``sqrt(lambda) (n,)`` and its log weight (ones and zeros without ``tail_df``)."""
        n = self.chunk_size
        if self.tail_df is None:
            return np.ones(n), np.zeros(n)
        rng = np.random.default_rng([self.seed, chunk, 1])
        a = 0.5 * self.tail_df
        scale = np.where(rng.integers(2, size=n) == 0, 1.0, WIDE_SCALE)
        lam = scale * a / rng.gamma(a, size=n)  # InvGamma(a, a scale)

        def log_inv_gamma(beta: float) -> np.ndarray:
            return a * math.log(beta) - math.lgamma(a) - (a + 1) * np.log(lam) - beta / lam

        log_q = np.logaddexp(log_inv_gamma(a), log_inv_gamma(a * WIDE_SCALE)) - math.log(2.0)
        return np.sqrt(lam), log_inv_gamma(a) - log_q

    def _locations(self, fresh: np.ndarray, log_w: np.ndarray, masks: list[int]):
        """For each mask over the non-target players: the target's standardised location and the log weight."""
        memo: dict[tuple[int, int], np.ndarray] = {}

        def value(k: int, mask: int) -> np.ndarray:
            key = (k, mask & self.bits[k])
            if key in memo:
                return memo[key]
            name = NAMES[k]
            parents = [value(NAMES.index(p), mask) for p in PARENTS[name]]
            noise = fresh[k] if mask >> k & 1 else np.full(self.chunk_size, self.noise[k])
            result = self.system.value(name, parents, noise)
            if self.bits[k].bit_count() < len(NAMES) - 1:  # reused by other masks
                memo[key] = result
            return result

        for mask in masks:
            parents = [value(NAMES.index(p), mask) for p in PARENTS["T"]]
            location = (self.system.value("T", parents, np.zeros(self.chunk_size)) - TARGET_LOC) / TARGET_SCALE
            chosen = [k for k in range(len(NAMES) - 1) if mask >> k & 1]
            yield mask, location, log_w[chosen].sum(0) if chosen else np.zeros(self.chunk_size)

    def _marginal(self, chunk: int) -> tuple[np.ndarray, np.ndarray]:
        fresh, log_w = self._draw(chunk)
        (_, location, weight), = self._locations(fresh, log_w, [(1 << (len(NAMES) - 1)) - 1])
        return location, np.exp(weight)

    def _thresholds(self, location: np.ndarray, weight: np.ndarray) -> tuple[float, float]:
        """``(lo, hi)`` of the median-CDF quantile map under the marginal ``mean w Phi((y - loc) / sigma)``."""
        def cdf(y: float) -> float:
            return float(np.mean(weight * special.ndtr((y - location) / self.sigma)))

        def sf(y: float) -> float:
            return float(np.mean(weight * special.ndtr((location - y) / self.sigma)))

        lower = cdf(self.x) <= sf(self.x)
        tail = cdf(self.x) if lower else sf(self.x)
        centre = float(np.sum(weight * location) / np.sum(weight))
        reach = 50.0 * (abs(self.x - centre) + 10.0)
        a, b = (centre, centre + reach) if lower else (centre - reach, centre)
        for _ in range(100):  # bisection in log space: the tail is monotone
            middle = 0.5 * (a + b)
            beyond = (sf(middle) if lower else cdf(middle)) < tail
            if lower:
                a, b = (a, middle) if beyond else (middle, b)
            else:
                a, b = (middle, b) if beyond else (a, middle)
            if b - a < 1e-12 * (1.0 + abs(middle)):
                break
        mirror = 0.5 * (a + b)
        return (self.x, mirror) if lower else (mirror, self.x)

    def _tail(self, location: np.ndarray, lo: float, hi: float, factor: np.ndarray) -> np.ndarray:
        sigma = self.sigma * factor
        return special.ndtr((lo - location) / sigma) + special.ndtr((location - hi) / sigma)

    def values(self) -> tuple[np.ndarray, np.ndarray]:
        """``g(S)`` and its standard error for the coalitions numbered ``0 .. 2^K - 1`` (bit ``j`` = player ``j``)."""
        players = len(NAMES)
        target = 1 << (players - 1)
        pooled = np.zeros((self.chunks, 1 << players))
        own = np.zeros((self.chunks, 1 << players))
        lo, hi = self.thresholds
        for chunk in range(self.chunks):
            c_lo, c_hi = self.chunk_thresholds[chunk]
            fresh, log_w = self._draw(chunk)
            factor, log_factor_weight = self._factor(chunk)
            for mask, location, log_weight in self._locations(fresh * factor, log_w, list(range(target))):
                weight = np.exp(log_weight + log_factor_weight)
                kept = location + self.noise[-1]
                for column, (a, b) in ((pooled, (lo, hi)), (own, (c_lo, c_hi))):
                    column[chunk, mask] = np.mean(weight * ((kept <= a) | (kept >= b)))
                    column[chunk, mask | target] = np.mean(weight * self._tail(location, a, b, factor))
        estimate = pooled.mean(0)
        ratio = own / estimate
        value = -np.log(estimate) + 0.5 * ratio.var(0, ddof=1) / self.chunks
        error = (ratio.std(0, ddof=1) / math.sqrt(self.chunks))
        value[0], error[0] = 0.0, 0.0
        return value, error


NODES = build_nodes()
SYSTEM = System(NODES)
# injected standardised noises: about 4 and about 10 marginal sds out at the target (checked below)
CASES = {
    "moderate": {"D": 2.5, "E": 0.8, "G": 3.0, "T": 1.0},  # Student-t, censored (inside its bound), target
    "far_student_t": {"G": 16.0},  # a Student-t noise 32 of its scales out; E sits at its cap
    "far_target": {"T": 16.5},  # the target's own Gaussian noise, 27 of its sds out
    "far_mixed": {"B": 8.0, "A": 20.0, "T": 7.0},  # a Gaussian root 8 sd out, a Student-t root, E capped
}
MASKS = coalition_masks(len(NAMES), 0, 1 << len(NAMES))


def _players(case: str) -> Players:
    row = SYSTEM.row(CASES[case])
    return Players.abduct(NODES, torch.tensor(row[None], dtype=DOUBLE), torch.Generator().manual_seed(0))


def _brute_force(players: Players, chunks: int, chunk_size: int, tail_df: float | None = None) -> BruteForce:
    return BruteForce(SYSTEM, players.noise[0, 0].numpy(), float(players.values[0, -1]), chunks, chunk_size, seed=7,
                      tail_df=tail_df)


def _game(players: Players, seed: int, num_samples: int = 2000,
          tail_df: float | None = None) -> tuple[MonteCarloGame, np.ndarray, np.ndarray]:
    game = MonteCarloGame(players, MedianCDFQuantile(), num_samples, torch.Generator().manual_seed(seed),
                          tail_df=tail_df)
    values, batches = game(MASKS)
    error = batches.std(0) / math.sqrt(batches.shape[0])
    return game, values[0, 0].numpy(), error[0, 0].numpy()


def _z_scores(value: np.ndarray, error: np.ndarray, truth: np.ndarray, truth_error: np.ndarray) -> np.ndarray:
    """Differences in combined standard errors; exact agreements (the empty coalition, a kept-out target's
    log 2) count as zero."""
    combined = np.sqrt(error**2 + truth_error**2)
    difference = value - truth
    close = np.abs(difference) <= 1e-9 * (1.0 + np.abs(truth))
    return np.where(close, 0.0, difference / np.where(combined > 0, combined, 1e-300))


def test_the_system_reproduces_the_rows_and_the_outliers_are_moderate_and_ten_sd_out():
    """The numpy equations are the package's nodes (abduction gives the injected noise back, E's at its cap
    sampled above it), and the cases sit about 4 and 10 marginal sds out."""
    rng = np.random.default_rng(3)
    values: dict[str, np.ndarray] = {}
    for name in NAMES:
        standard = rng.standard_t(DF[name], 400_000) if name in DF else rng.standard_normal(400_000)
        values[name] = SYSTEM.value(name, [values[p] for p in PARENTS[name]], NOISE[name] * standard)
    mean, sd = values["T"].mean(), values["T"].std()
    assert 0.02 < (values["E"] >= CAP).mean() < 0.04  # censored in normal operation too
    distance = {}
    for case, injected in CASES.items():
        players = _players(case)
        row = players.values[0].numpy()
        expected = np.array([injected.get(name, 0.0) for name in NAMES])
        capped = row[NAMES.index("E")] >= CAP
        kept = [k for k, name in enumerate(NAMES) if not (name == "E" and capped)]
        np.testing.assert_allclose(players.noise[0, 0].numpy()[kept], expected[kept], atol=1e-12)
        distance[case] = (row[-1] - mean) / sd
    assert 3.0 < distance["moderate"] < 5.0
    assert all(9.0 < distance[case] < 11.0 for case in CASES if case != "moderate"), distance


@pytest.mark.parametrize("case", ["moderate", "far_student_t"])
def test_every_coalition_value_within_three_standard_errors_of_a_brute_force(case):
    """256 coalition values of one game (2000 samples, 10 batches) against a 131072-sample brute force.

    With 10 batches a calibrated standard error gives Student-t(9) z-scores (1.5 % beyond 3), so at most 2 %
    of the coalitions may lie beyond 3 standard errors and none beyond 5. Before the thresholds' error was part
    of the standard error (and the heavy-tailed smear of the proposal), 16-20 % of the far case's coalitions
    were beyond 3 and its IT score 2 nats too high.
    """
    players = _players(case)
    brute = _brute_force(players, chunks=8, chunk_size=1 << 14)
    truth, truth_error = brute.values()
    game, value, error = _game(players, seed=0)
    z = _z_scores(value, error, truth, truth_error)
    assert float(game.score[0, 0]) == pytest.approx(value[-1], abs=1e-12)
    assert np.isfinite(z).all() and error.max() < 2.0
    assert np.mean(np.abs(z) > 3.0) <= 0.02 and np.abs(z).max() <= 5.0, (np.sort(np.abs(z))[-5:], case)
    assert 0.5 < np.sqrt(np.mean(z[1:] ** 2)) < 1.6


@pytest.mark.parametrize("feature_map", [MedianCDFQuantile(), ZScore()], ids=lambda f: f.name)
def test_the_thresholds_standard_error_matches_their_spread_over_seeds(feature_map):
    """The mirrored outlier threshold is estimated from the game's samples; the standard error the game
    attributes to it (the batches' first-order shifts, which enter every coalition's batch values) is about
    its spread over 12 seeds (measured over 20: 0.81 and 1.0 of it far out; 0.81 and 1.14 for the moderate
    case). The exact threshold on the observed value's side has none."""
    players = _players("far_student_t")
    thresholds, errors = [], []
    for seed in range(12):
        game = MonteCarloGame(players, feature_map, 2000, torch.Generator().manual_seed(seed))
        thresholds.append([float(game.lo[0, 0]), float(game.hi[0, 0])])
        errors.append((game.threshold_shifts.square().mean(-1) / game.num_batches).sqrt()[:, 0].numpy())
    spread, reported = np.std(thresholds, axis=0, ddof=1), np.mean(errors, axis=0)
    assert spread[1] < 1e-9 and reported[1] == 0.0  # hi is the observed value itself
    assert 0.6 < reported[0] / spread[0] < 1.6, (reported, spread)


BRUTE_FORCE_REACH = 60.0
"""Nats beyond which the brute force is only an upper bound: its defensive proposal does not follow a Gaussian
large deviation (the far-target case's coalitions of Gaussian players and the target, 200-340 nats), where the
game's line proposal finds more probability (lower values) than the brute force."""


@pytest.mark.slow
@pytest.mark.parametrize("case", [
    "moderate", "far_student_t", "far_target",
    pytest.param("far_mixed", marks=pytest.mark.xfail(strict=True, reason=(
        "known limit: coalitions of the 8-sd Gaussian root with Gaussian players (30-80 nats) come out 1-3 nats "
        "too high at 2000 samples with standard errors of 0.3-0.9 (5 % of the z-scores beyond 3, rms 1.5)"))),
])
def test_coalition_values_over_twenty_seeds_against_a_ten_million_sample_brute_force(case):
    """Every coalition value of 20 games (seeds, 2000 samples) against a 10^7-sample brute force: the z-scores
    are roughly standard (Student-t(9) for 10 batches: 1.5 % beyond 3, rms 1.13), so the standard error covers
    the thresholds' error and no bias of the ``log`` is left beyond it. Above :data:`BRUTE_FORCE_REACH` only a
    game value above the brute force's counts."""
    players = _players(case)
    brute = _brute_force(players, chunks=40, chunk_size=1 << 18)
    truth, truth_error = brute.values()
    scores, z = [], []
    for seed in range(20):
        game, value, error = _game(players, seed)
        scores.append(float(game.score[0, 0]))
        score_z = _z_scores(value, error, truth, truth_error)
        z.append(np.where(truth < BRUTE_FORCE_REACH, score_z, np.maximum(score_z, 0.0))[1:])
    z = np.array(z)
    assert np.isfinite(z).all()
    rms, share = float(np.sqrt(np.mean(z**2))), float(np.mean(np.abs(z) > 3.0))
    assert share <= 0.04 and rms <= 1.4 and abs(z.mean()) <= 0.4, (share, rms, z.mean())
    assert abs(np.mean(scores) - truth[-1]) < 3.0 * np.std(scores) / math.sqrt(len(scores)) + 3 * truth_error[-1]


@pytest.mark.parametrize("case", ["moderate", "far_student_t", "far_target", "far_mixed"])
def test_robust_game_coalition_values_within_three_standard_errors_of_a_brute_force(case):
    """The robust game (``tail_df=2``: a coalition's redrawn noise shares one variance factor) against the
    brute force with the same factor, independently sampled (its defensive prior-and-stretched mixture).
    Under the factor ``g(S)`` grows like ``log`` of the distance, not its square, so every case, the far mixed
    one included (a known limit of the Gaussian game, below), is within the brute force's reach; the same
    bounds as the Gaussian game's test."""
    players = _players(case)
    brute = _brute_force(players, chunks=8, chunk_size=1 << 14, tail_df=2.0)
    truth, truth_error = brute.values()
    game, value, error = _game(players, seed=0, tail_df=2.0)
    z = _z_scores(value, error, truth, truth_error)
    assert float(game.score[0, 0]) == pytest.approx(value[-1], abs=1e-12)
    assert truth.max() < 10.0 and error.max() < 0.5  # log-like growth: a few nats, not hundreds
    assert np.mean(np.abs(z) > 3.0) <= 0.02 and np.abs(z).max() <= 5.0, (np.sort(np.abs(z))[-5:], case)
    assert 0.5 < np.sqrt(np.mean(z[1:] ** 2)) < 1.6


def test_nodes_evaluated_once_per_pattern_of_their_ancestors_give_the_same_simulation():
    """The game evaluates each node once per distinct pattern of its own and its ancestors' membership in the
    coalitions (what its value depends on) and gathers the values back: the same numbers as simulating every
    coalition in full, for all 256 coalitions at once."""
    game = MonteCarloGame(_players("far_mixed"), MedianCDFQuantile(), 200, torch.Generator().manual_seed(0),
                          tail_df=2.0)
    chosen = MASKS.unsqueeze(0).unsqueeze(2)
    noise = torch.where(chosen, game.scaled_fresh.unsqueeze(1), game.abducted[:, None, None, :])
    shared, _ = game._simulate(noise, MASKS)
    full, _ = game._simulate(noise)
    torch.testing.assert_close(shared, full, rtol=0.0, atol=0.0)
    assert [len(index) for index in game._lineage] == [1, 1, 2, 2, 5, 3, 7, 8]  # A, B, C, D, E, F, G, T


@pytest.mark.slow
@pytest.mark.parametrize("case", ["moderate", "far_mixed"])
def test_robust_game_values_over_twenty_seeds_against_a_ten_million_sample_brute_force(case):
    """The robust game's coalition values of 20 games (seeds, 2000 samples) against a 10^7-sample robust brute
    force: roughly standard z-scores (Student-t(9): rms 1.13), no mean offset (the ``log``'s bias removed), and
    the far mixed case, a known limit of the Gaussian game, within the same bounds."""
    players = _players(case)
    brute = _brute_force(players, chunks=40, chunk_size=1 << 18, tail_df=2.0)
    truth, truth_error = brute.values()
    z = np.array([_z_scores(*_game(players, seed, tail_df=2.0)[1:], truth, truth_error)[1:] for seed in range(20)])
    rms, share = float(np.sqrt(np.mean(z**2))), float(np.mean(np.abs(z) > 3.0))
    assert share <= 0.04 and rms <= 1.4 and abs(z.mean()) <= 0.4, (share, rms, z.mean())
