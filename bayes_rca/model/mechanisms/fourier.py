"""A nonlinear mechanism: Bayesian random Fourier feature regression with a shrinkage prior."""

from __future__ import annotations

import copy
import math
from typing import ClassVar

import pyro
import pyro.distributions as dist
import torch

from bayes_rca.model.mechanisms.base import Mechanism, Params, training_range
from bayes_rca.model.mechanisms.linear import _linear_location
from bayes_rca.model.noise import GaussianNoise


class FourierGaussian(Mechanism):
    """``X = b + w . PA + sum_k c_k phi_k(PA) + N``, ``N ~ Normal(0, s^2)``.

    ``phi_k(x) = sqrt(2 / K) cos(omega_k . x + u_k)`` are random Fourier features of an RBF kernel with the
    given lengthscale (on standardised parents), fixed at :meth:`setup`. The feature coefficients have a
    global shrinkage scale, ``c_k = tau * z_k``, ``z_k ~ Normal(0, 1)``, ``tau ~ HalfNormal(1)`` (non-centred),
    so that a node that is close to linear shrinks towards the linear model. Given ``tau`` and the noise scale the
    model is linear-Gaussian in ``(b, w, z)``, so its posterior is drawn exactly on a grid of the two scales
    (:mod:`bayes_rca.inference.shrinkage_grid`, ``inference="auto"``) rather than by SVI.
    """

    name: ClassVar[str] = "fourier_gaussian"
    accepts_roots: ClassVar[bool] = False
    shrinkage_grid: ClassVar[bool] = True

    def __init__(self, num_features: int = 48, lengthscale: float = 0.6) -> None:
        self.num_features, self.lengthscale = num_features, lengthscale
        self.frequencies: torch.Tensor | None = None
        self.phases: torch.Tensor | None = None

    def setup(self, num_parents: int, seed: int) -> None:
        generator = torch.Generator().manual_seed(seed)
        shape = (num_parents, self.num_features)
        self.frequencies = torch.randn(shape, generator=generator, dtype=torch.float64) / self.lengthscale
        self.phases = 2 * math.pi * torch.rand(self.num_features, generator=generator, dtype=torch.float64)

    def _cosines(self, parents: torch.Tensor) -> torch.Tensor:
        """``cos(omega_k . x + u_k)`` ``(..., K)`` of standardised parents ``(..., p)``; in place where no gradient
        flows (the counterfactual game's large batches: one buffer instead of three)."""
        if self.frequencies is None:
            raise RuntimeError("FourierGaussian.setup() must run before the mechanism is used")
        freq = self.frequencies.to(parents.device, parents.dtype)
        phases = self.phases.to(parents.device, parents.dtype)
        angle = parents @ freq
        if angle.requires_grad:
            return torch.cos(angle + phases)
        return angle.add_(phases).cos_()

    def features(self, parents: torch.Tensor) -> torch.Tensor:
        """Random Fourier features ``(..., K)`` of standardised parents ``(..., p)``."""
        return math.sqrt(2.0 / self.num_features) * self._cosines(parents)

    def shrinkage_design(self, parents: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The regression's columns ``[1, PA, phi(PA)] (n, 1 + p + K)`` and which of them ``tau`` multiplies."""
        ones = torch.ones(*parents.shape[:-1], 1, dtype=parents.dtype, device=parents.device)
        design = torch.cat([ones, parents, self.features(parents)], -1)
        shrunk = torch.zeros(design.shape[-1], dtype=torch.bool, device=parents.device)
        shrunk[1 + parents.shape[-1]:] = True
        return design, shrunk

    def shrinkage_params(self, draws: Params, num_parents: int) -> Params:
        """This family's parameters from the grid sampler's draws (coefficients in the order of the design)."""
        coefficients = draws["coefficients"]
        return {"bias": coefficients[:, 0], "weight": coefficients[:, 1:1 + num_parents],
                "shrinkage": draws["shrinkage"], "coef_raw": coefficients[:, 1 + num_parents:],
                "noise_scale": draws["noise_scale"]}

    def prior(self, num_parents: int, dtype: torch.dtype) -> Params:
        one = torch.ones((), dtype=dtype)
        return {
            "bias": pyro.sample("bias", dist.Normal(0 * one, one)),
            "weight": pyro.sample("weight", dist.Normal(0 * one, one).expand([num_parents]).to_event(1)),
            "shrinkage": pyro.sample("shrinkage", dist.HalfNormal(one)),
            "coef_raw": pyro.sample("coef_raw", dist.Normal(0 * one, one).expand([self.num_features]).to_event(1)),
            "noise_scale": pyro.sample("noise_scale", dist.HalfNormal(one)),
        }

    def location(self, parents: torch.Tensor, params: Params) -> torch.Tensor:
        coef = math.sqrt(2.0 / self.num_features) * params["shrinkage"].unsqueeze(-1) * params["coef_raw"]  # (D, K)
        return _linear_location(parents, params) + (self._cosines(parents) @ coef.unsqueeze(-1)).squeeze(-1)

    def noise(self, params: Params) -> GaussianNoise:
        return GaussianNoise(params["noise_scale"].unsqueeze(-1))

    def num_parameters(self, num_parents: int) -> int:
        return 3 + num_parents + self.num_features

    def __repr__(self) -> str:
        return f"FourierGaussian(num_features={self.num_features}, lengthscale={self.lengthscale})"


class ExtrapolatingFourier(FourierGaussian):
    """:class:`FourierGaussian` within the parents' training range; beyond it, the linear trend with a slope of
    unknown deviation, so that the noise widens with the distance from the data.

    A parent's excess beyond its training range ``[low_i, high_i]`` is ``e_i = pa_i - clip(pa_i, low_i, high_i)``
    (standardised). There the data say nothing about the shape: the Fourier part stays at its value on the
    boundary (random features are periodic, and would otherwise repeat the training range's wiggles), the
    linear part continues, and the slope beyond the data differs from it by ``~ Normal(0, far_sd^2)``
    (standardised units: one sd of the child per sd of the parent), drawn afresh per row and integrated out:

    ``X = b + w . PA + sum_k c_k phi_k(clip(PA)) + sqrt(s^2 + far_sd^2 sum_i e_i^2) * N / s``,

    ``N ~ Normal(0, s^2)``, a location-scale noise model as for
    :class:`~bayes_rca.model.mechanisms.ExtrapolatingGaussian`. Every training row lies in the range, so the fit
    is :class:`FourierGaussian`'s (the shrinkage grid). A node whose parent went far beyond the data, and which
    followed it further than the fitted trend says, keeps a moderate noise instead of taking the blame for the
    regression's extrapolation (the critique of Okati et al., 2025). The counterfactual game is the general
    Monte Carlo one.

    Examples
    --------
    >>> import torch
    >>> m = ExtrapolatingFourier(num_features=4)
    >>> m.setup(1, seed=0)
    >>> m = m.bind_parent_range(torch.tensor([-2.0]), torch.tensor([2.0]))
    >>> params = {"bias": torch.zeros(1), "weight": torch.ones(1, 1), "shrinkage": torch.zeros(1),
    ...           "coef_raw": torch.zeros(1, 4), "noise_scale": torch.full((1,), 0.5)}
    >>> parents = torch.tensor([[[1.0], [5.0]]])  # inside the range, and 3 beyond it
    >>> m.location(parents, params)  # the linear part continues
    tensor([[1., 5.]])
    >>> m.noise_multiplier(parents, params)  # sqrt(0.5^2 + 1^2 * 3^2) / 0.5
    tensor([[1.0000, 6.0828]])
    """

    name: ClassVar[str] = "extrapolating_fourier"
    extrapolates: ClassVar[bool] = True

    def __init__(self, num_features: int = 48, lengthscale: float = 0.6, far_sd: float = 1.0) -> None:
        super().__init__(num_features, lengthscale)
        self.far_sd = far_sd
        self._low: torch.Tensor | None = None
        self._high: torch.Tensor | None = None

    def bind_parent_range(self, low: torch.Tensor, high: torch.Tensor) -> ExtrapolatingFourier:
        """A copy that knows the parents' training range (standardised); a parent that never moved has none."""
        bound = copy.copy(self)
        bound._low, bound._high = training_range(low, high)
        return bound

    def _excess(self, parents: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The parents clipped to the training range and their excess beyond it (standardised)."""
        if self._low is None or len(self._low) != parents.shape[-1]:
            raise RuntimeError("ExtrapolatingFourier.bind_parent_range() must run before use")
        clipped = torch.minimum(torch.maximum(parents, self._low.to(parents)), self._high.to(parents))
        return clipped, parents - clipped

    def location(self, parents: torch.Tensor, params: Params) -> torch.Tensor:
        clipped, _ = self._excess(parents)
        coef = math.sqrt(2.0 / self.num_features) * params["shrinkage"].unsqueeze(-1) * params["coef_raw"]
        return _linear_location(parents, params) + (self._cosines(clipped) @ coef.unsqueeze(-1)).squeeze(-1)

    def noise_multiplier(self, parents: torch.Tensor, params: Params) -> torch.Tensor | None:
        _, excess = self._excess(parents)
        spread = self.far_sd**2 * excess.square().sum(-1)
        return torch.sqrt(1.0 + spread / params["noise_scale"].square().unsqueeze(-1))

    def __repr__(self) -> str:
        return (f"ExtrapolatingFourier(num_features={self.num_features}, lengthscale={self.lengthscale}, "
                f"far_sd={self.far_sd})")
