"""Naive baseline: a two-sample test per mechanism on the residuals of an old-period regression."""

from __future__ import annotations

from collections.abc import Hashable
from typing import ClassVar

import networkx as nx
import numpy as np
import pandas as pd

from bayes_rca.graph.dag import blameable_nodes, parents_of
from bayes_rca.harness.change_methods.base import ChangeAttribution, ChangeMethod
from bayes_rca.harness.methods._common import with_floor


def _design(frame: pd.DataFrame, parents: list[Hashable]) -> np.ndarray:
    """An intercept column and the parents' columns."""
    return np.column_stack([np.ones(len(frame)), frame[parents].to_numpy(dtype=float)])


class ResidualKS(ChangeMethod):
    """Per player, a Kolmogorov-Smirnov test of its residuals in the two periods; Benjamini-Hochberg over them.

    Each player's mechanism is fitted by ordinary least squares on its parents (an intercept alone at a root)
    on the old period; the residuals of that one fit in the old and the new period are compared by a
    two-sample KS test. ``scores`` are the KS statistics (-inf for non-players), there are no contributions,
    and named are the players whose BH-adjusted p-value is below ``alpha``. It ignores the functional: a
    changed mechanism is named whatever it does to the target.

    Parameters
    ----------
    alpha : float
        The false-discovery rate of the Benjamini-Hochberg procedure.
    """

    name: ClassVar[str] = "ks_residual"

    def __init__(self, alpha: float = 0.05) -> None:
        if not 0 < alpha < 1:
            raise ValueError(f"alpha must lie strictly between 0 and 1, got {alpha!r}")
        self.alpha = alpha

    def attribute_change(self, graph: nx.DiGraph, target: Hashable, old: pd.DataFrame, new: pd.DataFrame,
                         functional: str) -> ChangeAttribution:
        from scipy.stats import false_discovery_control, ks_2samp

        players = blameable_nodes(graph, target)
        statistics, p_values = {}, []
        for node in players:
            parents = parents_of(graph, node)
            beta, *_ = np.linalg.lstsq(_design(old, parents), old[node].to_numpy(dtype=float), rcond=None)
            residuals = [frame[node].to_numpy(dtype=float) - _design(frame, parents) @ beta for frame in (old, new)]
            test = ks_2samp(*residuals)
            statistics[node] = float(test.statistic)
            p_values.append(float(test.pvalue))
        adjusted = false_discovery_control(p_values, method="bh")
        named = [node for node, p in zip(players, adjusted) if p < self.alpha]
        return ChangeAttribution(with_floor(pd.Series(statistics, dtype=float), graph), named=named)
