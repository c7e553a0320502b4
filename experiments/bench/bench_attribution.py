"""Benchmark: bayes_rca vs DoWhy ``gcm.attribute_anomalies`` on the same linear system, in one process.

A random DAG whose target has (about) ``--ancestors`` ancestors, linear mechanisms with coefficients
``U(0.5, 2)`` and ``N(0, 1)`` noise, ``--rows`` normal rows, and one outlier row with noise 3-5 injected at 1-3
ancestors of the target. Both tools fit on the same rows and attribute the same outlier; the script prints wall
times, the ratio of attribution times, peak RSS, the top causes of each method and their rank agreement, and
one JSON line with everything (also written to ``--json PATH``).

Run from the repository root::

    python experiments/bench/bench_attribution.py [--skip-dowhy] [--dowhy-bootstrap 20] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import resource
import sys
import time
import warnings
from collections.abc import Callable, Hashable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import networkx as nx
import numpy as np
import pandas as pd
import scipy.stats
from rich.console import Console
from rich.table import Table

import bayes_rca
from bayes_rca.data.synthetic import LinearGaussianSystem, random_dag, random_linear_system
from bayes_rca.graph.dag import ancestors_of

T = TypeVar("T")
MAX_GRAPH_SEEDS = 200  # graph seeds tried when looking for a target with the requested number of ancestors
console = Console(width=120)


@dataclass(frozen=True)
class Benchmark:
    """The system both tools work on.

    Attributes
    ----------
    system : LinearGaussianSystem
        The true linear-Gaussian SCM.
    graph_seed : int
        Seed of ``random_dag`` that produced the graph.
    target : hashable
        The node where the outlier is observed.
    players : list
        The target's ancestors and the target (last): the nodes that can be blamed.
    injected : dict
        Root causes: node -> injected standard noise.
    train : pandas.DataFrame
        Normal rows.
    outlier : pandas.DataFrame
        The one outlier row.
    """

    system: LinearGaussianSystem
    graph_seed: int
    target: Hashable
    players: list[Hashable]
    injected: dict[Hashable, float]
    train: pd.DataFrame
    outlier: pd.DataFrame


@dataclass
class Timing:
    """One row of the results table: wall times in seconds and the process's peak RSS afterwards."""

    method: str
    fit_s: float
    attribute_s: float
    peak_rss_mib: float
    note: str = ""

    @property
    def total_s(self) -> float:
        return self.fit_s + self.attribute_s


@dataclass
class MethodResult:
    """A method's timing and its contribution of every player (posterior mean for bayes_rca)."""

    timing: Timing
    contributions: dict[Hashable, float]
    extra: dict[str, Any] = field(default_factory=dict)


