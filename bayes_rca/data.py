"""Validation of training data and outlier rows against a causal graph.

Rule for missing values in training data: each node's mechanism is fitted on the rows where the node and all
its parents are observed (finite). Missing values in an outlier row are latent variables where the attribution
can infer them (:mod:`bayes_rca.latent`) and an error naming row and column elsewhere.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence

import networkx as nx
import numpy as np
import pandas as pd

from bayes_rca.errors import DataError


def _check_frame(frame: object, what: str) -> pd.DataFrame:
    if isinstance(frame, pd.Series):
        # A row taken from a mixed-type frame has dtype object; restore each column's own type.
        frame = frame.to_frame().T.infer_objects()
    if not isinstance(frame, pd.DataFrame):
        raise DataError(f"{what} must be a pandas DataFrame, got {type(frame).__name__}")
    duplicated = frame.columns[frame.columns.duplicated()].unique().tolist()
    if duplicated:
        raise DataError(f"{what} has duplicate column names: {', '.join(map(str, duplicated))}")
    return frame


def _check_columns(frame: pd.DataFrame, nodes: Sequence[Hashable], what: str) -> None:
    missing = [node for node in nodes if node not in frame.columns]
    if missing:
        raise DataError(f"{what} has no column for graph node(s) {', '.join(map(repr, missing))}")
    non_numeric = [node for node in nodes if not pd.api.types.is_numeric_dtype(frame[node])
                   or pd.api.types.is_bool_dtype(frame[node])]
    if non_numeric:
        details = ", ".join(f"{node!r} (dtype {frame[node].dtype})" for node in non_numeric)
        raise DataError(f"{what} has non-numeric column(s) {details}; every graph node must be numeric")


def validate_training_data(graph: nx.DiGraph, data: pd.DataFrame) -> pd.DataFrame:
    """Check normal-operation data against ``graph`` and return its node columns as float64.

    Parameters
    ----------
    graph : networkx.DiGraph
        The causal graph; every node needs a numeric column.
    data : pandas.DataFrame
        Rows of normal operation. Columns not in the graph are ignored.

    Raises
    ------
    DataError
        Duplicate, missing, non-numeric or all-NaN columns, or fewer than two rows.
    """
    frame = _check_frame(data, "training data")
    if len(frame) < 2:  # before the columns: a CSV with a header only has columns of dtype object
        raise DataError(f"training data needs at least 2 rows, got {len(frame)}")
    nodes = list(graph.nodes)
    _check_columns(frame, nodes, "training data")
    values = frame[nodes].astype(np.float64)
    infinite = [node for node in nodes if np.isinf(values[node].to_numpy()).any()]
    if infinite:
        raise DataError(f"training data has infinite values in column(s) {', '.join(map(repr, infinite))}")
    all_nan = [node for node in nodes if values[node].isna().all()]
    if all_nan:
        raise DataError(f"training data column(s) {', '.join(map(repr, all_nan))} contain only missing values")
    return values


def validate_outliers(outliers: pd.DataFrame | pd.Series, nodes: Sequence[Hashable],
                      missing_allowed: Sequence[Hashable] = ()) -> pd.DataFrame:
    """Check outlier rows: every node in ``nodes`` must be present, numeric and finite (NaN allowed in
    ``missing_allowed``).

    Parameters
    ----------
    outliers : pandas.DataFrame or pandas.Series
        One row per outlier (a Series is one row).
    nodes : sequence
        The nodes whose values the attribution needs (the target and its ancestors).
    missing_allowed : sequence
        Nodes whose values may be missing (NaN); infinite values are never allowed.

    Raises
    ------
    DataError
        Missing or non-numeric columns, no rows, duplicate row labels, or a NaN/inf value (row and column
        named).
    """
    frame = _check_frame(outliers, "outlier data")
    if len(frame) == 0:
        raise DataError("outlier data has no rows")
    repeated = frame.index[frame.index.duplicated()].unique().tolist()
    if repeated:
        raise DataError(f"outlier data has duplicate row labels {', '.join(map(repr, repeated))}; results are "
                        "indexed by row label, so give each outlier its own (e.g. pd.concat(..., ignore_index=True))")
    _check_columns(frame, nodes, "outlier data")
    values = frame[list(nodes)].astype(np.float64)
    array = values.to_numpy()
    bad = np.isinf(array) | (np.isnan(array) & ~np.isin(np.asarray(list(nodes), dtype=object),
                                                       np.asarray(list(missing_allowed), dtype=object)))
    if bad.any():
        row, col = np.argwhere(bad)[0]
        kind = "an infinite" if np.isinf(array[row, col]) else "a missing"
        raise DataError(f"outlier row {frame.index[row]!r} has {kind} value in column {nodes[col]!r}" +
                        ("" if np.isinf(array[row, col]) else
                         "; missing values can be inferred only for nodes whose mechanisms allow it (see "
                         "attribute_outliers), not for the target"))
    return values
