"""Gaussian tail and interval log-probabilities against scipy's log_ndtr, from the bulk to hundreds of sd out."""

from __future__ import annotations

import numpy as np
import torch
from scipy import special

from bayes_rca.attribution.scores import gaussian_log_tail
from bayes_rca.numerics.special import normal_log_interval


def reference(mean, std, lo, hi):
    safe = np.where(std > 0, std, 1.0)
    log_p = np.logaddexp(special.log_ndtr((lo - mean) / safe), special.log_ndtr((mean - hi) / safe))
    return np.where(std > 0, np.minimum(log_p, 0.0), 0.0)


def reference_interval(low, high):
    """log(Phi(high) - Phi(low)) with scipy's log_ndtr, from the tail away from zero."""
    upper = low > 0
    log_far = np.where(upper, special.log_ndtr(-low), special.log_ndtr(high))
    log_near = np.where(upper, special.log_ndtr(-high), special.log_ndtr(low))
    return log_far + np.log(-np.expm1(log_near - log_far))


def test_two_tails_match_scipy_from_the_bulk_to_far_out():
    rng = np.random.default_rng(0)
    n = 200_000
    mean = rng.normal(size=n) * np.exp(rng.uniform(-3, 7, n))
    std = np.exp(rng.uniform(-4, 3, n))
    std[:100] = 0.0
    lo, hi = -np.exp(rng.uniform(-3, 7, n)), np.exp(rng.uniform(-3, 7, n))
    expected = reference(mean, std, lo, hi)
    got = gaussian_log_tail(*(torch.tensor(a) for a in (mean, std, lo, hi))).numpy()
    assert (expected < -1e4).sum() > 1000 and (expected > -1e-6).sum() > 1000  # both ends are exercised
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-13)
    assert (got[:100] == 0.0).all()


def test_broadcasting_and_the_threshold_where_erfc_underflows():
    """Just inside and beyond ~37 sd the sum of erfc terms underflows; those elements use log_ndtr."""
    z = torch.linspace(30.0, 45.0, 301, dtype=torch.float64)
    mean = torch.zeros(2, 1, 301, dtype=torch.float64)
    std = torch.ones(1, 1, 301, dtype=torch.float64) / z
    lo = torch.tensor([[[-1.0]], [[-1e9]]], dtype=torch.float64)
    got = gaussian_log_tail(mean, std, lo, torch.ones_like(lo))
    assert got.shape == (2, 1, 301)
    z_np = z.numpy()
    np.testing.assert_allclose(got[0, 0].numpy(), np.log(2.0) + special.log_ndtr(-z_np), rtol=1e-13)
    np.testing.assert_allclose(got[1, 0].numpy(), special.log_ndtr(-z_np), rtol=1e-13)


def test_normal_interval_matches_scipy_on_both_sides_across_zero_and_far_out():
    rng = np.random.default_rng(1)
    n = 200_000
    low = rng.normal(size=n) * np.exp(rng.uniform(-4, 5, n))
    high = low + np.exp(rng.uniform(-6, 4, n))
    expected = reference_interval(low, high)
    got = normal_log_interval(torch.tensor(low), torch.tensor(high)).numpy()
    assert (expected < -1000).sum() > 1000 and ((low < 0) & (high > 0)).sum() > 1000
    # a narrow interval is the difference of two close tails: both forms lose relative precision alike
    tolerance = 1e-12 + 1e-15 / np.minimum(1.0, high - low)
    assert (np.abs(got - expected) <= tolerance * np.maximum(1.0, np.abs(expected))).all()


def test_float32_nan_and_broadcast_edge_cases():
    """float32 reaches the log_ndtr path too; a NaN element neither hides far ones nor spreads; std may widen."""
    z = torch.tensor([14.0, 20.0, 40.0])
    got = gaussian_log_tail(torch.zeros(3), torch.ones(3), -z, z)
    np.testing.assert_allclose(got.numpy(), np.log(2.0) + special.log_ndtr(-z.double().numpy()), rtol=1e-6)
    np.testing.assert_allclose(normal_log_interval(torch.tensor([20.0]), torch.tensor([21.0])).numpy(),
                               reference_interval(np.array([20.0]), np.array([21.0])), rtol=1e-6)
    mean = torch.tensor([0.0, 0.0, float("nan")], dtype=torch.float64)
    got = gaussian_log_tail(mean, torch.tensor(1.0, dtype=torch.float64),
                            torch.tensor([-50.0, -1.0, -1.0], dtype=torch.float64),
                            torch.tensor([50.0, 1.0, 1.0], dtype=torch.float64)).numpy()
    np.testing.assert_allclose(got[:2], np.log(2.0) + special.log_ndtr(-np.array([50.0, 1.0])), rtol=1e-13)
    assert np.isnan(got[2])
    widened = gaussian_log_tail(torch.zeros(3, 1), torch.full((1, 4), 2.0), -torch.ones(3, 1), torch.ones(3, 1))
    assert widened.shape == (3, 4)
    np.testing.assert_allclose(widened.numpy(), np.log(2.0) + special.log_ndtr(-0.5), rtol=1e-6)
