"""The outlier thresholds' share of the Monte Carlo game's standard error.

The thresholds of the feature map are estimated from the same samples as the coalitions' tail probabilities, so
their error is part of every ``g(S)``'s. :class:`ThresholdError` gives each batch of samples its first-order
share of the thresholds' error (:meth:`ThresholdError._threshold_shifts`) and the change of a coalition's estimate
when a threshold moves by it (:meth:`ThresholdError._threshold_terms`); the game adds the latter to its per-batch
linearised values (:class:`~bayes_rca.attribution.monte_carlo_game.MonteCarloGame`).
"""

from __future__ import annotations

import math

import torch

from bayes_rca.attribution.scores import FeatureMap, MedianCDFQuantile, MixtureMarginal, ZScore
from bayes_rca.model.noise import per_draw


def per_noise_unit(bound: torch.Tensor, multiplier: torch.Tensor | None) -> torch.Tensor:
    """A noise bound of the target in units of its widened noise (``multiplier``; None: as it is)."""
    return bound if multiplier is None else bound / multiplier


class ThresholdError:
    """The thresholds' error of a Monte Carlo game (a mixin of
    :class:`~bayes_rca.attribution.monte_carlo_game.MonteCarloGame`, whose attributes it reads: ``lo``, ``hi``,
    ``threshold_shifts``, ``num_batches``, ``target``, ``target_noise``, ``_target_log_outside``)."""

    def _batch_ratios(self, log_terms: torch.Tensor) -> torch.Tensor:
        """``p_b / p_hat - 1 (..., B)`` of the batches of per-sample log terms ``(..., S)``."""
        per_batch = log_terms.shape[-1] // self.num_batches
        log_batches = torch.logsumexp(log_terms.unflatten(-1, (self.num_batches, per_batch)), -1)
        log_all = torch.logsumexp(log_batches, -1, keepdim=True) - math.log(self.num_batches)
        return torch.exp(log_batches - log_all) - 1.0

    def _threshold_shifts(self, feature_map: FeatureMap, marginal: MixtureMarginal,
                          observed: torch.Tensor) -> torch.Tensor:
        """Each batch's first-order share of the thresholds' error: ``(delta lo, delta hi)``, ``(2, D, B)``.

        The thresholds are functions of the marginal, estimated from the same samples. For the median-CDF
        quantile map the threshold on the observed value's side is exact; the mirrored one solves
        ``F(lo) = S(x)`` (or ``S(hi) = F(x)``), so that ``delta lo = (d log S(x) - d log F(lo)) / (log F)'(lo)``
        with ``d log`` the batch's relative deviation; for the z-score the mirrored threshold is ``2 mean - x``
        and moves by twice the batch's deviation of the (self-normalised) mean. Any other feature map: the
        thresholds of each batch's own marginal minus the pooled ones. The spread over batches divided by
        ``sqrt(B)`` is the thresholds' standard error, correlated with the coalitions' sampling error as the
        samples are.
        """
        loc, log_weight, node, noise = marginal.loc, marginal.log_weight, self.target, self.target_noise
        zero = torch.zeros(2, *loc.shape[:1], self.num_batches, dtype=loc.dtype, device=loc.device)

        def log_terms(value: torch.Tensor, upper: bool) -> torch.Tensor:  # (D, S) at value (D, 1)
            if upper:
                bound = per_noise_unit(node.noise_at_least(loc, value.expand_as(loc)), marginal.multiplier)
                return per_draw(noise.log_sf, bound) + log_weight
            bound = per_noise_unit(node.noise_at_most(loc, value.expand_as(loc)), marginal.multiplier)
            return per_draw(noise.log_cdf, bound) + log_weight

        def slope(value: torch.Tensor, upper: bool) -> torch.Tensor:  # |d log tail / dy| at value, (D, 1)
            step = 1e-4 * marginal.std.unsqueeze(-1)
            tail = marginal.log_sf if upper else marginal.log_cdf
            return ((tail(value + step) - tail(value - step)) / (2.0 * step)).abs()

        def safe(shift: torch.Tensor, rate: torch.Tensor) -> torch.Tensor:
            ok = torch.isfinite(rate) & (rate > 0)
            shift = shift / torch.where(ok, rate, torch.ones_like(rate))
            return torch.where(ok & torch.isfinite(shift), shift, torch.zeros_like(shift))

        if isinstance(feature_map, MedianCDFQuantile):
            lower = marginal.log_cdf(observed) <= marginal.log_sf(observed)  # (D, 1): x in the lower tail
            # upper-tail x: lo mirrored with F(lo) = S(x); lower-tail x: hi mirrored with S(hi) = F(x)
            lo_shift = safe(self._batch_ratios(log_terms(observed, True))
                            - self._batch_ratios(log_terms(self.lo, False)), slope(self.lo, False))
            hi_shift = -safe(self._batch_ratios(log_terms(observed, False))
                             - self._batch_ratios(log_terms(self.hi, True)), slope(self.hi, True))
            return torch.stack([torch.where(lower, 0.0, lo_shift), torch.where(lower, hi_shift, 0.0)])
        if isinstance(feature_map, ZScore):
            weights = torch.softmax(log_weight, -1)
            centred = (weights * (loc - marginal.mean.unsqueeze(-1))).unflatten(-1, (self.num_batches, -1))
            shift = 2.0 * self.num_batches * centred.sum(-1)  # (D, B): the mirrored threshold is 2 mean - x
            above = observed >= marginal.mean.unsqueeze(-1)
            return torch.stack([torch.where(above, shift, 0.0), torch.where(above, 0.0, shift)])
        shifts = []
        multipliers = ([None] * self.num_batches if marginal.multiplier is None
                       else marginal.multiplier.chunk(self.num_batches, -1))
        for part in zip(loc.chunk(self.num_batches, -1), log_weight.chunk(self.num_batches, -1), multipliers):
            lo, hi = feature_map.thresholds(MixtureMarginal(part[0], node, part[1], part[2]), observed)
            shifts.append(torch.stack([lo - self.lo, hi - self.hi])[..., 0])
        shifts = torch.stack(shifts, -1)
        return torch.where(torch.isfinite(shifts), shifts, zero)

    def _threshold_terms(self, location: torch.Tensor, multiplier: torch.Tensor | None, target_value: torch.Tensor,
                         z_lo: torch.Tensor, z_hi: torch.Tensor, redrawn: torch.Tensor, log_weight: torch.Tensor,
                         log_sum: torch.Tensor, hit: torch.Tensor) -> torch.Tensor | None:
        """Per batch, the change of ``log p_hat (D, C)`` when a threshold moves by that batch's shift:
        ``slope * delta_b``, ``(D, C, B)`` (None where both thresholds are exact).

        The slope is the secant of the estimate itself over the threshold's standard error either side (the same
        samples, the threshold moved by ``-+ se``): no density is needed (a kept target noise gives a step
        function), and it follows the estimate's curvature over the range where the threshold is uncertain.
        """
        total = None
        for side, shift in enumerate(self.threshold_shifts):
            if not bool((shift != 0).any()):
                continue
            error = (shift.square().mean(-1) / self.num_batches).sqrt()[:, None, None]  # (D, 1, 1)
            moved = []
            for step in (-1.0, 1.0):
                lo, hi = self.lo[:, :, None], self.hi[:, :, None]
                if side == 0:
                    lo = lo + step * error
                    low, high = per_noise_unit(self.target.noise_at_most(location, lo.expand_as(location)),
                                               multiplier), z_hi
                else:
                    hi = hi + step * error
                    low, high = z_lo, per_noise_unit(self.target.noise_at_least(location, hi.expand_as(location)),
                                                     multiplier)
                integrated = self._target_log_outside(low, high)
                inside = (target_value > lo) & (target_value < hi)
                indicator = torch.zeros_like(location).masked_fill(inside, -math.inf)
                log_terms = torch.where(redrawn, integrated, indicator) + log_weight
                moved.append(torch.logsumexp(log_terms, -1))
            width = 2.0 * error[:, :, 0]  # (D, 1)
            low_part, high_part = moved  # where the lower step has no support left: the one-sided secant
            slope = torch.where(torch.isfinite(low_part), (high_part - low_part) / width,
                                (high_part - log_sum) / (0.5 * width))
            slope = torch.where(hit & torch.isfinite(slope), slope, torch.zeros_like(slope))
            term = slope.unsqueeze(-1) * shift[:, None, :]
            total = term if total is None else total + term
        return total
