"""The ``bayes-rca`` command line: ``demo``, ``attribute``, ``change``, ``check`` and ``experiment``."""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from dataclasses import replace
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from rich.console import Console

from bayes_rca.attribution import ESTIMATOR_CHOICES
from bayes_rca.data import row_label
from bayes_rca.errors import BayesRCAError, BayesRCAWarning, DataError, GraphError, MissingDataError
from bayes_rca.graph_io import FORMATS as GRAPH_FORMATS
from bayes_rca.mechanisms import FAMILIES, make_mechanism
from bayes_rca.scm import CONSTANT_NOISE_CHOICES, INFERENCE_CHOICES, BayesianSCM
from bayes_rca.scores import FEATURE_MAPS

if TYPE_CHECKING:

    import networkx as nx

    from bayes_rca.check import CheckReport


def _read_csv(path: str, index_col: str | None) -> pd.DataFrame:
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


def _overrides(pairs: list[str], known_only: bool = True) -> dict[str, str]:
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


def _add_graph_options(parser: argparse.ArgumentParser, required: bool) -> None:
    parser.add_argument("--graph", required=required, default=None,
                        help="graph file: CSV adjacency or edge list, GraphML, DOT")
    parser.add_argument("--graph-format", default="auto", choices=GRAPH_FORMATS)
    parser.add_argument("--dependencies", action="store_true",
                        help="the graph is a service call graph (caller -> callee): reverse it")


def _add_model_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--inference", choices=INFERENCE_CHOICES, default="auto",
                        help="posterior inference: exact conjugate or Laplace-proposal MH where possible (auto), svi or nuts")
    parser.add_argument("--draws", type=int, default=200, help="posterior draws per node")
    parser.add_argument("--seed", type=int, default=0, help="seed of every random choice")
    parser.add_argument("--device", default="cpu", help="torch device for the attribution (cpu, cuda)")
    parser.add_argument("--no-track", action="store_true", help="do not log the run to MLflow")


def _demo(args: argparse.Namespace, console: Console) -> None:
    from bayes_rca.demo import run_demo
    from bayes_rca.validation import check_seed

    check_seed(args.seed)
    run_demo(seed=args.seed, num_rows=args.rows, shift=args.shift, num_draws=args.draws, inference=args.inference,
             device=args.device, output=args.output, track=not args.no_track, console=console)


def _read_metric_csv(path: str, index_col: str | None) -> pd.DataFrame:
    """:func:`bayes_rca.tables.read_metrics`; ``--index-col`` may only name its first column, the row index."""
    from bayes_rca.tables import read_metrics

    frame = read_metrics(path)
    if index_col is not None and index_col != frame.index.name:
        raise DataError(f"--index-col {index_col!r}: with --metric the first column of {path} is the row index, "
                        f"and it is called {frame.index.name!r}")
    return frame


def _read_table(path: str, args: argparse.Namespace) -> pd.DataFrame:
    """A plain CSV (one header row), or with ``--metric`` one metric and statistic of a three-header-row CSV."""
    from bayes_rca.tables import DEFAULT_STATISTIC, select_metric

    if args.metric is None:
        return _read_csv(path, args.index_col)
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


def _check_attribute_args(args: argparse.Namespace) -> None:
    """Option combinations that cannot work, before any file is read."""
    if args.statistic is not None and args.metric is None:
        raise BayesRCAError("--statistic goes with --metric")
    if args.outliers is None and args.rows is None and args.timestamps is None:
        raise BayesRCAError("give the outlier rows: --outliers FILE, or --rows/--timestamps to take them from --data")
    if args.timestamps is not None and args.metric is None and args.index_col is None:
        raise BayesRCAError("--timestamps needs a row index: give --index-col (with --metric the first column is "
                            "the index)")


