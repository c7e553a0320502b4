"""bayes_rca.attribution.shapley against the textbook definition of the Shapley value.

Games are lookup tables ``g[code(S)]`` (bit ``j`` of the code = player ``j``). The reference is the classic
definition, averaged over all ``K!`` orders with ``itertools.permutations``, written here independently.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from bayes_rca.attribution.shapley import (
    coalition_masks,
    distinct_coalitions,
    exact_shapley,
    exact_weights,
    permutation_shapley,
)


def code(coalition) -> int:
    return sum(1 << j for j in coalition)


def brute_force_shapley(table: np.ndarray, num_players: int) -> np.ndarray:
    """phi_j = mean over all orders of g(predecessors + j) - g(predecessors)."""
    phi = np.zeros(num_players)
    orders = list(itertools.permutations(range(num_players)))
    for order in orders:
        seen = 0
        for player in order:
            phi[player] += table[seen | (1 << player)] - table[seen]
            seen |= 1 << player
    return phi / len(orders)


def subset_formula_shapley(table: np.ndarray, num_players: int) -> np.ndarray:
    """phi_j = sum_{S not containing j} |S|! (K-|S|-1)! / K! (g(S + j) - g(S))."""
    phi = np.zeros(num_players)
    for j in range(num_players):
        others = [i for i in range(num_players) if i != j]
        for size in range(num_players):
            weight = math.factorial(size) * math.factorial(num_players - size - 1) / math.factorial(num_players)
            for subset in itertools.combinations(others, size):
                phi[j] += weight * (table[code(subset) | (1 << j)] - table[code(subset)])
    return phi


class TableGame:
    """A game given by a lookup table ``(..., 2^K)``; counts the coalitions it is asked about."""

    def __init__(self, table: np.ndarray, batches: np.ndarray | None = None) -> None:
        self.table = torch.as_tensor(table, dtype=torch.float64)
        self.batches = None if batches is None else torch.as_tensor(batches, dtype=torch.float64)
        self.calls = 0

    def __call__(self, masks: torch.Tensor):
        self.calls += masks.shape[0]
        codes = (masks.long() << torch.arange(masks.shape[-1])).sum(-1)
        batches = None if self.batches is None else self.batches[..., codes]
        return self.table[..., codes], batches


def random_table(rng: np.random.Generator, num_players: int, *batch: int) -> np.ndarray:
    return rng.normal(scale=3.0, size=(*batch, 1 << num_players))


def test_coalition_masks_enumerate_bits():
    masks = coalition_masks(3, 0, 8)
    assert masks.shape == (8, 3)
    for number, mask in enumerate(masks.tolist()):
        assert code(j for j in range(3) if mask[j]) == number
    np.testing.assert_array_equal(coalition_masks(3, 5, 7).numpy(), masks[5:7].numpy())


@pytest.mark.parametrize("num_players", [1, 2, 3, 4, 5])
def test_exact_weights_give_the_classic_formula(num_players):
    rng = np.random.default_rng(num_players)
    table = random_table(rng, num_players)
    weights = exact_weights(coalition_masks(num_players, 0, 1 << num_players)).numpy()
    phi = table @ weights
    np.testing.assert_allclose(phi, brute_force_shapley(table, num_players), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(phi, subset_formula_shapley(table, num_players), rtol=1e-12, atol=1e-12)
    # the weights themselves: |S|-1)! (K-|S|)! / K! in S, -|S|! (K-|S|-1)! / K! outside
    masks = coalition_masks(num_players, 0, 1 << num_players).numpy()
    for row, mask in enumerate(masks):
        size = int(mask.sum())
        for j in range(num_players):
            if mask[j]:
                expected = math.factorial(size - 1) * math.factorial(num_players - size) / math.factorial(num_players)
            else:
                expected = -math.factorial(size) * math.factorial(num_players - size - 1) / math.factorial(num_players)
            assert weights[row, j] == pytest.approx(expected, rel=1e-12)


@st.composite
def games(draw, max_players: int = 5):
    num_players = draw(st.integers(1, max_players))
    values = draw(st.lists(st.floats(-1e3, 1e3, allow_nan=False, allow_infinity=False),
                           min_size=1 << num_players, max_size=1 << num_players))
    return num_players, np.array(values)


@settings(max_examples=60, deadline=None, database=None)
@given(games(), st.integers(1, 40))
def test_exact_shapley_equals_brute_force_and_satisfies_efficiency(game, chunk_size):
    num_players, table = game
    tolerance = 1e-9 * (1.0 + np.abs(table).max())
    estimate = exact_shapley(TableGame(table), num_players, chunk_size)
    phi = estimate.values.numpy()
    np.testing.assert_allclose(phi, brute_force_shapley(table, num_players), atol=tolerance, rtol=0)
    assert phi.sum() == pytest.approx(table[-1] - table[0], abs=tolerance)
    assert (estimate.standard_error == 0).all()


def test_exact_shapley_handles_batch_dimensions_and_chunks():
    rng = np.random.default_rng(1)
    table = random_table(rng, 4, 3, 2)  # (D=3, R=2, 16)
    game = TableGame(table)
    phi = exact_shapley(game, 4, chunk_size=5).values.numpy()
    assert phi.shape == (3, 2, 4) and game.calls == 16
    for d, r in itertools.product(range(3), range(2)):
        np.testing.assert_allclose(phi[d, r], brute_force_shapley(table[d, r], 4), rtol=1e-12, atol=1e-12)


@settings(max_examples=40, deadline=None, database=None)
@given(st.integers(2, 5), st.data())
def test_symmetric_players_get_equal_values(num_players, data):
    i, j = data.draw(st.lists(st.integers(0, num_players - 1), min_size=2, max_size=2, unique=True))
    values = data.draw(st.lists(st.floats(-100, 100), min_size=1 << num_players, max_size=1 << num_players))
    table = np.array(values)
    for number in range(1 << num_players):  # make g(S) invariant under swapping i and j
        has_i, has_j = (number >> i) & 1, (number >> j) & 1
        swapped = number & ~((1 << i) | (1 << j)) | (has_j << i) | (has_i << j)
        table[swapped] = table[number] if swapped > number else table[swapped]
    phi = exact_shapley(TableGame(table), num_players, 64).values.numpy()
    assert phi[i] == pytest.approx(phi[j], abs=1e-9 * (1 + np.abs(table).max()))


@settings(max_examples=40, deadline=None, database=None)
@given(st.integers(1, 5), st.data())
def test_null_player_gets_zero(num_players, data):
    null = data.draw(st.integers(0, num_players - 1))
    values = data.draw(st.lists(st.floats(-100, 100), min_size=1 << num_players, max_size=1 << num_players))
    table = np.array(values)
    for number in range(1 << num_players):
        table[number] = table[number & ~(1 << null)]  # g(S + null) = g(S)
    estimate = exact_shapley(TableGame(table), num_players, 64).values.numpy()
    assert abs(estimate[null]) <= 1e-12 * (1 + np.abs(table).max())
    if num_players > 1:  # the others share g(all) - g(empty)
        assert estimate.sum() == pytest.approx(table[-1] - table[0], abs=1e-9 * (1 + np.abs(table).max()))


def test_additive_game_gives_each_player_its_own_value():
    worth = np.array([1.5, -2.0, 0.25, 4.0])
    table = np.array([worth[[j for j in range(4) if n >> j & 1]].sum() for n in range(16)]) + 7.0
    phi = exact_shapley(TableGame(table), 4, 16).values.numpy()
    np.testing.assert_allclose(phi, worth, rtol=1e-13)


@settings(max_examples=30, deadline=None, database=None)
@given(games(max_players=5), st.integers(1, 30), st.integers(0, 2**31 - 1))
def test_permutation_estimate_is_efficient_for_every_sample(game, num_permutations, seed):
    num_players, table = game
    generator = torch.Generator().manual_seed(seed)
    estimate = permutation_shapley(TableGame(table), num_players, num_permutations, generator, chunk_size=7)
    phi = estimate.values.numpy()
    # each order's marginal contributions telescope to g(all) - g(empty)
    assert phi.sum() == pytest.approx(table[-1] - table[0], abs=1e-9 * (1 + np.abs(table).max()))
    assert np.isfinite(estimate.standard_error.numpy()).all() and (estimate.standard_error >= 0).all()


def test_one_antithetic_pair_is_exact_for_two_players():
    """With K=2 a permutation and its reverse are all the orders there are."""
    table = random_table(np.random.default_rng(7), 2, 3)
    estimate = permutation_shapley(TableGame(table), 2, 2, torch.Generator().manual_seed(0), 64)
    expected = np.stack([brute_force_shapley(t, 2) for t in table])
    np.testing.assert_allclose(estimate.values.numpy(), expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("num_players, seed", [(4, 0), (5, 1), (5, 2)])
def test_permutation_estimate_converges_to_exact_within_its_standard_error(num_players, seed):
    rng = np.random.default_rng(seed)
    table = random_table(rng, num_players, 3)  # three independent games in one batch
    exact = np.stack([brute_force_shapley(t, num_players) for t in table])
    few = permutation_shapley(TableGame(table), num_players, 40, torch.Generator().manual_seed(seed), 64)
    many = permutation_shapley(TableGame(table), num_players, 4000, torch.Generator().manual_seed(seed), 64)
    for estimate in (few, many):
        error = estimate.standard_error.numpy()
        assert (error > 0).all()
        assert (np.abs(estimate.values.numpy() - exact) <= 4.5 * error + 1e-12).all()
    # the error shrinks like 1/sqrt(pairs): 100x the permutations, about 10x smaller
    ratio = few.standard_error.numpy().mean() / many.standard_error.numpy().mean()
    assert 6 < ratio < 16
    assert np.abs(many.values.numpy() - exact).max() < np.abs(table).max() * 0.05


def test_permutation_standard_error_is_calibrated():
    """Over independent seeds, (estimate - exact) / standard_error has about unit spread."""
    rng = np.random.default_rng(3)
    table = random_table(rng, 5, 4)
    exact = np.stack([brute_force_shapley(t, 5) for t in table])
    z = []
    for seed in range(60):
        estimate = permutation_shapley(TableGame(table), 5, 60, torch.Generator().manual_seed(seed), 64)
        z.append((estimate.values.numpy() - exact) / estimate.standard_error.numpy())
    z = np.concatenate([zz.ravel() for zz in z])
    assert abs(z.mean()) < 0.15
    assert 0.8 < z.std() < 1.25


def test_game_batches_enter_the_standard_error():
    """Batches ``g + delta_b * f`` give batch Shapley values ``phi_g + delta_b * phi_f`` by linearity."""
    rng = np.random.default_rng(5)
    g, f = random_table(rng, 3), random_table(rng, 3)
    delta = np.array([-1.0, 0.5, 2.0, -0.25, 0.0])
    batches = g[None] + delta[:, None] * f[None]  # (B, 2^K)
    phi_f = brute_force_shapley(f, 3)
    expected_error = np.abs(phi_f) * delta.std(ddof=1) / math.sqrt(len(delta))
    exact = exact_shapley(TableGame(g, batches), 3, 3)
    np.testing.assert_allclose(exact.values.numpy(), brute_force_shapley(g, 3), rtol=1e-12)
    np.testing.assert_allclose(exact.standard_error.numpy(), expected_error, rtol=1e-10)
    # two players: one antithetic pair covers both orders, so only the game's own error remains
    g2, f2 = random_table(rng, 2), random_table(rng, 2)
    batches2 = g2[None] + delta[:, None] * f2[None]
    sampled = permutation_shapley(TableGame(g2, batches2), 2, 10, torch.Generator().manual_seed(0), 4)
    np.testing.assert_allclose(sampled.values.numpy(), brute_force_shapley(g2, 2), rtol=1e-12)
    np.testing.assert_allclose(sampled.standard_error.numpy(),
                               np.abs(brute_force_shapley(f2, 2)) * delta.std(ddof=1) / math.sqrt(len(delta)),
                               rtol=1e-10)


def test_permutation_sampling_is_deterministic_per_generator_seed():
    table = random_table(np.random.default_rng(0), 5)
    first = permutation_shapley(TableGame(table), 5, 30, torch.Generator().manual_seed(4), 64)
    second = permutation_shapley(TableGame(table), 5, 30, torch.Generator().manual_seed(4), 64)
    other = permutation_shapley(TableGame(table), 5, 30, torch.Generator().manual_seed(5), 64)
    assert torch.equal(first.values, second.values) and torch.equal(first.standard_error, second.standard_error)
    assert not torch.equal(first.values, other.values)


class QuadraticGame:
    """``g(S) = sum_S w_j + sum_{j < k in S} u_jk``, with Shapley values ``w_j + sum_k u_jk / 2``."""

    def __init__(self, rng: np.random.Generator, num_players: int) -> None:
        self.linear = torch.as_tensor(rng.normal(size=num_players))
        upper = np.triu(rng.normal(size=(num_players, num_players)), 1)
        self.pairwise = torch.as_tensor(upper + upper.T)

    def __call__(self, masks: torch.Tensor):
        weights = masks.to(torch.float64)
        pairs = 0.5 * torch.einsum("cj,jk,ck->c", weights, self.pairwise, weights)
        return weights @ self.linear + pairs, None

    def shapley(self) -> np.ndarray:
        return (self.linear + 0.5 * self.pairwise.sum(-1)).numpy()


@pytest.mark.parametrize("num_players", [3, 17, 70])
def test_each_antithetic_pair_is_exact_for_quadratic_games(num_players):
    """Player j's predecessors in a permutation and in its reverse are complements: their mean is exact.

    70 players take the path that keeps every prefix (no integer coding beyond 62 players).
    """
    game = QuadraticGame(np.random.default_rng(num_players), num_players)
    estimate = permutation_shapley(game, num_players, 6, torch.Generator().manual_seed(1), chunk_size=50)
    np.testing.assert_allclose(estimate.values.numpy(), game.shapley(), rtol=1e-10, atol=1e-10)
    assert estimate.standard_error.max() < 1e-6  # the square root of rounding in the spread over pairs


@pytest.mark.parametrize("num_players", [5, 62, 63])
def test_distinct_coalitions_index_back_to_every_row(num_players):
    rng = np.random.default_rng(num_players)
    masks = torch.as_tensor(rng.random((40, num_players)) < 0.5)
    masks = torch.cat([masks, masks[:7], torch.zeros(3, num_players, dtype=torch.bool)])
    distinct, inverse = distinct_coalitions(masks)
    assert torch.equal(distinct[inverse], masks)
    if num_players <= 62:
        assert distinct.shape[0] == torch.unique(masks, dim=0).shape[0]
