"""Shapley values of a batched set function, exactly or by antithetic permutation sampling.

A game is a callable ``masks (C, K) -> (values (..., C), batches (B, ..., C) or None)``: ``masks[c, j]`` says
whether player ``j`` is in coalition ``c``; the optional batches are independent Monte Carlo replicates used
for the standard error. Shapley values are linear in the game's values, so both are handled by one matrix
product (exact) or one gather (permutations), with the draws, rows and batches as batch dimensions.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import torch

Game = Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor | None]]


class CounterfactualGame(Protocol):
    """A :data:`Game` of the attribution: ``g(S)`` per posterior draw and row, with the IT ``score (D, R)`` its
    Shapley values sum to and the ``chunk_size`` of coalitions it evaluates at once (the games of
    :mod:`bayes_rca.attribution.linear_game`, :mod:`bayes_rca.attribution.scale_mixture_game` and :mod:`bayes_rca.attribution.monte_carlo_game`)."""

    score: torch.Tensor
    chunk_size: int

    def __call__(self, masks: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]: ...


_MAX_CODED_PLAYERS = 62  # coalitions of up to this many players are coded as one int64


@dataclass(frozen=True)
class ShapleyEstimate:
    """Shapley values ``(..., K)`` and their Monte Carlo standard errors (zeros where exact)."""

    values: torch.Tensor
    standard_error: torch.Tensor


def coalition_masks(num_players: int, start: int, stop: int, device: torch.device | str = "cpu") -> torch.Tensor:
    """Masks ``(stop - start, K)`` of the coalitions numbered ``start..stop-1`` (bit ``j`` = player ``j``)."""
    codes = torch.arange(start, stop, device=device)
    return ((codes.unsqueeze(-1) >> torch.arange(num_players, device=device)) & 1).bool()


def exact_weights(masks: torch.Tensor, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """Signed Shapley weights ``(C, K)``: ``phi = sum_S g(S) W[S]``.

    ``W[S, j] = |S-1|! (K-|S|)! / K!`` if ``j`` is in ``S`` and ``-|S|! (K-|S|-1)! / K!`` otherwise.
    """
    num_players = masks.shape[-1]
    size = masks.sum(-1, keepdim=True).to(dtype)
    log_k = math.lgamma(num_players + 1)

    def weight(s: torch.Tensor) -> torch.Tensor:  # s! (K - s - 1)! / K!, zero outside 0 <= s <= K - 1
        valid = (s >= 0) & (s <= num_players - 1)
        s = s.clamp(0, num_players - 1)
        return torch.where(valid, torch.exp(torch.lgamma(s + 1) + torch.lgamma(num_players - s) - log_k), 0.0)

    return torch.where(masks, weight(size - 1), -weight(size))


def exact_shapley(game: Game, num_players: int, chunk_size: int, device: torch.device | str = "cpu") -> ShapleyEstimate:
    """Exact Shapley values by enumerating all ``2^K`` coalitions in chunks."""
    total = 1 << num_players
    values = batches = None
    for start in range(0, total, chunk_size):
        masks = coalition_masks(num_players, start, min(total, start + chunk_size), device)
        game_values, game_batches = game(masks)
        weights = exact_weights(masks, game_values.dtype)
        part = game_values @ weights
        values = part if values is None else values + part
        if game_batches is not None:
            part_b = game_batches @ weights
            batches = part_b if batches is None else batches + part_b
    return ShapleyEstimate(values, _batch_error(values, batches))


def _batch_error(values: torch.Tensor, batches: torch.Tensor | None) -> torch.Tensor:
    if batches is None:
        return torch.zeros_like(values)
    return batches.std(dim=0) / math.sqrt(batches.shape[0])


def distinct_coalitions(masks: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The distinct rows of ``masks (N, K)`` and, for each row, the index of its distinct row.

    Up to 62 players a coalition is one integer code and the sort is one-dimensional (much faster than
    ``torch.unique(dim=0)`` on boolean rows). Beyond, the prefixes of a few permutations of so many players
    rarely coincide (apart from the empty and full coalitions), so every row is kept: sorting them would cost
    more than the few repeated evaluations.
    """
    num_players = masks.shape[-1]
    if num_players > _MAX_CODED_PLAYERS:
        return masks, torch.arange(masks.shape[0], device=masks.device)
    bits = torch.arange(num_players, device=masks.device)
    codes = (masks.long() << bits).sum(-1)
    distinct, inverse = torch.unique(codes, return_inverse=True)
    return ((distinct.unsqueeze(-1) >> bits) & 1).bool(), inverse