def _outlier_rows(args: argparse.Namespace, data: pd.DataFrame, console: Console) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The outlier rows (``--outliers``, or ``--rows``/``--timestamps`` of it or of ``--data``) and the training data."""
    from bayes_rca.tables import row_positions

    rows, timestamps = _split(args.rows, "--rows", int), _split(args.timestamps, "--timestamps", str)
    source = _read_table(args.outliers, args) if args.outliers is not None else data
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


def _prepare_missing(args: argparse.Namespace, graph: nx.DiGraph, data: pd.DataFrame, outliers: pd.DataFrame,
                     console: Console) -> tuple[nx.DiGraph, pd.DataFrame, pd.DataFrame, list]:
    """``--missing impute|latent``: drop (marginalise) the nodes observed too rarely, impute the normal data's
    other gaps; the outlier rows' gaps are imputed too (``impute``) or kept for the attribution to infer
    (``latent``)."""
    from bayes_rca.tables import prepare_observed

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


def _validate_inputs(args: argparse.Namespace, graph: nx.DiGraph, data: pd.DataFrame, outliers: pd.DataFrame,
                     players: list) -> None:
    """Check the data before any fitting. Under ``--missing error`` a gap anywhere is an error (the API would fit
    each node on its complete rows instead), and an error that another ``--missing`` would get past says so."""
    from bayes_rca.data import validate_complete, validate_outliers, validate_training_data

    try:
        validate_training_data(graph, data)
        validate_outliers(outliers, players, players[:-1] if args.missing == "latent" else (), target=args.target)
        if args.missing == "error":
            validate_complete(data[list(graph.nodes)])
    except MissingDataError as error:
        if args.missing == "error" and _missing_would_fix(error, args, data, outliers):
            raise MissingDataError(f"{error}{MISSING_HINT}", error.nodes) from None
        raise


def _check_game_options(args: argparse.Namespace, mechanisms: dict) -> None:
    """Fail before the fit on game options that cannot hold: a non-positive --tail-df or --max-nats, or
    --tail-df / --estimator analytic with a mechanism given (--mechanism) that is not linear-Gaussian."""
    for flag, value in (("--tail-df", args.tail_df), ("--max-nats", args.max_nats)):
        if value is not None and not value > 0:
            raise BayesRCAError(f"{flag} must be positive, got {value!r}")
    if args.tail_df is None and args.estimator != "analytic":
        return
    other = {node: make_mechanism(spec, node).name for node, spec in mechanisms.items()
             if not make_mechanism(spec, node).linear_gaussian}
    if other:
        option = "--tail-df (the robust game)" if args.tail_df is not None else "--estimator analytic"
        raise BayesRCAError(f"{option} needs linear-Gaussian mechanisms; not so for {other} (--mechanism)")


def _attribute(args: argparse.Namespace, console: Console) -> None:
    from bayes_rca.attribution import attribute_outliers, resolve_device
    from bayes_rca.graph import blameable_nodes, check_node
    from bayes_rca.graph_io import read_graph
    from bayes_rca.report import prepare_output, print_attribution, write_attribution
    from bayes_rca.tracking import default_tracking_uri, log_attribution, tracking_client
    from bayes_rca.validation import check_num_samples, check_seed

    _check_attribute_args(args)
    check_seed(args.seed)
    check_num_samples(args.samples)
    resolve_device(args.device)
    graph = read_graph(args.graph, args.graph_format, dependencies=args.dependencies)
    check_node(graph, args.target, "target")
    data = _read_table(args.data, args)
    outliers, data = _outlier_rows(args, data, console)
    dropped: list = []
    if args.missing != "error":
        graph, data, outliers, dropped = _prepare_missing(args, graph, data, outliers, console)
    players = blameable_nodes(graph, args.target)
    _validate_inputs(args, graph, data, outliers, players)  # fail before any fitting
    mechanisms = _overrides(args.mechanism)
    if args.linear or args.pass_through:
        family = "pass_through_gaussian" if args.pass_through else "linear_gaussian"
        mechanisms = {node: family if graph.in_degree(node) else "gaussian_root" for node in graph} | mechanisms
    _check_game_options(args, mechanisms)
    prepare_output(args.output)  # a folder that cannot be written fails before the fit, not after it
    if not args.no_track:
        tracking_client(default_tracking_uri())  # so does a store MLflow cannot open
    start = time.perf_counter()
    model = BayesianSCM(graph, mechanisms=mechanisms, inference=args.inference,
                        num_draws=args.draws, num_chains=args.chains, seed=args.seed, n_jobs=args.jobs,
                        constant_noise=args.constant_noise).fit(data)
    fit_seconds = time.perf_counter() - start
    start = time.perf_counter()
    result = attribute_outliers(model, args.target, outliers, feature_map=args.feature_map,
                                estimator=args.estimator, num_samples=args.samples, max_nats=args.max_nats,
                                tail_df=args.tail_df, device=args.device,
                                seed=args.seed)
    attribute_seconds = time.perf_counter() - start
    print_attribution(console, result, model)
    folder = write_attribution(result, model, args.output)
    console.print(f"fit {fit_seconds:.1f} s, attribution {attribute_seconds:.2f} s; results in {folder}/")
    if not args.no_track:
        params = {"graph": args.graph, "data": args.data, "outliers": args.outliers, "metric": args.metric,
                  "statistic": args.statistic, "rows": args.rows, "timestamps": args.timestamps,
                  "missing": args.missing, "dropped_nodes": len(dropped)}
        run_id = log_attribution(result, model, folder, experiment=args.experiment,
                                 metrics={"fit_seconds": fit_seconds, "attribute_seconds": attribute_seconds},
                                 params={key: value for key, value in params.items() if value is not None})
        console.print(f"logged MLflow run {run_id} in {default_tracking_uri()}", markup=False, soft_wrap=True)


def _read_period(path: str, flag: str, args: argparse.Namespace, graph: nx.DiGraph) -> pd.DataFrame:
    """One period's rows, checked against the graph before any fit; errors name the option and the file."""
    from bayes_rca.data import validate_complete, validate_training_data

    frame = _read_table(path, args)
    try:
        values = validate_training_data(graph, frame)
        if args.dropna:
            complete = values.notna().all(axis=1)
            if not complete.all():
                warnings.warn(f"{flag} {path}: {int((~complete).sum())} of {len(values)} row(s) have a missing value "
                              "and are left out (--dropna)", BayesRCAWarning, stacklevel=2)
            values = values[complete]
            if len(values) < 2:
                raise DataError(f"{len(values)} complete row(s) left, at least 2 are needed")
        else:
            validate_complete(values, "the file")
    except DataError as error:
        hint = " (--dropna leaves such rows out)" if isinstance(error, MissingDataError) and not args.dropna else ""
        raise DataError(f"{flag} {path}: {error}{hint}") from None
    return values


