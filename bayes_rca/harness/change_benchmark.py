"""The ``distribution_change`` benchmark family: two periods of a linear-Gaussian system, with injected mechanism
changes and their exact contributions.

One case per seed: a random DAG (the ``icml2022`` family's heavy-tailed generator, :func:`heavy_tailed_dag`) of
``num_nodes`` nodes (8 when unset) with linear-Gaussian mechanisms (coefficients ±U(0.5, 2), intercepts U(-3, 3)
at roots and U(-1, 1) elsewhere, noise sds U(0.5, 1.5)); the target is a node with at least ``min_ancestors``
ancestors. The new period changes ``1..max_changes`` of the target's mechanisms (itself and its ancestors),
each by one of ``kinds`` (:data:`CHANGE_KINDS`) it can take: a ``coefficient`` (one
parent's weight times U(1.3, 2)), the ``noise_scale`` (times U(1.5, 2.5)) or a ``root_shift`` (a root's mean
moved by U(0.5, 1.5) of its noise sd, either sign). ``num_rows`` rows are drawn per period, and a second sample
of the old period (``same_data``) is the no-change case that specificity is scored on.

The truth is the exact Shapley value of each mechanism at the true parameters (closed form,
:func:`~bayes_rca.change.api.attribute_distribution_change` on the two oracle models). A mechanism is
*relevant* when it changed and its exact contribution is at least the functional's default threshold (a tenth
of the old target's sd for the mean, 0.005 nats for the KL divergence): a changed noise scale does not move
the mean.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import networkx as nx
import numpy as np
import pandas as pd

from bayes_rca.data.synthetic import LinearGaussianSystem
from bayes_rca.errors import BayesRCAError
from bayes_rca.graph.dag import blameable_nodes, parents_of
from bayes_rca.harness.benchmarks import heavy_tailed_dag

CHANGE_FAMILY = "distribution_change"
CHANGE_KINDS = ("coefficient", "noise_scale", "root_shift")
"""The mechanism changes the ``distribution_change`` family injects (``benchmark.change_kinds``)."""
DEFAULT_NUM_NODES = 8


@dataclass
class ChangeCase:
    """One seed's two periods, the old period's second sample and the injected changes.

    Attributes
    ----------
    graph : networkx.DiGraph
        The causal graph (the same in both periods).
    target : hashable
        The node whose distribution change is attributed.
    old, new : LinearGaussianSystem
        The true systems of the two periods.
    old_data, new_data : pandas.DataFrame
        ``num_rows`` rows of each period.
    same_data : pandas.DataFrame
        A second sample of the old period: the no-change case.
    changes : dict
        The changed mechanisms, node -> kind (one of :data:`CHANGE_KINDS`).
    functional : str
        The change functional (``"mean"``, ``"kl"``, ... ; see :data:`bayes_rca.change.api.FUNCTIONALS`).
    """

    graph: nx.DiGraph
    target: Hashable
    old: LinearGaussianSystem
    new: LinearGaussianSystem
    old_data: pd.DataFrame
    new_data: pd.DataFrame
    same_data: pd.DataFrame
    changes: dict[Hashable, str]
    functional: str = "mean"

    @property
    def players(self) -> list[Hashable]:
        """The mechanisms that can be blamed: the target's ancestors and the target (last)."""
        return blameable_nodes(self.graph, self.target)

    @cached_property
    def _exact(self) -> Any:
        from bayes_rca.change.api import attribute_distribution_change

        return attribute_distribution_change(self.old.oracle_model(), self.new.oracle_model(), self.target,
                                             self.functional)

    @property
    def truth(self) -> pd.Series:
        """Exact Shapley values at the true parameters over all nodes (0 for non-players)."""
        return pd.Series(self._exact.contributions[0], index=self._exact.nodes, dtype=float)

    @property
    def threshold(self) -> float:
        """The functional's default threshold at the old period's true moments (its units)."""
        return float(self._exact.default_delta)

    @property
    def relevant(self) -> list[Hashable]:
        """Changed mechanisms whose exact contribution is at least :attr:`threshold`."""
        truth = self.truth
        return [node for node in self.changes if abs(truth[node]) >= self.threshold]


def _possible_kinds(graph: nx.DiGraph, node: Hashable, kinds: Sequence[str]) -> list[str]:
    """The kinds of change ``node``'s mechanism can take: a coefficient needs a parent, a root shift a root."""
    has_parents = bool(parents_of(graph, node))
    return [kind for kind in kinds if (kind != "coefficient" or has_parents) and (kind != "root_shift"
                                                                                    or not has_parents)]


