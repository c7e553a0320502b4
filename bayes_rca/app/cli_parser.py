"""The argument parser of the ``bayes-rca`` command line (the handlers are in :mod:`bayes_rca.app.cli`)."""

from __future__ import annotations

import argparse

from bayes_rca.attribution.api import ESTIMATOR_CHOICES
from bayes_rca.attribution.scores import FEATURE_MAPS
from bayes_rca.graph.io import FORMATS as GRAPH_FORMATS
from bayes_rca.model.mechanisms import FAMILIES
from bayes_rca.model.scm import CONSTANT_NOISE_CHOICES, INFERENCE_CHOICES


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``bayes-rca``; each command's ``run`` names its handler in :mod:`bayes_rca.app.cli`."""
    parser = argparse.ArgumentParser(prog="bayes-rca", description="Bayesian root-cause analysis of outliers.")
    commands = parser.add_subparsers(dest="command", required=True)
    for add in (_add_demo, _add_attribute, _add_change, _add_check, _add_experiment):
        add(commands)
    from bayes_rca.paper.cli import (
        add_paper_commands,  # paper run | bench | build (bayes_rca/paper/)
    )

    add_paper_commands(commands)
    return parser


def _add_demo(commands: argparse._SubParsersAction) -> None:
    demo = commands.add_parser("demo", help="synthetic microservice system with a known root cause, end to end")
    demo.add_argument("--rows", type=int, default=1000, help="rows of normal operation")
    demo.add_argument("--shift", type=float, default=5.0, help="injected fault, in noise standard deviations")
    demo.add_argument("--output", default="outputs/demo", help="folder for tables, plot and posterior")
    _add_model_options(demo)
    demo.set_defaults(run="demo")


def _add_attribute(commands: argparse._SubParsersAction) -> None:
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
    attribute.set_defaults(run="attribute")


def _add_change(commands: argparse._SubParsersAction) -> None:
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
    change.set_defaults(run="change")


def _add_check(commands: argparse._SubParsersAction) -> None:
    check = commands.add_parser("check", help="before fitting: what could go wrong and which nodes can be blamed")
    check.add_argument("config", nargs="?", default=None, help="an experiment config to check (or give --graph)")
    _add_graph_options(check, required=False)
    check.add_argument("--data", default=None, help="CSV of normal operation (without it: graph checks only)")
    check.add_argument("--index-col", default=None, help="column of the CSV to use as row labels")
    check.add_argument("--target", action="append", default=[], help="target node (repeatable; default: sinks)")
    check.add_argument("--mechanism", action="append", default=[], metavar="NODE=FAMILY",
                       help=f"a node's mechanism family ({', '.join(FAMILIES)})")
    check.set_defaults(run="check")


def _add_experiment(commands: argparse._SubParsersAction) -> None:
    experiment = commands.add_parser("experiment", help="run, compare and rerun experiment sweeps (MLflow)")
    actions = experiment.add_subparsers(dest="action", required=True)
    run = actions.add_parser("run", help="run every cell of a config's sweep grid (resumes a killed sweep)")
    run.add_argument("config", help="YAML config, e.g. configs/smoke.yaml")
    run.add_argument("overrides", nargs="*", help="key=value overrides, e.g. benchmark.num_rows=500 'sweep.seed=[0,1]'")
    run.add_argument("--output", default="outputs", help="folder for the comparison table")
    run.set_defaults(run="experiment_run")
    for name, what in (("compare", "the sweep's parent run id"), ("rerun", "a cell's (or a sweep's) run id")):
        sub = actions.add_parser(name, help=f"{name} from MLflow")
        sub.add_argument("run_id", help=what)
        sub.add_argument("--tracking-uri", default=None, help="MLflow store (default: MLFLOW_TRACKING_URI or "
                                                               "sqlite:///mlflow.db here)")
        sub.add_argument("--output", default="outputs", help="folder for written tables")
        sub.set_defaults(run=f"experiment_{name}")


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
