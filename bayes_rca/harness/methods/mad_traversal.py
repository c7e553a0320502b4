"""The PetShop traversal baseline: per-node MAD detectors, root causes scored by their all-anomalous paths."""

from __future__ import annotations

import math
from collections.abc import Hashable
from dataclasses import dataclass
from typing import ClassVar, Literal

import networkx as nx
import numpy as np
import pandas as pd
from scipy.stats import median_abs_deviation

from bayes_rca.data import _check_columns, _check_frame
from bayes_rca.errors import BayesRCAError, DataError
from bayes_rca.graph import check_node, topological_order
from bayes_rca.harness.methods._common import check_fitted, fit_inputs, with_floor
from bayes_rca.harness.methods.base import Attribution, RCAMethod


@dataclass(frozen=True)
class Detector:
    """A fitted anomaly detector of one node: ``score(x) = |x - center| / scale``, anomalous above ``threshold``.

    ``scale == 0`` gives ``inf`` for any deviation and 0 for none (``0 / 0`` read as "no deviation").
    """

    center: float
    scale: float
    threshold: float

    def score(self, value: float) -> float:
        """The anomaly score of ``value``; 0 for a missing (NaN) value."""
        if math.isnan(value):
            return 0.0
        deviation = abs(value - self.center)
        if self.scale == 0:
            return math.inf if deviation > 0 else 0.0
        return deviation / self.scale


