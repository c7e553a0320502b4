"""Checks the Shapley values of a counterfactual game against its own score before anything else touches them.

Efficiency: the contributions of each posterior draw sum to that draw's IT score as the game reports it
(``g(all) - g(empty)``, with ``g(empty) = 0``). Finiteness: no NaN or infinite value. Both
hold for any correct game and Shapley estimator (exact enumeration and every permutation telescope); a
violation means a bug in a game or a numerical failure, and raises an error naming the draw, outlier and node.
The null players (nodes that are not ancestors of the target) never enter a game; they are filled in with
exact zeros afterwards (:func:`~bayes_rca.attribution.api.embed_players`).

:func:`verify_shapley_values` is the one check of both games: the outliers' (:func:`verify_attribution`) and the
distribution change's (:func:`bayes_rca.change.api.verify_change`, which also checks its null players);
only the wording of its messages (:class:`Wording`) differs.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass

import numpy as np

from bayes_rca.errors import VerificationError

EFFICIENCY_RTOL = 1e-6


@dataclass(frozen=True)
class Wording:
    """How a game's total is named in the messages of :func:`verify_shapley_values`."""

    total: str  # e.g. "non-finite IT score at ..."
    total_is: str  # e.g. "..., IT score is 4"
    name_largest: bool = False  # end the efficiency message with the node of the largest contribution


OUTLIER_WORDING = Wording("IT score", "IT score is")


def verify_shapley_values(contributions: np.ndarray, totals: np.ndarray, players: Sequence[Hashable],
                          where: Callable[[tuple[int, ...]], str], wording: Wording = OUTLIER_WORDING,
                          null_players: Sequence[int] = ()) -> None:
    """Raise :class:`VerificationError` unless the Shapley values of a game are finite, exactly 0 for its null
    players and sum to its total (efficiency), per draw and case.

    Parameters
    ----------
    contributions : numpy.ndarray
        ``(..., K)`` contributions; the last axis is ``players``.
    totals : numpy.ndarray
        ``(...)`` the game's ``v(all) - v(empty)`` of the same draws and cases.
    players : sequence
        Labels of the last axis.
    where : callable
        Words the index of a draw and case (``contributions``' leading axes), e.g. ``draw 3, outlier 'x'``.
    wording : Wording
        How the total is named.
    null_players : sequence of int
        Positions on the last axis whose contributions must be exactly 0 (checked before efficiency).
    """
    for array, what in ((contributions, "contribution"), (totals, wording.total)):
        bad = np.argwhere(~np.isfinite(array))
        if len(bad):
            index = tuple(int(i) for i in bad[0])
            node = f", node {players[index[-1]]!r}" if array.ndim == totals.ndim + 1 else ""
            raise VerificationError(f"non-finite {what} at {where(index[:totals.ndim])}{node}")
    for col in null_players:
        nonzero = np.argwhere(contributions[..., col] != 0)
        if len(nonzero):
            index = tuple(int(i) for i in nonzero[0])
            raise VerificationError(f"null player violated: node {players[col]!r} is not an ancestor of the target "
                                    f"but has contribution {contributions[(*index, col)]:.3g} at {where(index)}")
    gap = np.abs(contributions.sum(-1) - totals)
    violated = np.argwhere(gap > EFFICIENCY_RTOL * (1.0 + np.abs(totals)))
    if len(violated):
        index = tuple(int(i) for i in violated[0])
        largest = (f" (largest contribution: node {players[int(np.abs(contributions[index]).argmax())]!r})"
                   if wording.name_largest else "")
        raise VerificationError(f"efficiency violated at {where(index)}: contributions sum to "
                                f"{contributions[index].sum():.6g}, {wording.total_is} {totals[index]:.6g}{largest}")


def verify_attribution(contributions: np.ndarray, scores: np.ndarray, players: Sequence[Hashable],
                       outliers: Sequence[Hashable]) -> None:
    """Raise :class:`VerificationError` unless the game's Shapley values are finite and efficient.

    Parameters
    ----------
    contributions : numpy.ndarray
        ``(D, R, K)`` contributions per draw, outlier row and player, as the game's Shapley estimator returned
        them.
    scores : numpy.ndarray
        ``(D, R)`` IT scores of the same game.
    players, outliers : sequences
        Labels of the last axis and of the rows.

    Examples
    --------
    >>> import numpy as np
    >>> verify_attribution(np.array([[[1.0, 2.0]]]), np.array([[3.0]]), ["a", "b"], ["row"])
    >>> verify_attribution(np.array([[[1.0, 2.0]]]), np.array([[4.0]]), ["a", "b"], ["row"])
    Traceback (most recent call last):
    ...
    bayes_rca.errors.VerificationError: efficiency violated at draw 0, outlier 'row': contributions sum to 3, IT score is 4
    """
    def where(index: tuple[int, ...]) -> str:
        return f"draw {index[0]}, outlier {outliers[index[1]]!r}"

    verify_shapley_values(contributions, scores, players, where)
