"""Synthetic benchmark families with known ground truth.

``icml2022`` follows the protocol of Budhathoki et al. (ICML 2022): random DAGs of 20-29 nodes with 1-4 roots
and heavy-tailed parent counts, linear mechanisms with coefficients U(0.5, 2), N(0, 1) noise, 2000 training
rows; targets with at least 10 ancestors; an outlier sets the noise of k ~ U{1..5} random nodes among the
target and its ancestors to U(3, 5) and every other noise to 0. Ground-truth relevance of an injected node is
how much the target moves when that node's injection alone is undone (for linear mechanisms: |path coefficient
x injected noise|). Variants the paper lacks: ``nonlinear`` mechanisms, ``student_t`` noise, ``wide`` graphs
(50-100 nodes), small training sets (the ``num_rows`` key), and a ``microservice`` latency family with sum/max
composition and half-normal/exponential noise.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field

import networkx as nx
import numpy as np
import pandas as pd

from bayes_rca.data.synthetic import LinearGaussianSystem
from bayes_rca.errors import BayesRCAError
from bayes_rca.graph.dag import ancestors_of, parents_of, topological_order

NodeFunction = Callable[[np.ndarray], np.ndarray]
STUDENT_T_DF = 3.0
"""Degrees of freedom of the ``student_t`` family's noise (standardised to unit variance)."""


@dataclass(frozen=True)
class SyntheticSystem:
    """``X_j = f_j(PA_j) + noise_scale_j * N_j`` with standardised noise ``N_j`` of the given kind.

    ``linear`` is set for linear systems with Gaussian or Student-t noise (the same system as a
    :class:`~bayes_rca.data.synthetic.LinearGaussianSystem`, with ``noise_df`` for Student-t): their attribution at
    the true parameters is then known (:mod:`bayes_rca.harness.truth`).
    """

    graph: nx.DiGraph
    functions: dict[Hashable, NodeFunction]
    noise_scale: dict[Hashable, float]
    noise_kind: str = "gaussian"
    linear: LinearGaussianSystem | None = None

    def sample_noise(self, num_rows: int, rng: np.random.Generator) -> pd.DataFrame:
        """Standardised noise (zero mean, unit variance) for every node."""
        shape = (num_rows, self.graph.number_of_nodes())
        if self.noise_kind == "gaussian":
            noise = rng.standard_normal(shape)
        elif self.noise_kind == "student_t":
            noise = rng.standard_t(STUDENT_T_DF, shape) / np.sqrt(STUDENT_T_DF / (STUDENT_T_DF - 2.0))
        elif self.noise_kind == "half_normal":
            noise = (np.abs(rng.standard_normal(shape)) - np.sqrt(2 / np.pi)) / np.sqrt(1 - 2 / np.pi)
        else:
            noise = rng.exponential(1.0, shape) - 1.0
        return pd.DataFrame(noise, columns=list(self.graph.nodes))

    def propagate(self, noise: pd.DataFrame) -> pd.DataFrame:
        """Node values for given standardised noise."""
        values: dict[Hashable, np.ndarray] = {}
        for node in topological_order(self.graph):
            parents = parents_of(self.graph, node)
            inputs = np.column_stack([values[p] for p in parents]) if parents else np.zeros((len(noise), 0))
            values[node] = self.functions[node](inputs) + self.noise_scale[node] * noise[node].to_numpy()
        return pd.DataFrame(values, index=noise.index)[list(self.graph.nodes)]

    def sample(self, num_rows: int, rng: np.random.Generator) -> pd.DataFrame:
        """Rows of normal operation."""
        return self.propagate(self.sample_noise(num_rows, rng))


class _RawWindow:
    """The rows as measured that a method which ``uses_raw_data`` is asked about (``window`` from ``start`` on)."""

    window: pd.DataFrame | None
    start: int

    @property
    def raw_rows(self) -> pd.DataFrame | None:
        """The rows of ``window`` from the analysed row on (None without a window)."""
        return None if self.window is None else self.window.iloc[self.start:]


@dataclass(frozen=True)
class OutlierCase(_RawWindow):
    """One outlier with its ground truth.

    Attributes
    ----------
    target : the node where the outlier is observed.
    row : one-row frame of node values.
    root_cause : the true root cause.
    relevance : ground-truth relevance per graph node (0 for nodes not injected), where known (synthetic).
    injected : standardised noise injected per node (others 0), where known (synthetic).
    name : a label of the case (e.g. the issue folder of a real data set).
    observed_row : the row as measured, missing values NaN, where ``row`` had them imputed (real data).
    window : every row around the outlier as measured (real data): one column per service reporting the
        metric, missing values NaN, no node left out; what a method that ``uses_raw_data`` is asked about,
        from position ``start`` on.
    start : the position in ``window`` of the analysed row.
    """

    target: Hashable
    row: pd.DataFrame
    root_cause: Hashable
    relevance: pd.Series | None = None
    injected: dict[Hashable, float] = field(default_factory=dict)
    name: str = ""
    observed_row: pd.DataFrame | None = None
    window: pd.DataFrame | None = None
    start: int = 0


