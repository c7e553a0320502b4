"""The ``bayes-rca`` command line: ``demo``, ``attribute``, ``change``, ``check`` and ``experiment``."""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from dataclasses import replace
from typing import TYPE_CHECKING

import pandas as pd
from rich.console import Console

from bayes_rca.app.cli_inputs import (
    check_attribute_args,
    check_game_options,
    outlier_rows,
    overrides,
    prepare_missing,
    read_csv,
    read_table,
    validate_inputs,
)
from bayes_rca.app.cli_parser import build_parser
from bayes_rca.errors import (
    BayesRCAError,
    BayesRCAWarning,
    DataError,
    GraphError,
    MissingDataError,
)
from bayes_rca.model.mechanisms import make_mechanism
from bayes_rca.model.scm import BayesianSCM

if TYPE_CHECKING:

    import networkx as nx

    from bayes_rca.app.check import CheckReport
    from bayes_rca.change.results import DistributionChangeResult


def _demo(args: argparse.Namespace, console: Console) -> None:
    from bayes_rca.app.demo import run_demo
    from bayes_rca.validation import check_seed

    check_seed(args.seed)
    run_demo(seed=args.seed, num_rows=args.rows, shift=args.shift, num_draws=args.draws, inference=args.inference,
             device=args.device, output=args.output, track=not args.no_track, console=console)


def _attribute(args: argparse.Namespace, console: Console) -> None:
    from bayes_rca.app.report import prepare_output, print_attribution, write_attribution
    from bayes_rca.app.tracking import (
        default_tracking_uri,
        log_attribution,
        tracking_client,
    )
    from bayes_rca.attribution.api import attribute_outliers, resolve_device
    from bayes_rca.graph.dag import blameable_nodes, check_node
    from bayes_rca.graph.io import read_graph
    from bayes_rca.validation import check_num_samples, check_seed

    check_attribute_args(args)
    check_seed(args.seed)
    check_num_samples(args.samples)
    resolve_device(args.device)
    graph = read_graph(args.graph, args.graph_format, dependencies=args.dependencies)
    check_node(graph, args.target, "target")
    data = read_table(args.data, args)
    outliers, data = outlier_rows(args, data, console)
    dropped: list = []
    if args.missing != "error":
        graph, data, outliers, dropped = prepare_missing(args, graph, data, outliers, console)
    players = blameable_nodes(graph, args.target)
    validate_inputs(args, graph, data, outliers, players)  # fail before any fitting
    mechanisms = overrides(args.mechanism)
    if args.linear or args.pass_through:
        family = "pass_through_gaussian" if args.pass_through else "linear_gaussian"
        mechanisms = {node: family if graph.in_degree(node) else "gaussian_root" for node in graph} | mechanisms
    check_game_options(args, mechanisms)
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
    from bayes_rca.data.checks import validate_complete, validate_training_data

    frame = read_table(path, args)
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
    from bayes_rca.change.api import get_functional

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
    graph, mechanisms, before, after = _change_inputs(args)
    info = Console(stderr=True) if args.json else console
    old_model, new_model, result, timing = _fit_and_attribute_change(args, graph, mechanisms, before, after)
    _report_change(args, console, info, result, (old_model, new_model), (before, after), timing)


def _change_inputs(args: argparse.Namespace) -> tuple[nx.DiGraph, dict, pd.DataFrame, pd.DataFrame]:
    """Check the options of ``change`` and read its graph and periods; whatever is wrong fails before any fit."""
    from bayes_rca.app.tracking import default_tracking_uri, tracking_client
    from bayes_rca.attribution.api import resolve_device
    from bayes_rca.change.report import prepare_change_output
    from bayes_rca.graph.dag import check_node
    from bayes_rca.graph.io import read_graph
    from bayes_rca.validation import check_num_samples, check_seed

    if args.statistic is not None and args.metric is None:
        raise BayesRCAError("--statistic goes with --metric")
    check_seed(args.seed)
    check_num_samples(args.samples)
    resolve_device(args.device)
    mechanisms = overrides(args.mechanism)
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
    return graph, mechanisms, before, after


