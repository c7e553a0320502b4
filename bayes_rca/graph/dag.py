"""Causal graphs: validation, ancestors, and conversion of service dependency graphs."""

from __future__ import annotations

from collections.abc import Hashable, Iterable

import networkx as nx

from bayes_rca.errors import GraphError


def validate_graph(graph: nx.DiGraph) -> nx.DiGraph:
    """Check that ``graph`` is a directed acyclic graph and return it.

    Parameters
    ----------
    graph : networkx.DiGraph
        The causal graph; an edge ``u -> v`` means ``u`` is a direct cause of ``v``.

    Raises
    ------
    GraphError
        If the graph is not directed, is empty, or has a cycle (the cycle is named).

    Examples
    --------
    >>> validate_graph(nx.DiGraph([("a", "b"), ("b", "a")]))
    Traceback (most recent call last):
    ...
    bayes_rca.errors.GraphError: the causal graph must be acyclic, but it has the cycle a -> b -> a
    """
    if not isinstance(graph, nx.DiGraph):
        raise GraphError(f"the causal graph must be a networkx.DiGraph, got {type(graph).__name__}")
    if graph.number_of_nodes() == 0:
        raise GraphError("the causal graph has no nodes")
    tuples = [node for node in graph if isinstance(node, tuple)]
    if tuples:  # pandas reads a tuple as a MultiIndex key, so its column could never be found
        raise GraphError(f"graph node {tuples[0]!r} is a tuple; node names must be strings or numbers: join its "
                         f"parts, e.g. {'/'.join(map(str, tuples[0]))!r}")
    if not nx.is_directed_acyclic_graph(graph):
        cycle = nx.find_cycle(graph)
        path = " -> ".join(str(u) for u, _ in cycle) + f" -> {cycle[0][0]}"
        raise GraphError(f"the causal graph must be acyclic, but it has the cycle {path}")
    return graph


def check_node(graph: nx.DiGraph, node: Hashable, role: str = "node") -> None:
    """Raise a :class:`GraphError` naming ``node`` if it is not in ``graph``."""
    if node not in graph:
        known = ", ".join(map(str, sorted(graph.nodes, key=str)))
        raise GraphError(f"{role} {node!r} is not a node of the causal graph (nodes: {known})")


def ancestors_of(graph: nx.DiGraph, target: Hashable) -> list[Hashable]:
    """Ancestors of ``target`` in topological order (the target itself excluded).

    >>> ancestors_of(nx.DiGraph([("db", "api"), ("api", "web"), ("cache", "web")]), "web")
    ['cache', 'db', 'api']
    """
    check_node(graph, target, "target")
    ancestors = nx.ancestors(graph, target)
    return [node for node in topological_order(graph) if node in ancestors]


def blameable_nodes(graph: nx.DiGraph, target: Hashable) -> list[Hashable]:
    """Nodes that can receive a nonzero contribution for ``target``: its ancestors and itself, in topological order.

    >>> blameable_nodes(nx.DiGraph([("db", "api"), ("api", "web"), ("api", "batch")]), "web")
    ['db', 'api', 'web']
    """
    return [*ancestors_of(graph, target), target]


def topological_order(graph: nx.DiGraph) -> list[Hashable]:
    """A deterministic topological order (ties broken by the nodes' string form)."""
    return list(nx.lexicographical_topological_sort(graph, key=str))


def parents_of(graph: nx.DiGraph, node: Hashable) -> list[Hashable]:
    """Parents of ``node`` in a deterministic order (by their string form)."""
    return sorted(graph.predecessors(node), key=str)


def causal_graph_from_dependencies(dependencies: nx.DiGraph | Iterable[tuple[Hashable, Hashable]]) -> nx.DiGraph:
    """Turn a service dependency (call) graph into the causal graph of latencies by reversing its edges.

    An edge ``caller -> callee`` in the dependency graph becomes ``callee -> caller``: a slow callee makes
    its caller slow.

    Parameters
    ----------
    dependencies : networkx.DiGraph or iterable of (caller, callee) pairs

    Returns
    -------
    networkx.DiGraph
        The validated causal graph.

    Examples
    --------
    >>> sorted(causal_graph_from_dependencies([("web", "api"), ("api", "db")]).edges)
    [('api', 'web'), ('db', 'api')]
    """
    dep = dependencies if isinstance(dependencies, nx.DiGraph) else nx.DiGraph(list(dependencies))
    return validate_graph(dep.reverse(copy=True))
