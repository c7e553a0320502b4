"""Reading causal or dependency graphs from files: CSV adjacency matrix, CSV edge list, GraphML, DOT."""

from __future__ import annotations

import contextlib
import csv
import io
import math
import re
from pathlib import Path

import networkx as nx

from bayes_rca.errors import GraphError
from bayes_rca.graph.dag import causal_graph_from_dependencies, validate_graph

FORMATS = ("auto", "adjacency", "edgelist", "graphml", "dot")


def _read_rows(path: Path) -> list[list[str]]:
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:  # utf-8-sig: drop a byte-order mark
            return [row for row in csv.reader(handle) if any(cell.strip() for cell in row)]
    except (OSError, UnicodeDecodeError, csv.Error) as error:
        raise GraphError(f"cannot read graph file {path}: {error}") from None


def _is_number(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return False
    return True


def _looks_like_adjacency(rows: list[list[str]]) -> bool:
    """A square table whose first column names the same nodes as its first row (in any order), and whose
    body is numeric where it has a single cell (``A,B`` / ``B,D`` is a two-line edge list, not a 1x1 matrix)."""
    header = [cell.strip() for cell in rows[0]]
    names = [row[0].strip() for row in rows[1:]]
    if len(rows) != len(header) or sorted(names) != sorted(header[1:]) or len(set(names)) != len(names):
        return False
    return len(header) > 2 or all(_is_number(row[1]) for row in rows[1:] if len(row) > 1)


def _edge_list_hint(rows: list[list[str]]) -> str:
    """A note for an adjacency matrix whose cells are node names: it looks like an edge list."""
    if all(len(row) == 2 for row in rows):
        return "; the file looks like an edge list (two node names per row): give --graph-format edgelist"
    return ""


def _adjacency_hint(rows: list[list[str]]) -> str:
    """A note for an edge list row of more than two cells where the file looks like an adjacency matrix."""
    if _looks_like_adjacency(rows):
        return "; the file looks like an adjacency matrix: give --graph-format adjacency (or auto)"
    body = [cell for row in rows[1:] for cell in row[1:]]
    if any(len(row) > 2 for row in rows) and body and all(_is_number(cell) for cell in body):
        return ("; the file looks like an adjacency matrix (numbers after the first column), but its first row is "
                "not an empty cell followed by the names of the nodes of its first column")
    return ""


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
                                 f"number{_edge_list_hint(rows)}") from None
            if not math.isfinite(value):  # NaN != 0 would be an edge
                raise GraphError(f"{path}, line {line}: adjacency entry {cell.strip()!r} for column {name!r} is not "
                                 "a finite number; use 0 for no edge and 1 for an edge")
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
            raise GraphError(f"{path}, line {line}: an edge list row needs exactly two node names, got {row!r}"
                             f"{_adjacency_hint(rows)}")
        graph.add_edge(*cells)
    return graph


def _directed(path: Path, graph: nx.Graph, kind: str, fix: str) -> nx.DiGraph:
    """``graph`` as a DiGraph; an undirected file is an error (each edge would become a two-node cycle)."""
    if not graph.is_directed():
        raise GraphError(f"{kind} file {path} describes an undirected graph; a causal graph needs directed edges "
                         f"({fix})")
    return nx.DiGraph(graph)


def _read_dot(path: Path) -> nx.DiGraph:
    """A DOT file as a DiGraph; pydot's parse error (which it prints, returning nothing) becomes one line."""
    printed = io.StringIO()
    try:
        with contextlib.redirect_stdout(printed):
            graph = nx.nx_pydot.read_dot(path)
    except ImportError:
        raise GraphError("reading DOT files needs the pydot package (pip install pydot)") from None
    except Exception as error:
        match = re.search(r"^(.*?)\s+\(at char \d+\), \(line:(\d+), col:(\d+)\)", printed.getvalue(), re.M)
        where = f"line {match[2]}, column {match[3]}: {match[1]}" if match else " ".join(str(error).split())
        raise GraphError(f"cannot parse DOT file {path}: {where}") from None
    return _directed(path, graph, "DOT", "write 'digraph' and '->'")


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
            graph = _directed(path, nx.read_graphml(path), "GraphML", "edgedefault=\"directed\"")
        except GraphError:
            raise
        except Exception as error:  # networkx raises several parser-specific types
            raise GraphError(f"cannot parse GraphML file {path}: {error}") from None
    elif fmt == "dot" or (fmt == "auto" and suffix in (".dot", ".gv")):
        graph = _read_dot(path)
    else:
        rows = _read_rows(path)
        if not rows:
            raise GraphError(f"graph file {path} is empty")
        adjacency = fmt == "adjacency" or (fmt == "auto" and _looks_like_adjacency(rows))
        graph = _adjacency(path, rows) if adjacency else _edgelist(path, rows)
    unprintable = [node for node in graph if isinstance(node, str) and not node.isprintable()]
    if unprintable:  # a parse accident, and no data column would match it
        raise GraphError(f"graph file {path} has a node name with an unprintable character (a line break, a "
                         f"control character or a byte-order mark): {unprintable[0]!r}; check the file's syntax")
    return causal_graph_from_dependencies(graph) if dependencies else validate_graph(graph)