def _fit_and_attribute_change(args: argparse.Namespace, graph: nx.DiGraph, mechanisms: dict, before: pd.DataFrame,
                              after: pd.DataFrame) -> tuple[BayesianSCM, BayesianSCM, DistributionChangeResult, dict]:
    """Fit both periods and attribute the target's change; with the seconds of each step."""
    from bayes_rca.change.api import attribute_distribution_change, fit_periods

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
    return old_model, new_model, result, {"fit_seconds": fit_seconds, "attribute_seconds": attribute_seconds}


def _report_change(args: argparse.Namespace, console: Console, info: Console, result: DistributionChangeResult,
                   models: tuple[BayesianSCM, BayesianSCM], periods: tuple[pd.DataFrame, pd.DataFrame],
                   timing: dict) -> None:
    """Write the results folder, print the table (or the JSON document) and log the MLflow run."""
    import json

    from bayes_rca.app.tracking import default_tracking_uri
    from bayes_rca.change.report import change_document, log_change, print_change, write_change

    (old_model, new_model), (before, after) = models, periods
    document = change_document(result, args.delta, args.alpha,
                               {"before": args.before, "after": args.after, "rows_before": len(before),
                                "rows_after": len(after), **timing})
    folder = write_change(result, old_model, new_model, args.output, document)
    if args.json:
        print(json.dumps(document, indent=2))
    else:
        print_change(console, result, old_model, new_model, args.delta, args.alpha)
    info.print(f"fit {timing['fit_seconds']:.1f} s (both periods), attribution {timing['attribute_seconds']:.2f} s; "
               f"results in {folder}/", markup=False, soft_wrap=True)
    if not args.no_track:
        params = {"graph": args.graph, "before": args.before, "after": args.after, "metric": args.metric,
                  "statistic": args.statistic, "rows_before": len(before), "rows_after": len(after)}
        run_id = log_change(result, old_model, new_model, folder, experiment=args.experiment, metrics=timing,
                            params={key: value for key, value in params.items() if value is not None})
        info.print(f"logged MLflow run {run_id} in {default_tracking_uri()}", markup=False, soft_wrap=True)


def _check(args: argparse.Namespace, console: Console) -> int:
    from bayes_rca.app.check import check_config
    from bayes_rca.app.report import print_check

    if (args.config is None) == (args.graph is None):
        raise BayesRCAError("check needs exactly one of a config file or --graph")
    if args.config is not None and (args.data or args.target or args.mechanism):
        raise BayesRCAError("--data, --target and --mechanism go with --graph, not with a config file")
    report = check_config(args.config) if args.config is not None else _check_files(args)
    print_check(console, report)
    return 0 if report.ok else 2


def _check_files(args: argparse.Namespace) -> CheckReport:
    from bayes_rca.app.check import CheckReport, Finding, check_model_inputs
    from bayes_rca.graph.io import read_graph

    findings = []
    data = None
    if args.data is not None:
        try:
            data = read_csv(args.data, args.index_col)
        except DataError as error:
            findings.append(Finding("error", args.data, str(error)))
    try:
        graph = read_graph(args.graph, args.graph_format, dependencies=args.dependencies)
    except GraphError as error:  # a cycle or an unreadable file: nothing else can be checked
        return CheckReport([Finding("error", args.graph, str(error)), *findings])
    report = check_model_inputs(graph, data, args.target or None, overrides(args.mechanism, known_only=False))
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


HANDLERS = {"demo": _demo, "attribute": _attribute, "change": _change, "check": _check,
            "experiment_run": _experiment_run, "experiment_compare": _experiment_compare,
            "experiment_rerun": _experiment_rerun}


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
            handler = args.run if callable(args.run) else HANDLERS[args.run]
            status = handler(args, console)
        except BayesRCAError as error:
            print(f"bayes-rca: error: {error}", file=sys.stderr)
            return 2
    return status or 0


if __name__ == "__main__":
    sys.exit(main())
