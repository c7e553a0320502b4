"""Special functions that torch lacks, in log space so that tail probabilities far out stay finite and accurate.

- the log of the regularised incomplete beta function, for the Student-t CDF;
- the inverse of ``log_ndtr`` (the standard normal quantile of a log probability);
- the Poisson CDF and survival function in log space;
- the standard normal probability of an interval, from vectorised ``erfc``.
"""

from __future__ import annotations

import math

import numpy as np
import torch

_TINY = 1e-300
_MAX_ITERATIONS = 300
_LOG_HALF = -0.6931471805599453
_NEWTON_STEPS = 8
_SQRT_HALF = math.sqrt(0.5)
_SCIPY_TAIL_FLOOR = 1e-280  # below this scipy's Student-t tail nears the subnormals: the log-space path instead


def log1mexp(x: torch.Tensor) -> torch.Tensor:
    """``log(1 - exp(x))`` for ``x <= 0``, accurate for x near 0 and very negative."""
    return torch.where(x > _LOG_HALF, torch.log(-torch.expm1(x)), torch.log1p(-torch.exp(x)))


def erfc_floor(dtype: torch.dtype) -> float:
    """Below this value ``erfc`` nears the subnormals and loses relative precision: use ``log_ndtr`` there.

    ``tiny ** 0.9``: about 1e-277 in float64, 1e-34 in float32.
    """
    return torch.finfo(dtype).tiny ** 0.9


def normal_log_interval(low: torch.Tensor, high: torch.Tensor) -> torch.Tensor:
    """``log P(low <= Z <= high)`` for a standard normal ``Z`` and ``low <= high`` (broadcasting).

    From the tail away from zero: ``2 P = erfc(a / sqrt 2) - erfc(b / sqrt 2)`` with ``(a, b) = (low, high)``
    when ``low > 0`` and ``(-high, -low)`` otherwise. ``erfc`` is vectorised and relative-accurate in the tail,
    several times faster than ``log_ndtr`` (a scalar loop on CPU); where ``erfc(a / sqrt 2)`` underflows (``a``
    beyond about 37) the two ``log_ndtr`` are used, for those elements only.
    """
    upper = low > 0
    a, b = torch.where(upper, low, -high), torch.where(upper, high, -low)
    near = (a * _SQRT_HALF).erfc_()
    far = near < erfc_floor(near.dtype)  # NaN elements are not far, and do not hide far ones
    log_p = near.sub_((b * _SQRT_HALF).erfc_()).log_().add_(_LOG_HALF)
    if bool(far.any()):
        a_far, b_far = a.expand_as(log_p)[far], b.expand_as(log_p)[far]
        log_a = torch.special.log_ndtr(-a_far)
        log_p[far] = log_a + log1mexp((torch.special.log_ndtr(-b_far) - log_a).clamp_max(0.0))
    return log_p


