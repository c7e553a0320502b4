"""Monitoring tables as microservice teams have them: one metric out of many, chosen rows, missing values.

A monitoring export often has three header rows (service, metric, statistic), an index of timestamps, nodes of
the call graph that never report a metric, and gaps. These functions turn such a table into what a
:class:`~bayes_rca.model.scm.BayesianSCM` needs: one numeric column per graph node, no missing values.

- :func:`read_metrics` reads such an export, with every header and parse problem a :class:`DataError`.
- :func:`select_metric` keeps one (metric, statistic) pair; the columns become the service names.
- :func:`row_positions` finds the anomalous rows by position or by index value (timestamp).
- :func:`marginalise` removes nodes from a causal graph, keeping the paths through them.
- :func:`prepare_observed` drops the nodes with too few observations (marginalising them) and imputes the
  remaining missing values with the median of the normal data.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Sequence
from pathlib import Path

import networkx as nx
import numpy as np
import pandas as pd

from bayes_rca.errors import DataError, GraphError
from bayes_rca.graph.dag import topological_order

DEFAULT_STATISTIC = "Average"


def _names(values: Iterable[object]) -> str:
    return ", ".join(sorted({str(value) for value in values})) or "none"


def read_metrics(path: str | Path) -> pd.DataFrame:
    """A CSV with three header rows (service, metric, statistic) whose first column is the row index.

    Raises
    ------
    DataError
        The file is missing or unreadable, or two columns share all three header cells (pandas would rename one).
    """
    try:
        frame = pd.read_csv(path, header=[0, 1, 2], index_col=0, encoding="utf-8-sig")  # drop a byte-order mark
        header = pd.read_csv(path, header=None, nrows=3, dtype=str, keep_default_na=False,
                             encoding="utf-8-sig").iloc[:, 1:]
    except FileNotFoundError:
        raise DataError(f"data file {path} does not exist") from None
    except (ValueError, IndexError, pd.errors.ParserError, UnicodeDecodeError) as error:
        raise DataError(f"cannot read CSV file {path} with three header rows (service, metric, statistic): "
                        f"{error}") from None
    columns = pd.Series(list(zip(*header.to_numpy())))
    duplicated = columns[columns.duplicated()].unique().tolist()
    if duplicated:
        raise DataError(f"CSV file {path} has duplicate columns: {', '.join('/'.join(c) for c in duplicated)}")
    return frame


def select_metric(frame: pd.DataFrame, metric: str, statistic: str = DEFAULT_STATISTIC) -> pd.DataFrame:
    """The columns of one metric and statistic, named by service.

    Parameters
    ----------
    frame : pandas.DataFrame
        Columns are a three-level MultiIndex ``(service, metric, statistic)`` (any level names), e.g. read with
        ``pd.read_csv(path, header=[0, 1, 2], index_col=0)``.
    metric : str
        The metric to keep, e.g. ``"latency"``.
    statistic : str, default "Average"
        The statistic of that metric to keep, e.g. ``"Average"`` or ``"p50"``.

    Returns
    -------
    pandas.DataFrame
        Same index as ``frame``, one float column per service that reports this metric and statistic.

    Raises
    ------
    DataError
        ``frame`` has no three-level column header, the metric or statistic is not in it (the available ones
        are named), two columns share a service, or a value is not numeric.
    """
    columns = frame.columns
    if not isinstance(columns, pd.MultiIndex) or columns.nlevels != 3:
        raise DataError("selecting a metric needs three header rows (service, metric, statistic); this table has "
                        f"{columns.nlevels} header row(s)")
    metrics = columns.get_level_values(1)
    if metric not in set(metrics):
        raise DataError(f"metric {metric!r} is not in the table; available metrics: {_names(metrics)}")
    statistics = columns.get_level_values(2)[metrics == metric]
    if statistic not in set(statistics):
        raise DataError(f"statistic {statistic!r} of metric {metric!r} is not in the table; available statistics: "
                        f"{_names(statistics)}")
    chosen = frame.loc[:, (metrics == metric) & (columns.get_level_values(2) == statistic)]
    services = chosen.columns.get_level_values(0)
    repeated = services[services.duplicated()].unique().tolist()
    if repeated:
        raise DataError(f"metric {metric!r}, statistic {statistic!r} has several columns for service(s) "
                        f"{', '.join(map(repr, repeated))}")
    try:
        selected = chosen.astype(np.float64)
    except (TypeError, ValueError) as error:
        raise DataError(f"metric {metric!r}, statistic {statistic!r} has a non-numeric value: {error}") from None
    selected.columns = pd.Index(services, name=columns.names[0])
    return selected


def _as_stamp(value: object, numeric: bool) -> object:
    if numeric:
        try:
            return float(value)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            raise DataError(f"timestamp {value!r} is not a number, but the row index is numeric") from None
    try:
        return pd.Timestamp(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise DataError(f"timestamp {value!r} is not a date, but the row index holds dates") from None


def _stamps(index: pd.Index) -> tuple[pd.Index | None, bool]:
    """The index as comparable values (numbers or datetimes), or None if it is neither; and whether numeric."""
    if pd.api.types.is_numeric_dtype(index) and not pd.api.types.is_bool_dtype(index):
        return index, True
    try:
        return pd.DatetimeIndex(pd.to_datetime(index)), False
    except (TypeError, ValueError):
        return None, False


def row_positions(frame: pd.DataFrame, rows: Sequence[int] | None = None,
                  timestamps: Sequence[object] | None = None) -> tuple[list[int], list[str]]:
    """Positions of the rows chosen by position or by index value, and one line per row saying which was used.

    Parameters
    ----------
    frame : pandas.DataFrame
        The table to choose from; its index holds the timestamps (numbers such as unix times, or datetimes).
    rows : sequence of int, optional
        0-based row positions.
    timestamps : sequence, optional
        Index values. The row with exactly this index value is used, else the first row at or after it (the
        one with the smallest index value not below it). Give ``rows`` or ``timestamps``, not both.

    Returns
    -------
    positions : list of int
        Distinct row positions, in the order asked for.
    notes : list of str
        For each chosen row, which request it answers and its index value.

    Raises
    ------
    DataError
        A position outside the table, a timestamp after the last row, or an index that cannot be compared.
    """
    if (rows is None) == (timestamps is None):
        raise DataError("choose rows either by position or by timestamp (exactly one of the two)")
    label = frame.index.name or "index"
    found: list[tuple[int, str]] = []
    if rows is not None:
        for position in rows:
            if not 0 <= position < len(frame):
                raise DataError(f"row {position} does not exist: the table has {len(frame)} rows (0 to "
                                f"{len(frame) - 1})")
            found.append((position, f"row {position} ({label} {frame.index[position]})"))
    else:
        stamps, numeric = _stamps(frame.index)
        for value in timestamps or ():
            exact = np.flatnonzero(frame.index.astype(str) == str(value))
            if stamps is not None:
                stamp = _as_stamp(value, numeric)
                exact = np.flatnonzero(stamps == stamp) if not len(exact) else exact
            if len(exact):
                position = int(exact[0])
                found.append((position, f"row {position} ({label} {frame.index[position]}) for timestamp {value}"))
                continue
            if stamps is None:
                raise DataError(f"timestamp {value!r} is not in the {label} column, whose values are neither "
                                "numbers nor dates, so no later row can be chosen either")
            try:
                later = np.flatnonzero(np.asarray(stamps >= stamp))
            except TypeError as error:  # e.g. a time zone on one side only
                raise DataError(f"timestamp {value!r} cannot be compared with the {label} column: {error}") from None
            if not len(later):
                raise DataError(f"timestamp {value} is after the last row ({label} {frame.index.max()})")
            position = int(later[np.argmin(np.asarray(stamps[later]))])
            note = f"row {position} ({label} {frame.index[position]}), the first at or after timestamp {value}"
            found.append((position, note))
    positions, notes = [], []
    for position, note in found:
        if position not in positions:
            positions.append(position)
            notes.append(note)
    return positions, notes


def marginalise(graph: nx.DiGraph, nodes: Iterable[Hashable]) -> nx.DiGraph:
    """Remove ``nodes`` from a causal graph, connecting each one's parents to each of its children first.

    A path ``a -> m -> b`` through a removed node ``m`` becomes the edge ``a -> b``; chains of removed nodes are
    bridged the same way. Ancestry among the kept nodes is unchanged, and the result stays acyclic.

    Parameters
    ----------
    graph : networkx.DiGraph
        The causal graph; it is not modified.
    nodes : iterable
        The nodes to remove.

    Returns
    -------
    networkx.DiGraph
        A new graph on the remaining nodes.

    Raises
    ------
    GraphError
        A node to remove is not in the graph.
    """
    removed = list(dict.fromkeys(nodes))
    unknown = [node for node in removed if node not in graph]
    if unknown:
        raise GraphError(f"cannot marginalise node(s) {', '.join(map(repr, unknown))}: not in the causal graph")
    result = graph.copy()
    for node in removed:
        parents, children = list(result.predecessors(node)), list(result.successors(node))
        result.add_edges_from((parent, child) for parent in parents for child in children if parent != child)
        result.remove_node(node)
    return result


def _check_numeric(frame: pd.DataFrame, nodes: Iterable[Hashable], what: str) -> None:
    bad = [node for node in nodes if node in frame.columns and (not pd.api.types.is_numeric_dtype(frame[node])
                                                                or pd.api.types.is_bool_dtype(frame[node]))]
    if bad:
        details = ", ".join(f"{node!r} (dtype {frame[node].dtype})" for node in bad)
        raise DataError(f"{what} has non-numeric column(s) {details}; every graph node must be numeric")


def prepare_observed(graph: nx.DiGraph, normal: pd.DataFrame, outliers: pd.DataFrame, min_observed: int = 10
                     ) -> tuple[nx.DiGraph, pd.DataFrame, pd.DataFrame, list[Hashable], pd.DataFrame]:
    """Drop the nodes that cannot be modelled and impute the remaining missing values.

    A graph node with no column in ``normal``, or with fewer than ``min_observed`` non-missing values there, is
    marginalised out of the graph (see :func:`marginalise`). Every remaining missing value, in ``normal`` and in
    ``outliers``, is replaced by the median of the node's normal values; a node without a column in
    ``outliers`` counts as missing in every outlier row. Infinite values are left for validation to report.

    Parameters
    ----------
    graph : networkx.DiGraph
        The causal graph.
    normal : pandas.DataFrame
        Rows of normal operation, one column per node (other columns are ignored).
    outliers : pandas.DataFrame
        The anomalous rows, same columns.
    min_observed : int, default 10
        The fewest non-missing normal values a node needs to be kept (at least 1).

    Returns
    -------
    graph : networkx.DiGraph
        The causal graph without the dropped nodes.
    normal, outliers : pandas.DataFrame
        The kept nodes' columns (float, in topological order), missing values imputed; indexes unchanged.
    dropped_nodes : list
        The dropped nodes, in topological order of the input graph.
    imputed_counts : pandas.DataFrame
        Indexed by kept node, int columns ``normal`` and ``outliers``: how many values were imputed.

    Raises
    ------
    DataError
        ``min_observed`` below 1, or a node's column is not numeric.
    """
    if min_observed < 1:
        raise DataError(f"min_observed must be at least 1, got {min_observed}")
    nodes = topological_order(graph)
    _check_numeric(normal, nodes, "normal data")
    _check_numeric(outliers, nodes, "outlier data")
    observed = {node: int(normal[node].notna().sum()) if node in normal.columns else 0 for node in nodes}
    dropped = [node for node in nodes if observed[node] < min_observed]
    reduced = marginalise(graph, dropped)
    kept = [node for node in nodes if node not in dropped]
    normal_kept = normal[kept].astype(np.float64)
    outliers_kept = outliers.reindex(columns=kept).astype(np.float64)
    imputed = pd.DataFrame({"normal": normal_kept.isna().sum(), "outliers": outliers_kept.isna().sum()},
                           index=pd.Index(kept, dtype=object)).astype(int)
    medians = normal_kept.median()
    return reduced, normal_kept.fillna(medians), outliers_kept.fillna(medians), dropped, imputed