def _check_change_options(args: argparse.Namespace, mechanisms: dict) -> None:
    """Fail before the fit on options that cannot hold together."""
    from bayes_rca.distribution_change import get_functional

    functional = get_functional(args.functional)
    if not 0 < args.alpha < 1:
        raise BayesRCAError(f"--alpha must lie strictly between 0 and 1, got {args.alpha!r}")
    if args.delta is not None and not args.delta >= 0:
        raise BayesRCAError(f"--delta must be a non-negative number, got {args.delta!r}")
    other = {node: make_mechanism(spec, node).name for node, spec in mechanisms.items()
             if not make_mechanism(spec, node).linear_gaussian}
    closed_form_only = functional.sample_statistic is None
    for needed, option in ((args.estimator == "analytic", "--estimator analytic"),
                           (closed_form_only, f"--functional {args.functional} (closed form only)")):
        if needed and (other or args.auto):
            which = f"not so for {other} (--mechanism)" if other else "--auto may assign other families"
            raise BayesRCAError(f"{option} needs linear-Gaussian mechanisms; {which}")
    if closed_form_only and args.estimator == "monte_carlo":
        raise BayesRCAError(f"--functional {args.functional} is closed form only: the Monte Carlo estimator has no "
                            "density of the target; use mean, variance, std or quantile(q)")


