"""Functionals of the target's distribution whose change between two periods is attributed (difference of means,
of a quantile, of the sd, KL divergence): closed form on Gaussian moments and estimated from samples."""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass

import torch

from bayes_rca.errors import BayesRCAError

DELTA_FRACTION = 0.1  # default threshold of the decision rule: a tenth of the old target's natural scale
Tensor = torch.Tensor


@dataclass(frozen=True)
class Functional:
    """A change functional of the target's (Gaussian) distribution.

    Attributes
    ----------
    name : str
        Its name in results.
    change : callable
        ``change(mean, variance, old_mean, old_variance) -> v``: the change of the distribution with the given
        moments from the old one (shapes broadcast; ``old_*`` are ``(D, 1)``). It must be 0 at the old moments.
    default_delta : callable or None
        ``default_delta(old_mean, old_variance) -> (D,)``: the threshold of the decision rule per draw, in the
        functional's units (its posterior mean is used), or None when there is no natural one.
    sample_statistic : callable or None
        For the Monte Carlo estimator: ``sample_statistic(samples (..., S)) -> (...)``, a statistic of samples of
        the target along the last axis, the change being ``statistic(P_S) - statistic(P_old)``. None: the
        functional needs the target's density (``"kl"``) and the Monte Carlo estimator refuses it.
    """

    name: str
    change: Callable[[Tensor, Tensor, Tensor, Tensor], Tensor]
    default_delta: Callable[[Tensor, Tensor], Tensor] | None = None
    sample_statistic: Callable[[Tensor], Tensor] | None = None


def difference_functional(name: str, statistic: Callable[[Tensor, Tensor], Tensor],
                          default_delta: Callable[[Tensor, Tensor], Tensor] | None = None,
                          sample_statistic: Callable[[Tensor], Tensor] | None = None) -> Functional:
    """The functional ``statistic(P_S) - statistic(P_old)`` for a ``statistic(mean, variance)``.

    On samples it is ``sample_statistic``, by default ``statistic`` of the sample mean and (unbiased) variance.
    """
    if sample_statistic is None:
        def sample_statistic(samples: Tensor) -> Tensor:
            return statistic(samples.mean(-1), samples.var(-1))
    return Functional(name, lambda m, v, m0, v0: statistic(m, v) - statistic(m0, v0), default_delta,
                      sample_statistic)


def sample_quantile(samples: Tensor, q: float) -> Tensor:
    """The ``q``-quantile along the last axis (linear interpolation, numpy's default), for any size of input
    (``torch.quantile`` refuses more than 2^24 elements)."""
    ordered = samples.sort(-1).values
    position = q * (samples.shape[-1] - 1)
    low = int(math.floor(position))
    high = min(low + 1, samples.shape[-1] - 1)
    return ordered[..., low] + (position - low) * (ordered[..., high] - ordered[..., low])


def _gaussian_kl(m: Tensor, v: Tensor, m0: Tensor, v0: Tensor) -> Tensor:
    """``KL(Normal(m, v) || Normal(m0, v0))``."""
    return 0.5 * (torch.log(v0 / v) + (v + (m - m0) ** 2) / v0 - 1.0)


def _sd_delta(m0: Tensor, v0: Tensor) -> Tensor:
    return DELTA_FRACTION * torch.sqrt(v0)


def quantile_functional(q: float) -> Functional:
    """The change of the target's ``q``-quantile, ``m + sqrt(v) Phi^-1(q)`` for a Gaussian target."""
    if not 0 < q < 1:
        raise BayesRCAError(f"a quantile functional needs 0 < q < 1, got {q!r}")
    z = math.sqrt(2.0) * torch.erfinv(torch.tensor(2.0 * q - 1.0, dtype=torch.float64)).item()
    return difference_functional(f"quantile({q:g})", lambda m, v: m + z * torch.sqrt(v), _sd_delta,
                                 lambda samples: sample_quantile(samples, q))


FUNCTIONALS: dict[str, Functional] = {
    "mean": difference_functional("mean", lambda m, v: m, _sd_delta),
    "variance": difference_functional("variance", lambda m, v: v, lambda m0, v0: DELTA_FRACTION * v0),
    "std": difference_functional("std", lambda m, v: torch.sqrt(v), _sd_delta),
    # 0.005 nats: the KL divergence of a shift of the mean by a tenth of an sd; closed form only (no samples)
    "kl": Functional("kl", _gaussian_kl, lambda m0, v0: torch.full_like(m0, 0.5 * DELTA_FRACTION**2)),
}
"""The built-in functionals; ``"quantile(q)"`` also names :func:`quantile_functional`."""

_QUANTILE = re.compile(r"^\s*quantile\s*\(\s*([0-9.eE+-]+)\s*\)\s*$")


def get_functional(spec: str | Functional | Callable[[Tensor, Tensor], Tensor]) -> Functional:
    """A :class:`Functional` from a registry name (:data:`FUNCTIONALS`, ``"quantile(0.9)"``), an instance, or a
    callable ``statistic(mean, variance)`` on torch tensors, which gives ``statistic(P_S) - statistic(P_old)``
    (no default threshold: give ``delta`` to the decision rule)."""
    if isinstance(spec, Functional):
        return spec
    if isinstance(spec, str):
        if spec in FUNCTIONALS:
            return FUNCTIONALS[spec]
        match = _QUANTILE.match(spec)
        if match:
            try:
                q = float(match.group(1))
            except ValueError:
                q = None
            if q is not None:
                return quantile_functional(q)
        raise BayesRCAError(f"unknown functional {spec!r}; use one of {', '.join(FUNCTIONALS)}, 'quantile(q)', a "
                            "Functional or a callable statistic(mean, variance)")
    if callable(spec):
        return difference_functional(getattr(spec, "__name__", "custom"), spec)
    raise BayesRCAError(f"functional must be a name, a Functional or a callable, got {type(spec).__name__}")
