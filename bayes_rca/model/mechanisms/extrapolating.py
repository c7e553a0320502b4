"""A linear-Gaussian mechanism that knows where its data end: pass-through beyond the parents' training range."""

from __future__ import annotations

import copy
from typing import ClassVar

import torch

from bayes_rca.model.mechanisms.base import Params, training_range
from bayes_rca.model.mechanisms.linear import PassThroughGaussian


class ExtrapolatingGaussian(PassThroughGaussian):
    """Linear-Gaussian within the parents' training range, pass-through with a widening noise beyond it.

    Within the range ``[low_i, high_i]`` every parent spanned in the training rows this is
    :class:`~bayes_rca.model.mechanisms.PassThroughGaussian` (the same exact conjugate posterior: every training
    row lies in the range). Beyond it the data say nothing about the slope, so the slope there is its prior: a
    callee's extra deviation ``e_i = pa_i - clip(pa_i, low_i, high_i)`` passes on with a slope ``~ Normal(
    far_mean, far_sd^2)`` (data units), drawn afresh per row and integrated out. The result is a location-scale
    noise model (Immer et al., 2023),

    ``X = b + w . clip(PA) + far_mean * sum_i e_i + sqrt(sigma^2 + far_sd^2 sum_i e_i^2) * N / sigma``,

    ``N ~ Normal(0, sigma^2)``: the posterior predictive of a slope with no data, whose spread grows with the
    distance from the data. A caller whose callee jumped 30 normal sds then keeps a normal noise when it
    followed the callee by about one for one, where a slope fitted to a few milliseconds of normal variation
    would give it the blame. The noise is still a function of the value and the parents (abduction exact); the
    game is :class:`~bayes_rca.attribution.extrapolation_game.ExtrapolationGame`.

    Examples
    --------
    >>> import torch
    >>> m = ExtrapolatingGaussian().bind_parents(torch.ones(1), 1.0)
    >>> m = m.bind_parent_range(torch.tensor([-2.0]), torch.tensor([2.0]))
    >>> params = {"bias": torch.zeros(1), "weight": torch.full((1, 1), 0.1), "noise_var": torch.ones(1)}
    >>> parents = torch.tensor([[[1.0], [12.0]]])  # inside the range, and 10 beyond it
    >>> m.location(parents, params)  # 0.1 * 1; then 0.1 * 2 + 1.0 * 10
    tensor([[ 0.1000, 10.2000]])
    >>> m.noise_multiplier(parents, params)  # sqrt(1 + 0.5^2 * 10^2)
    tensor([[1.0000, 5.0990]])
    """

    name: ClassVar[str] = "extrapolating_gaussian"
    extrapolates: ClassVar[bool] = True

    def __init__(self, weight_mean: float = 1.0, weight_sd: float = 0.5, far_mean: float | None = 1.0,
                 far_sd: float = 0.5, a0: float = 1.0, b0: float = 1e-6, bias_var: float = 10.0) -> None:
        super().__init__(weight_mean=weight_mean, weight_sd=weight_sd, a0=a0, b0=b0, bias_var=bias_var)
        self.far_mean, self.far_sd = far_mean, far_sd
        self._low: torch.Tensor | None = None
        self._high: torch.Tensor | None = None

    def bind_parent_range(self, low: torch.Tensor, high: torch.Tensor) -> ExtrapolatingGaussian:
        """A parent that never moved in the training rows has no range: its weight is drawn from the pass-through
        prior already (:class:`~bayes_rca.model.scm.BayesianSCM`'s ``unseen_weight_prior``), which is what the
        far slope would add again; it does not extrapolate."""
        bound = copy.copy(self)
        bound._low, bound._high = training_range(low, high)
        return bound

    def parent_range(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Where each parent extrapolates: below ``low`` and above ``high`` ``(p,)``, standardised units."""
        if self._low is None:
            raise RuntimeError("ExtrapolatingGaussian.bind_parent_range() must run before use")
        return self._low, self._high

    def _excess(self, parents: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The parents clipped to the training range and their excess beyond it (standardised)."""
        if self._low is None or self._ratio is None or len(self._low) != parents.shape[-1]:
            raise RuntimeError("ExtrapolatingGaussian.bind_parents() and bind_parent_range() must run before use")
        low, high = self._low.to(parents), self._high.to(parents)
        clipped = torch.minimum(torch.maximum(parents, low), high)
        return clipped, parents - clipped

    def far_slopes(self, dtype: torch.dtype = torch.float64) -> tuple[torch.Tensor | None, torch.Tensor]:
        """Mean (``None``: the in-range weight continued) and sd ``(p,)`` of each parent's slope beyond the range,
        in data units."""
        ratio = self._ratio.to(dtype)
        mean = None if self.far_mean is None else torch.full_like(ratio, self.far_mean)
        return mean, torch.full_like(ratio, self.far_sd)

    def regime(self, parents: torch.Tensor, params: Params) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The location ``(D, B)``, the noise multiplier ``(D, B)`` and which parents are beyond their range
        ``(D, B, p)``, at parents ``(D, B, p)`` (standardised): the one place the piecewise form is written."""
        clipped, excess = self._excess(parents)
        if self.far_mean is None:
            location = super().location(parents, params)
        else:  # the in-range line up to the boundary, the far slope (standardised) beyond it
            location = super().location(clipped, params) + excess @ (self.far_mean * self._ratio.to(parents))
        spread = (excess * (self.far_sd * self._ratio.to(parents))).square().sum(-1)
        multiplier = torch.sqrt(1.0 + spread / params["noise_var"].unsqueeze(-1))
        return location, multiplier, excess != 0

    def location(self, parents: torch.Tensor, params: Params) -> torch.Tensor:
        if parents.shape[-1] == 0:
            return super().location(parents, params)
        return self.regime(parents, params)[0]

    def noise_multiplier(self, parents: torch.Tensor, params: Params) -> torch.Tensor | None:
        if parents.shape[-1] == 0:
            return None
        return self.regime(parents, params)[1]

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(weight_mean={self.weight_mean}, weight_sd={self.weight_sd}, "
                f"far_mean={self.far_mean}, far_sd={self.far_sd})")