def _change(args: argparse.Namespace, console: Console) -> None:
    import json

    from bayes_rca.attribution import resolve_device
    from bayes_rca.change_report import change_document, log_change, prepare_change_output, print_change, write_change
    from bayes_rca.distribution_change import attribute_distribution_change, fit_periods
    from bayes_rca.graph import check_node
    from bayes_rca.graph_io import read_graph
    from bayes_rca.tracking import default_tracking_uri, tracking_client
    from bayes_rca.validation import check_num_samples, check_seed

    if args.statistic is not None and args.metric is None:
        raise BayesRCAError("--statistic goes with --metric")
    check_seed(args.seed)
    check_num_samples(args.samples)
    resolve_device(args.device)
    mechanisms = _overrides(args.mechanism)
    _check_change_options(args, mechanisms)
    graph = read_graph(args.graph, args.graph_format, dependencies=args.dependencies)
    check_node(graph, args.target, "target")
    unknown = [node for node in mechanisms if node not in graph]
    if unknown:
        raise GraphError(f"--mechanism names node(s) {unknown} that are not in the graph {args.graph}")
    before = _read_period(args.before, "--before", args, graph)
    after = _read_period(args.after, "--after", args, graph)
    prepare_change_output(args.output)  # a folder that cannot be written fails before the fit
    if not args.no_track:
        tracking_client(default_tracking_uri())  # so does a store MLflow cannot open
    info = Console(stderr=True) if args.json else console
    start = time.perf_counter()
    old_model, new_model = fit_periods(before, after, graph, mechanisms, num_draws=args.draws,
                                       inference=args.inference, seed=args.seed, auto=args.auto,
                                       labels=(f"--before {args.before}", f"--after {args.after}"),
                                       n_jobs=args.jobs, num_chains=args.chains)
    fit_seconds = time.perf_counter() - start
    start = time.perf_counter()
    result = attribute_distribution_change(old_model, new_model, args.target, args.functional,
                                           estimator=args.estimator, num_samples=args.samples, device=args.device,
                                           seed=args.seed)
    attribute_seconds = time.perf_counter() - start
    timing = {"fit_seconds": fit_seconds, "attribute_seconds": attribute_seconds}
    document = change_document(result, args.delta, args.alpha,
                               {"before": args.before, "after": args.after, "rows_before": len(before),
                                "rows_after": len(after), **timing})
    folder = write_change(result, old_model, new_model, args.output, document)
    if args.json:
        print(json.dumps(document, indent=2))
    else:
        print_change(console, result, old_model, new_model, args.delta, args.alpha)
    info.print(f"fit {fit_seconds:.1f} s (both periods), attribution {attribute_seconds:.2f} s; results in {folder}/",
               markup=False, soft_wrap=True)
    if not args.no_track:
        params = {"graph": args.graph, "before": args.before, "after": args.after, "metric": args.metric,
                  "statistic": args.statistic, "rows_before": len(before), "rows_after": len(after)}
        run_id = log_change(result, old_model, new_model, folder, experiment=args.experiment, metrics=timing,
                            params={key: value for key, value in params.items() if value is not None})
        info.print(f"logged MLflow run {run_id} in {default_tracking_uri()}", markup=False, soft_wrap=True)


def _check(args: argparse.Namespace, console: Console) -> int:
    from bayes_rca.check import check_config
    from bayes_rca.report import print_check

    if (args.config is None) == (args.graph is None):
        raise BayesRCAError("check needs exactly one of a config file or --graph")
    if args.config is not None and (args.data or args.target or args.mechanism):
        raise BayesRCAError("--data, --target and --mechanism go with --graph, not with a config file")
    report = check_config(args.config) if args.config is not None else _check_files(args)
    print_check(console, report)
    return 0 if report.ok else 2