@dataclass(frozen=True)
class NormalCase(_RawWindow):
    """A specificity check: a row of normal operation, after fitting on the normal rows before it.

    A method is right when it names no root cause. ``graph`` is the causal graph of the nodes modelled on
    ``train`` (a real data set may leave out nodes without enough observations); ``observed_row`` is ``row``
    before its missing values were imputed. ``raw_graph``, ``raw_train``, ``window`` and ``start`` are the
    same as measured, for a method that ``uses_raw_data`` (see :class:`OutlierCase` and :class:`Benchmark`).
    """

    graph: nx.DiGraph
    train: pd.DataFrame
    target: Hashable
    row: pd.DataFrame
    name: str = ""
    observed_row: pd.DataFrame | None = None
    raw_graph: nx.DiGraph | None = None
    raw_train: pd.DataFrame | None = None
    window: pd.DataFrame | None = None
    start: int = 0


@dataclass(frozen=True)
class Benchmark:
    """A causal graph, normal training data, outlier cases and optional specificity checks.

    ``system`` is the generating system of a synthetic benchmark (None for real data). ``raw_graph`` and
    ``raw_train`` are the data as measured, where they differ from ``graph`` and ``train`` (real data): the
    causal graph with every node and the normal rows with their missing values, for a method that
    ``uses_raw_data``.
    """

    family: str
    graph: nx.DiGraph
    train: pd.DataFrame
    cases: list[OutlierCase] = field(default_factory=list)
    system: SyntheticSystem | None = None
    normal_cases: list[NormalCase] = field(default_factory=list)
    raw_graph: nx.DiGraph | None = None
    raw_train: pd.DataFrame | None = None


def heavy_tailed_dag(num_nodes: int, num_roots: int, rng: np.random.Generator, max_parents: int = 6) -> nx.DiGraph:
    """A DAG whose first ``num_roots`` nodes are roots; every other node draws a Zipf(2)-distributed number
    of parents (capped at ``max_parents``) among earlier nodes, preferring nodes that already have children."""
    names = [f"X{j}" for j in range(num_nodes)]
    graph = nx.DiGraph()
    graph.add_nodes_from(names)
    for j in range(num_roots, num_nodes):
        count = int(min(rng.zipf(2.0), max_parents, j))
        weights = np.array([1.0 + graph.out_degree(names[i]) for i in range(j)])
        chosen = rng.choice(j, size=count, replace=False, p=weights / weights.sum())
        graph.add_edges_from((names[int(i)], names[j]) for i in chosen)
    return graph


def _linear_functions(graph: nx.DiGraph, coefficients: dict) -> dict[Hashable, NodeFunction]:
    def function(node: Hashable) -> NodeFunction:
        weights = np.array([coefficients[p, node] for p in parents_of(graph, node)])
        return lambda parents: parents @ weights if len(weights) else np.zeros(len(parents))

    return {node: function(node) for node in graph}


_NONLINEARITIES: tuple[Callable[[np.ndarray], np.ndarray], ...] = (
    np.tanh, lambda x: np.sin(x) + 0.5 * x, lambda x: np.sign(x) * np.sqrt(np.abs(x)), lambda x: np.log1p(np.exp(x)),
)


def _nonlinear_functions(graph: nx.DiGraph, coefficients: dict, rng: np.random.Generator) -> dict:
    def function(node: Hashable) -> NodeFunction:
        parents = parents_of(graph, node)
        weights = np.array([coefficients[p, node] for p in parents])
        shapes = [_NONLINEARITIES[int(rng.integers(len(_NONLINEARITIES)))] for _ in parents]
        return lambda x: sum((w * g(x[:, i]) for i, (w, g) in enumerate(zip(weights, shapes))),
                             np.zeros(len(x)))

    return {node: function(node) for node in graph}


