"""A fitted node: mechanism, standardisation and posterior draws, evaluated in the data's own units.

Values are in the data's units; noise is in the node's standardised units, so that
``X = location(PA) + scale * N`` with ``N`` drawn from :meth:`FittedNode.noise` for additive mechanisms, and
``X = loc + scale * h((location(PA) - loc) / scale, N)`` for a mechanism with another output map ``h``.
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass, replace

import torch

from bayes_rca.inference import PosteriorFit
from bayes_rca.model.mechanisms import Mechanism, Params
from bayes_rca.model.noise import NoiseFamily, sample_truncated


@dataclass(frozen=True)
class Standardizer:
    """Centring and scaling of a node and its parents, fitted on training data.

    A column that is constant in training data keeps scale 1 (its own units), so that the noise-scale prior
    still gives it a finite, small noise. Values of 0/1 or count nodes are left as they are (``loc 0, scale 1``).
    """

    parent_loc: torch.Tensor
    parent_scale: torch.Tensor
    loc: float
    scale: float

    @staticmethod
    def fit(parents: torch.Tensor, value: torch.Tensor, standardise_value: bool = True) -> Standardizer:
        def safe(std: torch.Tensor) -> torch.Tensor:
            return torch.where(std > 0, std, torch.ones_like(std))

        parent_scale = safe(parents.std(0)) if parents.shape[1] else parents.new_ones(0)
        if not standardise_value:
            return Standardizer(parents.mean(0), parent_scale, 0.0, 1.0)
        return Standardizer(parents.mean(0), parent_scale, float(value.mean()), float(safe(value.std())))

    def parents(self, parents: torch.Tensor) -> torch.Tensor:
        return (parents - self.parent_loc.to(parents)).div_(self.parent_scale.to(parents))

    def value(self, value: torch.Tensor) -> torch.Tensor:
        return (value - self.loc) / self.scale

    def to(self, device: torch.device | str) -> Standardizer:
        return replace(self, parent_loc=self.parent_loc.to(device), parent_scale=self.parent_scale.to(device))


@dataclass(frozen=True)
class FittedNode:
    """One node of a fitted :class:`~bayes_rca.model.scm.BayesianSCM`.

    Attributes
    ----------
    name : hashable
        The node.
    parents : tuple
        Its parents, in the column order the mechanism expects.
    mechanism : Mechanism
        The mechanism family (with any fixed structure such as random features).
    standardizer : Standardizer
        The centring and scaling used to fit the mechanism.
    posterior : PosteriorFit
        Posterior draws of the parameters, leading dimension ``D`` (chains * draws).
    """

    name: Hashable
    parents: tuple[Hashable, ...]
    mechanism: Mechanism
    standardizer: Standardizer
    posterior: PosteriorFit

    @property
    def params(self) -> Params:
        return self.posterior.params

    @property
    def num_draws(self) -> int:
        return next(iter(self.params.values())).shape[0]

    def location(self, parents: torch.Tensor) -> torch.Tensor:
        """The structural location ``(D, B)`` in data units for parent values ``(D, B, p)`` in data units."""
        standard = self.mechanism.location(self.standardizer.parents(parents), self.params)
        return standard.mul(self.standardizer.scale).add_(self.standardizer.loc)

    def noise_multiplier(self, parents: torch.Tensor) -> torch.Tensor | None:
        """Factor ``(D, B)`` of the noise's scale at parent values ``(D, B, p)`` (data units), ``None`` for 1:
        ``X = location + scale * multiplier * N`` (:meth:`~bayes_rca.model.mechanisms.Mechanism.noise_multiplier`;
        only mechanisms that extrapolate have one, and only with parents)."""
        if not self.mechanism.extrapolates or parents.shape[-1] == 0:
            return None
        return self.mechanism.noise_multiplier(self.standardizer.parents(parents), self.params)

    def noise(self) -> NoiseFamily:
        """The noise distribution in standardised units, parameters of shape ``(D, 1)``."""
        return self.mechanism.noise(self.params)

    def value_at(self, location: torch.Tensor, noise: torch.Tensor,
                 multiplier: torch.Tensor | None = None) -> torch.Tensor:
        """The node's value (data units) for its structural ``location`` (data units) and ``noise``, the noise
        widened by ``multiplier`` where its scale depends on the parents (:meth:`noise_multiplier`)."""
        std = self.standardizer
        if multiplier is not None:
            noise = noise * multiplier
        if self.mechanism.invertible:
            return torch.add(location, noise, alpha=std.scale)
        return std.loc + std.scale * self.mechanism.output((location - std.loc) / std.scale, noise)

    def noise_at_most(self, location: torch.Tensor, value: torch.Tensor) -> torch.Tensor:
        """The noise bound ``b`` with ``X <= value`` exactly when ``N <= b`` (data-unit location and value)."""
        std = self.standardizer
        if self.mechanism.invertible:  # additive: the standardised residual
            return (value - location) / std.scale
        return self.mechanism.noise_at_most((location - std.loc) / std.scale, (value - std.loc) / std.scale)

    def noise_at_least(self, location: torch.Tensor, value: torch.Tensor) -> torch.Tensor:
        """The noise bound ``b`` with ``X >= value`` exactly when ``N >= b`` (data-unit location and value)."""
        std = self.standardizer
        if self.mechanism.invertible:
            return (value - location) / std.scale
        return self.mechanism.noise_at_least((location - std.loc) / std.scale, (value - std.loc) / std.scale)

    def abduct(self, value: torch.Tensor, parents: torch.Tensor,
               generator: torch.Generator | None = None) -> torch.Tensor:
        """Posterior noise ``(D, R)`` (standardised units) of observed rows ``value (R,)`` with ``parents (R, p)``,
        or of rows that differ per draw, ``value (D, R)`` with ``parents (D, R, p)``.

        For an additive mechanism the noise of each posterior draw is the residual. For a mechanism that is not
        invertible it is one exact draw (from ``generator``) of the noise given the value, parents and parameters:
        the noise distribution restricted to the interval the value allows.
        """
        per_draw = parents.dim() == 3
        batch = parents if per_draw else parents.unsqueeze(0).expand(self.num_draws, *parents.shape)
        location = self.location(batch)
        observed = (value if per_draw else value.unsqueeze(0)).expand_as(location)
        if self.mechanism.invertible:
            residual = (observed - location) / self.standardizer.scale
            multiplier = self.noise_multiplier(batch)
            return residual if multiplier is None else residual / multiplier
        if generator is None:
            raise ValueError(f"node {self.name!r} has a {self.mechanism.name} mechanism: abducting its noise "
                             "samples it, so a generator is needed")
        low, high = self.noise_at_least(location, observed), self.noise_at_most(location, observed)
        return sample_truncated(self.noise(), low, high, generator)

    def log_density(self, location: torch.Tensor, value: torch.Tensor,
                    multiplier: torch.Tensor | None = None) -> torch.Tensor:
        """Log-likelihood of ``value`` given the structural ``location`` (data units), up to the constant
        ``-log scale`` of the standardisation; shapes ``(D, B)``. With a noise ``multiplier`` (an extrapolating,
        additive mechanism): the widened noise's density of the standardised residual."""
        std = self.standardizer
        if multiplier is not None:
            residual = (value - location) / std.scale / multiplier
            return self.noise().log_prob(residual) - torch.log(multiplier)
        observation = self.mechanism.observation((location - std.loc) / std.scale, self.params)
        return observation.log_prob(((value - std.loc) / std.scale).expand_as(location))

    def linear_coefficients(self) -> tuple[torch.Tensor, torch.Tensor]:
        """For a mechanism linear in its parents: intercept ``(D,)`` and weights ``(D, p)`` in data units."""
        if not self.mechanism.linear_in_parents:
            raise TypeError(f"node {self.name!r} has a {self.mechanism.name} mechanism, which is not linear in its "
                            "parents")
        std = self.standardizer
        weight_std = self.params.get("weight", torch.zeros(self.num_draws, 0, dtype=self.params["bias"].dtype))
        weight = std.scale * weight_std / std.parent_scale.to(weight_std)
        bias = std.loc + std.scale * self.params["bias"] - weight @ std.parent_loc.to(weight_std)
        return bias, weight

    def linear_gaussian(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """For a linear-Gaussian node: intercept ``(D,)`` and weights ``(D, p)`` in data units, and noise sd ``(D,)``
        in the node's standardised units (times ``standardizer.scale`` for data units)."""
        if not self.mechanism.linear_gaussian:
            raise TypeError(f"node {self.name!r} has a {self.mechanism.name} mechanism, not a linear-Gaussian one")
        return (*self.linear_coefficients(), torch.sqrt(self.params["noise_var"]))

    def to(self, device: torch.device | str) -> FittedNode:
        """A copy with posterior draws and standardisation on ``device``."""
        posterior = replace(self.posterior, params={k: v.to(device) for k, v in self.params.items()})
        return replace(self, standardizer=self.standardizer.to(device), posterior=posterior)
