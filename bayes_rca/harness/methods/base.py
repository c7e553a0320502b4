"""The interface every root-cause method of the harness implements (one small class per file).

A method is fitted once to a causal graph and normal data (scikit-learn's fit discipline), then asked about
one outlier row at a time. It answers with an :class:`Attribution`: a score per graph node (higher = more
to blame) and, for methods with uncertainty, draws of the contributions and P(node is the top root cause).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from functools import partial
from typing import Any, ClassVar

import networkx as nx
import numpy as np
import pandas as pd

from bayes_rca.registry import register

METHOD_REGISTRY: dict[str, Callable[..., RCAMethod]] = {}  # name (or variant name) -> factory


@dataclass
class Attribution:
    """One method's answer about one outlier.

    Attributes
    ----------
    scores : pandas.Series
        A score for every graph node (index); higher means more to blame. Nodes that cannot be blamed get a
        score below every blameable node (e.g. 0 for contributions, -inf for rankings).
    draws : pandas.DataFrame, optional
        Draws of the contributions (posterior draws or bootstrap refits), one row per draw and one column per
        node (labelled, so that reordering the nodes cannot misalign them); used for interval coverage and
        width.
    top_probability : pandas.Series, optional
        ``P(node is the top root cause)`` per node.
    posterior : arviz.InferenceData, optional
        The full posterior of a Bayesian method, logged as a netCDF artifact.
    reported : list, optional
        The nodes the method names as root causes by its own decision rule (empty: "no root cause here", the
        answer that specificity on normal data rewards). None for a method without such a rule: it always
        names its top-ranked node.
    """

    scores: pd.Series
    draws: pd.DataFrame | None = None
    top_probability: pd.Series | None = None
    posterior: Any = None
    reported: list[Hashable] | None = None

    def interval(self, probability: float = 0.9) -> tuple[pd.Series, pd.Series] | None:
        """Central ``probability`` interval of each node's contribution from the draws, if any."""
        if self.draws is None:
            return None
        tail = 100 * (1 - probability) / 2
        low, high = np.percentile(self.draws.to_numpy(), [tail, 100 - tail], axis=0)
        return pd.Series(low, index=self.draws.columns), pd.Series(high, index=self.draws.columns)


class RCAMethod(ABC):
    """A root-cause analysis method: ``fit(graph, normal_data)`` then ``attribute(target, outlier_row)``."""

    name: ClassVar[str]
    variants: ClassVar[dict[str, dict[str, Any]]] = {}
    """Further registry names of this class with preset options (``{"bayes_rca_svi": {"inference": "svi"}}``)."""
    uses_missing_values: bool = False
    """Whether the method infers missing values itself: the harness then gives it an outlier row with its missing
    values (NaN) rather than the row imputed for every other method."""
    abstains: ClassVar[bool] = False
    """Whether the method can answer "no root cause" (``Attribution.reported`` empty); one that cannot has
    specificity 0 by construction and is not refitted for the specificity checks."""
    uses_raw_data: ClassVar[bool] = False
    """Whether the method takes the data as measured, where a benchmark has them (real data): the harness then
    fits it on the causal graph with every node (none marginalised out) and the normal rows with their missing
    values (NaN), and asks it about the window of rows around an outlier as measured, from the analysed row on
    (the analysed row first, the later rows after it), instead of the one prepared row every other method gets.
    See :mod:`bayes_rca.harness.real_data`."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        """Register a subclass that sets its own ``name`` (and its ``variants``) in :data:`METHOD_REGISTRY`."""
        super().__init_subclass__(**kwargs)
        name = cls.__dict__.get("name")
        if name is None:
            return
        register(METHOD_REGISTRY, name, cls, cls, "method")
        for key, options in cls.__dict__.get("variants", {}).items():
            register(METHOD_REGISTRY, key, partial(cls, **options), cls, "method")

    @abstractmethod
    def fit(self, graph: nx.DiGraph, data: pd.DataFrame) -> RCAMethod:
        """Learn whatever the method needs from normal-operation data; return ``self``."""

    @abstractmethod
    def attribute(self, target: Hashable, outlier: pd.DataFrame) -> Attribution:
        """Blame the nodes for the outlier at ``target`` in the one-row frame ``outlier`` (a method that
        ``uses_raw_data`` also takes a window of several rows, the analysed row first)."""
