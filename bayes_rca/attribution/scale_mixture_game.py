"""The counterfactual game of linear players whose noise is Gaussian or Student-t, exact given the noise scales.

A Student-t noise ``N = s Z / sqrt(G)``, ``G ~ Gamma(nu / 2, nu / 2)``, is Gaussian given its mixing variable
``lambda = 1 / G``. With every player linear in its parents, the target under a coalition ``S`` is

    X_t = x_t - sum_{j in S} alpha_j n_j + sum_{j in S} alpha_j N_j,

Gaussian given ``lambda``, with mean ``m_S = x_t - sum_S alpha_j n_j`` and variance
``v_S = sum_S alpha_j^2 s_j^2 lambda_j`` (``lambda_j = 1`` for a Gaussian player). So

    nu(S) = log E_lambda [ P(X_t <= lo or X_t >= hi | m_S, v_S(lambda)) ],

and only the mixing variables are sampled; the Gaussian part is integrated exactly (conditional Monte Carlo).
The samples are shared by all coalitions (common random numbers), and the tail of ``lambda`` is reached by
defensive importance sampling: half the samples come from the prior, and for each Student-t player ``j`` an
equal share has ``lambda_j`` stretched by ``kappa_j``, so far that player ``j`` alone moves the target by the
observed distance. Its weights are the balance heuristic of the deterministic mixture, at most ``2``; a
coalition's weight involves only its own players. The estimate's standard error is the delta-method error of
``log`` of the weighted mean, from independent stratified batches, and the ``log``'s bias is corrected to
second order. A game whose players are all Gaussian is exact (every weight 1, no spread).
"""

from __future__ import annotations

import math

import torch

from bayes_rca.attribution.abduction import Players
from bayes_rca.attribution.common_scale import sample_common_scale
from bayes_rca.attribution.linear_game import NUM_BATCHES, _full_and_empty, total_effects
from bayes_rca.attribution.scores import FeatureMap, GaussianMarginal, gaussian_log_tail, student_t_log_tail
from bayes_rca.model.noise import GaussianNoise, StudentTNoise, _chi2_sample

_MAX_ELEMENTS = 1 << 22  # per chunk of draws x samples x coalitions
_BLOCK_ELEMENTS = 1 << 18  # per call of the exact control variate (draws x coalitions)
_SQRT_HALF = math.sqrt(0.5)
_FAST = torch.float32  # the dtype of the sums over samples
_LINEAR_FLOOR = 1e-30  # tail probabilities below this are recomputed in float64 log space
DEFAULT_MIXING_SAMPLES = 512


def supports_scale_mixture_game(players: list) -> bool:
    """Whether every player is additive, linear in its parents and has Gaussian or Student-t noise."""
    return all(node.mechanism.invertible and node.mechanism.linear_in_parents
               and isinstance(node.noise(), GaussianNoise | StudentTNoise) for node in players)


