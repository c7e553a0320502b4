"""The counterfactual set function ``nu(S)`` of an outlier, batched over posterior draws and coalitions.

For a coalition ``S`` (a boolean mask over the players: the target and its ancestors), the noise of the nodes
in ``S`` is replaced by fresh draws from its distribution and all other noise is kept at its abducted value;
``nu(S)`` is the log probability of the target's outlier event ``X_t <= lo or X_t >= hi`` under that
replacement. A game returns ``g(S) = -nu(S)``, so that ``g(empty) = 0``, ``g(all) = IT score``, and the
Shapley values of ``g`` are the contributions.

Two games share this interface:

- :class:`LinearGaussianGame`: when every player's mechanism is linear-Gaussian, ``X_t`` under ``S`` is
  Gaussian and ``nu(S)`` is exact (no Monte Carlo error, no saturation far out in the tail).
- :class:`~bayes_rca.attribution.monte_carlo_game.MonteCarloGame` (in its own module): any additive mechanisms. ``nu(S)``
  is estimated with common random numbers
  across coalitions, the target's own noise integrated exactly (Rao-Blackwellisation) when the target is in
  ``S``, and a defensive importance-sampling proposal that reaches both kinds of rare event: each unusually
  large abducted noise is also drawn near its observed value, and the ancestors' noise is also drawn along
  the line on which they jointly push the target towards its outlier event. The estimate is never ``log 0``;
  its Monte Carlo error is the delta-method error of the ``log`` of the mean, estimated from independent
  batches, and the ``log``'s second-order bias is removed.
"""

from __future__ import annotations

import torch

from bayes_rca.attribution.abduction import Players
from bayes_rca.attribution.scores import (
    FeatureMap,
    GaussianMarginal,
    gaussian_log_tail,
    it_score,
    student_t_log_tail,
)
from bayes_rca.attribution.shapley import CounterfactualGame
from bayes_rca.numerics.threads import one_thread

_BLOCK_ELEMENTS = 1 << 18  # per call of the analytic game (draws x rows x coalitions): small enough to stay in cache


def total_effects(players: Players) -> tuple[torch.Tensor, torch.Tensor]:
    """``effect (D, K)`` of every ``X_j`` on ``X_t`` (row ``t`` of ``(I - B)^{-1}``, solved as
    ``(I - B)^T a = e_t``) and intercepts ``(D, K)`` in data units, for players linear in their parents."""
    nodes, dtype, device = players.nodes, players.noise.dtype, players.noise.device
    draws, num = players.noise.shape[0], len(nodes)
    coupling = torch.zeros(draws, num, num, dtype=dtype, device=device)
    intercepts = []
    for k, (node, parents) in enumerate(zip(nodes, players.parent_index)):
        bias, weight = node.linear_coefficients()
        if parents:
            coupling[:, k, parents] = weight
        intercepts.append(bias)
    eye = torch.eye(num, dtype=dtype, device=device).expand(draws, num, num)
    unit = torch.zeros(draws, num, 1, dtype=dtype, device=device)
    unit[:, -1] = 1.0
    with one_thread():
        effect = torch.linalg.solve_triangular((eye - coupling).transpose(-1, -2), unit, upper=True).squeeze(-1)
    return effect, torch.stack(intercepts, -1)