def _check_files(args: argparse.Namespace) -> CheckReport:
    from bayes_rca.check import CheckReport, Finding, check_model_inputs
    from bayes_rca.graph_io import read_graph

    findings = []
    data = None
    if args.data is not None:
        try:
            data = _read_csv(args.data, args.index_col)
        except DataError as error:
            findings.append(Finding("error", args.data, str(error)))
    try:
        graph = read_graph(args.graph, args.graph_format, dependencies=args.dependencies)
    except GraphError as error:  # a cycle or an unreadable file: nothing else can be checked
        return CheckReport([Finding("error", args.graph, str(error)), *findings])
    report = check_model_inputs(graph, data, args.target or None, _overrides(args.mechanism, known_only=False))
    return replace(report, findings=[*findings, *report.findings])


def _experiment_run(args: argparse.Namespace, console: Console) -> None:
    from bayes_rca.harness.compare import to_markdown
    from bayes_rca.harness.runner import run_experiment

    parent, table = run_experiment(args.config, args.overrides, output=args.output, report=console.print)
    console.print(f"sweep parent run {parent}")
    if len(table):
        console.print(to_markdown(table), markup=False)


def _experiment_compare(args: argparse.Namespace, console: Console) -> None:
    from bayes_rca.harness.compare import compare, to_markdown, write_comparison

    table = compare(args.run_id, args.tracking_uri)
    if table.empty:
        raise BayesRCAError(f"run {args.run_id} has no finished cell runs to compare")
    console.print(to_markdown(table), markup=False)
    csv_path, md_path = write_comparison(table, args.output, f"comparison_{args.run_id[:8]}")
    console.print(f"written {csv_path} and {md_path}")


