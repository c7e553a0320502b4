"""Random ranking: the floor every method should beat."""

from __future__ import annotations

from collections.abc import Hashable
from typing import ClassVar

import networkx as nx
import numpy as np
import pandas as pd

from bayes_rca.graph.dag import blameable_nodes, topological_order
from bayes_rca.harness.methods._common import (
    check_fitted,
    fit_inputs,
    outlier_row,
    with_floor,
)
from bayes_rca.harness.methods.base import Attribution, RCAMethod


class RandomRanking(RCAMethod):
    """Uniform random scores: a random ranking of the candidates (the expected top-1 recall is 1 / #candidates).

    The generator is seeded with ``seed`` at ``fit``, so the same seed gives the same sequence of rankings.

    Parameters
    ----------
    seed : int
        Seed of the generator.
    ancestors_only : bool
        Rank only the target and its ancestors (others get ``-inf``), the candidates the graph-aware methods
        choose from; ``False`` ranks all nodes.

    References
    ----------
    The random-guess baseline of RCA benchmarks, e.g. Okati et al., "Root cause analysis of outliers with missing
    structural knowledge" (2024).
    """

    name: ClassVar[str] = "random"

    def __init__(self, seed: int = 0, ancestors_only: bool = True) -> None:
        self.seed, self.ancestors_only = seed, ancestors_only
        self.graph_: nx.DiGraph | None = None
        self.rng_: np.random.Generator | None = None

    def fit(self, graph: nx.DiGraph, data: pd.DataFrame) -> RandomRanking:
        self.graph_, _ = fit_inputs(graph, data)
        self.rng_ = np.random.default_rng(self.seed)
        return self

    def attribute(self, target: Hashable, outlier: pd.DataFrame) -> Attribution:
        check_fitted(self)
        outlier_row(self.graph_, target, outlier)
        nodes = blameable_nodes(self.graph_, target) if self.ancestors_only else topological_order(self.graph_)
        scores = pd.Series(self.rng_.random(len(nodes)), index=nodes, dtype=float)
        return Attribution(with_floor(scores, self.graph_))
