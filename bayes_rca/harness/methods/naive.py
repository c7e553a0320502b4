"""Naive baseline: blame the node whose own value is the most unusual, ignoring the graph."""

from __future__ import annotations

from collections.abc import Hashable
from typing import ClassVar

import pandas as pd

from bayes_rca.graph.dag import topological_order
from bayes_rca.harness.methods._common import MarginalScoreMethod, Tail
from bayes_rca.harness.methods.base import Attribution


class Naive(MarginalScoreMethod):
    """Rank every node by the IT outlier score of its own value under its training marginal.

    ``score(x_j) = -log P(|X_j - med_j| >= |x_j - med_j|)``. By default ``P`` is the two-sided Gaussian tail
    ``2 Phi(-|x_j - med_j| / sd_j)`` with the training median and sample sd, so that values far beyond the
    training data keep distinct scores; ``tail="empirical"`` uses the rank convention ``(k + 0.5) / (n + 0.5)``
    instead (see :class:`~bayes_rca.harness.methods._common.MarginalOutlierScorer`). The graph is only used to
    list the nodes: every node, ancestor of the target or not, can be blamed.

    Parameters
    ----------
    tail : {"gaussian", "empirical", "hybrid"}
        Estimate of the tail probability.

    References
    ----------
    The marginal-outlier-score heuristic that graph-based RCA is usually compared against; Okati, Garrido Mejia,
    Orchard, Blöbaum, Janzing, "Root cause analysis of outliers with missing structural knowledge" (arXiv:2406.05014,
    2024) show when ranking by marginal IT scores is causally justified (see
    :class:`~bayes_rca.harness.methods.score_ordering.ScoreOrdering`, the same ranking with their empirical score).
    The IT score itself is that of Budhathoki, Minorics, Blöbaum, Janzing, ICML 2022.
    """

    name: ClassVar[str] = "naive"

    def __init__(self, tail: Tail = "gaussian") -> None:
        super().__init__(tail)

    def attribute(self, target: Hashable, outlier: pd.DataFrame) -> Attribution:
        row = self._row(target, outlier)
        return Attribution(self.scorer.score(row, topological_order(self.graph_)))
