"""The mechanism interface: a Bayesian structural model ``X = h(f(PA; theta), N)`` written once in Pyro.

A subclass writes three small methods, all in standardised units (each column centred and scaled on the
training data):

- :meth:`Mechanism.prior` samples ``theta`` with ``pyro.sample`` statements and returns it as a dict;
- :meth:`Mechanism.location` evaluates ``f(pa; theta)`` for a batch of posterior draws;
- :meth:`Mechanism.noise` returns the noise family of ``N`` for a batch of draws.

The output map ``h`` is additive, ``h(f, n) = f + n``, unless a subclass overrides :meth:`Mechanism.output`
together with the two preimage bounds :meth:`Mechanism.noise_at_most` and :meth:`Mechanism.noise_at_least`
(for a map that is non-decreasing in ``n``: thresholds, counts, censoring). Such a mechanism is not invertible:
an observed value tells only that the noise lies in an interval, the noise's posterior given the value.

The generic :meth:`Mechanism.model` puts them together into the Pyro model that every inference engine (exact
conjugate updates, SVI, NUTS) conditions on the training data, so that the mechanism is written once and the
counterfactual simulation uses the very same ``location``, ``noise`` and ``output``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Hashable
from typing import ClassVar

import pyro
import pyro.distributions as dist
import torch

from bayes_rca.model.noise import NoiseFamily
from bayes_rca.registry import register

Params = dict[str, torch.Tensor]
REGISTRY: dict[str, type[Mechanism]] = {}  # every family by its name: a subclass that sets ``name`` is registered


def training_range(low: torch.Tensor, high: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The range ``[low, high]`` (float64) beyond which an extrapolating mechanism extrapolates, open on both
    sides (``-inf, inf``) for a parent that never moved in the training rows (``low == high``): it has no range.

    Examples
    --------
    >>> import torch
    >>> training_range(torch.tensor([-1.0, 2.0]), torch.tensor([1.0, 2.0]))
    (tensor([-1., -inf], dtype=torch.float64), tensor([1., inf], dtype=torch.float64))
    """
    low, high = low.to(torch.float64), high.to(torch.float64)
    constant = low == high
    return torch.where(constant, -torch.inf, low), torch.where(constant, torch.inf, high)