def _gamma(concentration: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """``Gamma(concentration, 1)`` draws from ``generator`` (via the chi-square sampler of :mod:`bayes_rca.model.noise`)."""
    return 0.5 * _chi2_sample(2.0 * concentration, generator)


class ScaleMixtureGame:
    """Counterfactual game for linear players with Gaussian or Student-t noise (one outlier row at a time).

    Parameters
    ----------
    players : Players
        Fitted players (see :func:`supports_scale_mixture_game`) and one observed row.
    feature_map : FeatureMap
        Defines the outlier event (the target's marginal is symmetric about its mean, so both feature maps give
        the thresholds ``mean -+ |x - mean|``).
    num_samples : int
        Samples of the mixing variables per posterior draw, shared by all coalitions; rounded up to a multiple
        of ``2 * num_batches`` times the number of Student-t players.
    generator : torch.Generator
        Source of every random number.
    tail_df : float, optional
        The robust game: every sample's redrawn variances are multiplied by one common factor ``lambda ~
        InvGamma(tail_df / 2, tail_df / 2)`` (:func:`~bayes_rca.attribution.common_scale.sample_common_scale`,
        half of every batch from its prior), still Gaussian given the factors; its weight multiplies each
        sample's.
    """

    def __init__(self, players: Players, feature_map: FeatureMap, num_samples: int, generator: torch.Generator,
                 num_batches: int = NUM_BATCHES, tail_df: float | None = None) -> None:
        if players.values.shape[0] != 1:
            raise ValueError("ScaleMixtureGame takes one outlier row at a time")
        nodes = players.nodes
        effect, intercept = total_effects(players)
        scale = torch.tensor([node.standardizer.scale for node in nodes], dtype=effect.dtype, device=effect.device)
        alpha = effect * scale  # (D, K): effect of one standardised noise unit on X_t
        noises = [node.noise() for node in nodes]
        noise_scale = torch.stack([noise.scale.squeeze(-1) for noise in noises], -1)  # (D, K)
        self.variance_share = alpha**2 * noise_scale**2  # (D, K): times lambda_j
        self.shift = (alpha * players.noise[:, 0, :])  # (D, K): the observed noise's share of x_t
        self.observed = players.values[0, -1]
        draws = alpha.shape[0]
        heavy = [k for k, noise in enumerate(noises) if isinstance(noise, StudentTNoise)]
        self.num_batches = num_batches
        block = 2 * num_batches * max(len(heavy), 1)
        self.num_samples = max(block, math.ceil(num_samples / block) * block)
        # thresholds: the marginal of X_t (all noise redrawn) is symmetric about its mean
        mean = (effect * intercept).sum(-1)
        spread = torch.sqrt(self.variance_share.sum(-1))
        marginal = GaussianMarginal(mean, spread)
        lo, hi = feature_map.thresholds(marginal, self.observed.expand(draws, 1))
        self.lo, self.hi = lo[:, 0], hi[:, 0]  # (D,)
        self._mixing(noises, heavy, (self.observed - mean).abs(), generator)
        self.tail_df, self.log_scale_weight = tail_df, None
        if tail_df is not None:  # one common factor per sample, on top of the players' own mixing variables
            reach = (players.noise[:, 0, :].abs() / noise_scale).amax(-1)  # (D,): the furthest noise, in its scales
            in_batch = torch.arange(self.num_samples, device=alpha.device) // num_batches  # index in its batch
            log_lambda, self.log_scale_weight = sample_common_scale(tail_df, reach, self.num_samples, generator,
                                                                    from_prior=in_batch % 2 == 0)
            self.mixing = self.mixing * torch.exp(log_lambda).unsqueeze(-1)
        self.scaled_mixing = self.mixing * self.variance_share.unsqueeze(1)  # (D, M, K): lambda_j alpha_j^2 s_j^2
        self.has_heavy = bool(self.heavy.any())
        self.rho_excess = torch.expm1(self.log_rho_terms) * self.fraction if self.has_heavy else None
        # the sums over samples run in float32: twice as fast, and 1e-7 relative error is far below the Monte
        # Carlo error; probabilities below _LINEAR_FLOOR are recomputed in float64 log space
        self.fast_mixing = self.scaled_mixing.to(_FAST)
        self.fast_excess = None if self.rho_excess is None else self.rho_excess.clamp_max(1e30).to(_FAST)
        everyone = torch.ones(1, len(nodes), dtype=torch.bool, device=alpha.device)
        self.score = self._values(everyone)[0][:, :, 0]  # (D, 1): the IT score, from the same samples

    def _mixing(self, noises: list, heavy: list[int], distance: torch.Tensor, generator: torch.Generator) -> None:
        """Draw ``lambda (D, M, K)`` from the defensive mixture and keep each sample's ``f_j (rho_j - 1)``."""
        draws, players = self.variance_share.shape
        samples, dtype, device = self.num_samples, self.variance_share.dtype, self.variance_share.device
        self.mixing = torch.ones(draws, samples, players, dtype=dtype, device=device)
        self.log_rho_terms = torch.zeros(draws, samples, players, dtype=dtype, device=device)
        if not heavy:
            self.heavy = torch.zeros(players, dtype=torch.bool, device=device)
            return
        # component of each sample: -1 for the prior (the first half of every batch), else the heavy player
        per_batch = samples // self.num_batches
        within = torch.arange(samples, device=device) // self.num_batches  # index inside its batch
        share = per_batch // 2 // len(heavy)
        component = torch.where(within < per_batch // 2, -1,
                                ((within - per_batch // 2) // max(share, 1)).clamp_max(len(heavy) - 1))
        fraction = 0.5 / len(heavy)
        half_df = torch.stack([0.5 * noises[k].df.squeeze(-1) for k in heavy], -1)  # (D, H)
        self.median_df = float(2.0 * half_df.median())
        gamma = _gamma(half_df.unsqueeze(1).expand(draws, samples, len(heavy)).contiguous(), generator) \
            / half_df.unsqueeze(1)  # G ~ Gamma(a, a)
        # stretch lambda_j by kappa_j so that player j alone reaches the observed distance at about 2 sd
        reach = distance.unsqueeze(-1) ** 2 / (4.0 * self.variance_share[:, heavy].clamp_min(1e-300))
        kappa = reach.clamp(1.0, 1e300)  # (D, H)
        stretched = component.unsqueeze(-1) == torch.arange(len(heavy), device=device)  # (M, H)
        gamma = torch.where(stretched.unsqueeze(0), gamma / kappa.unsqueeze(1), gamma)
        log_rho = half_df.unsqueeze(1) * (torch.log(kappa).unsqueeze(1) - (kappa.unsqueeze(1) - 1.0) * gamma)
        log_rho = log_rho.clamp_max(600.0)  # where q >> p the weight is ~0 either way; keeps inf * 0 out
        index = torch.tensor(heavy, device=device)
        self.mixing[..., index] = 1.0 / gamma
        self.log_rho_terms[..., index] = log_rho  # log rho_j(lambda_j) of every sample
        self.heavy = torch.zeros(players, dtype=torch.bool, device=device)
        self.heavy[index] = True
        self.fraction = fraction  # f_j (rho_j - 1) is zero for the Gaussian players: log rho = 0

    def _values(self, masks: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``g(S)`` ``(D, 1, C)`` and its per-batch linearisations ``(B, D, 1, C)`` for ``masks (C, K)``.

        The tail probabilities are summed in linear space, in float32 (one pass of ``erfc`` per sample); a
        coalition whose probability is below ``1e-30`` for some draw is recomputed in float64 log space, exact
        however far out.
        """
        weights = masks.to(self.shift.dtype).T  # (K, C)
        mean = self.observed - self.shift @ weights  # (D, C)
        fast = weights.to(_FAST)
        low = ((mean - self.lo.unsqueeze(-1)) * _SQRT_HALF).unsqueeze(1).to(_FAST)  # (D, 1, C)
        high = ((self.hi.unsqueeze(-1) - mean) * _SQRT_HALF).unsqueeze(1).to(_FAST)
        inverse_std = torch.matmul(self.fast_mixing, fast).rsqrt_()  # (D, M, C); inf for the empty coalition
        terms = torch.mul(low, inverse_std).erfc_().add_(torch.mul(high, inverse_std).erfc_())
        if self.has_heavy:
            excess = torch.matmul(self.fast_excess, fast).add_(1.0)  # balance-heuristic weight 1 / (1 + ...)
            terms.div_(excess)
        if self.log_scale_weight is not None:
            terms.mul_(torch.exp(self.log_scale_weight).unsqueeze(-1).to(_FAST))
        draws, samples, coalitions = terms.shape
        batch_sums = terms.reshape(draws, -1, self.num_batches, coalitions).sum(1, dtype=self.shift.dtype)
        batch_sums.mul_(0.5)  # (D, B, C); sample m is in batch m % B
        probability = batch_sums.sum(1) / samples  # (D, C)
        tiny = probability < _LINEAR_FLOOR
        log_probability = torch.log(probability)
        if bool(tiny.any()):
            columns = tiny.any(0).nonzero().squeeze(-1)
            log_probability[:, columns] = self._log_probability(mean[:, columns], weights[:, columns])
        batch_ratio = batch_sums * (self.num_batches / samples) / probability.unsqueeze(1)  # (D, B, C)
        batch_ratio = torch.where(tiny.unsqueeze(1), 1.0, batch_ratio)  # log-space columns: see below
        relative_var = batch_ratio.var(1) / self.num_batches  # Var(p_hat) / p_hat^2
        value = -(log_probability - 0.5 * relative_var)  # E[log p_hat] = log p - Var / (2 p^2): remove that bias
        batches = value.unsqueeze(1) - (batch_ratio - 1.0)  # linearised -log of each batch's estimate
        _, empty = _full_and_empty(masks)
        value = torch.where(empty, 0.0, value.clamp_min(0.0))
        batches = torch.where(empty, 0.0, batches)
        return value.unsqueeze(1), batches.permute(1, 0, 2).unsqueeze(2)

    def _log_probability(self, mean: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        """``log p_hat (D, C)`` in log space for coalitions ``weights (K, C)`` with means ``(D, C)``."""
        std = torch.matmul(self.scaled_mixing, weights).sqrt_()
        log_terms = gaussian_log_tail(mean.unsqueeze(1), std, self.lo[:, None, None], self.hi[:, None, None])
        if self.has_heavy:
            log_terms = log_terms - torch.log1p(torch.matmul(self.rho_excess, weights))
        if self.log_scale_weight is not None:
            log_terms = log_terms + self.log_scale_weight.unsqueeze(-1)
        return torch.logsumexp(log_terms, 1) - math.log(log_terms.shape[1])

    def __call__(self, masks: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``g(S)`` for ``masks (C, K)``: the estimate ``(D, 1, C)`` and per-batch estimates ``(B, D, 1, C)``."""
        value, batches = self._values(masks)
        full, _ = _full_and_empty(masks)
        value[..., full] = self.score.unsqueeze(-1)
        return value, batches

    @property
    def chunk_size(self) -> int:
        draws, samples, _ = self.mixing.shape
        return max(1, _MAX_ELEMENTS // (draws * samples))

    @property
    def has_control_variate(self) -> bool:
        """Whether :meth:`control_variate` gives a game (some player is Student-t, or the robust game)."""
        return self.has_heavy or self.tail_df is not None

    def control_variate(self) -> CommonScaleGame | None:
        """The exact game whose Shapley values, subtracted and added back, carry most of this game's variation.

        It redraws a coalition's noise with one common mixing variable (see :class:`CommonScaleGame`), with the
        median degrees of freedom of the Student-t players (in the robust game the smaller of that and
        ``tail_df``, the heavier tail), at the posterior mean of the players' effects, scales and thresholds: one
        game for all draws, so that its ``2^K`` coalitions cost what one draw's do (and it tracks each draw's
        game almost as closely as a per-draw control would). None when every player is Gaussian and the game is
        not the robust one (this game is then exact itself).
        """
        if not self.has_control_variate:
            return None
        dfs = ([self.median_df] if self.has_heavy else []) + ([self.tail_df] if self.tail_df is not None else [])
        mean = lambda tensor: tensor.mean(0, keepdim=True)  # noqa: E731
        return CommonScaleGame(mean(self.shift), mean(self.variance_share), self.observed, mean(self.lo),
                               mean(self.hi), min(dfs))

    def difference(self, control: CommonScaleGame) -> DifferenceGame:
        """This game minus ``control`` (same coalitions), for permutation sampling."""
        return DifferenceGame(self, control)


class CommonScaleGame:
    """Exact game of the same linear players with one mixing variable shared by a coalition's noise.

    ``X_t`` under ``S`` is then ``m_S + sqrt(sum_S alpha_j^2 s_j^2) T_df`` (a Student-t), so ``g(S)`` is a closed
    form (:func:`~bayes_rca.attribution.scores.student_t_log_tail`). Its interactions between a far-out noise and the rest
    grow like those of independent Student-t noise (``df log z``), which makes it a control variate for
    :class:`ScaleMixtureGame`: the Shapley values of the difference have a small spread over permutations.
    """

    def __init__(self, shift: torch.Tensor, variance_share: torch.Tensor, observed: torch.Tensor,
                 lo: torch.Tensor, hi: torch.Tensor, df: float) -> None:
        self.shift, self.variance_share, self.observed, self.df = shift, variance_share, observed, df
        self.lo, self.hi = lo[:, None, None], hi[:, None, None]
        everyone = torch.ones(1, shift.shape[-1], dtype=torch.bool, device=shift.device)
        self.score = self._values(everyone)[:, :, 0]

    def _values(self, masks: torch.Tensor) -> torch.Tensor:
        weights = masks.to(self.shift.dtype).T
        mean = (self.observed - self.shift @ weights).unsqueeze(1)  # (D, 1, C)
        scale = torch.sqrt(self.variance_share @ weights).unsqueeze(1)
        return student_t_log_tail(mean, scale, self.lo, self.hi, self.df).neg_()

    def __call__(self, masks: torch.Tensor) -> tuple[torch.Tensor, None]:
        """``g(S)`` for ``masks (C, K)``: ``(D, 1, C)``, exact."""
        value = self._values(masks)
        full, empty = _full_and_empty(masks)
        value[..., full] = self.score.unsqueeze(-1)
        value[..., empty] = 0.0
        return value, None

    @property
    def chunk_size(self) -> int:
        draws, players = self.shift.shape
        return max(2 * (players + 1), _BLOCK_ELEMENTS // draws)


class DifferenceGame:
    """``game - control`` on the same coalitions; the Monte Carlo batches are those of ``game`` minus ``control``."""

    def __init__(self, game: ScaleMixtureGame, control: CommonScaleGame) -> None:
        self.game, self.control = game, control
        self.score = game.score - control.score

    def __call__(self, masks: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        value, batches = self.game(masks)
        exact, _ = self.control(masks)
        return value - exact, batches - exact

    @property
    def chunk_size(self) -> int:
        return min(self.game.chunk_size, self.control.chunk_size)
