"""SCORE ORDERING (Okati et al. 2024): rank nodes by their marginal IT anomaly scores, no graph needed."""

from __future__ import annotations

from collections.abc import Hashable
from typing import ClassVar

import pandas as pd

from bayes_rca.graph.dag import blameable_nodes, topological_order
from bayes_rca.harness.methods._common import MarginalScoreMethod, Tail, with_floor
from bayes_rca.harness.methods.base import Attribution


class ScoreOrdering(MarginalScoreMethod):
    """Root causes are the nodes with the highest marginal IT anomaly scores.

    Okati, Garrido Mejia, Orchard, Blöbaum, Janzing, "Root cause analysis of outliers with missing structural
    knowledge" (arXiv:2406.05014, 2024; NeurIPS 2025), Algorithm 2 (SCORE ORDERING), for when the causal graph is
    unknown: compute each variable's IT score ``S(x_j) = -log P(tau(X_j) >= tau(x_j))`` under its own marginal,
    estimated from normal data, and return the variables sorted by it (top-k). They prove that, for a single root
    cause in a polytree, anomalies with small scores are unlikely to cause anomalies with larger scores, so the
    top-scoring variable is likely the root cause. The authors' code (amazon-science/
    RCAWithMissingStructuralKnowledgeCode, ``algorithms/score_ordering.py``) scores each node with DoWhy's
    ``ITAnomalyScorer(RescaledMedianCDFQuantileScorer())`` fitted on the normal data and sorts all nodes.

    Here the scores are :class:`~bayes_rca.harness.methods._common.MarginalOutlierScorer`'s
    ``-log P(|X - med| >= |x - med|)``. With ``tail="empirical"`` they are the authors' empirical estimate
    ``(k + 0.5) / (n + 0.5)``, which gives every value beyond the training range the same score; the default
    ``"hybrid"`` agrees with it inside the range and breaks those ties with a Gaussian tail beyond it.

    Parameters
    ----------
    tail : {"hybrid", "empirical", "gaussian"}
        Estimate of the marginal tail probability.
    ancestors_only : bool
        Rank only the target and its ancestors (others get ``-inf``); the paper's algorithm uses no graph (False).
    """

    name: ClassVar[str] = "score_ordering"

    def __init__(self, tail: Tail = "hybrid", ancestors_only: bool = False) -> None:
        super().__init__(tail)
        self.ancestors_only = ancestors_only

    def attribute(self, target: Hashable, outlier: pd.DataFrame) -> Attribution:
        row = self._row(target, outlier)
        nodes = blameable_nodes(self.graph_, target) if self.ancestors_only else topological_order(self.graph_)
        return Attribution(with_floor(self.scorer.score(row, nodes), self.graph_))