class Mechanism(ABC):
    """Base class of Bayesian additive-noise mechanisms.

    Attributes
    ----------
    name : str
        Registry name of the family (``"linear_gaussian"``, ...).
    accepts_parents : bool
        Whether the family models a node with parents (``False`` for root-only families).
    accepts_roots : bool
        Whether the family models a root node.
    conjugate : bool
        Whether exact posterior draws are available (:mod:`bayes_rca.inference.conjugate`).
    laplace_mh : bool
        Whether the Laplace-proposal Metropolis-Hastings sampler of the linear Student-t families applies
        (:mod:`bayes_rca.inference.laplace_mh`).
    shrinkage_grid : bool
        Whether the family is a Gaussian regression with one shrunk block of coefficients whose posterior is
        drawn on a grid of its two scales (:mod:`bayes_rca.inference.shrinkage_grid`; the mechanism provides
        ``shrinkage_design`` and ``shrinkage_params``).
    linear_gaussian : bool
        Whether ``f`` is linear and ``N`` Gaussian, which enables the analytic counterfactual tail.
    linear_in_parents : bool
        Whether ``f`` is ``bias + weight . PA`` with a ``"weight"`` parameter ``(D, p)`` (standardised units).
    extrapolates : bool
        Whether the mechanism changes beyond its parents' training range (:meth:`Mechanism.bind_parent_range`,
        :meth:`Mechanism.noise_multiplier`): only the games that know it may use it.
    invertible : bool
        Whether the noise is a function of the value and the parents (additive noise); otherwise the observed
        value only bounds the noise to an interval.
    standardise_value : bool
        Whether the node's values are centred and scaled before fitting (not for 0/1 or count values).
    """

    name: ClassVar[str]
    accepts_parents: ClassVar[bool] = True
    accepts_roots: ClassVar[bool] = True
    conjugate: ClassVar[bool] = False
    laplace_mh: ClassVar[bool] = False
    shrinkage_grid: ClassVar[bool] = False
    linear_gaussian: ClassVar[bool] = False
    linear_in_parents: ClassVar[bool] = False
    invertible: ClassVar[bool] = True
    extrapolates: ClassVar[bool] = False
    standardise_value: ClassVar[bool] = True

    def __init_subclass__(cls, **kwargs: object) -> None:
        """Register a subclass that sets its own ``name`` in :data:`REGISTRY` (``make_mechanism(name)`` builds it)."""
        super().__init_subclass__(**kwargs)
        name = cls.__dict__.get("name")
        if name is None:
            return
        register(REGISTRY, name, cls, cls, "mechanism family")

    def setup(self, num_parents: int, seed: int) -> None:
        """Fix any data-independent structure (e.g. random features) before fitting; default: nothing."""

    def bind(self, values: torch.Tensor, loc: float, scale: float) -> Mechanism:
        """The mechanism for a node with training ``values`` (data units) standardised by ``(loc, scale)``.

        Default: itself. A mechanism with bounds in data units returns a copy that also knows them standardised.
        """
        return self

    def bind_parents(self, parent_scale: torch.Tensor, scale: float) -> Mechanism:
        """The mechanism for a node whose parents are scaled by ``parent_scale`` and itself by ``scale``.

        Default: itself. A mechanism with a prior in data units (child units per parent unit) returns a copy that
        knows it in standardised units.
        """
        return self

    def bind_parent_range(self, low: torch.Tensor, high: torch.Tensor) -> Mechanism:
        """The mechanism for a node whose parents spanned ``[low, high]`` (standardised) in the training rows.

        Default: itself. A mechanism that extrapolates differently beyond the data returns a copy that knows them.
        """
        return self

    def noise_multiplier(self, parents: torch.Tensor, params: Params) -> torch.Tensor | None:
        """Factor ``(D, B)`` by which the noise's scale grows at parents ``(D, B, p)`` (standardised), so that
        ``X = f(PA) + multiplier(PA) * N`` (a location-scale noise model); ``None``: 1 everywhere."""
        return None

    def value_problem(self, values: torch.Tensor) -> tuple[int, str] | None:
        """The first of ``values`` (data units) this mechanism cannot produce and why (``"is not 0 or 1"``), or None."""
        return None

    def output(self, location: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """The value ``h(f, n)`` (standardised units) for a location and noise; additive by default."""
        return location + noise

    def noise_at_most(self, location: torch.Tensor, value: torch.Tensor) -> torch.Tensor:
        """``sup {n : h(f, n) <= value}``, so that ``X <= value`` exactly when ``N <= noise_at_most``."""
        return value - location

    def noise_at_least(self, location: torch.Tensor, value: torch.Tensor) -> torch.Tensor:
        """``inf {n : h(f, n) >= value}``, so that ``X >= value`` exactly when ``N >= noise_at_least``."""
        return value - location

    def observation(self, location: torch.Tensor, params: Params) -> dist.Distribution:
        """The distribution of the (standardised) value given its location; additive noise by default."""
        return self.noise(params).distribution(location)

    @abstractmethod
    def prior(self, num_parents: int, dtype: torch.dtype) -> Params:
        """Sample the parameters ``theta`` from their prior with ``pyro.sample`` and return them."""

    @abstractmethod
    def location(self, parents: torch.Tensor, params: Params) -> torch.Tensor:
        """``f(pa; theta)`` for parents of shape ``(D, B, p)`` and parameters with leading draw dim ``D``; ``(D, B)``."""

    @abstractmethod
    def noise(self, params: Params) -> NoiseFamily:
        """The noise family of ``N`` for parameters with leading draw dim ``D`` (tensors of shape ``(D, 1)``)."""

    def unseen_weight_prior(self, num_parents: int) -> tuple[float, float] | None:
        """Mean and sd (data units) of the weight of a parent that never moved in the training rows, or ``None``
        for the model's default (:class:`~bayes_rca.model.scm.BayesianSCM`'s ``unseen_weight_prior``)."""
        return None

    @abstractmethod
    def num_parameters(self, num_parents: int) -> int:
        """Number of scalar parameters for a node with ``num_parents`` parents."""

    def min_rows(self, num_parents: int) -> int:
        """Fewest usable training rows a fit accepts: ``max(2, parameters)``."""
        return max(2, self.num_parameters(num_parents))

    def unfit_reason(self, node: Hashable, parents: list[Hashable], rows: int | None) -> str | None:
        """Why this mechanism cannot be fitted to ``node`` with ``parents`` on ``rows`` usable rows, or None.

        ``rows=None`` checks the graph only (root or not).
        """
        if not parents and not self.accepts_roots:
            return f"node {node!r} is a root node, but the {self.name} mechanism needs parents"
        if parents and not self.accepts_parents:
            return f"node {node!r} has parents {parents}, but the {self.name} mechanism is for root nodes"
        if rows is not None and rows < self.min_rows(len(parents)):
            return (f"node {node!r} has {rows} usable training rows (node and parents observed), but the "
                    f"{self.name} mechanism has {self.num_parameters(len(parents))} parameters and needs at least "
                    f"{self.min_rows(len(parents))} rows")
        return None

    def model(self, parents: torch.Tensor, value: torch.Tensor | None = None) -> None:
        """The Pyro model of the node given its (standardised) parents, observing ``value`` when given."""
        params = self.prior(parents.shape[-1], parents.dtype)
        batched = {name: site.unsqueeze(0) for name, site in params.items()}
        loc = self.location(parents.unsqueeze(0), batched)
        observed = None if value is None else value.unsqueeze(0)
        pyro.sample("value", self.observation(loc, batched).to_event(1), obs=observed)

    def log_likelihood(self, parents: torch.Tensor, value: torch.Tensor, params: Params) -> torch.Tensor:
        """Pointwise log-likelihood ``(D, n)`` of ``value`` (shape ``(n,)``) under each posterior draw."""
        loc = self.location(parents.expand(next(iter(params.values())).shape[0], *parents.shape), params)
        return self.observation(loc, params).log_prob(value.expand_as(loc))

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"