def check_change_settings(functional: str, max_changes: int, kinds: Sequence[str], num_rows: int) -> None:
    """Raise a :class:`~bayes_rca.errors.BayesRCAError` naming the bad setting and its choices."""
    from bayes_rca.change.api import get_functional

    get_functional(functional)  # an unknown name lists the known ones
    unknown = [kind for kind in kinds if kind not in CHANGE_KINDS]
    if unknown or not kinds:
        raise BayesRCAError(f"benchmark.change_kinds must be a non-empty list of {', '.join(CHANGE_KINDS)}; got "
                            f"{list(kinds)!r}")
    if max_changes < 1:
        raise BayesRCAError(f"benchmark.max_changes must be at least 1, got {max_changes}")
    if num_rows < 2:
        raise BayesRCAError(f"benchmark.num_rows (rows per period) must be at least 2, got {num_rows}")


def make_change_case(seed: int, functional: str = "mean", num_nodes: int = DEFAULT_NUM_NODES,
                     min_ancestors: int = 4, num_rows: int = 500, max_changes: int = 3,
                     kinds: Sequence[str] = CHANGE_KINDS) -> ChangeCase:
    """The case of ``seed`` (everything drawn from it; see the module docstring).

    Parameters
    ----------
    seed : int
        Seed of the system, the changes and the three samples.
    functional : str
        The change functional the truth is computed for.
    num_nodes, min_ancestors : int
        Graph size; the target is drawn among nodes with at least ``min_ancestors`` ancestors (the node with the
        most when there is none).
    num_rows : int
        Rows per period (and of the no-change sample).
    max_changes : int
        At most this many of the target's mechanisms change (at least one).
    kinds : sequence of str
        The kinds of change drawn from, per changed mechanism among those it can take.

    Returns
    -------
    ChangeCase
    """
    check_change_settings(functional, max_changes, kinds, num_rows)
    rng = np.random.default_rng(seed)
    for _ in range(100):
        graph = heavy_tailed_dag(num_nodes, int(rng.integers(1, 3)), rng)
        counts = {node: len(nx.ancestors(graph, node)) for node in graph}
        targets = sorted(node for node, count in counts.items() if count >= min_ancestors)
        if targets:
            break
    else:
        targets = [max(counts, key=counts.get)]
    target = targets[int(rng.integers(len(targets)))]
    coefficients = {edge: float(rng.uniform(0.5, 2.0) * rng.choice([-1.0, 1.0])) for edge in sorted(graph.edges)}
    intercepts = {node: float(rng.uniform(-3.0, 3.0) if graph.in_degree(node) == 0 else rng.uniform(-1.0, 1.0))
                  for node in graph}
    noise_sd = {node: float(rng.uniform(0.5, 1.5)) for node in graph}
    old = LinearGaussianSystem(graph, coefficients, intercepts, noise_sd)
    eligible = [node for node in blameable_nodes(graph, target) if _possible_kinds(graph, node, kinds)]
    if not eligible:
        raise BayesRCAError(f"seed {seed}: no mechanism of target {target!r} can take a change of the kinds "
                            f"{list(kinds)!r}")
    count = int(rng.integers(1, min(max_changes, len(eligible)) + 1))
    chosen = [eligible[int(i)] for i in rng.choice(len(eligible), size=count, replace=False)]
    new_coefficients, new_intercepts, new_sd = dict(coefficients), dict(intercepts), dict(noise_sd)
    changes: dict[Hashable, str] = {}
    for node in chosen:
        possible = _possible_kinds(graph, node, kinds)
        kind = possible[int(rng.integers(len(possible)))]
        if kind == "coefficient":
            parents = parents_of(graph, node)
            parent = parents[int(rng.integers(len(parents)))]
            new_coefficients[parent, node] *= float(rng.uniform(1.3, 2.0))
        elif kind == "noise_scale":
            new_sd[node] *= float(rng.uniform(1.5, 2.5))
        else:
            new_intercepts[node] += float(rng.uniform(0.5, 1.5) * rng.choice([-1.0, 1.0]) * noise_sd[node])
        changes[node] = kind
    new = LinearGaussianSystem(graph, new_coefficients, new_intercepts, new_sd)
    seeds = np.random.SeedSequence(seed).generate_state(3)
    return ChangeCase(graph, target, old, new, old.sample(num_rows, seed=int(seeds[0])),
                      new.sample(num_rows, seed=int(seeds[1])), old.sample(num_rows, seed=int(seeds[2])), changes,
                      functional)


def change_case(bench: Mapping[str, Any], seed: int) -> ChangeCase:
    """The case of a resolved ``benchmark`` section of the ``distribution_change`` family and a seed."""
    return make_change_case(seed, bench.get("functional", "mean"), bench.get("num_nodes") or DEFAULT_NUM_NODES,
                            bench["min_ancestors"], bench["num_rows"], bench.get("max_changes", 3),
                            bench.get("change_kinds", CHANGE_KINDS))


def change_benchmark_problem(bench: Mapping[str, Any]) -> str | None:
    """Why a ``distribution_change`` benchmark section cannot be generated, or None (nothing is generated)."""
    try:
        check_change_settings(bench.get("functional", "mean"), bench.get("max_changes", 3),
                              bench.get("change_kinds", CHANGE_KINDS), bench["num_rows"])
    except BayesRCAError as error:
        return str(error)
    return None