def peak_rss_mib() -> float:
    """Peak resident set size of this process so far, in MiB (``ru_maxrss`` is KiB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def timed(func: Callable[[], T]) -> tuple[T, float]:
    """Call ``func()`` and return its result and wall time in seconds."""
    start = time.perf_counter()
    result = func()
    return result, time.perf_counter() - start


def find_target(num_nodes: int, num_ancestors: int, max_parents: int, seed: int) -> tuple[nx.DiGraph, int, Hashable]:
    """The first graph (seeds ``seed, seed + 1, ...``) and node with exactly ``num_ancestors`` ancestors.

    Nodes are scanned in their ``X0, X1, ...`` order. If no graph among ``MAX_GRAPH_SEEDS`` seeds has such a node,
    the node whose ancestor count is closest (first found on ties) is returned.

    Returns
    -------
    graph, graph_seed, target
    """
    best: tuple[int, nx.DiGraph, int, Hashable] | None = None
    for graph_seed in range(seed, seed + MAX_GRAPH_SEEDS):
        graph = random_dag(num_nodes, max_parents=max_parents, seed=graph_seed)
        for node in graph.nodes:
            gap = abs(len(ancestors_of(graph, node)) - num_ancestors)
            if gap == 0:
                return graph, graph_seed, node
            if best is None or gap < best[0]:
                best = (gap, graph, graph_seed, node)
    assert best is not None
    return best[1], best[2], best[3]


def build_system(num_nodes: int, num_ancestors: int, num_rows: int, max_parents: int, seed: int) -> Benchmark:
    """The linear system, its training rows and one outlier with noise 3-5 injected at 1-3 ancestors.

    Parameters
    ----------
    num_nodes, num_ancestors : int
        Size of the DAG and the wanted number of ancestors of the target.
    num_rows : int
        Normal training rows.
    max_parents : int
        Most parents per node of the random DAG.
    seed : int
        Seed of everything (graph search start, coefficients, data, injected faults).
    """
    graph, graph_seed, target = find_target(num_nodes, num_ancestors, max_parents, seed)
    system = random_linear_system(graph, seed=seed)
    ancestors = ancestors_of(graph, target)
    rng = np.random.default_rng(seed)
    count = int(rng.integers(1, min(3, len(ancestors)) + 1))
    chosen = rng.choice(len(ancestors), size=count, replace=False)
    injected = {ancestors[int(i)]: float(rng.uniform(3.0, 5.0)) for i in chosen}
    return Benchmark(system, graph_seed, target, [*ancestors, target], injected,
                     system.sample(num_rows, seed=seed), system.outlier(injected))


def time_bayes_rca(bench: Benchmark, draws: int, seed: int, device: str,
                   other_estimator: bool) -> list[MethodResult]:
    """Fit ``BayesianSCM`` and attribute the outlier (default settings; optionally also the other estimator).

    Parameters
    ----------
    bench : Benchmark
    draws : int
        Posterior draws.
    seed : int
        Seed of fitting and attribution.
    device : str
        Torch device for the attribution.
    other_estimator : bool
        Also time the Shapley estimator the defaults did not pick, reusing the fit: 1000 antithetic
        permutations if the default enumerated all ``2^K`` coalitions, the exact enumeration otherwise.
    """
    model, fit_s = timed(lambda: bayes_rca.BayesianSCM(bench.system.graph, num_draws=draws, seed=seed,
                                                       progress=False).fit(bench.train))
    families = model.fit_report_["family"].value_counts().to_dict()
    console.print(f"bayes_rca mechanisms: {families}")
    result, attribute_s = timed(lambda: bayes_rca.attribute_outliers(model, target=bench.target,
                                                                     outliers=bench.outlier, device=device))
    console.print(f"bayes_rca settings: {result.settings}")
    with pd.option_context("display.width", 120, "display.max_columns", 20):
        print(result.summary().head())
    players = len(bench.players)
    results = [_bayes_result(f"bayes_rca ({_estimator(result, players)})", result, fit_s, attribute_s)]
    if other_estimator:
        exact = result.settings["shapley"] != "exact"
        other, other_s = timed(lambda: bayes_rca.attribute_outliers(
            model, target=bench.target, outliers=bench.outlier, device=device,
            max_exact_players=players if exact else 0))
        second = _bayes_result(f"bayes_rca {_estimator(other, players)}", other, 0.0, other_s)
        gap = max(abs(second.contributions[p] - results[0].contributions[p]) for p in bench.players)
        second.timing.note = f"same fit; posterior means differ by up to {gap:.3f} nats"
        results.append(second)
    return results


def _estimator(result: bayes_rca.AttributionResult, players: int) -> str:
    """The Shapley estimator a result used: ``exact 2^K`` or ``N permutations``."""
    if result.settings["shapley"] == "exact":
        return f"exact 2^{players}"
    return f"{result.settings['num_permutations']} permutations"


def _bayes_result(name: str, result: bayes_rca.AttributionResult, fit_s: float, attribute_s: float,
                  note: str = "") -> MethodResult:
    """A :class:`MethodResult` from a bayes_rca attribution (posterior mean over draws, first outlier row)."""
    summary = result.summary().loc[result.outliers[0]]
    mean = {node: float(summary.loc[node, "mean"]) for node in result.players}
    p_top = {str(node): float(summary.loc[node, "p_top_cause"]) for node in result.players}
    extra = {"settings": {k: str(v) for k, v in result.settings.items()},
             "it_score_mean": float(result.scores[:, 0].mean()), "p_top_cause": p_top}
    return MethodResult(Timing(name, fit_s, attribute_s, peak_rss_mib(), note), mean, extra)


def _quiet_dowhy() -> None:
    """Silence DoWhy's progress bars and its (and scikit-learn's) chatty warnings and logs."""
    from dowhy import gcm

    gcm.config.disable_progress_bars()
    logging.getLogger("dowhy").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", module=r"(dowhy|sklearn)(\..*)?")


def _seed_dowhy(seed: int) -> None:
    """Seed numpy and random the way DoWhy does (its helper if this version has one)."""
    from dowhy.gcm.util import general

    if hasattr(general, "set_random_seed"):
        general.set_random_seed(seed)
    else:
        np.random.seed(seed)


def _flatten(attribution: Mapping[Hashable, Any]) -> dict[Hashable, float]:
    """DoWhy's ``{node: array of one value}`` as ``{node: float}``."""
    return {node: float(np.ravel(value)[0]) for node, value in attribution.items()}


