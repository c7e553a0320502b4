"""Helpers shared by the baseline methods: input checks, marginal outlier scores, seeded global RNG state."""

from __future__ import annotations

import math
import random
from collections.abc import Hashable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Literal

import networkx as nx
import numpy as np
import pandas as pd
from scipy.special import log_ndtr

from bayes_rca.data.checks import validate_outliers, validate_training_data
from bayes_rca.errors import DataError, check_choice
from bayes_rca.graph.dag import (
    blameable_nodes,
    check_node,
    topological_order,
    validate_graph,
)
from bayes_rca.harness.methods.base import RCAMethod

Tail = Literal["empirical", "gaussian", "hybrid"]
TAILS: tuple[str, ...] = ("empirical", "gaussian", "hybrid")


def check_fitted(method: object, attribute: str = "graph_") -> None:
    """Raise a clear error if ``method.fit`` has not been called."""
    if getattr(method, attribute, None) is None:
        raise RuntimeError(f"{type(method).__name__} is not fitted yet; call fit(graph, data) first")


def fit_inputs(graph: nx.DiGraph, data: pd.DataFrame) -> tuple[nx.DiGraph, pd.DataFrame]:
    """The validated graph and the node columns of ``data`` as float64."""
    graph = validate_graph(graph)
    return graph, validate_training_data(graph, data)


def outlier_row(graph: nx.DiGraph, target: Hashable, outlier: pd.DataFrame | pd.Series,
                nodes: list[Hashable] | None = None, missing_allowed: list[Hashable] | tuple = ()) -> pd.Series:
    """The single outlier row (values of ``nodes``, default all graph nodes) after checking the target.

    Values of ``missing_allowed`` may be NaN; every other value must be finite.
    """
    check_node(graph, target, "target")
    nodes = list(graph.nodes) if nodes is None else nodes
    if isinstance(outlier, pd.DataFrame) and len(outlier) != 1:
        raise DataError(f"attribute() takes one outlier row, got {len(outlier)} rows")
    return validate_outliers(outlier, nodes, missing_allowed, target).iloc[0]


def ancestral_graph(graph: nx.DiGraph, target: Hashable) -> nx.DiGraph:
    """The subgraph induced by ``target`` and its ancestors (parents of an ancestor are ancestors too)."""
    return graph.subgraph(blameable_nodes(graph, target)).copy()


def with_floor(partial_scores: pd.Series, graph: nx.DiGraph) -> pd.Series:
    """Scores over every graph node (topological order); nodes not in ``partial_scores`` get ``-inf``."""
    nodes = topological_order(graph)
    return partial_scores.reindex(nodes).fillna(-np.inf).astype(float)


def check_tail(tail: str) -> str:
    check_choice("tail", tail, TAILS)
    return tail


@dataclass(frozen=True)
class _NodeMarginal:
    median: float
    sd: float
    deviations: np.ndarray  # sorted |X_i - median| of the training rows


def _gaussian_score(deviation: float, sd: float) -> float:
    """``-log P(|Z| >= deviation / sd)`` for a standard normal ``Z``."""
    if sd <= 0:
        return 0.0 if deviation == 0 else math.inf
    return max(0.0, -(math.log(2.0) + float(log_ndtr(-deviation / sd))))


class MarginalOutlierScorer:
    """The IT outlier score ``-log P(|X - med| >= |x - med|)`` of each node under its own training marginal.

    Parameters
    ----------
    tail : {"empirical", "gaussian", "hybrid"}
        How ``P`` is estimated from the ``n`` training values of a node.

        * ``"empirical"``: ``(k + 0.5) / (n + 0.5)`` with ``k`` the number of training rows at least as far from
          the median (DoWhy's ``ITAnomalyScorer`` convention). It saturates at ``log(2n + 1)``: every value beyond
          the training range gets the same score.
        * ``"gaussian"``: the two-sided Gaussian tail ``2 Phi(-|x - med| / sd)`` (sample sd); never saturates.
        * ``"hybrid"``: empirical inside the training range; beyond the largest training deviation, the
          Gaussian score floored at the empirical cap, ``max(log(2n + 1), g(x))``. It agrees with
          ``"empirical"`` wherever that does not saturate, and ranks values far beyond the data by their
          Gaussian tail instead of tying them (values just beyond the data still tie at the cap).
    """

    def __init__(self, tail: Tail = "hybrid") -> None:
        self.tail = check_tail(tail)
        self.marginals_: dict[Hashable, _NodeMarginal] = {}

    def fit(self, data: pd.DataFrame) -> MarginalOutlierScorer:
        """Learn each column's median, sd and sorted deviations (missing values left out)."""
        self.marginals_ = {}
        for node in data.columns:
            values = data[node].to_numpy(dtype=float)
            values = values[np.isfinite(values)]
            median = float(np.median(values))
            sd = float(values.std(ddof=1)) if len(values) > 1 else 0.0
            self.marginals_[node] = _NodeMarginal(median, sd, np.sort(np.abs(values - median)))
        return self

    def score_one(self, node: Hashable, value: float) -> float:
        """The outlier score of ``value`` at ``node``."""
        marginal = self.marginals_[node]
        deviation = abs(float(value) - marginal.median)
        if self.tail == "gaussian":
            return _gaussian_score(deviation, marginal.sd)
        n = len(marginal.deviations)
        at_least = n - int(np.searchsorted(marginal.deviations, deviation, side="left"))
        empirical = -math.log((at_least + 0.5) / (n + 0.5))
        if self.tail == "empirical" or at_least > 0:
            return empirical
        return max(empirical, _gaussian_score(deviation, marginal.sd))

    def score(self, row: pd.Series, nodes: list[Hashable] | None = None) -> pd.Series:
        """Outlier scores of the values in ``row`` at ``nodes`` (default: every fitted node)."""
        nodes = list(self.marginals_) if nodes is None else nodes
        return pd.Series({node: self.score_one(node, row[node]) for node in nodes}, dtype=float)


@contextmanager
def seeded_global_rng(seed: int) -> Iterator[None]:
    """Seed numpy's and ``random``'s global generators (as DoWhy uses them) and restore them afterwards."""
    numpy_state, python_state = np.random.get_state(), random.getstate()
    np.random.seed(seed % 2**32)
    random.seed(seed)
    try:
        yield
    finally:
        np.random.set_state(numpy_state)
        random.setstate(python_state)


class MarginalScoreMethod(RCAMethod):
    """Base of the methods that rank by marginal outlier scores: fitting them is fitting the scorer."""

    def __init__(self, tail: Tail) -> None:
        self.scorer = MarginalOutlierScorer(tail)
        self.graph_: nx.DiGraph | None = None

    def fit(self, graph: nx.DiGraph, data: pd.DataFrame) -> MarginalScoreMethod:
        self.graph_, frame = fit_inputs(graph, data)
        self.scorer.fit(frame)
        return self

    def _row(self, target: Hashable, outlier: pd.DataFrame) -> pd.Series:
        """The checked outlier row of a fitted method."""
        check_fitted(self)
        return outlier_row(self.graph_, target, outlier)
