"""Validation of training data and outlier rows against a causal graph.

Rule for missing values in training data: each node's mechanism is fitted on the rows where the node and all
its parents are observed (finite). Missing values in an outlier row are latent variables where the attribution
can infer them (:mod:`bayes_rca.attribution.latent`) and an error naming row and column elsewhere.
"""

from __future__ import annotations

import re
from collections.abc import Hashable, Sequence

import networkx as nx
import numpy as np
import pandas as pd

from bayes_rca.errors import DataError, MissingDataError

_DECIMAL_COMMA = re.compile(r"\s*[-+]?\d*,\d+(?:[eE][-+]?\d+)?\s*")
MAX_MAGNITUDE = 1e100
"""Values beyond +-MAX_MAGNITUDE are errors: their squares and sums of squares (up to 1e308 in float64) overflow."""
NEAR_CONSTANT_SD = 1e-9
"""A column whose standard deviation is above 0 but below this share of its largest absolute value is nearly
constant: it varies at the level of floating-point rounding (float64 rounding is about 1e-16 of a value, a float32
value's about 6e-8), so any other value there is millions of standard deviations out."""


def row_label(label: object) -> str:
    """``repr`` of a row label, numpy scalars as plain Python numbers (``3``, not ``np.int64(3)``)."""
    return repr(label.item() if isinstance(label, np.generic) else label)


def _check_frame(frame: object, what: str) -> pd.DataFrame:
    if isinstance(frame, pd.Series):
        # A row taken from a mixed-type frame has dtype object; restore each column's own type.
        frame = frame.to_frame().T.infer_objects()
    if not isinstance(frame, pd.DataFrame):
        raise DataError(f"{what} must be a pandas DataFrame, got {type(frame).__name__}")
    if isinstance(frame.columns, pd.MultiIndex):
        raise DataError(f"{what} has MultiIndex columns ({frame.columns.nlevels} levels, e.g. "
                        f"{frame.columns[0]!r}); give one level of node names, e.g. frame.columns = "
                        "['/'.join(map(str, c)) for c in frame.columns]")
    duplicated = frame.columns[frame.columns.duplicated()].unique().tolist()
    if duplicated:
        raise DataError(f"{what} has duplicate column names: {', '.join(map(str, duplicated))}")
    return frame


def near_misses(frame: pd.DataFrame, missing: list[Hashable]) -> str:
    """Why ``missing`` nodes have no column of ``frame``: a wrong delimiter, or names that differ in spaces, case
    or type (node ``0`` against column ``'0'``); ``""`` when neither, else a note starting with ``"; "``."""
    columns = [str(column) for column in frame.columns]
    for delimiter, name in ((";", "semicolon"), ("\t", "tab"), ("|", "pipe")):
        if len(columns) <= 2 and any(delimiter in column for column in columns):
            return (f"; its column {columns[-1]!r} looks like a {name}-delimited header: the file must be "
                    "comma-separated, with '.' as the decimal point")
    notes = []
    for node in missing:
        key = str(node).strip().casefold()
        near = [column for column in frame.columns if str(column).strip().casefold() == key]
        if near:
            notes.append(f"{node!r} ~ column {near[0]!r}" + (f" ({type(node).__name__} vs "
                                                               f"{type(near[0]).__name__})"
                                                               if type(near[0]) is not type(node) else ""))
    return f"; near misses (spaces, case or type differ): {', '.join(notes)}" if notes else ""


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float, np.number)) and not isinstance(value, (bool, np.bool_))


def _numeric_objects(frame: pd.DataFrame, nodes: Sequence[Hashable], what: str) -> pd.DataFrame:
    """Object columns whose every value is a number (pandas 2 keeps such frames as object) converted to
    float64; a value that is not a number is an error naming its column and row."""
    objects = [node for node in nodes if frame[node].dtype == object]
    if not objects:
        return frame
    frame = frame.copy()
    for node in objects:
        for label, value in frame[node].items():
            if not (pd.isna(value) or _is_number(value)):
                raise DataError(f"{what} has non-numeric column(s) {node!r} (dtype object); every graph node must "
                                f"be numeric, but row {row_label(label)} holds {value!r} ({type(value).__name__})")
        frame[node] = frame[node].astype(np.float64)
    return frame


def _decimal_comma_hint(frame: pd.DataFrame, columns: list[Hashable]) -> str:
    """A note when a non-numeric column holds numbers written with a decimal comma (``'0,125'``)."""
    for column in columns:
        values = frame[column].dropna()
        if len(values) and all(isinstance(v, str) and _DECIMAL_COMMA.fullmatch(v) for v in values):
            return f"; its values (e.g. {values.iloc[0]!r}) have a decimal comma: write '.' as the decimal point"
    return ""


