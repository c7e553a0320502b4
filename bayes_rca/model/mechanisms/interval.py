"""Mechanisms that are not invertible: an observed value bounds the noise to an interval instead of fixing it.

Each is ``X = h(f(PA), N)`` with ``f`` linear in the (standardised) parents, Gaussian noise ``N`` and an output
map ``h`` that is non-decreasing in ``N``:

- :class:`ProbitThreshold`: a binary node (availability up/down), ``X = 1[f + N > 0]``, ``N ~ Normal(0, 1)``;
- :class:`PoissonCount`: a count node (requests), ``X = F^-1_{Poisson(exp f)}(Phi(N))``, ``N ~ Normal(0, 1)``,
  i.e. ``X ~ Poisson(exp f)`` with the quantile coupling that makes counterfactual counts monotone in the noise;
- :class:`CensoredGaussian`: a clipped node (latency capped at a timeout, availability capped at 100%),
  ``X = clip(f + N, lower, upper)``, ``N ~ Normal(0, sigma^2)``.

Given a value and the parents, the noise's posterior is ``Normal`` restricted to the interval
``[noise_at_least(f, x), noise_at_most(f, x)]`` (a point where ``X`` is strictly between censoring bounds),
sampled exactly by :func:`bayes_rca.model.noise.sample_truncated`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import pyro
import pyro.distributions as dist
import torch

from bayes_rca.errors import MechanismError
from bayes_rca.model.mechanisms.base import Mechanism, Params
from bayes_rca.model.mechanisms.linear import _linear_location
from bayes_rca.model.noise import GaussianNoise
from bayes_rca.numerics.special import normal_quantile_of_tails, poisson_log_cdf, poisson_log_sf

_INF = math.inf
PILE_UP_SHARE = 0.01  # share of training rows at the min (max) that makes it a censoring bound


def _linear_prior(num_parents: int, dtype: torch.dtype, bias_sd: float) -> Params:
    one = torch.ones((), dtype=dtype)
    params = {"bias": pyro.sample("bias", dist.Normal(0 * one, bias_sd * one))}
    if num_parents:
        params["weight"] = pyro.sample("weight", dist.Normal(0 * one, one).expand([num_parents]).to_event(1))
    return params


def _first_bad(bad: torch.Tensor, reason: str) -> tuple[int, str] | None:
    return (int(torch.nonzero(bad)[0, 0]), reason) if bool(bad.any()) else None


class _UnitNoiseLinear(Mechanism):
    """``f = b + w . PA`` on standardised parents, ``N ~ Normal(0, 1)``, values kept in their own units."""

    linear_in_parents: ClassVar[bool] = True
    invertible: ClassVar[bool] = False
    standardise_value: ClassVar[bool] = False
    bias_sd: ClassVar[float]

    def prior(self, num_parents: int, dtype: torch.dtype) -> Params:
        return _linear_prior(num_parents, dtype, self.bias_sd)

    def location(self, parents: torch.Tensor, params: Params) -> torch.Tensor:
        return _linear_location(parents, params)

    def noise(self, params: Params) -> GaussianNoise:
        bias = params["bias"]
        return GaussianNoise(torch.ones_like(bias).unsqueeze(-1))

    def num_parameters(self, num_parents: int) -> int:
        return num_parents + 1


class ProbitThreshold(_UnitNoiseLinear):
    """A binary node: ``X = 1[b + w . PA + N > 0]``, ``N ~ Normal(0, 1)`` (probit regression).

    Prior (standardised parents): ``b ~ Normal(0, 2^2)``, ``w ~ Normal(0, 1)``. Values must be 0 or 1 and are not
    standardised.
    """

    name: ClassVar[str] = "probit_threshold"
    bias_sd: ClassVar[float] = 2.0

    def observation(self, location: torch.Tensor, params: Params) -> dist.Distribution:
        # logit(Phi(f)) in log space: exact for |f| far beyond where Phi(f) rounds to 0 or 1
        return dist.Bernoulli(logits=torch.special.log_ndtr(location) - torch.special.log_ndtr(-location))

    def value_problem(self, values: torch.Tensor) -> tuple[int, str] | None:
        return _first_bad((values != 0) & (values != 1), "is not 0 or 1")

    def output(self, location: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        return (location + noise > 0).to(location.dtype)

    def noise_at_most(self, location: torch.Tensor, value: torch.Tensor) -> torch.Tensor:
        # X <= v: never for v < 0, X = 0 (N <= -f) for 0 <= v < 1, always for v >= 1
        bound = torch.where(value >= 1, _INF, -location)
        return torch.where(value < 0, -_INF, bound)

    def noise_at_least(self, location: torch.Tensor, value: torch.Tensor) -> torch.Tensor:
        # X >= v: always for v <= 0, X = 1 (N > -f) for 0 < v <= 1, never for v > 1
        bound = torch.where(value <= 0, -_INF, -location)
        return torch.where(value > 1, _INF, bound)


class PoissonCount(_UnitNoiseLinear):
    """A count node: ``X ~ Poisson(exp(b + w . PA))``, written ``X = F^-1(Phi(N))`` with ``N ~ Normal(0, 1)``.

    Prior (standardised parents): ``b ~ Normal(0, 10^2)`` (the log rate of raw counts), ``w ~ Normal(0, 1)``. Values
    must be non-negative integers and are not standardised.
    """

    name: ClassVar[str] = "poisson_count"
    bias_sd: ClassVar[float] = 10.0

    _SEARCH_STEPS: ClassVar[int] = 64

    def observation(self, location: torch.Tensor, params: Params) -> dist.Distribution:
        return dist.Poisson(torch.exp(location))

    def value_problem(self, values: torch.Tensor) -> tuple[int, str] | None:
        return _first_bad((values < 0) | (values != torch.round(values)), "is not a non-negative integer count")

    @staticmethod
    def _noise_quantile(count: torch.Tensor, rate: torch.Tensor) -> torch.Tensor:
        """``Phi^-1(P(X <= count))``: the largest noise whose count is at most ``count``."""
        return normal_quantile_of_tails(poisson_log_cdf(count, rate), poisson_log_sf(count, rate))

    @staticmethod
    def _reaches(count: torch.Tensor, rate: torch.Tensor, log_lower: torch.Tensor,
                 log_upper: torch.Tensor) -> torch.Tensor:
        """Whether ``P(X <= count) >= Phi(n)``, from ``log Phi(n)`` and ``log Phi(-n)``, in the smaller tail.

        Each element evaluates only the tail it compares (the regularised gamma functions are the cost).
        """
        count, rate, log_lower, log_upper = torch.broadcast_tensors(count, rate, log_lower, log_upper)
        lower = log_lower <= log_upper
        upper = ~lower
        reached = torch.empty_like(lower)
        reached[lower] = poisson_log_cdf(count[lower], rate[lower]) >= log_lower[lower]
        reached[upper] = poisson_log_sf(count[upper], rate[upper]) <= log_upper[upper]
        return reached

    def output(self, location: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        # the smallest k with P(X <= k) >= Phi(n), by bisection on integers from a normal-approximation bracket
        rate = torch.exp(location)
        log_lower, log_upper = torch.special.log_ndtr(noise), torch.special.log_ndtr(-noise)
        root = torch.sqrt(rate)
        centre = rate + noise * root + (noise * noise - 1.0) / 6.0  # Cornish-Fisher
        spread = 2.0 + 0.1 * root + 0.25 * noise * noise
        low = torch.floor(centre - spread).clamp_min(-1.0)
        high = torch.ceil(centre + spread)
        low = torch.where(self._reaches(low, rate, log_lower, log_upper), torch.full_like(low, -1.0), low)
        for _ in range(self._SEARCH_STEPS):  # widen the bracket where the approximation fell short (rare)
            short = ~self._reaches(high, rate, log_lower, log_upper)
            if not bool(short.any()):
                break
            high = torch.where(short, 2.0 * high + 1.0, high)
        for _ in range(self._SEARCH_STEPS):
            if bool((high - low <= 1).all()):
                break
            middle = torch.floor(0.5 * (low + high))
            reached = self._reaches(middle, rate, log_lower, log_upper)
            low, high = torch.where(reached, low, middle), torch.where(reached, middle, high)
        return high

    def noise_at_most(self, location: torch.Tensor, value: torch.Tensor) -> torch.Tensor:
        return self._noise_quantile(torch.floor(value), torch.exp(location))

    def noise_at_least(self, location: torch.Tensor, value: torch.Tensor) -> torch.Tensor:
        return self._noise_quantile(torch.ceil(value) - 1.0, torch.exp(location))


class _CensoredNormal(dist.Normal):
    """``clip(Normal(loc, scale), lower, upper)``: density inside, the tail mass at each bound."""

    def __init__(self, loc: torch.Tensor, scale: torch.Tensor, lower: float, upper: float) -> None:
        super().__init__(loc, scale)
        self.lower, self.upper = lower, upper

    def log_prob(self, value: torch.Tensor) -> torch.Tensor:
        z = (value - self.loc) / self.scale
        inside = super().log_prob(value)
        below = torch.special.log_ndtr(z)
        above = torch.special.log_ndtr(-z)
        return torch.where(value <= self.lower, below, torch.where(value >= self.upper, above, inside))

    def sample(self, sample_shape: tuple[int, ...] = ()) -> torch.Tensor:
        return super().sample(sample_shape).clamp(self.lower, self.upper)


@dataclass(frozen=True)
class Bounds:
    """Censoring bounds of a :class:`CensoredGaussian` in data units and standardised units."""

    lower: float
    upper: float
    lower_std: float
    upper_std: float


class CensoredGaussian(Mechanism):
    """A clipped node: ``X = clip(b + w . PA + N, lower, upper)``, ``N ~ Normal(0, sigma^2)`` (a Tobit model).

    Parameters
    ----------
    lower, upper : float, optional
        The censoring bounds in data units (e.g. a timeout, or 100 for a percentage). ``None``: the training
        data's minimum (maximum) if at least 1% of the training rows (and two) sit on it, a pile-up; otherwise no
        bound. Where every training value is the same, at least one bound must be given.

    Prior (standardised units): ``b, w ~ Normal(0, 1)``, ``sigma ~ HalfNormal(1)``.
    """

    name: ClassVar[str] = "censored_gaussian"
    linear_in_parents: ClassVar[bool] = True
    invertible: ClassVar[bool] = False

    def __init__(self, lower: float | None = None, upper: float | None = None) -> None:
        if lower is not None and upper is not None and not lower < upper:
            raise MechanismError(f"censoring bounds need lower < upper, got lower={lower}, upper={upper}")
        self.lower, self.upper = lower, upper
        self.bounds: Bounds | None = None

    def bind(self, values: torch.Tensor, loc: float, scale: float) -> CensoredGaussian:
        def piled_up(extreme: torch.Tensor) -> bool:  # not just a repeated extreme of rounded data
            return int((values == extreme).sum()) >= max(2, PILE_UP_SHARE * len(values))

        if self.lower is None and self.upper is None and bool((values == values[0]).all()):
            raise MechanismError(f"every training value is {float(values[0])}, so it is unclear which censoring "
                                 "bound that is: give it, as CensoredGaussian(upper=...) or (lower=...)")
        lower = self.lower if self.lower is not None else (float(values.min()) if piled_up(values.min()) else -_INF)
        upper = self.upper if self.upper is not None else (float(values.max()) if piled_up(values.max()) else _INF)
        bound = CensoredGaussian(self.lower, self.upper)
        bound.bounds = Bounds(lower, upper, (lower - loc) / scale, (upper - loc) / scale)
        return bound

    def _bounds(self) -> Bounds:
        if self.bounds is None:
            raise RuntimeError("CensoredGaussian.bind() must run before the mechanism is used")
        return self.bounds

    def prior(self, num_parents: int, dtype: torch.dtype) -> Params:
        params = _linear_prior(num_parents, dtype, 1.0)
        params["noise_scale"] = pyro.sample("noise_scale", dist.HalfNormal(torch.ones((), dtype=dtype)))
        return params

    def location(self, parents: torch.Tensor, params: Params) -> torch.Tensor:
        return _linear_location(parents, params)

    def noise(self, params: Params) -> GaussianNoise:
        return GaussianNoise(params["noise_scale"].unsqueeze(-1))

    def num_parameters(self, num_parents: int) -> int:
        return num_parents + 2

    def observation(self, location: torch.Tensor, params: Params) -> dist.Distribution:
        bounds = self._bounds()
        scale = self.noise(params).scale.expand_as(location)
        return _CensoredNormal(location, scale, bounds.lower_std, bounds.upper_std)

    def value_problem(self, values: torch.Tensor) -> tuple[int, str] | None:
        bounds = self._bounds()
        return _first_bad((values < bounds.lower) | (values > bounds.upper),
                          f"is outside the censoring bounds [{bounds.lower}, {bounds.upper}]")

    def output(self, location: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        bounds = self._bounds()
        return (location + noise).clamp(bounds.lower_std, bounds.upper_std)

    def noise_at_most(self, location: torch.Tensor, value: torch.Tensor) -> torch.Tensor:
        bounds = self._bounds()
        bound = torch.where(value >= bounds.upper_std, _INF, value - location)
        return torch.where(value < bounds.lower_std, -_INF, bound)

    def noise_at_least(self, location: torch.Tensor, value: torch.Tensor) -> torch.Tensor:
        bounds = self._bounds()
        bound = torch.where(value <= bounds.lower_std, -_INF, value - location)
        return torch.where(value > bounds.upper_std, _INF, bound)

    def __repr__(self) -> str:
        return f"CensoredGaussian(lower={self.lower}, upper={self.upper})"
