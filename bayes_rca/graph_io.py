"""Reading causal or dependency graphs from files: CSV adjacency matrix, CSV edge list, GraphML, DOT."""

from __future__ import annotations

import csv
from pathlib import Path

import networkx as nx

from bayes_rca.errors import GraphError
from bayes_rca.graph import causal_graph_from_dependencies, validate_graph

FORMATS = ("auto", "adjacency", "edgelist", "graphml", "dot")


def _read_rows(path: Path) -> list[list[str]]:
    try:
        with path.open(newline="") as handle:
            return [row for row in csv.reader(handle) if any(cell.strip() for cell in row)]
    except (OSError, UnicodeDecodeError, csv.Error) as error:
        raise GraphError(f"cannot read graph file {path}: {error}") from None


def _looks_like_adjacency(rows: list[list[str]]) -> bool:
    header = [cell.strip() for cell in rows[0]]
    return len(rows) == len(header) and [row[0].strip() for row in rows[1:]] == header[1:]


def _adjacency(path: Path, rows: list[list[str]]) -> nx.DiGraph:
    names = [cell.strip() for cell in rows[0][1:]]
    graph = nx.DiGraph()
    graph.add_nodes_from(names)
    for line, row in enumerate(rows[1:], start=2):
        if len(row) != len(names) + 1:
            raise GraphError(f"{path}, line {line}: expected {len(names) + 1} cells, found {len(row)}")
        for name, cell in zip(names, row[1:]):
            try:
                value = float(cell)
            except ValueError:
                raise GraphError(f"{path}, line {line}: adjacency entry {cell!r} for column {name!r} is not a "
                                 "number") from None
            if value != 0:
                graph.add_edge(row[0].strip(), name)
    return graph


def _edgelist(path: Path, rows: list[list[str]]) -> nx.DiGraph:
    graph = nx.DiGraph()
    start = 1 if [c.strip().lower() for c in rows[0][:2]] in (["source", "target"], ["cause", "effect"],
                                                                ["from", "to"], ["caller", "callee"]) else 0
    for line, row in enumerate(rows[start:], start=start + 1):
        cells = [cell.strip() for cell in row]
        if len(cells) != 2 or not all(cells):
            raise GraphError(f"{path}, line {line}: an edge list row needs exactly two node names, got {row!r}")
        graph.add_edge(*cells)
    return graph


def read_graph(path: str | Path, fmt: str = "auto", dependencies: bool = False) -> nx.DiGraph:
    """Read a graph file and return the validated causal graph.

    Parameters
    ----------
    path : str or Path
        A CSV adjacency matrix (row = from, column = to, nonzero = edge; first row and column name the nodes),
        a CSV edge list (``from,to`` per line, optional header), a GraphML file or a DOT file.
    fmt : {"auto", "adjacency", "edgelist", "graphml", "dot"}
        ``"auto"`` decides from the suffix and, for CSV, from the shape.
    dependencies : bool
        The file is a service dependency (call) graph: reverse its edges into the causal graph.
    """
    path = Path(path)
    if fmt not in FORMATS:
        raise GraphError(f"unknown graph format {fmt!r}; use one of {', '.join(FORMATS)}")
    if not path.is_file():
        raise GraphError(f"graph file {path} does not exist")
    suffix = path.suffix.lower()
    if fmt == "graphml" or (fmt == "auto" and suffix == ".graphml"):
        try:
            graph = nx.DiGraph(nx.read_graphml(path))
        except Exception as error:  # networkx raises several parser-specific types
            raise GraphError(f"cannot parse GraphML file {path}: {error}") from None
    elif fmt == "dot" or (fmt == "auto" and suffix in (".dot", ".gv")):
        try:
            graph = nx.DiGraph(nx.nx_pydot.read_dot(path))
        except ImportError:
            raise GraphError("reading DOT files needs the pydot package (pip install pydot)") from None
        except Exception as error:
            raise GraphError(f"cannot parse DOT file {path}: {error}") from None
    else:
        rows = _read_rows(path)
        if not rows:
            raise GraphError(f"graph file {path} is empty")
        adjacency = fmt == "adjacency" or (fmt == "auto" and _looks_like_adjacency(rows))
        graph = _adjacency(path, rows) if adjacency else _edgelist(path, rows)
    return causal_graph_from_dependencies(graph) if dependencies else validate_graph(graph)
