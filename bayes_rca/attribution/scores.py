"""The IT outlier score ``S(x) = -log P(tau(X) >= tau(x))`` with pluggable feature maps ``tau``.

For both feature maps here the outlier event ``tau(X) >= tau(x)`` is the two-sided event
``X <= lo or X >= hi`` for thresholds that depend on ``x`` and on the target's marginal distribution, so a
feature map only has to supply the thresholds. Marginals are per posterior draw: an exact Gaussian (linear-Gaussian
models) or a mixture over simulated locations with the noise integrated (a Rao-Blackwellised Monte Carlo
marginal). All probabilities are handled as logarithms, so scores far out in the tail stay finite.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

import numpy as np
import torch
from scipy import special as scipy_special

from bayes_rca.errors import ConfigError
from bayes_rca.model.noise import GaussianNoise, per_draw
from bayes_rca.numerics.special import erfc_floor

if TYPE_CHECKING:
    from bayes_rca.model.node import FittedNode

_BISECTION_STEPS = 200
_SQRT_HALF = math.sqrt(0.5)
_LOG_2 = math.log(2.0)


class Marginal(Protocol):
    """The target's marginal distribution, one per posterior draw (leading dimension ``D``)."""

    @property
    def mean(self) -> torch.Tensor: ...  # (D,)

    @property
    def std(self) -> torch.Tensor: ...  # (D,)

    def log_cdf(self, value: torch.Tensor) -> torch.Tensor: ...  # (D, R) -> (D, R)

    def log_sf(self, value: torch.Tensor) -> torch.Tensor: ...  # (D, R) -> (D, R)


@dataclass(frozen=True)
class GaussianMarginal:
    """``Normal(mean, std^2)`` per draw."""

    mean: torch.Tensor
    std: torch.Tensor

    def log_cdf(self, value: torch.Tensor) -> torch.Tensor:
        return torch.special.log_ndtr((value - self.mean.unsqueeze(-1)) / self.std.unsqueeze(-1))

    def log_sf(self, value: torch.Tensor) -> torch.Tensor:
        return torch.special.log_ndtr((self.mean.unsqueeze(-1) - value) / self.std.unsqueeze(-1))


