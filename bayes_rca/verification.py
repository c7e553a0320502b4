"""Checks the Shapley values of a counterfactual game against its own score before anything else touches them.

Efficiency: the contributions of each posterior draw sum to that draw's IT score as the game reports it
(``g(all) - g(empty)``, with ``g(empty) = 0``). Finiteness: no NaN or infinite value. Both
hold for any correct game and Shapley estimator (exact enumeration and every permutation telescope); a
violation means a bug in a game or a numerical failure, and raises an error naming the draw, outlier and node.
The null players (nodes that are not ancestors of the target) never enter a game; they are filled in with
exact zeros afterwards (:func:`~bayes_rca.attribution.embed_players`).
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence

import numpy as np

from bayes_rca.errors import VerificationError

EFFICIENCY_RTOL = 1e-6


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
    for array, what in ((contributions, "contribution"), (scores, "IT score")):
        bad = np.argwhere(~np.isfinite(array))
        if len(bad):
            where = bad[0]
            node = f", node {players[where[2]]!r}" if array.ndim == 3 else ""
            raise VerificationError(f"non-finite {what} at draw {where[0]}, outlier {outliers[where[1]]!r}{node}")
    gap = np.abs(contributions.sum(-1) - scores)
    tolerance = EFFICIENCY_RTOL * (1.0 + np.abs(scores))
    violated = np.argwhere(gap > tolerance)
    if len(violated):
        draw, row = violated[0]
        raise VerificationError(f"efficiency violated at draw {draw}, outlier {outliers[row]!r}: contributions "
                                f"sum to {contributions[draw, row].sum():.6g}, IT score is {scores[draw, row]:.6g}")
