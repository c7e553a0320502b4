"""The interface of the distribution-change methods of the harness (one small class per file).

A change method is given a causal graph, a target and the rows of two periods, and answers which mechanisms
changed: a score per node (higher = more to blame), optionally point contributions to the change of a
functional of the target's distribution and draws of them, and the mechanisms its own decision rule names.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Hashable
from dataclasses import dataclass, field
from typing import ClassVar

import networkx as nx
import pandas as pd

from bayes_rca.harness.methods.base import Attribution


@dataclass
class ChangeAttribution:
    """One method's answer about one pair of periods.

    Attributes
    ----------
    scores : pandas.Series
        A score for every graph node; higher means more to blame (|contribution| for methods with
        contributions). Nodes that cannot be blamed get a score below every player (0 or -inf).
    contributions : pandas.Series, optional
        Point estimates of the contributions to the change of the functional, in its units, for every node
        (0 for non-players); None for a method that only ranks.
    draws : pandas.DataFrame, optional
        Draws of the contributions (posterior draw pairs, bootstrap replicates), one column per node.
    named : list
        The mechanisms the method's decision rule names as changed (empty: "nothing changed").
    """

    scores: pd.Series
    contributions: pd.Series | None = None
    draws: pd.DataFrame | None = None
    named: list[Hashable] = field(default_factory=list)

    def as_attribution(self) -> Attribution:
        """The answer as an outlier :class:`~bayes_rca.harness.methods.base.Attribution` (scores and draws),
        for the interval metrics of :mod:`bayes_rca.harness.metrics`."""
        return Attribution(self.scores, self.draws)


class ChangeMethod(ABC):
    """A distribution-change method: ``attribute_change(graph, target, old, new, functional)``."""

    name: ClassVar[str]

    @abstractmethod
    def attribute_change(self, graph: nx.DiGraph, target: Hashable, old: pd.DataFrame, new: pd.DataFrame,
                         functional: str) -> ChangeAttribution:
        """Blame the mechanisms for the change of ``functional`` of ``target``'s distribution between the rows
        ``old`` and ``new`` (one column per graph node)."""