@dataclass(frozen=True)
class MixtureMarginal:
    """``X = h(loc_s, N)`` of a fitted node, ``loc_s`` simulated (``(D, S)``) and its noise ``N`` integrated exactly.

    ``log_weight (D, S)`` are importance weights of the simulated locations (zeros for plain Monte Carlo);
    tail probabilities are ``sum_s w_s P(N beyond the bound for y at loc_s) / S``, never ``log 0``.
    ``node`` is the fitted target (a :class:`~bayes_rca.model.node.FittedNode`): its noise and noise bounds;
    ``multiplier (D, S)``, where the target's noise scale depends on its parents, the factor of each sample
    (``X = loc + multiplier * scale * N``; None: 1).
    """

    loc: torch.Tensor
    node: FittedNode
    log_weight: torch.Tensor
    multiplier: torch.Tensor | None = None

    @property
    def mean(self) -> torch.Tensor:
        return (torch.softmax(self.log_weight, -1) * self.loc).sum(-1)

    @property
    def std(self) -> torch.Tensor:
        weights = torch.softmax(self.log_weight, -1)
        variance = (weights * (self.loc - self.mean.unsqueeze(-1)) ** 2).sum(-1)
        noise_variance = self.node.noise().variance.squeeze(-1)
        if self.multiplier is not None:
            noise_variance = noise_variance * (weights * self.multiplier.square()).sum(-1)
        return torch.sqrt(variance + self.node.standardizer.scale**2 * noise_variance)

    def _log_mean(self, log_values: torch.Tensor) -> torch.Tensor:
        weighted = log_values + self.log_weight.unsqueeze(1)
        return torch.logsumexp(weighted, dim=-1) - math.log(log_values.shape[-1])

    def _pair(self, value: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Locations and values broadcast to ``(D, R, S)``."""
        return torch.broadcast_tensors(self.loc.unsqueeze(1), value.unsqueeze(-1))

    def _per_sample(self, bound: torch.Tensor) -> torch.Tensor:
        """A noise bound ``(D, R, S)`` in units of the sample's own noise scale."""
        return bound if self.multiplier is None else bound / self.multiplier.unsqueeze(1)

    def log_cdf(self, value: torch.Tensor) -> torch.Tensor:
        bound = self._per_sample(self.node.noise_at_most(*self._pair(value)))
        return self._log_mean(per_draw(self.node.noise().log_cdf, bound))

    def log_sf(self, value: torch.Tensor) -> torch.Tensor:
        bound = self._per_sample(self.node.noise_at_least(*self._pair(value)))
        return self._log_mean(per_draw(self.node.noise().log_sf, bound))


def _bisect(log_tail, log_target: torch.Tensor, lower: torch.Tensor, upper: torch.Tensor) -> torch.Tensor:
    """Solve ``log_tail(y) = log_target`` for a monotone ``log_tail`` bracketed by ``[lower, upper]``."""
    increasing = bool((log_tail(upper) >= log_tail(lower)).all())
    for _ in range(_BISECTION_STEPS):
        middle = 0.5 * (lower + upper)
        below = log_tail(middle) < log_target
        go_right = below if increasing else ~below
        lower, upper = torch.where(go_right, middle, lower), torch.where(go_right, upper, middle)
        if bool(((upper - lower) <= 1e-12 * (1.0 + middle.abs())).all()):
            break
    return 0.5 * (lower + upper)


def _mirror(marginal: Marginal, value: torch.Tensor, log_q: torch.Tensor, upper_tail: bool) -> torch.Tensor:
    """The point on the other side of the mean whose tail mass equals ``exp(log_q)``."""
    mean, std = marginal.mean.unsqueeze(-1), marginal.std.unsqueeze(-1)
    if isinstance(marginal, GaussianMarginal):
        return 2 * mean - value  # exact by symmetry
    reach = 4.0 * ((value - mean).abs() + 10.0 * std)
    if upper_tail:
        return _bisect(marginal.log_sf, log_q, mean - std, mean + reach)
    return _bisect(marginal.log_cdf, log_q, mean - reach, mean + std)


class FeatureMap(Protocol):
    """A feature map ``tau``: it gives the thresholds of the event ``tau(X) >= tau(x)``."""

    name: str

    def thresholds(self, marginal: Marginal, value: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(lo, hi)`` of shape ``(D, R)`` such that the event is ``X <= lo or X >= hi``."""


@dataclass(frozen=True)
class ZScore:
    """``tau(x) = |x - E[X]| / sd(X)``: the event is ``|X - E[X]| >= |x - E[X]|``."""

    name: str = "zscore"

    def thresholds(self, marginal: Marginal, value: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mean = marginal.mean.unsqueeze(-1)
        distance = (value - mean).abs()
        return mean - distance, mean + distance


@dataclass(frozen=True)
class MedianCDFQuantile:
    """``tau(x) = 1 - 2 min(P(X <= x), P(X >= x))`` (DoWhy's ``MedianCDFQuantileScorer``).

    The event is ``X`` in either tail beyond the quantiles of mass ``q = min(F(x), 1 - F(x))``, so its
    probability under the marginal is exactly ``2 q``.
    """

    name: str = "median_cdf_quantile"

    def thresholds(self, marginal: Marginal, value: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        log_cdf, log_sf = marginal.log_cdf(value), marginal.log_sf(value)
        in_lower_tail = log_cdf <= log_sf
        lo_from_hi = _mirror(marginal, value, log_sf, upper_tail=False)
        hi_from_lo = _mirror(marginal, value, log_cdf, upper_tail=True)
        return torch.where(in_lower_tail, value, lo_from_hi), torch.where(in_lower_tail, hi_from_lo, value)


FEATURE_MAPS: dict[str, FeatureMap] = {"zscore": ZScore(), "median_cdf_quantile": MedianCDFQuantile()}


def get_feature_map(spec: str | FeatureMap) -> FeatureMap:
    """A feature map by name (``"zscore"``, ``"median_cdf_quantile"``) or the given instance."""
    if isinstance(spec, str):
        try:
            return FEATURE_MAPS[spec]
        except KeyError:
            raise ConfigError(f"unknown feature map {spec!r}; known: {', '.join(FEATURE_MAPS)}") from None
    return spec


def log_two_tails(log_lower: torch.Tensor, log_upper: torch.Tensor) -> torch.Tensor:
    """``log(P_lower + P_upper)`` from the logs of two disjoint tail probabilities."""
    return torch.logaddexp(log_lower, log_upper)


def it_score(marginal: Marginal, lo: torch.Tensor, hi: torch.Tensor) -> torch.Tensor:
    """The IT outlier score ``-log P(X <= lo or X >= hi)`` under ``marginal``, shape ``(D, R)``."""
    return -log_two_tails(marginal.log_cdf(lo), marginal.log_sf(hi)).clamp_max(0.0)


def _broadcast_shape(*tensors: torch.Tensor) -> torch.Size:
    """The shape the tensors broadcast to (a RuntimeError if they do not), from views: no data is copied.

    Not ``torch.broadcast_shapes``: its first call in a process imports ``torch.fx``'s symbolic shapes and sympy
    (482 modules, 0.55 s of CPU), which made the bench's attribution 0.6 s slower after ``a993d40`` (issue 15).
    """
    return torch.broadcast_tensors(*tensors)[0].shape


def _full(tensor: torch.Tensor, shape: torch.Size) -> torch.Tensor:
    """``tensor`` itself if it has ``shape``, else a broadcast copy (so that in-place operations can follow)."""
    return tensor if tensor.shape == shape else tensor.expand(shape).clone()


def gaussian_log_tail(mean: torch.Tensor, std: torch.Tensor, lo: torch.Tensor, hi: torch.Tensor) -> torch.Tensor:
    """``log P(Y <= lo or Y >= hi)`` for ``Y ~ Normal(mean, std^2)`` (broadcasting); ``0`` where ``std == 0``.

    With zero variance ``Y`` equals the observed value, which lies on a threshold by construction, so the event
    holds with probability one.

    Notes
    -----
    ``2 P = erfc((mean - lo) / (std sqrt 2)) + erfc((hi - mean) / (std sqrt 2))``: ``erfc`` is vectorised and
    relative-accurate in the tail, several times faster than ``log_ndtr`` (a scalar loop on CPU) over the
    millions of elements of a game. Where the sum falls below :func:`~bayes_rca.numerics.special.erfc_floor` (in
    float64, an event beyond about 37 standard deviations) the two ``log_ndtr`` are evaluated, for those
    elements only, so the result stays exact however far out.
    """
    shape = _broadcast_shape(mean, std, lo, hi)
    positive = std > 0
    safe_std = torch.where(positive, std, torch.ones_like(std))
    scale = safe_std.reciprocal().mul_(_SQRT_HALF)
    twice = _full(mean - lo, shape).mul_(scale).erfc_()
    twice.add_(_full(hi - mean, shape).mul_(scale).erfc_())
    far = twice < erfc_floor(twice.dtype)  # NaN elements are not far, and do not hide far ones
    log_p = twice.log_().sub_(_LOG_2)
    if bool(far.any()):
        m, s, low, high = (t.expand_as(log_p)[far] for t in (mean, safe_std, lo, hi))
        log_p[far] = log_two_tails(torch.special.log_ndtr((low - m) / s), torch.special.log_ndtr((m - high) / s))
    return log_p.clamp_max_(0.0).masked_fill_(~positive.expand_as(log_p), 0.0)


def noise_log_outside(noise, low: torch.Tensor, high: torch.Tensor) -> torch.Tensor:
    """``log P(N <= low or N >= high)`` for values ``(D, ...)`` (noise parameters ``(D, 1)``)."""
    if isinstance(noise, GaussianNoise):
        scale = noise.scale.reshape(-1, *[1] * (low.dim() - 1))
        return gaussian_log_tail(torch.zeros_like(scale), scale, low, high)
    return log_two_tails(per_draw(noise.log_cdf, low), per_draw(noise.log_sf, high))


def _student_t_log_sf(df: float, z: np.ndarray) -> np.ndarray:
    """``log P(T >= z)`` for ``T ~ StudentT(df)``, exact however far out (float64 numpy)."""
    with np.errstate(divide="ignore"):
        log_sf = np.log(scipy_special.stdtr(df, -z))
    far = ~np.isfinite(log_sf) & (z > 0)
    if far.any():  # beyond ~1e100 sd stdtr underflows; the power-law tail is then exact to 1e-200
        log_constant = (math.lgamma((df + 1) / 2) - math.lgamma(df / 2) - 0.5 * math.log(df * math.pi)
                        + 0.5 * (df - 1) * math.log(df))
        log_sf[far] = log_constant - df * np.log(z[far])
    return log_sf


def _student_t2_sf(z: torch.Tensor) -> torch.Tensor:
    """``P(T >= z)`` for ``T ~ StudentT(2)``: ``q = 1 / (r (r + |z|))`` with ``r = sqrt(z^2 + 2)`` beyond the
    median, ``1 - q`` before it (then at least 1/2, so no cancellation)."""
    magnitude = z.abs()
    q = magnitude.square().add_(2.0).sqrt_()
    q.mul_(q + magnitude).reciprocal_()
    return torch.where(z >= 0, q, 1.0 - q)


def _student_t2_log_far(z: torch.Tensor) -> torch.Tensor:
    """``log P(T >= z)`` for ``z`` far beyond the median, in log space: ``-log(r (r + z))`` without overflow."""
    r = torch.hypot(z, torch.full_like(z, math.sqrt(2.0)))
    return -(torch.log(r) + torch.log(r + z))


def _student_t2_log_tail(below: torch.Tensor, above: torch.Tensor) -> torch.Tensor:
    """``log(P(T >= below) + P(T >= above))`` for ``T ~ StudentT(2)``: the two tails summed in linear space (exact
    in closed form), in log space where the sum nears the subnormals (both beyond about 1e138 scales)."""
    total = _student_t2_sf(below).add_(_student_t2_sf(above))
    far = total < erfc_floor(total.dtype)
    log_p = total.log_()
    if bool(far.any()):
        log_p[far] = log_two_tails(_student_t2_log_far(below[far]), _student_t2_log_far(above[far]))
    return log_p


def student_t_log_tail(mean: torch.Tensor, scale: torch.Tensor, lo: torch.Tensor, hi: torch.Tensor,
                       df: float) -> torch.Tensor:
    """``log P(Y <= lo or Y >= hi)`` for ``Y = mean + scale * T``, ``T ~ StudentT(df)``; ``0`` where ``scale == 0``.

    The robust counterpart of :func:`gaussian_log_tail` (same broadcasting and conventions): the noise of a
    coalition redrawn with one common variance factor ``lambda ~ InvGamma(df / 2, df / 2)``, so that a far
    outlier costs ``df log z`` nats instead of ``z^2 / 2``. ``df == 2`` has a closed form, evaluated with torch
    on the tensors' device; other ``df`` use ``scipy.special.stdtr`` on the CPU.

    Examples
    --------
    >>> import torch
    >>> zero, one = torch.zeros(1, dtype=torch.float64), torch.ones(1, dtype=torch.float64)
    >>> round(float(student_t_log_tail(zero, one, -2 * one, 2 * one, df=2.0).exp()), 4)  # P(|T_2| >= 2)
    0.1835
    """
    shape = _broadcast_shape(mean, scale, lo, hi)
    positive = scale > 0
    safe = torch.where(positive, scale, torch.ones_like(scale))
    below = _full(mean - lo, shape).div_(safe)  # the event is T <= -below or T >= above
    above = _full(hi - mean, shape).div_(safe)
    if df == 2:
        log_p = _student_t2_log_tail(below, above)
    else:
        tails = [_student_t_log_sf(df, t.detach().cpu().numpy()) for t in (below, above)]
        log_p = torch.from_numpy(np.logaddexp(*tails)).to(device=mean.device, dtype=mean.dtype)
    return log_p.clamp_max_(0.0).masked_fill_(~positive.expand_as(log_p), 0.0)
