"""Special functions in torch that torch lacks: the log of the regularised incomplete beta function.

Used for the Student-t CDF in log space, so that tail probabilities far out stay finite and accurate.
"""

from __future__ import annotations

import torch

_TINY = 1e-300
_MAX_ITERATIONS = 300


def _log1mexp(x: torch.Tensor) -> torch.Tensor:
    """``log(1 - exp(x))`` for ``x <= 0``, accurate for x near 0 and very negative."""
    return torch.where(x > -0.6931471805599453, torch.log(-torch.expm1(x)), torch.log1p(-torch.exp(x)))


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
    result = torch.where(direct, log_part, _log1mexp(log_part))
    result = torch.where(log_x == -float("inf"), torch.full_like(result, -float("inf")), result)
    return torch.where(log_one_minus_x == -float("inf"), torch.zeros_like(result), result)


def student_t_log_cdf(t: torch.Tensor, df: torch.Tensor) -> torch.Tensor:
    """``log P(T <= t)`` for a standard Student-t variable with ``df`` degrees of freedom."""
    t, df = torch.broadcast_tensors(t, df)
    # z = df / (df + t^2) and 1 - z = t^2 / (df + t^2), both in log space: t^2 would overflow beyond 1e154,
    # and 1 - z would cancel for t^2 << df.
    log_t2 = 2.0 * torch.log(t.abs())
    log_denominator = torch.logaddexp(torch.log(df), log_t2)
    log_z, log_one_minus_z = torch.log(df) - log_denominator, log_t2 - log_denominator
    # log(0.5 * I_z(df/2, 1/2)) is the lower tail for t < 0 and the upper tail for t > 0.
    log_tail = -0.6931471805599453 + log_betainc(0.5 * df, torch.full_like(df, 0.5), log_z, log_one_minus_z)
    return torch.where(t < 0, log_tail, _log1mexp(log_tail))
