"""A fitted node: mechanism, standardisation and posterior draws, evaluated in the data's own units.

Values are in the data's units; noise is in the node's standardised units, so that
``X = location(PA) + scale * N`` with ``N`` drawn from :meth:`FittedNode.noise`.
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass, replace

import torch

from bayes_rca.inference import PosteriorFit
from bayes_rca.mechanisms import Mechanism, Params
from bayes_rca.noise import NoiseFamily


@dataclass(frozen=True)
class Standardizer:
    """Centring and scaling of a node and its parents, fitted on training data.

    A column that is constant in training data keeps scale 1 (its own units), so that the noise-scale prior
    still gives it a finite, small noise.
    """

    parent_loc: torch.Tensor
    parent_scale: torch.Tensor
    loc: float
    scale: float

    @staticmethod
    def fit(parents: torch.Tensor, value: torch.Tensor) -> Standardizer:
        def safe(std: torch.Tensor) -> torch.Tensor:
            return torch.where(std > 0, std, torch.ones_like(std))

        parent_scale = safe(parents.std(0)) if parents.shape[1] else parents.new_ones(0)
        return Standardizer(parents.mean(0), parent_scale, float(value.mean()), float(safe(value.std())))

    def parents(self, parents: torch.Tensor) -> torch.Tensor:
        return (parents - self.parent_loc.to(parents)) / self.parent_scale.to(parents)

    def value(self, value: torch.Tensor) -> torch.Tensor:
        return (value - self.loc) / self.scale

    def to(self, device: torch.device | str) -> Standardizer:
        return replace(self, parent_loc=self.parent_loc.to(device), parent_scale=self.parent_scale.to(device))


@dataclass(frozen=True)
class FittedNode:
    """One node of a fitted :class:`~bayes_rca.scm.BayesianSCM`.

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
        return self.standardizer.loc + self.standardizer.scale * standard

    def noise(self) -> NoiseFamily:
        """The noise distribution in standardised units, parameters of shape ``(D, 1)``."""
        return self.mechanism.noise(self.params)

    def abduct(self, value: torch.Tensor, parents: torch.Tensor) -> torch.Tensor:
        """Posterior noise ``(D, R)`` (standardised units) of observed rows ``value (R,)`` with ``parents (R, p)``.

        For an additive mechanism the noise of each posterior draw is the residual; a non-invertible mechanism
        would return samples with an extra trailing dimension instead.
        """
        batch = parents.unsqueeze(0).expand(self.num_draws, *parents.shape)
        return (value.unsqueeze(0) - self.location(batch)) / self.standardizer.scale

    def linear_gaussian(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """For a linear-Gaussian node: intercept ``(D,)``, weights ``(D, p)`` in data units and noise sd ``(D,)``."""
        if not self.mechanism.linear_gaussian:
            raise TypeError(f"node {self.name!r} has a {self.mechanism.name} mechanism, not a linear-Gaussian one")
        std = self.standardizer
        weight_std = self.params.get("weight", torch.zeros(self.num_draws, 0, dtype=self.params["bias"].dtype))
        weight = std.scale * weight_std / std.parent_scale.to(weight_std)
        bias = std.loc + std.scale * self.params["bias"] - weight @ std.parent_loc.to(weight_std)
        return bias, weight, torch.sqrt(self.params["noise_var"])

    def to(self, device: torch.device | str) -> FittedNode:
        """A copy with posterior draws and standardisation on ``device``."""
        posterior = replace(self.posterior, params={k: v.to(device) for k, v in self.params.items()})
        return replace(self, standardizer=self.standardizer.to(device), posterior=posterior)
