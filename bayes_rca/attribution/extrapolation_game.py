"""The counterfactual game of players that extrapolate beyond their parents' training range.

Players are linear-Gaussian within the range their parents spanned in the training rows and, beyond it, pass a
parent's excess on with a slope of known mean and a noise scale that grows with the excess
(:class:`~bayes_rca.model.mechanisms.extrapolating.ExtrapolatingGaussian`). The system is piecewise linear in
the noise: within each *regime* (which parents are beyond their range) it is linear-Gaussian. The game
evaluates each coalition in the regime of its counterfactual centre, the values every node takes when the
redrawn noise sits at its mean (zero) and the kept noise at its abducted value. In that regime the target is
Gaussian (Student-t in the robust game) with

- mean: the target's value at the centre (exact, the piecewise-linear system evaluated there);
- variance: ``sum_{j in S} (a_j s_j m_j sigma_j)^2``, ``a_j`` the regime's total effect of ``X_j`` on the target,
  ``s_j m_j sigma_j`` noise ``j``'s scale in data units at the centre (``m_j`` its noise multiplier).

Where no parent leaves its range in any coalition this is :class:`~bayes_rca.attribution.linear_game.LinearGaussianGame`
exactly. Otherwise it is an approximation: a redrawn noise that moves a parent across its range boundary changes
the regime, which the game ignores; that happens with the probability that the redrawn values cross the
boundary, small when the parent's centre is far from it (a callee 30 sds out, or back at its normal level). The
tests compare it with brute-force Monte Carlo of the exact piecewise-linear system.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch

from bayes_rca.attribution.abduction import Players
from bayes_rca.attribution.linear_game import LinearGaussianGame, _full_and_empty
from bayes_rca.attribution.scores import FeatureMap
from bayes_rca.model.node import FittedNode


def extrapolates(nodes: Iterable[FittedNode]) -> bool:
    """Whether any node's mechanism changes beyond its parents' training range."""
    return any(node.mechanism.extrapolates for node in nodes)


class ExtrapolationGame(LinearGaussianGame):
    """Counterfactual game of piecewise-linear players, each coalition evaluated in the regime of its centre.

    The IT score, the thresholds and the full coalition are those of the normal-range linear system (whose
    marginal means lie inside the training ranges); the other coalitions are described in the module docs.
    """

    def __init__(self, players: Players, feature_map: FeatureMap, tail_df: float | None = None) -> None:
        super().__init__(players, feature_map, tail_df)
        dtype, device = players.noise.dtype, players.noise.device
        self.parents = players.parent_index
        self.noise = players.noise  # (D, R, K) standardised
        self.terms = []
        for node, parents in zip(players.nodes, self.parents):
            bias, weight = node.linear_coefficients()
            sigma = torch.sqrt(node.params["noise_var"]).to(dtype)
            far_mean = None
            if node.mechanism.extrapolates and parents:
                far_mean = node.mechanism.far_slopes(dtype)[0]  # data units
                far_mean = weight if far_mean is None else far_mean.to(device=device, dtype=dtype).expand_as(weight)
            self.terms.append((node, bias, weight, sigma, far_mean))

    def _centre(self, redrawn: torch.Tensor) -> tuple[list[torch.Tensor], list[torch.Tensor], list[torch.Tensor]]:
        """Per node: value, noise scale (data units) and slopes on its parents at each coalition's centre,
        ``(D, R, C)``, ``(D, R, C)`` and ``(D, R, C, p)``."""
        values, noise_scales, slopes = [], [], []
        for k, (parents, (node, bias, weight, sigma, far_mean)) in enumerate(zip(self.parents, self.terms)):
            scale = node.standardizer.scale
            location = bias[:, None, None]
            noise_scale = (scale * sigma)[:, None, None]
            slope = weight[:, None, None, :]
            if parents:
                pa = torch.stack([values[p] for p in parents], -1)  # (D, R, C, p)
                if far_mean is None:
                    location = location + torch.einsum("drcp,dp->drc", pa, weight)
                else:  # the mechanism's own piecewise form, in standardised units
                    standard = node.standardizer.parents(pa.flatten(1, 2))
                    at, multiplier, beyond = node.mechanism.regime(standard, node.params)
                    location = (at * scale + node.standardizer.loc).view(pa.shape[:-1])
                    noise_scale = noise_scale * multiplier.view(pa.shape[:-1])
                    slope = torch.where(beyond.view(pa.shape), far_mean[:, None, None, :], slope)
            kept = (~redrawn[:, k]).to(self.noise.dtype)  # (C,): the abducted noise where not redrawn
            values.append(location + noise_scale / sigma[:, None, None] * self.noise[..., k:k + 1] * kept)
            noise_scales.append(noise_scale.expand_as(values[-1]))
            slopes.append(slope)
        return values, noise_scales, slopes

    def _effects(self, values: list[torch.Tensor], slopes: list[torch.Tensor]) -> list[torch.Tensor]:
        """Each node's total effect on the target in the regime of each coalition's centre, ``(D, R, C)``."""
        effect = [torch.zeros_like(values[-1]) for _ in values]
        effect[-1] = torch.ones_like(values[-1])
        for k in range(len(values) - 1, -1, -1):
            for i, p in enumerate(self.parents[k]):
                effect[p] = effect[p] + effect[k] * slopes[k][..., i]
        return effect

    def pushes(self) -> torch.Tensor:
        """Each abducted noise's push on the target ``(D, R, K)`` (data units) in the regime of the observed rows:
        its total effect there times its value; the mean-deviation shares of
        :func:`~bayes_rca.attribution.mean_deviation.mean_deviation_shares`."""
        nothing = torch.zeros(1, len(self.parents), dtype=torch.bool, device=self.noise.device)
        values, noise_scales, slopes = self._centre(nothing)
        effect = self._effects(values, slopes)
        sigma = [term[3][:, None, None] for term in self.terms]  # noise sd per node, standardised
        return torch.stack([(effect[k] * noise_scales[k] / sigma[k])[..., 0] for k in range(len(values))],
                           -1) * self.noise

    def __call__(self, masks: torch.Tensor) -> tuple[torch.Tensor, None]:
        """``g(S)`` for boolean ``masks (C, K)`` (``True``: redrawn): ``(D, R, C)``, exact within each regime."""
        values, noise_scales, slopes = self._centre(masks)
        effect = self._effects(values, slopes)
        weights = masks.to(values[-1].dtype)
        variance = sum((effect[k] * noise_scales[k]).square() * weights[:, k] for k in range(len(values)))
        value = self._log_tail(values[-1], torch.sqrt(variance), self.lo.unsqueeze(-1), self.hi.unsqueeze(-1)).neg_()
        full, _ = _full_and_empty(masks)
        value[..., full] = self.score.unsqueeze(-1)
        return value, None
