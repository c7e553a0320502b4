"""Checks every attribution result against the Shapley axioms before it is returned.

Efficiency: the contributions of each posterior draw sum to its IT score. Null player: nodes that are not
ancestors of the target (nor the target) get exactly zero. Both, and finiteness, hold by construction; a
violation means a bug or a numerical failure, and raises an error naming the draw, outlier and node.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence

import numpy as np

from bayes_rca.errors import VerificationError

EFFICIENCY_RTOL = 1e-6


def verify_attribution(contributions: np.ndarray, scores: np.ndarray, nodes: Sequence[Hashable],
                       players: Sequence[Hashable], outliers: Sequence[Hashable]) -> None:
    """Raise :class:`VerificationError` unless the result satisfies efficiency, null player and finiteness.

    Parameters
    ----------
    contributions : numpy.ndarray
        ``(D, R, N)`` contributions per draw, outlier row and graph node.
    scores : numpy.ndarray
        ``(D, R)`` IT scores.
    nodes, players, outliers : sequences
        Labels of the last axis, the nodes that may receive a contribution, and the rows.
    """
    for array, what in ((contributions, "contribution"), (scores, "IT score")):
        bad = np.argwhere(~np.isfinite(array))
        if len(bad):
            where = bad[0]
            node = f", node {nodes[where[2]]!r}" if array.ndim == 3 else ""
            raise VerificationError(f"non-finite {what} at draw {where[0]}, outlier {outliers[where[1]]!r}{node}")
    blameable = set(players)  # not np.isin: tuple node names would become a 2-d array
    is_player = np.array([node in blameable for node in nodes], dtype=bool)
    nonzero = np.argwhere(contributions[..., ~is_player] != 0)
    if len(nonzero):
        draw, row, col = nonzero[0]
        node = [node for node, player in zip(nodes, is_player) if not player][col]
        raise VerificationError(f"null player violated: node {node!r} is not an ancestor of the target but has "
                                f"contribution {contributions[draw, row, list(nodes).index(node)]:.3g} at draw "
                                f"{draw}, outlier {outliers[row]!r}")
    gap = np.abs(contributions.sum(-1) - scores)
    tolerance = EFFICIENCY_RTOL * (1.0 + np.abs(scores))
    violated = np.argwhere(gap > tolerance)
    if len(violated):
        draw, row = violated[0]
        raise VerificationError(f"efficiency violated at draw {draw}, outlier {outliers[row]!r}: contributions "
                                f"sum to {contributions[draw, row].sum():.6g}, IT score is {scores[draw, row]:.6g}")
