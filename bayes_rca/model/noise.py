"""Noise distributions of additive mechanisms, batched over posterior draws, with log-space tails.

A noise family holds its parameters as tensors of shape ``(D, 1)`` (D posterior draws) so that it broadcasts
against values of shape ``(D, B)``. Its location is always 0: the mechanism's location carries the mean.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import pyro.distributions as dist
import torch

from bayes_rca.numerics.special import log1mexp, log_ndtri, normal_log_interval, student_t_log_cdf


@dataclass(frozen=True)
class GaussianNoise:
    """Zero-mean Gaussian noise with standard deviation ``scale``."""

    scale: torch.Tensor

    def log_prob(self, value: torch.Tensor) -> torch.Tensor:
        z = value / self.scale
        return -0.5 * z * z - torch.log(self.scale) - 0.5 * math.log(2 * math.pi)

    def log_cdf(self, value: torch.Tensor) -> torch.Tensor:
        return torch.special.log_ndtr(value / self.scale)

    def log_sf(self, value: torch.Tensor) -> torch.Tensor:
        return torch.special.log_ndtr(-value / self.scale)

    def standard_sample(self, standard: torch.Tensor) -> torch.Tensor:
        """Map standard normal draws to draws of this noise."""
        return standard * self.scale

    @property
    def variance(self) -> torch.Tensor:
        return self.scale**2

    def distribution(self, loc: torch.Tensor) -> dist.Distribution:
        return dist.Normal(loc, self.scale)

    def to(self, device: torch.device | str) -> GaussianNoise:
        return GaussianNoise(self.scale.to(device))


@dataclass(frozen=True)
class StudentTNoise:
    """Zero-centred Student-t noise with ``df > 2`` degrees of freedom and scale ``scale``."""

    df: torch.Tensor
    scale: torch.Tensor

    def log_prob(self, value: torch.Tensor) -> torch.Tensor:
        return dist.StudentT(self.df, torch.zeros_like(self.scale), self.scale).log_prob(value)

    def log_cdf(self, value: torch.Tensor) -> torch.Tensor:
        return student_t_log_cdf(value / self.scale, self.df)

    def log_sf(self, value: torch.Tensor) -> torch.Tensor:
        return student_t_log_cdf(-value / self.scale, self.df)

    def standard_sample(self, standard: torch.Tensor, chi2: torch.Tensor) -> torch.Tensor:
        """Map standard normal and chi-square(df) draws to draws of this noise."""
        return standard * self.scale * torch.sqrt(self.df / chi2)

    @property
    def variance(self) -> torch.Tensor:
        return self.scale**2 * self.df / (self.df - 2.0)

    def distribution(self, loc: torch.Tensor) -> dist.Distribution:
        return dist.StudentT(self.df, loc, self.scale)

    def to(self, device: torch.device | str) -> StudentTNoise:
        return StudentTNoise(self.df.to(device), self.scale.to(device))


NoiseFamily = GaussianNoise | StudentTNoise


def per_draw(method, value: torch.Tensor) -> torch.Tensor:
    """Apply a noise method (``log_cdf``, ``log_sf``, ``log_prob``) to ``value (D, ...)`` of any rank.

    Noise parameters have shape ``(D, 1)``, so values are flattened to ``(D, B)`` and reshaped back.
    """
    return method(value.reshape(value.shape[0], -1)).reshape(value.shape)


def noise_log_interval(noise: NoiseFamily, low: torch.Tensor, high: torch.Tensor) -> torch.Tensor:
    """``log P(low <= N <= high)``, from the tail on the side away from zero for accuracy far out."""
    if isinstance(noise, GaussianNoise):
        return normal_log_interval(low / noise.scale, high / noise.scale)
    upper = low > 0
    log_far = torch.where(upper, noise.log_sf(low), noise.log_cdf(high))
    log_near = torch.where(upper, noise.log_sf(high), noise.log_cdf(low))
    return log_far + log1mexp((log_near - log_far).clamp_max(0.0))


def sample_noise(noise: NoiseFamily, num_samples: int, generator: torch.Generator) -> torch.Tensor:
    """Draw ``(D, num_samples)`` noise values, one row per posterior draw, from ``generator``."""
    shape = (noise.scale.shape[0], num_samples)
    standard = torch.randn(shape, generator=generator, dtype=noise.scale.dtype, device=noise.scale.device)
    if isinstance(noise, GaussianNoise):
        return noise.standard_sample(standard)
    # torch's Gamma sampler takes no generator; draw chi-square(df) from ours for reproducibility.
    chi2 = _chi2_sample(noise.df.expand(shape), generator)
    return noise.standard_sample(standard, chi2)


def sample_truncated(noise: GaussianNoise, low: torch.Tensor, high: torch.Tensor,
                     generator: torch.Generator) -> torch.Tensor:
    """Exact draws of Gaussian noise restricted to ``[low, high]`` (shape ``(D, B)``), by inverse CDF in log space.

    This is the noise posterior of a node whose observed value only says that its noise lies in an interval (a
    threshold, a count, a censored value). An interval entirely above zero is mirrored to the lower tail, where
    ``log Phi`` keeps full precision, so intervals far out in either tail are sampled exactly. Where
    ``low == high`` the noise is identified and returned as it is.
    """
    if not isinstance(noise, GaussianNoise):
        raise TypeError(f"interval noise posteriors need Gaussian noise, not {type(noise).__name__}")
    scale = noise.scale
    mirrored = low > 0
    a = torch.where(mirrored, -high, low) / scale
    b = torch.where(mirrored, -low, high) / scale
    log_a, log_b = torch.special.log_ndtr(a), torch.special.log_ndtr(b)
    uniform = torch.rand(a.shape, generator=generator, dtype=a.dtype, device=a.device)
    log_mass = log_b + log1mexp((log_a - log_b).clamp_max(0.0))
    standard = log_ndtri(torch.logaddexp(log_a, torch.log(uniform) + log_mass))
    standard = torch.minimum(torch.maximum(standard, a), b)
    draws = torch.where(mirrored, -standard, standard) * scale
    return torch.where(low == high, low, draws)


def _chi2_sample(df: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Exact chi-square(df) draws from ``generator`` by Marsaglia-Tsang's gamma sampler (vectorised rejection)."""
    alpha = 0.5 * df
    boost = alpha < 1.0
    a = torch.where(boost, alpha + 1.0, alpha)
    d = a - 1.0 / 3.0
    c = 1.0 / torch.sqrt(9.0 * d)
    out = torch.empty_like(a)
    todo = torch.ones_like(a, dtype=torch.bool)
    while bool(todo.any()):
        x = torch.randn(a.shape, generator=generator, dtype=a.dtype, device=a.device)
        u = torch.rand(a.shape, generator=generator, dtype=a.dtype, device=a.device)
        v = (1.0 + c * x) ** 3
        accept = (v > 0) & (torch.log(u) < 0.5 * x * x + d - d * v + d * torch.log(v.clamp_min(1e-300)))
        new = todo & accept
        out = torch.where(new, d * v, out)
        todo = todo & ~accept
    u = torch.rand(a.shape, generator=generator, dtype=a.dtype, device=a.device)
    out = torch.where(boost, out * u ** (1.0 / alpha), out)
    return 2.0 * out