def _permutation_chunk(game: Game, num_players: int, pairs: int, generator: torch.Generator, chunk_size: int,
                       device: torch.device | str) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """``pairs`` antithetic permutation pairs, their distinct coalitions evaluated ``chunk_size`` at a time.

    Returns the sum and the sum of squares over pairs of each pair's mean marginal contributions ``(..., K)``,
    and the sum over permutations of the game's per-batch marginal contributions ``(B, ..., K)`` (or None).
    """
    noise = torch.rand(pairs, num_players, generator=generator, device=generator.device)
    forward = torch.argsort(noise, dim=-1).to(device)
    orders = torch.cat([forward, forward.flip(-1)])  # (P, K)
    rank = torch.argsort(orders, dim=-1)  # position of each player in each permutation
    prefix = rank.unsqueeze(1) < torch.arange(num_players + 1, device=device).view(1, -1, 1)  # (P, K+1, K)
    unique, inverse = distinct_coalitions(prefix.reshape(-1, num_players))
    parts = [game(unique[start:start + chunk_size]) for start in range(0, unique.shape[0], chunk_size)]
    game_values = torch.cat([values for values, _ in parts], -1)
    game_batches = None if parts[0][1] is None else torch.cat([batches for _, batches in parts], -1)

    def pair_means(coalition_values: torch.Tensor) -> torch.Tensor:  # (..., C) -> (..., pairs, K)
        values = coalition_values[..., inverse].unflatten(-1, prefix.shape[:2])  # (..., P, K+1)
        marginal = values.diff(dim=-1)  # step i adds player orders[p, i]; its reverse adds it at step K-1-i
        paired = marginal[..., :pairs, :].add_(marginal[..., pairs:, :].flip(-1)).mul_(0.5)
        return torch.gather(paired, -1, rank[:pairs].expand(*paired.shape[:-1], -1))

    per_pair = pair_means(game_values)
    batch_sum = None if game_batches is None else 2.0 * pair_means(game_batches).sum(-2)
    return per_pair.sum(-2), per_pair.square_().sum(-2), batch_sum


def permutation_shapley(game: Game, num_players: int, num_permutations: int, generator: torch.Generator,
                        chunk_size: int, device: torch.device | str = "cpu", tolerance: float | None = None,
                        max_permutations: int = 100_000) -> ShapleyEstimate:
    """Shapley values from permutations in antithetic pairs (each with its reverse).

    Each permutation's marginal contributions telescope, so efficiency holds exactly for the estimate. The
    standard error combines the spread over antithetic pairs with the game's own Monte Carlo error. Pairs are
    processed in chunks of at most ``chunk_size`` coalitions, so memory does not grow with the permutations.

    Parameters
    ----------
    num_permutations : int
        Permutations per round (the only round when ``tolerance`` is None).
    tolerance : float, optional
        Draw further rounds until every standard error is at most ``tolerance`` or ``max_permutations``
        permutations have been drawn.
    max_permutations : int
        Upper bound on the permutations drawn when ``tolerance`` is given.
    """
    pairs_per_round = max(1, num_permutations // 2)
    pairs_per_chunk = max(1, chunk_size // (2 * (num_players + 1)))
    pairs, total, total_sq, batch_total = 0, 0.0, 0.0, None
    while True:
        for start in range(0, pairs_per_round, pairs_per_chunk):
            count = min(pairs_per_chunk, pairs_per_round - start)
            chunk_sum, chunk_sq, chunk_batches = _permutation_chunk(game, num_players, count, generator,
                                                                    chunk_size, device)
            pairs += count
            total, total_sq = total + chunk_sum, total_sq + chunk_sq
            if chunk_batches is not None:
                batch_total = chunk_batches if batch_total is None else batch_total + chunk_batches
        estimate = total / pairs
        sampling_var = ((total_sq - pairs * estimate**2) / (pairs - 1)).clamp_min(0.0) / pairs if pairs > 1 \
            else torch.zeros_like(estimate)
        game_var = 0.0 if batch_total is None else _batch_error(estimate, batch_total / (2 * pairs)) ** 2
        error = torch.sqrt(sampling_var + game_var)
        if tolerance is None or bool((error <= tolerance).all()) or 2 * (pairs + pairs_per_round) > max_permutations:
            return ShapleyEstimate(estimate, error)