def _microservice_system(num_nodes: int, rng: np.random.Generator) -> SyntheticSystem:
    """Services in a random call DAG; latency = own time + sum (or max, for parallel fan-out) of callees'."""
    calls = heavy_tailed_dag(num_nodes, max(1, num_nodes // 6), rng)
    graph = nx.relabel_nodes(calls, {f"X{j}": f"S{j}" for j in range(num_nodes)})
    functions = {}
    for node in graph:
        base = float(rng.uniform(2.0, 20.0))
        parallel = bool(rng.random() < 0.4)
        compose = (lambda x: x.max(axis=1)) if parallel else (lambda x: x.sum(axis=1))
        functions[node] = (lambda x, b=base, c=compose: b + (c(x) if x.shape[1] else 0.0))
    scale = {node: float(rng.uniform(0.5, 3.0)) for node in graph}
    kind = "half_normal" if rng.random() < 0.5 else "exponential"
    return SyntheticSystem(graph, functions, scale, kind)


FAMILY_NODES = {"icml2022": (20, 29), "nonlinear": (20, 29), "student_t": (20, 29), "wide": (50, 100),
                "microservice": (12, 24)}


def make_system(family: str, num_nodes: int, rng: np.random.Generator) -> SyntheticSystem:
    """A random system of ``family`` with ``num_nodes`` nodes."""
    if family not in FAMILY_NODES:
        raise BayesRCAError(f"unknown benchmark family {family!r}; known: {', '.join(FAMILY_NODES)}")
    if family == "microservice":
        return _microservice_system(num_nodes, rng)
    graph = heavy_tailed_dag(num_nodes, int(rng.integers(1, 5)), rng)
    coefficients = {edge: float(rng.uniform(0.5, 2.0)) for edge in sorted(graph.edges, key=str)}
    scale = {node: 1.0 for node in graph}
    if family == "nonlinear":
        return SyntheticSystem(graph, _nonlinear_functions(graph, coefficients, rng), scale)
    kind = "student_t" if family == "student_t" else "gaussian"
    if kind == "gaussian":
        linear = LinearGaussianSystem(graph, coefficients, {n: 0.0 for n in graph}, scale)
    else:  # unit-variance t noise: scale sqrt((df - 2) / df) of the t distribution
        shrink = math.sqrt((STUDENT_T_DF - 2.0) / STUDENT_T_DF)
        linear = LinearGaussianSystem(graph, coefficients, {n: 0.0 for n in graph},
                                      {n: s * shrink for n, s in scale.items()}, STUDENT_T_DF)
    return SyntheticSystem(graph, _linear_functions(graph, coefficients), scale, kind, linear)


def make_case(system: SyntheticSystem, target: Hashable, rng: np.random.Generator,
              max_injected: int = 5, injected_range: tuple[float, float] = (3.0, 5.0)) -> OutlierCase:
    """An outlier at ``target``: k ~ U{1..max_injected} of the target and its ancestors get noise U(range)."""
    candidates = [*ancestors_of(system.graph, target), target]
    count = int(rng.integers(1, min(max_injected, len(candidates)) + 1))
    chosen = [candidates[int(i)] for i in rng.choice(len(candidates), size=count, replace=False)]
    injected = {node: float(rng.uniform(*injected_range)) for node in chosen}
    zero = pd.DataFrame(np.zeros((1, system.graph.number_of_nodes())), columns=list(system.graph.nodes))

    def target_value(nodes: dict) -> float:
        noise = zero.copy()
        for node, value in nodes.items():
            noise[node] = value
        return float(system.propagate(noise)[target].iloc[0])

    full = target_value(injected)
    relevance = pd.Series(0.0, index=list(system.graph.nodes))
    for node in chosen:
        relevance[node] = abs(full - target_value({n: v for n, v in injected.items() if n != node}))
    noise = zero.copy()
    for node, value in injected.items():
        noise[node] = value
    return OutlierCase(target, system.propagate(noise), relevance.idxmax(), relevance, injected)


def make_benchmark(family: str, seed: int, num_rows: int = 2000, num_outliers: int = 5,
                   num_nodes: int | None = None, min_ancestors: int = 10, max_tries: int = 100) -> Benchmark:
    """A benchmark instance of a family of :data:`FAMILY_NODES` (see :func:`generate_benchmark`)."""
    return generate_benchmark(family, lambda size, rng: make_system(family, size, rng),
                              FAMILY_NODES.get(family, (20, 29)), seed, num_rows, num_outliers, num_nodes,
                              min_ancestors, max_tries)


def generate_benchmark(family: str, system_of: Callable[[int, np.random.Generator], SyntheticSystem],
                       node_range: tuple[int, int], seed: int, num_rows: int = 2000, num_outliers: int = 5,
                       num_nodes: int | None = None, min_ancestors: int = 10, max_tries: int = 100) -> Benchmark:
    """A benchmark instance: system, ``num_rows`` training rows and ``num_outliers`` cases, all from ``seed``.

    ``system_of(num_nodes, rng)`` draws a system of the family; ``num_nodes`` is drawn from ``node_range``
    (both ends included) when unset. Targets are drawn among nodes with at least ``min_ancestors`` ancestors
    (fewer if the graph has none, then the node with the most ancestors).
    """
    rng = np.random.default_rng(seed)
    low, high = node_range
    size = num_nodes or int(rng.integers(low, high + 1))
    for _ in range(max_tries):
        system = system_of(size, rng)
        counts = {node: len(nx.ancestors(system.graph, node)) for node in system.graph}
        targets = sorted((n for n, c in counts.items() if c >= min_ancestors), key=str)
        if targets:
            break
    else:
        targets = [max(counts, key=counts.get)]
    train = system.sample(num_rows, rng)
    cases = [make_case(system, targets[int(rng.integers(len(targets)))], rng) for _ in range(num_outliers)]
    return Benchmark(family, system.graph, train, cases, system)
