"""CIRCA (Li et al., KDD 2022): regression-based hypothesis testing with descendant adjustment."""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass
from typing import ClassVar

import networkx as nx
import numpy as np
import pandas as pd

from bayes_rca.graph.dag import parents_of, topological_order
from bayes_rca.harness.methods._common import (
    ancestral_graph,
    check_fitted,
    fit_inputs,
    outlier_row,
    with_floor,
)
from bayes_rca.harness.methods.base import Attribution, RCAMethod


@dataclass(frozen=True)
class _Regression:
    parents: tuple[Hashable, ...]
    intercept: float
    weights: np.ndarray
    residual_mean: float
    residual_sd: float


class CIRCA(RCAMethod):
    """CIRCA's regression-based hypothesis testing (RHT) and descendant adjustment (DA) on a known graph.

    Li et al. "Causal Inference-Based Root Cause Analysis for Online Service
    Systems with Intervention Recognition." KDD 2022. Following the authors' code (NetManAIOps/CIRCA,
    ``circa/alg/ci``: ``RHTScorer`` with the linear ``ANMRegressor``, and ``DAScorer``) and PyRCA's ``HT`` analyzer
    (salesforce/PyRCA, ``pyrca/analyzers/ht.py``, the implementation Okati et al. 2024 benchmark against):

    1. RHT: regress each node on its parents by least squares on the normal data (a root node on a constant).
       A node's anomaly score is the absolute z-score of the outlier row's residual under the training residuals'
       mean and sd: a node is anomalous if it deviates from what its parents predict (an intervention on its
       own mechanism), not merely because its parents do.
    2. DA: a node whose score is at least ``threshold`` gets the largest score among its children added, where the
       children of a child scoring below ``threshold`` count as children too (recursively). This favours the
       upstream end of a chain of anomalous nodes. PyRCA uses ``threshold = 3`` (the three-sigma rule), the
       authors' ``DAScorer`` defaults to 0 (every node is adjusted by its children).

    Candidates are the target and its ancestors (the graph is restricted to them, so children outside it are
    ignored); other nodes get ``-inf``. Exact ties are ordered upstream-first by the authors' code; they do not
    occur with continuous data and are left as ties here.

    Parameters
    ----------
    threshold : float
        Score (in sd) from which the descendant adjustment applies.
    adjustment : bool
        Apply the descendant adjustment (False: RHT scores only).
    """

    name: ClassVar[str] = "circa"

    def __init__(self, threshold: float = 3.0, adjustment: bool = True) -> None:
        self.threshold, self.adjustment = threshold, adjustment
        self.graph_: nx.DiGraph | None = None
        self.regressions_: dict[Hashable, _Regression] = {}

    def fit(self, graph: nx.DiGraph, data: pd.DataFrame) -> CIRCA:
        graph, frame = fit_inputs(graph, data)
        self.regressions_ = {}
        for node in topological_order(graph):
            parents = tuple(parents_of(graph, node))
            columns = frame[[*parents, node]].to_numpy()
            columns = columns[np.isfinite(columns).all(axis=1)]
            design = np.column_stack([np.ones(len(columns)), columns[:, :-1]])
            coefficients, *_ = np.linalg.lstsq(design, columns[:, -1], rcond=None)
            residuals = columns[:, -1] - design @ coefficients
            sd = float(residuals.std())
            self.regressions_[node] = _Regression(parents, float(coefficients[0]), coefficients[1:],
                                                  float(residuals.mean()), sd if sd > 0 else 1e-12)
        self.graph_ = graph
        return self

    def rht_scores(self, row: pd.Series, nodes: list[Hashable]) -> pd.Series:
        """Absolute standardised residual of each node in ``row``."""
        scores = {}
        for node in nodes:
            regression = self.regressions_[node]
            predicted = regression.intercept + float(regression.weights @ row[list(regression.parents)].to_numpy())
            scores[node] = abs((float(row[node]) - predicted - regression.residual_mean) / regression.residual_sd)
        return pd.Series(scores, dtype=float)

    def attribute(self, target: Hashable, outlier: pd.DataFrame) -> Attribution:
        check_fitted(self)
        row = outlier_row(self.graph_, target, outlier)
        sub = ancestral_graph(self.graph_, target)
        order = topological_order(sub)
        scores = self.rht_scores(row, order)
        if not self.adjustment:
            return Attribution(with_floor(scores, self.graph_))
        # children to consider, children of sub-threshold children included (from the sinks upwards)
        reach: dict[Hashable, set[Hashable]] = {}
        for node in reversed(order):
            reach[node] = set()
            for child in sub.successors(node):
                reach[node].add(child)
                if scores[child] < self.threshold:
                    reach[node] |= reach[child]
        adjusted = scores.copy()
        for node in order:
            if scores[node] >= self.threshold and reach[node]:
                adjusted[node] += max(scores[child] for child in reach[node])
        return Attribution(with_floor(adjusted, self.graph_))
