"""Traversal baseline: anomalous nodes none of whose parents is anomalous are the root-cause candidates."""

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


class Traversal(MarginalScoreMethod):
    """Root-cause candidates: anomalous ancestors of the target (or the target) with no anomalous parent.

    The traversal heuristic of Chen et al. (2014, "CauseInfer: Automatic and distributed performance diagnosis with
    hierarchical causality graph in large distributed systems", INFOCOM) and Liu et al. (2021, "MicroHECL"), in the
    form Okati et al. (2024, "Root cause analysis of outliers with missing structural knowledge") compare against
    (``algorithms/simple_traversal.py`` of amazon-science/RCAWithMissingStructuralKnowledgeCode): restrict the graph
    to the target and its ancestors, call a node anomalous if its marginal IT outlier score exceeds ``threshold``
    (3 there, with DoWhy's rescaled median-CDF-quantile score), and report the anomalous nodes none of whose
    parents is anomalous.

    ``scores``: a candidate gets its own outlier score; every other ancestor (or the target) gets its own score
    shifted below every candidate (``s - max(s) + threshold - 1``), so the rest is ranked by anomaly as a
    tie-breaker; nodes that are not the target or its ancestors get ``-inf``. ``reported``: the candidates,
    highest score first, or nothing when the target itself is not anomalous.

    Parameters
    ----------
    threshold : float
        Outlier-score (nats) cut-off of "anomalous" (3 nats: two-sided tail probability ``e^-3 ~ 0.05``).
    tail : {"hybrid", "empirical", "gaussian"}
        Estimate of the marginal tail probability (see
        :class:`~bayes_rca.harness.methods._common.MarginalOutlierScorer`; "hybrid" and "empirical" flag the
        same nodes, "hybrid" breaks ties between candidates far beyond the data).
    """

    name: ClassVar[str] = "traversal"
    abstains: ClassVar[bool] = True

    def __init__(self, threshold: float = 3.0, tail: Tail = "hybrid") -> None:
        self.threshold = threshold
        super().__init__(tail)

    def attribute(self, target: Hashable, outlier: pd.DataFrame) -> Attribution:
        row = self._row(target, outlier)
        sub = ancestral_graph(self.graph_, target)
        own = self.scorer.score(row, list(sub.nodes))
        anomalous = own > self.threshold
        candidate = pd.Series({node: bool(anomalous[node]) and not any(anomalous[p] for p in sub.predecessors(node))
                               for node in sub.nodes})
        rest = own - own.max() + self.threshold - 1.0
        reported = own[candidate].sort_values(ascending=False).index.tolist() if anomalous[target] else []
        return Attribution(with_floor(own.where(candidate, rest), self.graph_), reported=reported)
