"""The true attribution of an outlier of a nonlinear synthetic system, by brute-force Monte Carlo.

The game is bayes_rca's (:func:`bayes_rca.attribute_outliers`), evaluated at the *true* generating functions and
noise laws of a :class:`~bayes_rca.harness.benchmarks.SyntheticSystem` with additive Gaussian noise
(``X_j = f_j(PA_j) + s_j N_j``, ``N_j ~ N(0, 1)``; the ``nonlinear`` family):

* the players are the target and its ancestors; their noise is abducted from the row, ``n_j = (x_j - f_j) / s_j``;
* the feature map is the median-CDF quantile score (the harness's default): with ``q = min(P(X_t <= x_t),
  P(X_t >= x_t))`` under the true marginal of the target, the outlier event is ``X_t <= lo or X_t >= hi``, one
  threshold the observed value, the other the point of the other tail with the same mass ``q``, and the IT score
  is ``-log(2 q)`` (at least 0);
* ``g(S) = -log P(event)`` with the noise of the coalition ``S`` redrawn from its true law and every other noise
  kept at its abducted value; where the target is in ``S`` its own Gaussian noise is integrated exactly (as the
  Monte Carlo game does), else the event is an indicator; ``g(empty) = 0`` and ``g(all)`` is the IT score;
* the Shapley values by enumerating all ``2^K`` coalitions (up to :data:`TRUTH_MAX_PLAYERS` players; above,
  the truth is not computed).

Every probability is a very large importance-sampled Monte Carlo (:data:`TRUTH_SAMPLES` samples per coalition,
common random numbers across coalitions): a defensive mixture of the true noise law and of the same law shifted
to each tail's design point, the most likely noise of the coalition given its outlier event (found by gradient
ascent with finite differences, per coalition), and to the abducted noise, so every weight is at most 4 and rare
events far out in the tail are estimated with a small relative error (a coalition that no sample reaches: no
truth, with a warning). The target's marginal (``q`` and the mirrored threshold) comes
from :data:`TRUTH_MARGINAL_SAMPLES` samples of the same kind. The standard error of each contribution is the
delta method over :data:`TRUTH_BATCHES` independent batches: the error of every ``g(S)``, of the score and of
the mirrored threshold (its effect on the coalitions that redraw the target's noise) together, so the
correlations between coalitions are in it. The ``log``'s second-order bias is removed. The random numbers come
from the caller's seed only (the harness passes :data:`bayes_rca.harness.truth.TRUTH_SEED`).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Hashable

import numpy as np
import pandas as pd
from scipy import special

from bayes_rca.errors import BayesRCAWarning
from bayes_rca.graph.dag import blameable_nodes, parents_of

TRUTH_SAMPLES = 1 << 16
"""Importance samples per coalition (bayes_rca's Monte Carlo game uses 2000 per posterior draw)."""
TRUTH_MARGINAL_SAMPLES = 1 << 20
"""Importance samples of the target's marginal (the score and the mirrored threshold)."""
TRUTH_BATCHES = 64
"""Independent batches of the samples, for the standard errors."""
TRUTH_MAX_PLAYERS = 10
"""Largest number of players (target and ancestors) whose ``2^K`` coalitions are enumerated; above, no truth."""
_CHUNK_ROWS = 1 << 18  # simulated rows per vectorised evaluation (coalitions x samples)
_DESIGN_STEPS = 400
_DESIGN_RATE = 0.05
_SMOOTHING = 0.1  # width (in target noise sd) of the smoothed indicator, for the design-point search only
_STEP = 1e-5  # finite-difference step of the design-point search
_COMPONENTS = 4  # of the proposal mixture (see _Proposal)


class _Players:
    """The target's ancestors and the target (last) of a system, the true functions and the abducted noise."""

    def __init__(self, system, target: Hashable, row: pd.DataFrame) -> None:
        self.nodes = blameable_nodes(system.graph, target)
        index = {node: k for k, node in enumerate(self.nodes)}
        self.parents = [[index[p] for p in parents_of(system.graph, node)] for node in self.nodes]
        self.functions = [system.functions[node] for node in self.nodes]
        self.scale = np.array([float(system.noise_scale[node]) for node in self.nodes])
        self.values = row[self.nodes].to_numpy(dtype=float).reshape(-1)
        location = self.location_of(self.values[None, :])[0]
        self.noise = (self.values - location) / self.scale  # abducted
        self.observed = float(self.values[-1])

    def location_of(self, values: np.ndarray) -> np.ndarray:
        """``f_j(PA_j)`` of every player for given node values ``(R, K)``."""
        return np.column_stack([f(values[:, p]) for f, p in zip(self.functions, self.parents)])

    def target_location(self, noise: np.ndarray) -> np.ndarray:
        """``f_t(PA_t)`` for noise ``(K, R)`` of the players, one row per player (the target's is not used)."""
        values = np.empty_like(noise)
        for k, (function, parents) in enumerate(zip(self.functions, self.parents)):
            location = function(values[parents].T)
            if k == len(self.nodes) - 1:
                return location
            np.multiply(noise[k], self.scale[k], out=values[k])
            values[k] += location
        raise AssertionError("unreachable: the target is the last player")

    @property
    def size(self) -> int:
        return len(self.nodes)


def _log_event(players: _Players, location: np.ndarray, target_in: bool, lo: float, hi: float) -> np.ndarray:
    """``log P(X_t <= lo or X_t >= hi)`` given the target's location; its own noise integrated if ``target_in``,
    else fixed at its abducted value (an indicator: 0 or -inf)."""
    sd = players.scale[-1]
    if target_in:
        return np.logaddexp(special.log_ndtr((lo - location) / sd), special.log_ndtr((location - hi) / sd))
    value = location + sd * players.noise[-1]
    with np.errstate(divide="ignore"):
        return np.log(((value <= lo) | (value >= hi)).astype(float))


def _design_points(players: _Players, masks: np.ndarray, threshold: float, upper: bool,
                   start: np.ndarray) -> np.ndarray:
    """The most likely redrawn noise of each coalition given one tail of its event, ``(C, K)`` (zero outside
    the redrawn ancestors): ``argmax -|z|^2 / 2 + log P(tail | z)``, the indicator smoothed where the target's
    noise is kept. Adam steps, gradients by central differences, all coalitions at once. Only the proposal's
    efficiency depends on it, never the estimate's expectation."""
    sampled = masks.copy()
    sampled[:, -1] = False
    target_in = masks[:, -1]
    size = masks.shape[1]
    sd = players.scale[-1]
    width = np.where(target_in, sd, _SMOOTHING * sd)
    offset = np.where(target_in, 0.0, sd * players.noise[-1])
    sign = 1.0 if upper else -1.0

    def objective(z: np.ndarray) -> np.ndarray:  # z (C, J, K) -> (C, J)
        noise = np.where(sampled[:, None, :], z, players.noise)
        location = players.target_location(noise.reshape(-1, size).T).reshape(z.shape[:2])
        tail = special.log_ndtr(sign * (location + offset[:, None] - threshold) / width[:, None])
        return tail - 0.5 * (np.where(sampled[:, None, :], z, 0.0) ** 2).sum(-1)

    z = np.where(sampled, start, 0.0)
    first, second = np.zeros_like(z), np.zeros_like(z)
    eye = np.eye(size) * _STEP
    for step in range(1, _DESIGN_STEPS + 1):
        probes = np.concatenate([z[:, None, :] + eye, z[:, None, :] - eye], axis=1)
        values = objective(probes)
        gradient = np.where(sampled, (values[:, :size] - values[:, size:]) / (2 * _STEP), 0.0)
        gradient = np.nan_to_num(gradient)
        first = 0.9 * first + 0.1 * gradient
        second = 0.999 * second + 0.001 * gradient**2
        z = z + _DESIGN_RATE * (first / (1 - 0.9**step)) / (np.sqrt(second / (1 - 0.999**step)) + 1e-8)
    return np.where(sampled, z, 0.0)


class _Proposal:
    """The defensive mixture ``q_S = (p + p(. - mu_up) + p(. - mu_lo) + p(. - n_S)) / 4`` of each coalition's
    redrawn ancestors' noise, with common random numbers: sample ``m`` is ``eps_m + mu_{S, c_m}`` in every
    coalition. ``n_S`` is the abducted noise itself, on the boundary of the observed tail's event: it reaches
    that tail where the design-point search cannot (a target saturated in a redrawn noise, whose location then
    moves by 1e-9 over several standard deviations of it)."""

    def __init__(self, masks: np.ndarray, up: np.ndarray, low: np.ndarray, observed: np.ndarray) -> None:
        self.masks = masks
        self.sampled = masks.copy()
        self.sampled[:, -1] = False
        self.shifts = np.stack([np.zeros_like(up), up, low, np.where(self.sampled, observed, 0.0)])  # (4, C, K)
        self.half_norm = 0.5 * (self.shifts**2).sum(-1)  # (4, C)

    def draw(self, eps: np.ndarray, component: np.ndarray, chosen: slice) -> tuple[np.ndarray, np.ndarray]:
        """Noise ``(K, C, M)`` of the coalitions ``chosen`` (zero where not redrawn: to be filled in) for standard
        normal ``eps (K, M)`` and mixture components ``(M,)``, and ``log p / q (C, M)`` (at most ``log 4``).

        ``log q_a / p = mu_a . z - |mu_a|^2 / 2`` with ``z = eps + mu_c``: ``mu_a . eps`` is one matrix product,
        ``mu_a . mu_c`` a table."""
        shifts = self.shifts[:, chosen]  # (4, C, K), zero outside the redrawn ancestors
        z = eps[:, None, :] + shifts.transpose(2, 1, 0)[:, :, component]  # (K, C, M)
        z *= self.sampled[chosen].T[:, :, None]
        count = shifts.shape[1]
        cross = np.einsum("ack,bck->abc", shifts, shifts)  # (4, 4, C)
        log_ratio = (shifts.reshape(-1, shifts.shape[-1]) @ eps).reshape(len(shifts), count, -1)
        log_ratio += cross[:, component].transpose(0, 2, 1) - self.half_norm[:, chosen, None]
        return z, -(_logsumexp(log_ratio, axis=0) - math.log(len(shifts)))


def _logsumexp(values: np.ndarray, axis: int = -1) -> np.ndarray:
    """``log sum exp`` along ``axis`` (``-inf`` where every term is)."""
    top = np.max(values, axis=axis, keepdims=True)
    top = np.where(np.isfinite(top), top, 0.0)
    with np.errstate(divide="ignore"):
        return np.log(np.exp(values - top).sum(axis=axis)) + np.squeeze(top, axis=axis)


def _batch_log_sums(players: _Players, masks: np.ndarray, proposal: _Proposal, lo: float, hi: float,
                    num_samples: int, num_batches: int, rng: np.random.Generator,
                    other: float | None = None) -> tuple[np.ndarray, np.ndarray | None]:
    """Per coalition and batch, ``log sum`` of the importance-weighted event probabilities ``(C, B)``; with
    ``other`` (the mirrored threshold), also the sums of the weighted density of ``X_t`` at it (``(C, B)``,
    zero where the target's noise is kept), for the threshold's error."""
    count, size = masks.shape
    per_batch = num_samples // num_batches
    samples_per_chunk = max(per_batch, min(num_samples, _CHUNK_ROWS // max(1, min(count, 64)))
                            // per_batch * per_batch)
    coalitions_per_chunk = max(1, _CHUNK_ROWS // samples_per_chunk)
    log_sums = np.full((count, num_batches), -np.inf)
    densities = None if other is None else np.zeros((count, num_batches))
    sd = players.scale[-1]
    for start in range(0, num_samples, samples_per_chunk):
        chunk = min(samples_per_chunk, num_samples - start)  # a multiple of per_batch
        eps = rng.standard_normal((size, chunk))
        component = rng.integers(0, _COMPONENTS, chunk)
        batch = slice(start // per_batch, (start + chunk) // per_batch)
        for first in range(0, count, coalitions_per_chunk):
            chosen = slice(first, min(count, first + coalitions_per_chunk))
            z, log_weight = proposal.draw(eps, component, chosen)
            noise = np.where(proposal.sampled[chosen].T[:, :, None], z, players.noise[:, None, None])
            location = players.target_location(noise.reshape(size, -1)).reshape(z.shape[1:])
            target_in = masks[chosen, -1]
            log_terms = log_weight
            log_terms[target_in] += _log_event(players, location[target_in], True, lo, hi)
            log_terms[~target_in] += _log_event(players, location[~target_in], False, lo, hi)
            log_sums[chosen, batch] = _logsumexp(log_terms.reshape(z.shape[1], -1, per_batch))
            if densities is not None and target_in.any():
                part = np.exp(log_weight[target_in] - 0.5 * ((other - location[target_in]) / sd) ** 2)
                indices = np.arange(first, chosen.stop)[target_in]
                densities[indices, batch] = part.reshape(len(indices), -1, per_batch).sum(-1) / (
                    sd * math.sqrt(2 * math.pi))
    return log_sums, densities


def shapley_weights(num_players: int) -> tuple[np.ndarray, np.ndarray]:
    """All ``2^K`` coalition masks ``(C, K)`` (bit ``j`` of the index = player ``j``) and the signed Shapley
    weights ``W (C, K)`` with ``phi = W^T g``: ``|S|-1)! (K-|S|)! / K!`` where ``j`` is in ``S``, else
    ``-|S|! (K-|S|-1)! / K!``."""
    codes = np.arange(1 << num_players)
    masks = ((codes[:, None] >> np.arange(num_players)) & 1).astype(bool)
    size = masks.sum(-1, keepdims=True)
    factorial = [math.factorial(n) for n in range(num_players + 1)]
    total = factorial[num_players]
    inside = np.array([factorial[max(s - 1, 0)] * factorial[num_players - s] / total for s in range(num_players + 1)])
    outside = np.array([factorial[s] * factorial[max(num_players - s - 1, 0)] / total
                        for s in range(num_players + 1)])
    return masks, np.where(masks, inside[size], -outside[size])


def _solve_threshold(log_other_tail, density, observed: float, sign: float, spread: float, log_q: float,
                     guess: float) -> float:
    """``log T(m) = log q`` for the other tail ``T`` by Newton steps inside a bracket (bisection where a step
    leaves it); ``dT/dm = sign * density(m)``."""
    inner, outer = observed, observed - sign * 60 * spread  # T(inner) > q > T(outer)
    m = guess if min(inner, outer) < guess < max(inner, outer) else 0.5 * (inner + outer)
    for _ in range(100):
        log_tail_m = log_other_tail(m)
        gap = log_tail_m - log_q
        if abs(gap) < 1e-10:
            break
        inner, outer = (inner, m) if gap < 0 else (m, outer)
        step = m - gap * math.exp(log_tail_m) / (sign * max(density(m), 1e-300))
        m = step if min(inner, outer) < step < max(inner, outer) else 0.5 * (inner + outer)
    return m


def _marginal(players: _Players, num_samples: int, num_batches: int, rng: np.random.Generator) -> dict:
    """The target's marginal at the observed value: its tail mass ``q`` (observed side), the mirrored threshold
    ``m`` (the other tail's mass is ``q``), the IT score ``-log(2 q)``, and per-batch deviations of ``q`` and ``m``."""
    size = players.size
    everyone = np.ones((1, size), dtype=bool)
    start = np.where(everyone, players.noise, 0.0)
    observed, sd = players.observed, players.scale[-1]
    up = _design_points(players, everyone, observed, True, start)
    low = _design_points(players, everyone, observed, False, -start)
    eps = rng.standard_normal((size, num_samples))
    component = rng.integers(0, _COMPONENTS, num_samples)

    def sample(proposal: _Proposal) -> tuple[np.ndarray, np.ndarray]:
        locations, weights = [], []
        for first in range(0, num_samples, _CHUNK_ROWS):
            part = slice(first, first + _CHUNK_ROWS)
            z, log_weight = proposal.draw(eps[:, part], component[part], slice(0, 1))
            locations.append(players.target_location(z[:, 0]))
            weights.append(log_weight[0])
        return np.concatenate(locations), np.concatenate(weights)

    location, log_weight = sample(_Proposal(everyone, up, low, start))

    def log_tail(threshold: float, upper: bool) -> np.ndarray:  # per sample: log w + log P(tail | location)
        z = (location - threshold) / sd
        return log_weight + special.log_ndtr(z if upper else -z)

    def log_mean(log_terms: np.ndarray) -> float:
        return float(_logsumexp(log_terms) - math.log(len(log_terms)))

    def density(threshold: float) -> float:  # of X_t at the threshold
        terms = log_weight - 0.5 * ((threshold - location) / sd) ** 2
        return math.exp(log_mean(terms)) / (sd * math.sqrt(2 * math.pi))

    upper = log_mean(log_tail(observed, True)) <= log_mean(log_tail(observed, False))  # observed in upper tail
    log_q = log_mean(log_tail(observed, upper))
    if log_q + math.log(2.0) >= 0.0:  # at the median: both thresholds are the observed value, the score 0
        return {"upper": upper, "lo": observed, "hi": observed, "score": 0.0, "mirror": observed,
                "dq": np.zeros(num_batches), "dmirror": np.zeros(num_batches), "q": 0.5}
    # the other tail T(m) = P(X <= m) (observed upper) or P(X >= m): dT/dm = +f or -f
    sign = 1.0 if upper else -1.0

    def solve(guess: float) -> float:
        spread = math.sqrt(float(np.var(location)) + sd**2)
        return _solve_threshold(lambda m: log_mean(log_tail(m, not upper)), density, observed, sign, spread,
                                log_q, guess)

    mirror = solve(2 * float(np.average(location, weights=np.exp(log_weight))) - observed)
    # redesign the proposal's other-tail component at the solved threshold, resample, solve again
    other = _design_points(players, everyone, mirror, not upper, -start if upper else start)
    location, log_weight = sample(_Proposal(everyone, up if upper else other, other if upper else low, start))
    log_q = log_mean(log_tail(observed, upper))
    mirror = solve(mirror)
    # per-batch deviations (delta method) of q and of the mirrored threshold: T_hat(m_hat) = q_hat
    q = math.exp(log_q)
    per_batch = num_samples // num_batches
    observed_side = np.exp(log_tail(observed, upper) - log_q).reshape(num_batches, per_batch).mean(-1)
    other_side = np.exp(log_tail(mirror, not upper) - log_q).reshape(num_batches, per_batch).mean(-1)
    dq, dother = (observed_side - 1.0) * q, (other_side - other_side.mean()) * q
    dmirror = (dq - dother) / (sign * density(mirror))
    return {"upper": upper, "lo": mirror if upper else observed, "hi": observed if upper else mirror,
            "score": max(0.0, -(log_q + math.log(2.0))), "mirror": mirror, "dq": dq, "dmirror": dmirror, "q": q}


def nonlinear_true_attribution(system, target: Hashable, row: pd.DataFrame, seed: int,
                               num_samples: int | None = None, marginal_samples: int | None = None,
                               num_batches: int | None = None,
                               max_players: int | None = None) -> tuple[pd.Series, pd.Series, float] | None:
    """Contributions of every graph node (0 for non-players), their standard errors (nats) and the IT score, of
    the outlier ``row`` at ``target`` under the system's true functions and Gaussian noise; None where the noise
    is not Gaussian or the target has more than ``max_players`` players (default :data:`TRUTH_MAX_PLAYERS`).

    Defaults of the budget are this module's constants, read at call time.
    """
    if system.noise_kind != "gaussian":
        return None
    num_samples = num_samples or TRUTH_SAMPLES
    marginal_samples = marginal_samples or TRUTH_MARGINAL_SAMPLES
    num_batches = num_batches or TRUTH_BATCHES
    if num_samples % num_batches or marginal_samples % num_batches:
        raise ValueError(f"the samples ({num_samples}, {marginal_samples}) must split into {num_batches} batches")
    players = _Players(system, target, row)
    size = players.size
    if size > (max_players or TRUTH_MAX_PLAYERS):
        return None
    nodes = list(system.graph.nodes)
    contributions, errors = pd.Series(0.0, index=nodes), pd.Series(0.0, index=nodes)
    marginal_rng, game_rng = (np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(2))
    marginal = _marginal(players, marginal_samples, num_batches, marginal_rng)
    if size == 1:
        contributions[target] = marginal["score"]
        errors[target] = float(np.std(marginal["dq"] / marginal["q"], ddof=1) / math.sqrt(num_batches))
        return contributions, errors, marginal["score"]
    masks, weights = shapley_weights(size)
    lo, hi = marginal["lo"], marginal["hi"]
    start = np.where(masks, players.noise, 0.0)
    up = _design_points(players, masks, hi, True, start)
    low = _design_points(players, masks, lo, False, -start)
    proposal = _Proposal(masks, up, low, start)
    log_sums, densities = _batch_log_sums(players, masks, proposal, lo, hi, num_samples, num_batches, game_rng,
                                          marginal["mirror"])
    per_batch = num_samples // num_batches
    log_p = _logsumexp(log_sums, axis=-1) - math.log(num_samples)  # (C,)
    if not np.isfinite(log_p[masks.any(-1)]).all():  # a coalition no sample reached: g(S) unknown
        warnings.warn(f"no true attribution for the outlier at {target!r}: no importance sample reached the "
                      "outlier event of some coalition", BayesRCAWarning, stacklevel=2)
        return None
    ratio = np.exp(log_sums - math.log(per_batch) - log_p[:, None])  # p_b / p, (C, B)
    relative_var = ratio.var(-1, ddof=1) / num_batches
    game = -(log_p - 0.5 * relative_var)
    # the mirrored threshold's error moves the other tail of coalitions that redraw the target's noise
    density = densities / per_batch / np.exp(log_p)[:, None]  # f_S(m) / p_S per batch, (C, B)
    other_sign = 1.0 if marginal["upper"] else -1.0  # d P(other tail) / dm = +f (lower tail), -f (upper)
    deviation = -(ratio - 1.0) - other_sign * density.mean(-1, keepdims=True) * marginal["dmirror"][None, :]
    full, empty = masks.all(-1), ~masks.any(-1)
    game[empty], deviation[empty] = 0.0, 0.0
    game[full] = marginal["score"]
    deviation[full] = -marginal["dq"] / marginal["q"]
    values = weights.T @ game  # (K,)
    batches = weights.T @ deviation  # (K, B): each batch's deviation of the contributions
    contributions[players.nodes] = values
    errors[players.nodes] = batches.std(-1, ddof=1) / math.sqrt(num_batches)
    return contributions, errors, marginal["score"]
