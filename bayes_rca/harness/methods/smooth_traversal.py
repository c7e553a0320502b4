"""SMOOTH TRAVERSAL (Okati et al. 2024): the root cause is where the anomaly score jumps most along the graph."""

from __future__ import annotations

from collections.abc import Hashable
from typing import ClassVar

import pandas as pd

from bayes_rca.harness.methods._common import (
    MarginalScoreMethod,
    Tail,
    ancestral_graph,
    with_floor,
)
from bayes_rca.harness.methods.base import Attribution


class SmoothTraversal(MarginalScoreMethod):
    """Rank the target and its ancestors by their marginal anomaly score minus the largest score of their parents.

    Okati, Garrido Mejia, Orchard, Blöbaum, Janzing, "Root cause analysis of outliers with missing structural
    knowledge" (arXiv:2406.05014, 2024; NeurIPS 2025), Algorithm 1 (SMOOTH TRAVERSAL), for a known causal graph:
    only marginal IT anomaly scores ``S(x_j)`` are needed (no mechanisms, no counterfactuals, no threshold); the
    root cause is the node with the largest score gap ``S(x_j) - max_{i in PA_j} S(x_i)`` (``S(x_j)`` for a
    node without parents). The authors' code (amazon-science/RCAWithMissingStructuralKnowledgeCode,
    ``algorithms/smooth_traversal.py``) restricts the graph to the nodes with a path to the target, scores each
    node with DoWhy's ``RescaledMedianCDFQuantileScorer`` fitted on normal data, and returns
    ``max(0, min_parents(S_j - S_parent))`` per node, i.e. the gap clipped at 0.

    Here the scores are :class:`~bayes_rca.harness.methods._common.MarginalOutlierScorer`'s; ``tail="empirical"``
    is the authors' empirical estimate, the default ``"hybrid"`` breaks its ties far beyond the training range.
    Nodes that are not the target or its ancestors get ``-inf``.

    Parameters
    ----------
    tail : {"hybrid", "empirical", "gaussian"}
        Estimate of the marginal tail probability.
    clip : bool
        Clip negative gaps at 0, as the authors' code does (then all nodes below their parents tie); ``False``
        keeps the raw gaps, a full ranking.
    """

    name: ClassVar[str] = "smooth_traversal"

    def __init__(self, tail: Tail = "hybrid", clip: bool = True) -> None:
        super().__init__(tail)
        self.clip = clip

    def attribute(self, target: Hashable, outlier: pd.DataFrame) -> Attribution:
        row = self._row(target, outlier)
        sub = ancestral_graph(self.graph_, target)
        own = self.scorer.score(row, list(sub.nodes))
        gaps = pd.Series({node: own[node] - max((own[p] for p in sub.predecessors(node)), default=0.0)
                          for node in sub.nodes}, dtype=float)
        if self.clip:
            gaps = gaps.clip(lower=0.0)
        return Attribution(with_floor(gaps, self.graph_))