def _log_betacf(a: torch.Tensor, b: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Log of the continued fraction of the incomplete beta function (modified Lentz, Numerical Recipes 6.4)."""
    qab, qap, qam = a + b, a + 1.0, a - 1.0
    c = torch.ones_like(x)
    d = 1.0 - qab * x / qap
    d = torch.where(d.abs() < _TINY, torch.full_like(d, _TINY), d).reciprocal()
    log_h = torch.log(d.abs())
    sign = torch.sign(d)
    for m in range(1, _MAX_ITERATIONS + 1):
        m2 = 2 * m
        delta = torch.ones_like(x)
        for aa in (m * (b - m) * x / ((qam + m2) * (a + m2)), -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))):
            d = 1.0 + aa * d
            d = torch.where(d.abs() < _TINY, torch.full_like(d, _TINY), d).reciprocal()
            c = 1.0 + aa / c
            c = torch.where(c.abs() < _TINY, torch.full_like(c, _TINY), c)
            delta = d * c
            log_h = log_h + torch.log(delta.abs())
            sign = sign * torch.sign(delta)
        if m % 8 == 0 and bool(((delta - 1.0).abs() < 1e-15).all()):
            break
    return log_h


def log_betainc(a: torch.Tensor, b: torch.Tensor, log_x: torch.Tensor,
                log_one_minus_x: torch.Tensor) -> torch.Tensor:
    """``log I_x(a, b)``, the log regularised incomplete beta function, from ``log x`` and ``log(1 - x)``.

    Parameters
    ----------
    a, b : torch.Tensor
        Positive shape parameters (broadcastable with the logs).
    log_x, log_one_minus_x : torch.Tensor
        ``log x`` and ``log(1 - x)`` for points x in [0, 1].

    Notes
    -----
    Passing both logs keeps full precision where ``x`` or ``1 - x`` is below the smallest float or where
    ``1 - x`` would cancel (``x`` within rounding of 1).
    """
    a, b, log_x, log_one_minus_x = torch.broadcast_tensors(a, b, log_x, log_one_minus_x)
    direct = log_x < torch.log((a + 1.0) / (a + b + 2.0))
    # Evaluate the continued fraction where it converges fast: at x itself, or at 1 - x with a and b swapped.
    log_xs = torch.where(direct, log_x, log_one_minus_x)
    log_rest = torch.where(direct, log_one_minus_x, log_x)
    as_, bs = torch.where(direct, a, b), torch.where(direct, b, a)
    log_front = (as_ * log_xs + bs * log_rest
                 - (torch.lgamma(as_) + torch.lgamma(bs) - torch.lgamma(as_ + bs)) - torch.log(as_))
    log_part = (log_front + _log_betacf(as_, bs, torch.exp(log_xs))).clamp_max(0.0)
    result = torch.where(direct, log_part, log1mexp(log_part))
    result = torch.where(log_x == -float("inf"), torch.full_like(result, -float("inf")), result)
    return torch.where(log_one_minus_x == -float("inf"), torch.zeros_like(result), result)


def student_t_log_cdf(t: torch.Tensor, df: torch.Tensor) -> torch.Tensor:
    """``log P(T <= t)`` for a standard Student-t variable with ``df`` degrees of freedom.

    On the CPU in float64 without a gradient, scipy's ``stdtr`` gives the tail where it does not underflow (a
    vectorised C routine, much faster than the continued fraction, which then fills in only the far elements);
    otherwise, and on any other device, the log-space incomplete beta function.
    """
    t, df = torch.broadcast_tensors(t, df)
    if t.device.type == "cpu" and t.dtype == torch.float64 and not (t.requires_grad or df.requires_grad):
        import scipy.special

        tail = scipy.special.stdtr(df.numpy(), -t.abs().numpy())  # P(T >= |t|)
        far = torch.from_numpy(~(tail > _SCIPY_TAIL_FLOOR))  # underflow (or NaN) there: the log-space path
        with np.errstate(divide="ignore"):
            log_tail = torch.from_numpy(np.log(tail))
        if bool(far.any()):
            log_tail[far] = _student_t_log_tail(t[far], df[far])
    else:
        log_tail = _student_t_log_tail(t, df)
    return torch.where(t < 0, log_tail, log1mexp(log_tail))


def _student_t_log_tail(t: torch.Tensor, df: torch.Tensor) -> torch.Tensor:
    """``log P(T >= |t|)`` by the log-space incomplete beta function (any device, any distance)."""
    # z = df / (df + t^2) and 1 - z = t^2 / (df + t^2), both in log space: t^2 would overflow beyond 1e154,
    # and 1 - z would cancel for t^2 << df.
    log_t2 = 2.0 * torch.log(t.abs())
    log_denominator = torch.logaddexp(torch.log(df), log_t2)
    log_z, log_one_minus_z = torch.log(df) - log_denominator, log_t2 - log_denominator
    # log(0.5 * I_z(df/2, 1/2)) is the lower tail for t < 0 and the upper tail for t > 0.
    return _LOG_HALF + log_betainc(0.5 * df, torch.full_like(df, 0.5), log_z, log_one_minus_z)


def _log_ndtri_lower(log_p: torch.Tensor) -> torch.Tensor:
    """``x`` with ``log Phi(x) = log_p`` for ``log_p <= log(1/2)``: ``ndtri`` refined by Newton steps on ``log Phi``.

    ``log Phi`` is concave and increasing, so Newton's iterates approach the root monotonically from the left.
    """
    p = torch.exp(log_p)
    x = torch.where(p > 1e-300, torch.special.ndtri(p), -torch.sqrt(-2.0 * log_p))
    for _ in range(_NEWTON_STEPS):
        log_cdf = torch.special.log_ndtr(x)
        log_slope = -0.5 * x * x - 0.9189385332046727 - log_cdf  # log(phi(x) / Phi(x))
        x = x - (log_cdf - log_p) * torch.exp(-log_slope)
    return torch.where(log_p == -float("inf"), torch.full_like(x, -float("inf")), x)


def log_ndtri(log_p: torch.Tensor) -> torch.Tensor:
    """The standard normal quantile of ``exp(log_p)``: ``x`` with ``log Phi(x) = log_p`` (``log_p <= 0``).

    Accurate in both tails: probabilities below the smallest float in the lower tail, and ``log_p`` within
    rounding of 0 in the upper tail (solved as ``-x`` with ``log Phi(-x) = log(1 - p)``).
    """
    upper = log_p > _LOG_HALF
    lower_side = torch.where(upper, log1mexp(log_p.clamp_max(-1e-300)), log_p)
    x = _log_ndtri_lower(lower_side)
    return torch.where(upper, -x, x)


def normal_quantile_of_tails(log_cdf: torch.Tensor, log_sf: torch.Tensor) -> torch.Tensor:
    """``Phi^-1(F)`` from both ``log F`` and ``log(1 - F)``, using the smaller tail for accuracy."""
    lower = log_cdf <= log_sf
    quantile = log_ndtri(torch.where(lower, log_cdf, log_sf))  # one inversion per element, in its smaller tail
    return torch.where(lower, quantile, -quantile)


def _poisson_log_pmf(k: torch.Tensor, rate: torch.Tensor) -> torch.Tensor:
    return k * torch.log(rate) - rate - torch.lgamma(k + 1.0)


def poisson_log_cdf(k: torch.Tensor, rate: torch.Tensor) -> torch.Tensor:
    """``log P(X <= k)`` for ``X ~ Poisson(rate)`` and integer-valued ``k`` (``-inf`` for ``k < 0``).

    Far below the rate, where the regularised gamma function underflows, the sum is its leading term times the
    geometric bound ``1 / (1 - k / rate)``, which is exact to first order there.
    """
    k, rate = torch.broadcast_tensors(k, rate)
    safe_k = k.clamp_min(0.0)
    direct = torch.special.gammaincc(safe_k + 1.0, rate)
    far = _poisson_log_pmf(safe_k, rate) - torch.log1p(-(safe_k / rate).clamp_max(1.0 - 1e-12))
    result = torch.where(direct > 1e-280, torch.log(direct.clamp_min(_TINY)), far)
    return torch.where(k < 0, torch.full_like(result, -float("inf")), result)


def poisson_log_sf(k: torch.Tensor, rate: torch.Tensor) -> torch.Tensor:
    """``log P(X > k)`` for ``X ~ Poisson(rate)`` and integer-valued ``k`` (``0`` for ``k < 0``).

    Far above the rate the sum is its leading term ``P(X = k + 1)`` times ``1 / (1 - rate / (k + 2))``.
    """
    k, rate = torch.broadcast_tensors(k, rate)
    safe_k = k.clamp_min(0.0)
    direct = torch.special.gammainc(safe_k + 1.0, rate)
    far = _poisson_log_pmf(safe_k + 1.0, rate) - torch.log1p(-(rate / (safe_k + 2.0)).clamp_max(1.0 - 1e-12))
    result = torch.where(direct > 1e-280, torch.log(direct.clamp_min(_TINY)), far)
    return torch.where(k < 0, torch.zeros_like(result), result)