def _experiment_rerun(args: argparse.Namespace, console: Console) -> None:
    from bayes_rca.harness.rerun import rerun

    for line in rerun(args.run_id, args.tracking_uri):
        console.print(line, markup=False)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``bayes-rca``."""
    parser = argparse.ArgumentParser(prog="bayes-rca", description="Bayesian root-cause analysis of outliers.")
    commands = parser.add_subparsers(dest="command", required=True)

    demo = commands.add_parser("demo", help="synthetic microservice system with a known root cause, end to end")
    demo.add_argument("--rows", type=int, default=1000, help="rows of normal operation")
    demo.add_argument("--shift", type=float, default=5.0, help="injected fault, in noise standard deviations")
    demo.add_argument("--output", default="outputs/demo", help="folder for tables, plot and posterior")
    _add_model_options(demo)
    demo.set_defaults(run=_demo)

    attribute = commands.add_parser("attribute", help="attribute outliers in your own data")
    _add_graph_options(attribute, required=True)
    attribute.add_argument("--data", required=True, help="CSV of normal operation, one column per node")
    attribute.add_argument("--outliers", default=None,
                           help="CSV of the outlier row(s), same columns (default: --rows/--timestamps of --data)")
    attribute.add_argument("--index-col", default=None, help="column of both CSVs to use as row labels")
    attribute.add_argument("--metric", default=None,
                           help="the CSVs have three header rows (service, metric, statistic) and their first column "
                                "is the row index: use this metric, e.g. latency")
    attribute.add_argument("--statistic", default=None, help="statistic of --metric (default Average), e.g. p50")
    which = attribute.add_mutually_exclusive_group()
    which.add_argument("--rows", default=None, metavar="I,J,...",
                       help="attribute these 0-based rows of --outliers (or of --data, then left out of training)")
    which.add_argument("--timestamps", default=None, metavar="T,U,...",
                       help="attribute the rows at these row-index values (or the first row after each), of "
                            "--outliers or of --data like --rows")
    attribute.add_argument("--missing", choices=["error", "latent", "impute"], default="error",
                           help="missing data. error (default): any gap is an error. latent: marginalise graph "
                                "nodes with no column or fewer "
                                "than --min-observed normal values out of the graph, fill other gaps of the normal "
                                "data with its median, and infer the outlier rows' gaps with the noise (exactly for "
                                "linear-Gaussian players, by importance sampling otherwise); impute: fill the "
                                "outlier rows' gaps with the median too")
    attribute.add_argument("--min-observed", type=int, default=10,
                           help="with --missing latent or impute: normal values a node needs to stay in the graph")
    attribute.add_argument("--target", required=True, help="node where the outliers are observed")
    attribute.add_argument("--mechanism", action="append", default=[], metavar="NODE=FAMILY",
                           help=f"fix a node's mechanism family ({', '.join(FAMILIES)}), with numeric options in "
                                "parentheses: latency=censored_gaussian(upper=30)")
    attribute.add_argument("--linear", action="store_true",
                           help="every node without --mechanism is linear-Gaussian (gaussian_root for roots): exact "
                                "posteriors and closed-form attribution, seconds even for 40 nodes")
    attribute.add_argument("--pass-through", action="store_true",
                           help="every node without --mechanism is pass_through_gaussian (gaussian_root for roots): "
                                "linear-Gaussian with weights ~ Normal(1, 0.5^2) in data units, for service metrics "
                                "that add up along calls")
    attribute.add_argument("--tail-df", type=float, default=None,
                           help="the robust game: Student-t tails with this many degrees of freedom (e.g. 2) instead "
                                "of Gaussian ones; a far outlier costs df log z nats, not z^2/2")
    attribute.add_argument("--constant-noise", choices=list(CONSTANT_NOISE_CHOICES), default="prior",
                           help="noise of a node constant in the normal data: its tiny posterior scale (prior), or "
                                "the median (pooled) or smallest (finest) sd of the columns that vary")
    attribute.add_argument("--max-nats", type=float, default=None,
                           help="floor tail probabilities at e^-MAX_NATS (e.g. 30): bounded contributions where nodes "
                                "barely vary in normal data but move by thousands of sds in the outlier")
    attribute.add_argument("--chains", type=int, default=1, help="chains (NUTS)")
    attribute.add_argument("--jobs", type=int, default=1, help="processes fitting nodes in parallel")
    attribute.add_argument("--feature-map", choices=list(FEATURE_MAPS), default="median_cdf_quantile")
    attribute.add_argument("--estimator", choices=ESTIMATOR_CHOICES, default="auto")
    attribute.add_argument("--samples", type=int, default=2000, help="Monte Carlo samples per coalition")
    attribute.add_argument("--output", default="outputs/attribution", help="folder for the results")
    attribute.add_argument("--experiment", default="bayes_rca-attribute", help="MLflow experiment name")
    _add_model_options(attribute)
    attribute.set_defaults(run=_attribute)

    change = commands.add_parser("change", help="which mechanisms changed between two periods, and how much of the "
                                                "target's distribution change is each one's")
    _add_graph_options(change, required=True)
    change.add_argument("--before", required=True, help="CSV of the old period, one column per node")
    change.add_argument("--after", required=True, help="CSV of the new period, same columns")
    change.add_argument("--target", required=True, help="node whose distribution changed")
    change.add_argument("--functional", default="mean",
                        help="the change measured: mean (difference of means), variance, std, quantile(q), kl "
                             "(closed form only)")
    change.add_argument("--index-col", default=None, help="column of both CSVs to use as row labels")
    change.add_argument("--metric", default=None,
                        help="the CSVs have three header rows (service, metric, statistic): use this metric")
    change.add_argument("--statistic", default=None, help="statistic of --metric (default Average)")
    change.add_argument("--dropna", action="store_true", help="leave out rows with a missing value (default: error)")
    change.add_argument("--mechanism", action="append", default=[], metavar="NODE=FAMILY",
                        help=f"a node's mechanism family ({', '.join(FAMILIES)}); other nodes are linear-Gaussian "
                             "(closed form) unless --auto")
    change.add_argument("--auto", action="store_true",
                        help="assign the mechanisms of nodes without --mechanism automatically in each period")
    change.add_argument("--estimator", choices=["auto", "analytic", "monte_carlo"], default="auto",
                        help="closed form where every player is linear-Gaussian (auto), or Monte Carlo")
    change.add_argument("--samples", type=int, default=4000,
                        help="Monte Carlo samples per draw pair and coalition (Monte Carlo only)")
    change.add_argument("--delta", type=float, default=None,
                        help="smallest contribution that counts as a change, in the functional's units "
                             "(default: a tenth of the old target's sd, or of its variance)")
    change.add_argument("--alpha", type=float, default=0.05,
                        help="a mechanism is named changed when P(|contribution| > delta) > 1 - alpha")
    change.add_argument("--chains", type=int, default=1, help="chains (NUTS)")
    change.add_argument("--jobs", type=int, default=1, help="processes fitting nodes in parallel")
    change.add_argument("--json", action="store_true",
                        help="print the result as JSON on stdout (messages go to stderr)")
    change.add_argument("--output", default="outputs/change", help="folder for the results")
    change.add_argument("--experiment", default="bayes_rca-change", help="MLflow experiment name")
    _add_model_options(change)
    change.set_defaults(run=_change)

    check = commands.add_parser("check", help="before fitting: what could go wrong and which nodes can be blamed")
    check.add_argument("config", nargs="?", default=None, help="an experiment config to check (or give --graph)")
    _add_graph_options(check, required=False)
    check.add_argument("--data", default=None, help="CSV of normal operation (without it: graph checks only)")
    check.add_argument("--index-col", default=None, help="column of the CSV to use as row labels")
    check.add_argument("--target", action="append", default=[], help="target node (repeatable; default: sinks)")
    check.add_argument("--mechanism", action="append", default=[], metavar="NODE=FAMILY",
                       help=f"a node's mechanism family ({', '.join(FAMILIES)})")
    check.set_defaults(run=_check)

    experiment = commands.add_parser("experiment", help="run, compare and rerun experiment sweeps (MLflow)")
    actions = experiment.add_subparsers(dest="action", required=True)
    run = actions.add_parser("run", help="run every cell of a config's sweep grid (resumes a killed sweep)")
    run.add_argument("config", help="YAML config, e.g. configs/smoke.yaml")
    run.add_argument("overrides", nargs="*", help="key=value overrides, e.g. benchmark.num_rows=500 'sweep.seed=[0,1]'")
    run.add_argument("--output", default="outputs", help="folder for the comparison table")
    run.set_defaults(run=_experiment_run)
    for name, handler, what in (("compare", _experiment_compare, "the sweep's parent run id"),
                                ("rerun", _experiment_rerun, "a cell's (or a sweep's) run id")):
        sub = actions.add_parser(name, help=f"{name} from MLflow")
        sub.add_argument("run_id", help=what)
        sub.add_argument("--tracking-uri", default=None, help="MLflow store (default: MLFLOW_TRACKING_URI or "
                                                               "sqlite:///mlflow.db here)")
        sub.add_argument("--output", default="outputs", help="folder for written tables")
        sub.set_defaults(run=handler)
    from bayes_rca.paper.cli import add_paper_commands  # paper run | bench | build (bayes_rca/paper/)

    add_paper_commands(commands)
    return parser


def _show_warning(message: Warning | str, category: type[Warning], filename: str, lineno: int,
                  file: object = None, line: str | None = None) -> None:
    """Print a warning as one line on stderr, without the source location."""
    kind = "" if issubclass(category, BayesRCAWarning) else f" ({category.__name__})"
    print(f"bayes-rca: warning{kind}: {message}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    """Run ``bayes-rca``; bad input prints one clear line and exits with status 2, warnings print one line each."""
    args = build_parser().parse_args(argv)
    console = Console()
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*ArviZ is undergoing a major refactor.*")
        warnings.showwarning = _show_warning
        try:
            status = args.run(args, console)
        except BayesRCAError as error:
            print(f"bayes-rca: error: {error}", file=sys.stderr)
            return 2
    return status or 0


if __name__ == "__main__":
    sys.exit(main())