def _full_and_empty(masks: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    return masks.all(-1), ~masks.any(-1)


class LinearGaussianGame:
    """Exact counterfactual game for linear-Gaussian players.

    With ``X = c + B X + s * N`` (``s`` the per-node scale in data units), the target is
    ``X_t = x_t + sum_j alpha_j (N_j - n_j)`` where ``alpha_j`` is the total effect of ``N_j`` on ``X_t``; under a
    coalition ``S`` it is Normal with mean ``x_t - sum_{j in S} alpha_j n_j`` and variance
    ``sum_{j in S} alpha_j^2 sigma_j^2``.

    ``tail_df``: the robust game. The redrawn noise of a coalition shares one variance factor ``lambda ~
    InvGamma(df / 2, df / 2)`` (a multivariate-t noise vector: the scale of an incident's noise is uncertain
    beyond what normal data show), so that ``X_t`` under ``S`` is Student-t with ``df`` degrees of freedom and the
    same location and scale. ``g(S)`` then grows like ``df log z`` far out, not ``z^2 / 2``, so the interactions of
    a far-out noise with normal ones stay small. The thresholds of the feature map are those of the Gaussian
    marginal: for a symmetric marginal both feature maps give ``mean -+ |x - mean|``, whatever its family.
    """

    def __init__(self, players: Players, feature_map: FeatureMap, tail_df: float | None = None) -> None:
        effect, intercept = total_effects(players)
        noise_sd = torch.stack([node.linear_gaussian()[2] for node in players.nodes], -1)
        scale = torch.tensor([node.standardizer.scale for node in players.nodes], dtype=effect.dtype,
                             device=effect.device)
        self.alpha = effect * scale  # (D, K): effect of one standardised noise unit on X_t
        self.variance_share = self.alpha**2 * noise_sd**2  # (D, K): each noise's share of Var(X_t)
        self.shift = self.alpha.unsqueeze(1) * players.noise  # (D, R, K): observed noise's share of x_t
        self.observed = players.values[:, -1]  # (R,)
        marginal = GaussianMarginal((effect * intercept).sum(-1), torch.sqrt(self.variance_share.sum(-1)))
        self.lo, self.hi = feature_map.thresholds(marginal, self.observed.expand(effect.shape[0], -1))
        self.tail_df = tail_df
        if tail_df is None:
            self.score = it_score(marginal, self.lo, self.hi)  # (D, R)
        else:
            self.score = -self._log_tail(marginal.mean.unsqueeze(-1), marginal.std.unsqueeze(-1), self.lo, self.hi)

    def _log_tail(self, mean: torch.Tensor, std: torch.Tensor, lo: torch.Tensor, hi: torch.Tensor) -> torch.Tensor:
        if self.tail_df is None:
            return gaussian_log_tail(mean, std, lo, hi)
        return student_t_log_tail(mean, std, lo, hi, self.tail_df)

    def __call__(self, masks: torch.Tensor) -> tuple[torch.Tensor, None]:
        """``g(S)`` for boolean ``masks (C, K)``: ``(D, R, C)``, and no Monte Carlo batches (exact)."""
        weights = masks.to(self.shift.dtype)
        mean = torch.einsum("drk,ck->drc", self.shift, weights).neg_().add_(self.observed[:, None])
        std = torch.sqrt(torch.einsum("dk,ck->dc", self.variance_share, weights)).unsqueeze(1)
        value = self._log_tail(mean, std, self.lo.unsqueeze(-1), self.hi.unsqueeze(-1)).neg_()
        full, _ = _full_and_empty(masks)
        value[..., full] = self.score.unsqueeze(-1)
        return value, None

    @property
    def chunk_size(self) -> int:
        """Coalitions per call: blocks of about :data:`_BLOCK_ELEMENTS` values, and a permutation pair at least."""
        draws, rows, players = self.shift.shape
        return max(2 * (players + 1), _BLOCK_ELEMENTS // (draws * rows))


NUM_BATCHES = 10  # batches of the Monte Carlo game's samples, for its standard errors


class CappedGame:
    """A game whose values are capped at ``max_nats``: tail probabilities are floored at ``exp(-max_nats)``.

    Exact Gaussian tails of a node that barely varies in normal data (a latency with sd 0.5 ms that jumps by a
    second, an availability stuck at 100 that drops) make ``g(S)`` of coalitions that fix the rest of the
    system astronomically large (``z^2 / 2`` for ``z`` in the thousands); the Shapley values are then huge
    terms of both signs that cancel to the IT score. Probabilities that small are beyond what a model fitted
    to finite data can vouch for; capping them keeps every ``g(S)`` in ``[0, max_nats]`` (DoWhy's Monte Carlo
    estimate is capped in the same way, at about ``log`` of its sample size). The contributions then sum to the
    capped score.
    """

    def __init__(self, game: CounterfactualGame, max_nats: float) -> None:
        self.game, self.max_nats = game, max_nats
        self.score = game.score.clamp(max=max_nats)

    def __call__(self, masks: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The wrapped game's values and per-batch Monte Carlo estimates (if any), both capped."""
        values, batches = self.game(masks)
        return values.clamp(max=self.max_nats), None if batches is None else batches.clamp(max=self.max_nats)

    @property
    def chunk_size(self) -> int:
        return self.game.chunk_size