def time_dowhy(bench: Benchmark, seed: int, bootstrap: int) -> list[MethodResult]:
    """Fit DoWhy's invertible SCM with auto-assigned mechanisms and attribute the outlier (default settings).

    Parameters
    ----------
    bench : Benchmark
    seed : int
        Seed of numpy/random before fitting (and before the bootstrap).
    bootstrap : int
        If positive, also time ``gcm.confidence_intervals(gcm.fit_and_compute(...))`` with this many refits.
    """
    from dowhy import gcm

    _quiet_dowhy()
    _seed_dowhy(seed)
    scm = gcm.InvertibleStructuralCausalModel(bench.system.graph)

    def fit() -> gcm.InvertibleStructuralCausalModel:
        gcm.auto.assign_causal_mechanisms(scm, bench.train)
        gcm.fit(scm, bench.train)
        return scm

    _, fit_s = timed(fit)
    names = pd.Series([_mechanism_name(scm, node) for node in scm.graph.nodes]).value_counts().to_dict()
    console.print(f"DoWhy mechanisms: {names}")
    attribution, attribute_s = timed(lambda: gcm.attribute_anomalies(scm, bench.target,
                                                                     anomaly_samples=bench.outlier))
    results = [MethodResult(Timing("DoWhy point estimate", fit_s, attribute_s, peak_rss_mib()),
                            _flatten(attribution))]
    if bootstrap > 0:
        results.append(_time_dowhy_bootstrap(scm, bench, seed, bootstrap))
    return results


def _mechanism_name(scm: Any, node: Hashable) -> str:
    """The mechanism's class, with the scikit-learn regressor of an additive-noise model in brackets."""
    mechanism = scm.causal_mechanism(node)
    model = getattr(mechanism, "prediction_model", None)
    if model is None:
        return type(mechanism).__name__
    return f"{type(mechanism).__name__}({type(getattr(model, 'sklearn_model', model)).__name__})"