class MADTraversal(RCAMethod):
    """The traversal baseline of the PetShop benchmark: anomalous nodes with no anomalous parent, kept if an
    all-anomalous path leads from them to the target and scored by the largest anomaly-score sum over such paths.

    ``fit`` trains one detector per node on its observed (non-NaN) training values, as the PetShop code does:

    * fewer than ``min_points`` values: no detector, the node is never anomalous;
    * a constant column: ``|x - c|``, anomalous at any deviation (threshold 0);
    * otherwise DoWhy's ``MedianDeviationScorer``: ``|x - median| / MAD``, anomalous above ``threshold``. DoWhy
      takes the MAD from ``statsmodels.robust.mad``, i.e. normalised to the Gaussian sd (``MAD / 0.6745``,
      ``mad_scale="normal"``); ``mad_scale=1.0`` gives the raw MAD. A MAD of 0 flags any deviation (score
      ``inf``).

    ``attribute``: if the target is not anomalous there is no root cause (``reported`` empty, every score
    ``-inf``). Otherwise the candidates are the anomalous nodes (of the whole graph) none of whose parents is
    anomalous; a candidate is kept only if some directed path from it to the target has every node anomalous, and
    its score is the largest sum of the nodes' anomaly scores along such a path (the target itself, if it is a
    candidate, scores its own anomaly score). ``scores``: a kept candidate's path sum, ``-inf`` for every other
    node; ``reported``: the kept candidates, best first (ties in topological order). A NaN value in the outlier
    row (a missing measurement) scores 0, i.e. is not anomalous; the target must be observed, and an infinite
    value anywhere is an error.

    Two departures from the PetShop code, both where it is accidental: a constant column is recognised by
    ``min == max`` rather than by ``np.std == 0`` (which floating-point rounding can miss, sending the column to a
    MAD-0 detector); and the target as its own root cause scores its anomaly score, where the PetShop code's
    edge-wise path sum finds no path (networkx < 3.3) or scores 0 (networkx >= 3.3).

    Parameters
    ----------
    threshold : float
        Score above which a node with a MAD detector is anomalous (5 in the PetShop code).
    min_points : int
        Fewest observed training values a node needs for a detector (10 in the PetShop code).
    mad_scale : float or "normal"
        ``scale`` of ``scipy.stats.median_abs_deviation``: ``"normal"`` as DoWhy's ``MedianDeviationScorer``,
        1.0 for the raw MAD.

    References
    ----------
    Hardt, Orchard, Blöbaum, Kirschbaum, Kasiviswanathan. "The PetShop Dataset — Finding Causes of Performance
    Issues across Microservices." CLeaR 2024 (``baseline_anomaly_traversal.py`` and ``data_preprocessing.py`` of
    amazon-science/petshop-root-cause-analysis).
    """

    name: ClassVar[str] = "mad_traversal"
    abstains: ClassVar[bool] = True

    def __init__(self, threshold: float = 5.0, min_points: int = 10,
                 mad_scale: float | Literal["normal"] = "normal") -> None:
        if isinstance(mad_scale, str) and mad_scale != "normal":
            raise BayesRCAError(f"unknown mad_scale {mad_scale!r}; give a number or 'normal'")
        self.threshold, self.min_points, self.mad_scale = threshold, min_points, mad_scale
        self.graph_: nx.DiGraph | None = None
        self.detectors_: dict[Hashable, Detector] = {}

    def _detector(self, values: np.ndarray) -> Detector | None:
        values = values[~np.isnan(values)]
        if len(values) < self.min_points:
            return None
        if values.min() == values.max():
            return Detector(float(values[0]), 1.0, 0.0)
        return Detector(float(np.median(values)), float(median_abs_deviation(values, scale=self.mad_scale)),
                        self.threshold)

    def fit(self, graph: nx.DiGraph, data: pd.DataFrame) -> MADTraversal:
        graph, frame = fit_inputs(graph, data)
        detectors = {node: self._detector(frame[node].to_numpy()) for node in graph}
        self.detectors_ = {node: detector for node, detector in detectors.items() if detector is not None}
        self.graph_ = graph
        return self

    def _row(self, target: Hashable, outlier: pd.DataFrame | pd.Series) -> pd.Series:
        """The outlier row's node values: NaN allowed (a missing measurement) except at the target."""
        check_fitted(self)
        check_node(self.graph_, target, "target")
        frame = _check_frame(outlier, "outlier data")
        if len(frame) != 1:
            raise DataError(f"attribute() takes one outlier row, got {len(frame)} rows")
        nodes = list(self.graph_)
        _check_columns(frame, nodes, "outlier data")
        row = frame[nodes].astype(np.float64).iloc[0]
        infinite = [node for node in nodes if np.isinf(row[node])]
        if infinite:
            raise DataError(f"outlier row has infinite values in column(s) {', '.join(map(repr, infinite))}")
        if np.isnan(row[target]):
            raise DataError(f"outlier row has a missing value in the target column {target!r}")
        return row

    def anomaly_scores(self, row: pd.Series) -> tuple[pd.Series, pd.Series]:
        """Each node's anomaly score (0 without a detector) and whether it is anomalous, in topological order."""
        nodes = topological_order(self.graph_)
        scores, flags = {}, {}
        for node in nodes:
            detector = self.detectors_.get(node)
            scores[node] = 0.0 if detector is None else detector.score(float(row[node]))
            flags[node] = detector is not None and scores[node] > detector.threshold
        return pd.Series(scores, dtype=float), pd.Series(flags, dtype=bool)

    def attribute(self, target: Hashable, outlier: pd.DataFrame) -> Attribution:
        row = self._row(target, outlier)
        own, anomalous = self.anomaly_scores(row)
        if not anomalous[target]:
            return Attribution(with_floor(pd.Series(dtype=float), self.graph_), reported=[])
        # Largest score sum over the all-anomalous paths from each node to the target (the graph is acyclic, so
        # every directed path is simple): dynamic programming in reverse topological order.
        best = {target: own[target]}
        for node in reversed(own.index):
            reachable = [best[child] for child in self.graph_.successors(node) if child in best]
            if node != target and anomalous[node] and reachable:
                best[node] = own[node] + max(reachable)
        kept = pd.Series({node: value for node, value in best.items()
                          if not any(anomalous[parent] for parent in self.graph_.predecessors(node))}, dtype=float)
        scores = with_floor(kept, self.graph_)
        reported = list(scores[scores.index.isin(kept.index)].sort_values(ascending=False, kind="stable").index)
        return Attribution(scores, reported=reported)
