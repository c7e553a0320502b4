"""Reading and checking the command line's inputs (CSV files, monitoring exports, row selections, missing
values) before any fitting: every problem is one clear error naming the file, column or row."""

from __future__ import annotations

import argparse
import warnings
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from rich.console import Console

from bayes_rca.data.checks import row_label
from bayes_rca.errors import (
    BayesRCAError,
    BayesRCAWarning,
    DataError,
    MissingDataError,
)
from bayes_rca.model.mechanisms import FAMILIES, make_mechanism

if TYPE_CHECKING:

    import networkx as nx



def read_csv(path: str, index_col: str | None) -> pd.DataFrame:
    """Read a CSV file; duplicate column names are an error (pandas would silently rename them ``B.1``)."""
    try:
        # utf-8-sig drops a byte-order mark; skipinitialspace reads ", "-separated files
        frame = pd.read_csv(path, index_col=index_col, encoding="utf-8-sig", skipinitialspace=True)
        header = pd.read_csv(path, header=None, nrows=1, dtype=str, keep_default_na=False, encoding="utf-8-sig",
                             skipinitialspace=True).iloc[0]
    except FileNotFoundError:
        raise DataError(f"data file {path} does not exist") from None
    except (ValueError, pd.errors.ParserError, UnicodeDecodeError) as error:
        raise DataError(f"cannot read CSV file {path}: {error}") from None
    duplicated = header[header.duplicated() & (header != "")].unique().tolist()
    if duplicated:
        raise DataError(f"CSV file {path} has duplicate column names: {', '.join(map(repr, duplicated))}")
    other_delimiter = any(mark in str(name) for name in header for mark in ";\t|")  # validation names it
    if index_col is None and not isinstance(frame.index, pd.RangeIndex) and not other_delimiter:
        # the rows have more fields than the header: pandas took the first as row labels
        raise DataError(f"CSV file {path}: its rows have more fields than its header has names ({len(header)}), so "
                        "each row's first field(s) would become its label and its values would move to the left; name "
                        "every column (or give --index-col for a column of row labels)")
    return frame


def overrides(pairs: list[str], known_only: bool = True) -> dict[str, str]:
    overrides = {}
    for pair in pairs:
        node, sep, family = pair.partition("=")
        if not sep or not node or not family:
            raise BayesRCAError(f"--mechanism expects NODE=FAMILY with FAMILY one of {', '.join(FAMILIES)}, "
                                f"got {pair!r}")
        if known_only:
            make_mechanism(family, node)  # a clear error for an unknown family or option
        overrides[node] = family
    return overrides


def _read_metric_csv(path: str, index_col: str | None) -> pd.DataFrame:
    """:func:`bayes_rca.data.tables.read_metrics`; ``--index-col`` may only name its first column, the row index."""
    from bayes_rca.data.tables import read_metrics

    frame = read_metrics(path)
    if index_col is not None and index_col != frame.index.name:
        raise DataError(f"--index-col {index_col!r}: with --metric the first column of {path} is the row index, "
                        f"and it is called {frame.index.name!r}")
    return frame


def read_table(path: str, args: argparse.Namespace) -> pd.DataFrame:
    """A plain CSV (one header row), or with ``--metric`` one metric and statistic of a three-header-row CSV."""
    from bayes_rca.data.tables import DEFAULT_STATISTIC, select_metric

    if args.metric is None:
        return read_csv(path, args.index_col)
    try:
        return select_metric(_read_metric_csv(path, args.index_col), args.metric, args.statistic or DEFAULT_STATISTIC)
    except DataError as error:
        raise DataError(f"{path}: {error}") from None


def _split(text: str | None, option: str, kind: type) -> list | None:
    if text is None:
        return None
    items = [item.strip() for item in text.split(",")]
    if not all(items):
        raise BayesRCAError(f"{option} expects comma-separated values, got {text!r}")
    try:
        return [kind(item) for item in items]
    except ValueError:
        raise BayesRCAError(f"{option} expects comma-separated {kind.__name__} values, got {text!r}") from None


def check_attribute_args(args: argparse.Namespace) -> None:
    """Option combinations that cannot work, before any file is read."""
    if args.statistic is not None and args.metric is None:
        raise BayesRCAError("--statistic goes with --metric")
    if args.outliers is None and args.rows is None and args.timestamps is None:
        raise BayesRCAError("give the outlier rows: --outliers FILE, or --rows/--timestamps to take them from --data")
    if args.timestamps is not None and args.metric is None and args.index_col is None:
        raise BayesRCAError("--timestamps needs a row index: give --index-col (with --metric the first column is "
                            "the index)")