def _time_dowhy_bootstrap(scm: Any, bench: Benchmark, seed: int, refits: int) -> MethodResult:
    """Time DoWhy's bootstrap intervals: ``refits`` times refit on 75% of the rows and attribute again.

    The attribution calls are timed separately, so the row splits into refitting ("fit") and attributing.
    """
    from dowhy import gcm

    attribute_times: list[float] = []

    def timed_attribution(model: Any, *args: Any, **kwargs: Any) -> dict:
        value, seconds = timed(lambda: gcm.attribute_anomalies(model, *args, **kwargs))
        attribute_times.append(seconds)
        return value

    _seed_dowhy(seed)
    query = gcm.fit_and_compute(timed_attribution, scm, bootstrap_training_data=bench.train,
                                target_node=bench.target, anomaly_samples=bench.outlier)
    (median, intervals), total_s = timed(lambda: gcm.confidence_intervals(query, num_bootstrap_resamples=refits))
    attribute_s = sum(attribute_times)
    per_refit = total_s / refits
    timing = Timing(f"DoWhy bootstrap ({refits} refits)", total_s - attribute_s, attribute_s, peak_rss_mib(),
                    note=f"{per_refit:.1f} s/refit; x20 ~ {20 * per_refit:.0f} s (linear extrapolation)")
    extra = {"refits": refits, "per_refit_s": per_refit, "per_refit_attribute_s": attribute_times,
             "intervals": {str(n): [float(v) for v in np.ravel(i)] for n, i in intervals.items()}}
    return MethodResult(timing, _flatten(median), extra)


def top_nodes(contributions: Mapping[Hashable, float], k: int = 3) -> list[Hashable]:
    """The ``k`` nodes with the largest contributions."""
    return sorted(contributions, key=lambda node: -contributions[node])[:k]


def spearman(a: Mapping[Hashable, float], b: Mapping[Hashable, float], players: list[Hashable]) -> float:
    """Spearman rank correlation of two contribution vectors over ``players``."""
    return float(scipy.stats.spearmanr([a[p] for p in players], [b[p] for p in players]).statistic)


def report(bench: Benchmark, results: list[MethodResult], args: argparse.Namespace) -> dict[str, Any]:
    """Print the timing table, top causes and rank agreement; return everything as a JSON-ready dict."""
    reference = results[0].timing.attribute_s
    table = Table(title=f"{args.nodes}-node DAG, target {bench.target} with {len(bench.players) - 1} ancestors "
                        f"({len(bench.players)} players), {args.rows} rows, {args.draws} draws, device {args.device}")
    for column in ("method", "fit s", "attribute s", "total s", "attr ÷ bayes_rca", "peak RSS MiB", "note"):
        table.add_column(column, justify="left" if column in ("method", "note") else "right")
    for result in results:
        t = result.timing
        table.add_row(t.method, f"{t.fit_s:.2f}", f"{t.attribute_s:.2f}", f"{t.total_s:.2f}",
                      f"{t.attribute_s / reference:.1f}x", f"{t.peak_rss_mib:.0f}", t.note)
    console.print(table)
    console.print("peak RSS is cumulative for the process (ru_maxrss): each row is the peak up to its end; "
                  "bayes_rca runs first.")
    load = os.getloadavg()
    console.print(f"load average at the end (1/5/15 min): {load[0]:.2f} / {load[1]:.2f} / {load[2]:.2f} "
                  f"on {os.cpu_count()} CPUs (other work on the machine inflates the times)")

    truth = sorted(bench.injected, key=lambda node: -bench.injected[node])
    console.print("injected root causes (noise): " + ", ".join(f"{n} ({v:.2f})" for n, v in bench.injected.items()))
    bayes = results[0]
    summary: dict[str, Any] = {"top3": {}, "top1_agree": {}, "spearman_vs_bayes_rca": {}}
    for result in results:
        top = top_nodes(result.contributions)
        summary["top3"][result.timing.method] = [str(n) for n in top]
        line = f"top-3 {result.timing.method}: {', '.join(map(str, top))}"
        if result is not bayes:
            agree = top[0] == top_nodes(bayes.contributions, 1)[0]
            rho = spearman(result.contributions, bayes.contributions, bench.players)
            summary["top1_agree"][result.timing.method] = agree
            summary["spearman_vs_bayes_rca"][result.timing.method] = rho
            line += f"  | top-1 agrees with bayes_rca: {'yes' if agree else 'NO'}, Spearman rho = {rho:.3f}"
        console.print(line)
    dowhy = next((r for r in results if r.timing.method == "DoWhy point estimate"), None)
    if dowhy is not None:
        console.print(f"DoWhy attribute / bayes_rca attribute: {dowhy.timing.attribute_s / reference:.1f}x; "
                      f"total: {dowhy.timing.total_s / bayes.timing.total_s:.1f}x")
    return {
        "args": vars(args), "pythonhashseed": os.environ.get("PYTHONHASHSEED"), "versions": _versions(),
        "load_average": os.getloadavg(), "cpu_count": os.cpu_count(),
        "graph_seed": bench.graph_seed, "target": str(bench.target), "num_ancestors": len(bench.players) - 1,
        "injected": {str(n): v for n, v in bench.injected.items()}, "injected_by_size": [str(n) for n in truth],
        "rows": [{**asdict(r.timing), "total_s": r.timing.total_s} for r in results],
        "contributions": {r.timing.method: {str(n): v for n, v in r.contributions.items()} for r in results},
        "extra": {r.timing.method: r.extra for r in results if r.extra},
        **summary,
    }


