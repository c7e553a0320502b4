"""The PetShop authors' traversal baseline: per-node MAD detectors, root causes scored by their all-anomalous paths."""

from __future__ import annotations

import math
from collections.abc import Hashable
from dataclasses import dataclass
from typing import ClassVar, Literal

import networkx as nx
import numpy as np
import pandas as pd
from scipy.stats import norm

from bayes_rca.data.checks import _check_columns, _check_frame
from bayes_rca.errors import BayesRCAError, DataError
from bayes_rca.graph.dag import check_node, topological_order, validate_graph
from bayes_rca.harness.methods._common import check_fitted, with_floor
from bayes_rca.harness.methods.base import Attribution, RCAMethod

NORMAL_MAD = float(norm.ppf(0.75))
"""The MAD of a standard normal: ``statsmodels.robust.mad`` (hence DoWhy's ``MedianDeviationScorer``) divides by it."""


@dataclass(frozen=True)
class Detector:
    """A fitted anomaly detector of one node: ``score(x) = |x - center| / scale``, anomalous above ``threshold``.

    ``scale == 0`` gives ``inf`` for any deviation and 0 for none (NumPy's ``0 / 0 = nan``, which the PetShop
    code sets to 0).
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

    def is_anomalous(self, value: float) -> bool:
        """Whether ``value`` scores strictly above the threshold (a NaN never does)."""
        return self.score(value) > self.threshold


class MADTraversal(RCAMethod):
    """The traversal baseline of the PetShop benchmark: anomalous nodes with no anomalous parent, kept if an
    all-anomalous path leads from them to the target and scored by the largest anomaly-score sum over such paths.

    A port of ``make_baseline_analyze_root_causes(DEFAULT_ANOMALY_DETECTION)`` of the PetShop code, meant to
    give its root causes and scores on every issue. In the harness it ``uses_raw_data``: it is fitted on the
    reversed call graph with every node and the normal rows as measured (missing values NaN), and asked about
    an issue's window of rows as measured from the third row on, as the authors' code is.

    ``fit`` trains one detector per graph node on the node's observed (non-NaN) training values:

    * no column or fewer than ``min_points`` values: no detector, the node is never anomalous;
    * ``np.std(values) == 0``: ``|x - mean|``, anomalous at any deviation (threshold 0). The test is exact, as
      the PetShop code's: a constant column whose ``np.std`` is a rounding residue (e.g. eleven 0.3s) gets the
      MAD detector below, whose MAD is 0;
    * otherwise DoWhy's ``MedianDeviationScorer``: ``|x - median| / MAD``, anomalous above ``threshold``, with
      the MAD of ``statsmodels.robust.mad``: ``median(|x - median| / 0.6745)`` (``mad_scale="normal"``; a number
      ``s`` divides by ``s`` instead, 1.0 giving the raw MAD). A MAD of 0 flags any deviation (score ``inf``).

    ``attribute`` takes one row or a window of rows in time order, the first row the one to analyse. With
    ``search`` (the PetShop code's ``search_for_anomaly=True``) the analysed row is the first row of the window
    at which the target is anomalous; without, the first row. If the target is anomalous at no such row there
    is no root cause (``reported`` empty, every score ``-inf``). Otherwise, at the analysed row, the candidates
    are the anomalous nodes (of the whole graph) none of whose parents is anomalous; a candidate is kept only if
    some directed path from it to the target has every node anomalous, and its score is the largest sum of the
    anomaly scores of the nodes of such a path. The target as its own root cause (a candidate when it is
    anomalous with no anomalous parent, and then the only one kept) scores 0: the PetShop code sums the scores
    of the nodes on the path's edges, and ``nx.all_simple_paths(G, t, t)`` yields the edgeless path ``[t]``
    (networkx >= 3.3; older networkx yields no path, and the PetShop code then drops the target).
    ``scores``: a kept candidate's path sum, ``-inf`` for every other node; ``reported``: the kept candidates,
    best first. A NaN value (a missing measurement, the target's included) scores 0, i.e. is not anomalous.

    What remains different from the PetShop code:

    * ties (frequent on PetShop availability, where scores are ``inf``): the PetShop code orders tied
      candidates by the iteration order of a Python set, which depends on string hashing; here ``reported``
      breaks ties in topological order, and the harness's metrics let tied scores share credit;
    * a path sum is added up in another order (differences in the last bits);
    * inputs that do not occur in the PetShop data: columns that are not graph nodes are ignored (the PetShop
      code trains detectors for them, and fails if one is anomalous); and errors are raised where the PetShop
      code goes on or fails obscurely: a cyclic graph (it needs only the anomalous nodes' subgraph acyclic), an
      infinite value, a window without a column for a node with a detector (it calls such a node normal) or
      for the target (it fails), an empty window (it needs at least three rows; the harness passes the rows from the
      third on).

    Parameters
    ----------
    threshold : float
        Score above which a node with a MAD detector is anomalous (5 in the PetShop code).
    min_points : int
        Fewest observed training values a node needs for a detector (10 in the PetShop code).
    mad_scale : float or "normal"
        Divisor of the absolute deviations in the MAD: ``"normal"`` (0.6745) as DoWhy's
        ``MedianDeviationScorer``, 1.0 for the raw MAD.
    search : bool
        Move the analysed row to the first row of the window at which the target is anomalous (the PetShop
        code's ``search_for_anomaly``, True there).

    References
    ----------
    Hardt, Orchard, Blöbaum, Kirschbaum, Kasiviswanathan. "The PetShop Dataset — Finding Causes of Performance
    Issues across Microservices." CLeaR 2024 (``baseline_anomaly_traversal.py``, ``data_preprocessing.py`` and
    ``rca_task.py`` of amazon-science/petshop-root-cause-analysis).
    """

    name: ClassVar[str] = "mad_traversal"
    abstains: ClassVar[bool] = True
    uses_raw_data: ClassVar[bool] = True

    def __init__(self, threshold: float = 5.0, min_points: int = 10,
                 mad_scale: float | Literal["normal"] = "normal", search: bool = True) -> None:
        if isinstance(mad_scale, str) and mad_scale != "normal":
            raise BayesRCAError(f"unknown mad_scale {mad_scale!r}; give a number or 'normal'")
        self.threshold, self.min_points, self.mad_scale, self.search = threshold, min_points, mad_scale, search
        self.graph_: nx.DiGraph | None = None
        self.detectors_: dict[Hashable, Detector] = {}

    def _detector(self, values: np.ndarray) -> Detector | None:
        values = values[~np.isnan(values)]
        if len(values) < self.min_points:
            return None
        if np.std(values) == 0:
            return Detector(float(np.mean(values)), 1.0, 0.0)
        divisor = NORMAL_MAD if self.mad_scale == "normal" else float(self.mad_scale)
        median = np.median(values)
        return Detector(float(median), float(np.median(np.abs(values - median) / divisor)), self.threshold)

    def fit(self, graph: nx.DiGraph, data: pd.DataFrame) -> MADTraversal:
        """Train a detector for each graph node with a column in ``data`` (missing values allowed)."""
        graph = validate_graph(graph)
        frame = _check_frame(data, "training data")
        present = [node for node in topological_order(graph) if node in frame.columns]
        _check_columns(frame, present, "training data")
        values = frame[present].astype(np.float64)
        infinite = [node for node in present if np.isinf(values[node].to_numpy()).any()]
        if infinite:
            raise DataError(f"training data has infinite values in column(s) {', '.join(map(repr, infinite))}")
        detectors = {node: self._detector(values[node].to_numpy()) for node in present}
        self.detectors_ = {node: detector for node, detector in detectors.items() if detector is not None}
        self.graph_ = graph
        return self

    def _window(self, target: Hashable, outlier: pd.DataFrame | pd.Series) -> pd.DataFrame:
        """The window's node values in topological order: NaN where missing, or where a node without a detector
        has no column."""
        check_fitted(self)
        check_node(self.graph_, target, "target")
        frame = _check_frame(outlier, "outlier data")
        if len(frame) == 0:
            raise DataError("outlier data has no rows")
        nodes = topological_order(self.graph_)
        _check_columns(frame, [node for node in nodes if node == target or node in self.detectors_], "outlier data")
        _check_columns(frame, [node for node in nodes if node in frame.columns], "outlier data")
        window = frame.reindex(columns=nodes).astype(np.float64)
        infinite = [node for node in nodes if np.isinf(window[node].to_numpy()).any()]
        if infinite:
            raise DataError(f"outlier data has infinite values in column(s) {', '.join(map(repr, infinite))}")
        return window

    def analysed_position(self, target: Hashable, window: pd.DataFrame) -> int | None:
        """Position in ``window`` of the row to analyse: the first (with ``search``, the first at which the target
        is anomalous) if the target is anomalous there, else None."""
        detector = self.detectors_.get(target)
        if detector is None:
            return None
        values = window[target].to_numpy(dtype=float)
        for position in range(len(values) if self.search else 1):
            if detector.is_anomalous(float(values[position])):
                return position
        return None

    def anomaly_scores(self, row: pd.Series) -> tuple[pd.Series, pd.Series]:
        """Each node's anomaly score (0 without a detector) and whether it is anomalous, in topological order."""
        nodes = topological_order(self.graph_)
        scores, flags = {}, {}
        for node in nodes:
            detector = self.detectors_.get(node)
            value = row.get(node, np.nan)
            scores[node] = 0.0 if detector is None else detector.score(float(value))
            flags[node] = detector is not None and scores[node] > detector.threshold
        return pd.Series(scores, dtype=float), pd.Series(flags, dtype=bool)

    def attribute(self, target: Hashable, outlier: pd.DataFrame) -> Attribution:
        """Root causes of the anomaly at ``target`` in ``outlier`` (one row, or a window whose first row is the
        one to analyse and whose later rows are searched)."""
        window = self._window(target, outlier)
        position = self.analysed_position(target, window)
        if position is None:
            return Attribution(with_floor(pd.Series(dtype=float), self.graph_), reported=[])
        own, anomalous = self.anomaly_scores(window.iloc[position])
        # Largest score sum over the all-anomalous paths from each node to the target (the graph is acyclic, so
        # every directed path is simple): dynamic programming in reverse topological order.
        best: dict[Hashable, float] = {}
        for node in reversed(own.index):
            if not anomalous[node]:
                continue
            if node == target:
                best[node] = float(own[node])
                continue
            reachable = [best[child] for child in self.graph_.successors(node) if child in best]
            if reachable:
                best[node] = float(own[node]) + max(reachable)
        kept = {node: (0.0 if node == target else value) for node, value in best.items()
                if not any(anomalous[parent] for parent in self.graph_.predecessors(node))}
        scores = with_floor(pd.Series(kept, dtype=float), self.graph_)
        reported = list(scores[scores.index.isin(list(kept))].sort_values(ascending=False, kind="stable").index)
        return Attribution(scores, reported=reported)