def _check_columns(frame: pd.DataFrame, nodes: Sequence[Hashable], what: str) -> pd.DataFrame:
    missing = [node for node in nodes if node not in frame.columns]
    if missing:
        raise MissingDataError(f"{what} has no column for graph node(s) {', '.join(map(repr, missing))}"
                               f"{near_misses(frame, missing)}", missing)
    frame = _numeric_objects(frame, nodes, what)
    non_numeric = [node for node in nodes if not pd.api.types.is_numeric_dtype(frame[node])
                   or pd.api.types.is_bool_dtype(frame[node])]
    if non_numeric:
        details = ", ".join(f"{node!r} (dtype {frame[node].dtype})" for node in non_numeric)
        raise DataError(f"{what} has non-numeric column(s) {details}; every graph node must be numeric"
                        f"{_decimal_comma_hint(frame, non_numeric)}")
    return frame


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
        Duplicate, missing, non-numeric or all-NaN columns, infinite values or values beyond
        :data:`MAX_MAGNITUDE`, or fewer than two rows.
    """
    frame = _check_frame(data, "training data")
    if len(frame) < 2:  # before the columns: a CSV with a header only has columns of dtype object
        raise DataError(f"training data needs at least 2 rows, got {len(frame)}")
    nodes = list(graph.nodes)
    frame = _check_columns(frame, nodes, "training data")
    values = frame[nodes].astype(np.float64)
    infinite = [node for node in nodes if np.isinf(values[node].to_numpy()).any()]
    if infinite:
        raise DataError(f"training data has infinite values in column(s) {', '.join(map(repr, infinite))}")
    _check_magnitude(values, "training data")
    all_nan = [node for node in nodes if values[node].isna().all()]
    if all_nan:
        raise MissingDataError(f"training data column(s) {', '.join(map(repr, all_nan))} contain only missing "
                               "values", all_nan)
    return values


def magnitude_problem(values: pd.DataFrame, what: str) -> str | None:
    """The first value beyond :data:`MAX_MAGNITUDE` (its row and column), or None."""
    huge = np.abs(values.to_numpy(dtype=np.float64)) > MAX_MAGNITUDE
    if not huge.any():
        return None
    row, col = np.argwhere(huge)[0]
    return (f"{what} row {row_label(values.index[row])} has the value {values.iat[row, col]:g} in column "
            f"{values.columns[col]!r}, beyond +-{MAX_MAGNITUDE:g}: its square overflows; rescale the column (other "
            "units)")


def _check_magnitude(values: pd.DataFrame, what: str) -> None:
    problem = magnitude_problem(values, what)
    if problem:
        raise DataError(problem)


def validate_complete(values: pd.DataFrame, what: str = "training data") -> None:
    """Raise a :class:`~bayes_rca.errors.MissingDataError` naming the first row and column with a missing value.

    The API fits each node on the rows where it and its parents are observed; the command line's
    ``--missing error`` calls this so that a gap stops it instead.
    """
    gaps = values.isna().to_numpy()
    if not gaps.any():
        return
    row, col = np.argwhere(gaps)[0]
    columns = [column for column, has_gap in zip(values.columns, gaps.any(axis=0)) if has_gap]
    node = values.columns[col]
    raise MissingDataError(f"{what} row {row_label(values.index[row])} has a missing value in column {node!r}, the "
                           f"first of {int(gaps.sum())} gap(s) (in column(s) {', '.join(map(repr, columns))})", columns)


def near_constant_columns(values: pd.DataFrame) -> dict[Hashable, float]:
    """The columns of ``values`` (finite floats, NaN allowed) that are nearly constant (:data:`NEAR_CONSTANT_SD`),
    with their standard deviations."""
    spread, size = values.std(), values.abs().max()
    return {column: float(spread[column]) for column in values.columns
            if 0 < spread[column] < NEAR_CONSTANT_SD * size[column]}


def near_constant_message(columns: dict[Hashable, float]) -> str:
    """The warning about :func:`near_constant_columns` (column names and standard deviations)."""
    listed = ", ".join(f"{column!r} (sd {sd:.3g})" for column, sd in columns.items())
    return (f"training data column(s) {listed} are nearly constant: they vary by less than {NEAR_CONSTANT_SD:g} of "
            "their largest absolute value, so an outlier value off by more than rounding is millions of standard "
            "deviations out and gets an enormous score (z^2/2 nats); round such a column to make it constant, or "
            "bound the scores with max_nats (--max-nats)")


def validate_outliers(outliers: pd.DataFrame | pd.Series, nodes: Sequence[Hashable],
                      missing_allowed: Sequence[Hashable] = (), target: Hashable | None = None) -> pd.DataFrame:
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
    target : hashable, optional
        The target, for the message when its value is missing.

    Raises
    ------
    DataError
        Missing or non-numeric columns, no rows, duplicate row labels, or a NaN/inf value (row and column
        named); a :class:`~bayes_rca.errors.MissingDataError` for a missing column or NaN.
    """
    frame = _check_frame(outliers, "outlier data")
    if len(frame) == 0:
        raise DataError("outlier data has no rows")
    repeated = frame.index[frame.index.duplicated()].unique().tolist()
    if repeated:
        raise DataError(f"outlier data has duplicate row labels {', '.join(map(repr, repeated))}; results are "
                        "indexed by row label, so give each outlier its own (e.g. pd.concat(..., ignore_index=True))")
    frame = _check_columns(frame, nodes, "outlier data")
    values = frame[list(nodes)].astype(np.float64)
    array = values.to_numpy()
    allowed = set(missing_allowed)  # not np.isin: tuple node names would become a 2-d array
    bad = np.isinf(array) | (np.isnan(array) & ~np.array([node in allowed for node in nodes], dtype=bool))
    if bad.any():
        row, col = np.argwhere(bad)[0]
        where = f"outlier row {row_label(frame.index[row])} has"
        if np.isinf(array[row, col]):
            raise DataError(f"{where} an infinite value in column {nodes[col]!r}")
        if nodes[col] == target:
            raise MissingDataError(f"{where} a missing value in column {nodes[col]!r}, the target: the value to "
                                   "explain cannot be inferred (missing values of its ancestors can)", (target,))
        raise MissingDataError(f"{where} a missing value in column {nodes[col]!r}", (nodes[col],))
    _check_magnitude(values, "outlier data")
    return values