def _versions() -> dict[str, str]:
    """Versions of the packages being compared."""
    import importlib.metadata

    names = ("bayes_rca", "torch", "pyro-ppl", "dowhy", "scikit-learn", "numpy")
    return {name: importlib.metadata.version(name) for name in names}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=64, help="nodes of the random DAG")
    parser.add_argument("--ancestors", type=int, default=16, help="wanted ancestors of the target")
    parser.add_argument("--max-parents", type=int, default=3, help="most parents per node of the random DAG")
    parser.add_argument("--rows", type=int, default=2000, help="normal training rows")
    parser.add_argument("--draws", type=int, default=200, help="bayes_rca posterior draws")
    parser.add_argument("--seed", type=int, default=0, help="seed of everything")
    parser.add_argument("--device", default="cpu", help="torch device of the bayes_rca attribution")
    parser.add_argument("--default-only", action="store_true",
                        help="time only bayes_rca's default Shapley estimator, not also the other one")
    parser.add_argument("--skip-dowhy", action="store_true", help="time bayes_rca only")
    parser.add_argument("--dowhy-bootstrap", type=int, default=0, metavar="N",
                        help="also time DoWhy's bootstrap confidence intervals with N refits (0: skip)")
    parser.add_argument("--json", type=Path, default=None, metavar="PATH", help="also write the JSON line here")
    return parser.parse_args(argv)


def ensure_hash_seed() -> None:
    """Re-run this script with ``PYTHONHASHSEED=0`` unless the variable is set.

    DoWhy iterates over sets of node names (strings, whose hashes are salted per process) while drawing random
    numbers, so its attribution changes from run to run even with numpy seeded; a fixed hash seed makes it
    reproducible. bayes_rca does not depend on it.
    """
    if "PYTHONHASHSEED" not in os.environ:
        os.execve(sys.executable, sys.orig_argv, {**os.environ, "PYTHONHASHSEED": "0"})


def main(argv: list[str] | None = None) -> None:
    """Build the system, time both tools, print the report and the JSON line."""
    args = parse_args(argv)
    if argv is None and not args.skip_dowhy:
        ensure_hash_seed()
    warnings.filterwarnings("ignore", message=".*ArviZ is undergoing a major refactor.*")
    bench = build_system(args.nodes, args.ancestors, args.rows, args.max_parents, args.seed)
    console.print(f"system: random_dag({args.nodes}, max_parents={args.max_parents}, seed={bench.graph_seed}), "
                  f"target {bench.target} with {len(bench.players) - 1} ancestors, {args.rows} rows")
    results = time_bayes_rca(bench, args.draws, args.seed, args.device, other_estimator=not args.default_only)
    if not args.skip_dowhy:
        results += time_dowhy(bench, args.seed, args.dowhy_bootstrap)
    record = report(bench, results, args)
    line = json.dumps(record, default=str)
    print(line)
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(line + "\n")


if __name__ == "__main__":
    main()