def outlier_rows(args: argparse.Namespace, data: pd.DataFrame, console: Console) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The outlier rows (``--outliers``, or ``--rows``/``--timestamps`` of it or of ``--data``) and the training data."""
    from bayes_rca.data.tables import row_positions

    rows, timestamps = _split(args.rows, "--rows", int), _split(args.timestamps, "--timestamps", str)
    source = read_table(args.outliers, args) if args.outliers is not None else data
    if rows is None and timestamps is None:
        return source, data
    name = args.outliers if args.outliers is not None else args.data
    try:
        positions, notes = row_positions(source, rows, timestamps)
    except DataError as error:
        raise DataError(f"{name}: {error}") from None
    for note in notes:
        console.print(f"outlier: {name} {note}", markup=False, soft_wrap=True)
    if args.outliers is not None:
        return source.iloc[positions], data
    keep = np.ones(len(data), dtype=bool)
    keep[positions] = False
    console.print(f"those {len(positions)} row(s) are left out of the training data", markup=False, soft_wrap=True)
    return data.iloc[positions], data[keep]


def prepare_missing(args: argparse.Namespace, graph: nx.DiGraph, data: pd.DataFrame, outliers: pd.DataFrame,
                     console: Console) -> tuple[nx.DiGraph, pd.DataFrame, pd.DataFrame, list]:
    """``--missing impute|latent``: drop (marginalise) the nodes observed too rarely, impute the normal data's
    other gaps; the outlier rows' gaps are imputed too (``impute``) or kept for the attribution to infer
    (``latent``)."""
    from bayes_rca.data.tables import prepare_observed

    target = args.target
    observed = int(data[target].notna().sum()) if target in data.columns else 0
    if observed < args.min_observed:
        raise DataError(f"target {target!r} has {observed} observed value(s) in the normal data, fewer than "
                        f"--min-observed {args.min_observed}: it cannot be modelled")
    unseen = outliers.index[outliers[target].isna()] if target in outliers.columns else outliers.index
    if len(unseen):
        raise DataError(f"outlier row {row_label(unseen[0])} has no value at the target {target!r}; an imputed value "
                        "would not be an outlier")
    graph, data, imputed_outliers, dropped, imputed = prepare_observed(graph, data, outliers, args.min_observed)
    if dropped:
        warnings.warn(f"{len(dropped)} graph node(s) have no column or fewer than {args.min_observed} observed values "
                      "in the normal data and are marginalised out of the causal graph (their parents now point to "
                      f"their children): {', '.join(map(str, dropped))}", BayesRCAWarning, stacklevel=2)
    in_outliers = imputed["outliers"][imputed["outliers"] > 0]
    where = f" ({', '.join(map(str, in_outliers.index))})" if len(in_outliers) else ""
    if args.missing == "latent":
        console.print(f"imputed {imputed['normal'].sum()} of {data.size} normal values with the median of the normal "
                      f"data; {in_outliers.sum()} missing outlier value(s){where} are inferred with the noise",
                      markup=False, soft_wrap=True)
        return graph, data, outliers.reindex(columns=list(graph.nodes)), dropped
    console.print(f"imputed {imputed['normal'].sum()} of {data.size} normal values and {in_outliers.sum()} of "
                  f"{outliers.size} outlier values{where} with the median of the normal data", markup=False,
                  soft_wrap=True)
    return graph, data, imputed_outliers, dropped


MISSING_HINT = (" (--missing impute or latent drops nodes without data from the graph and imputes or infers missing "
                "values)")


def _missing_would_fix(error: MissingDataError, args: argparse.Namespace, data: pd.DataFrame,
                       outliers: pd.DataFrame) -> bool:
    """Whether ``--missing impute|latent`` gets past ``error``: always unless it is about the target, which those
    modes need observed in every outlier row and in at least ``--min-observed`` training rows."""
    target = args.target
    if target not in error.nodes:
        return True
    observed = int(data[target].notna().sum()) if target in data.columns else 0
    return observed >= args.min_observed and target in outliers.columns and bool(outliers[target].notna().all())


def validate_inputs(args: argparse.Namespace, graph: nx.DiGraph, data: pd.DataFrame, outliers: pd.DataFrame,
                     players: list) -> None:
    """Check the data before any fitting. Under ``--missing error`` a gap anywhere is an error (the API would fit
    each node on its complete rows instead), and an error that another ``--missing`` would get past says so."""
    from bayes_rca.data.checks import (
        validate_complete,
        validate_outliers,
        validate_training_data,
    )

    try:
        validate_training_data(graph, data)
        validate_outliers(outliers, players, players[:-1] if args.missing == "latent" else (), target=args.target)
        if args.missing == "error":
            validate_complete(data[list(graph.nodes)])
    except MissingDataError as error:
        if args.missing == "error" and _missing_would_fix(error, args, data, outliers):
            raise MissingDataError(f"{error}{MISSING_HINT}", error.nodes) from None
        raise


def check_game_options(args: argparse.Namespace, mechanisms: dict) -> None:
    """Fail before the fit on game options that cannot hold: a non-positive --tail-df or --max-nats, or
    --estimator analytic with a mechanism given (--mechanism) that is not linear-Gaussian."""
    for flag, value in (("--tail-df", args.tail_df), ("--max-nats", args.max_nats)):
        if value is not None and not value > 0:
            raise BayesRCAError(f"{flag} must be positive, got {value!r}")
    if args.estimator != "analytic":
        return
    other = {node: make_mechanism(spec, node).name for node, spec in mechanisms.items()
             if not make_mechanism(spec, node).linear_gaussian}
    if other:
        raise BayesRCAError(f"--estimator analytic needs linear-Gaussian mechanisms; not so for {other} (--mechanism)")
