"""Benchmark (issue 15, target 1): bayes_rca vs DoWhy on the bench system with Student-t(3) noise.

The system of ``bench_attribution.py`` (64-node random DAG, a target with 16 ancestors, 2000 rows, faults of 3-5
injected at 1-3 ancestors), with every noise ``StudentT(3)`` instead of ``Normal(0, 1)``. Each method runs in its
own child process (so that its peak RSS is its own), one after the other in the same run:

- bayes_rca: automatic assignment (Metropolis-Hastings from a Laplace fit for the Student-t families),
  ``--draws`` posterior draws, the scale-mixture game (exact given the mixing variables) with ``--samples``
  mixing samples and ``--permutations`` permutations around its exact control variate;
- DoWhy 0.14: ``auto.assign_causal_mechanisms`` (quality GOOD), ``fit``, ``attribute_anomalies`` (point
  estimate);
- the truth: the attribution at the true parameters (one draw, ``--truth-samples`` mixing samples,
  ``--truth-permutations`` permutations), and optionally (``--brute-force``) the general Monte Carlo game at the
  true parameters, which simulates every node.

It prints fit / attribute / total seconds, DoWhy's total over bayes_rca's, the largest Monte Carlo standard error
of bayes_rca's contributions, peak RSS, and the top cause of each method against the truth's; then one JSON line
(also written to ``--json PATH``). Run from the repository root::

    python experiments/bench/bench_student_t.py [--skip-dowhy] [--brute-force] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import warnings
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_attribution import build_system, peak_rss_mib, time_dowhy, top_nodes  # noqa: E402

console = Console(width=140)


def student_t_bench(seed: int, df: float, rows: int):
    """The bench system of ``bench_attribution.py`` with ``StudentT(df)`` noise, its rows and outlier."""
    bench = build_system(64, 16, rows, 3, seed)
    system = replace(bench.system, noise_df=df)
    return replace(bench, system=system, train=system.sample(rows, seed=seed), outlier=system.outlier(bench.injected))


def _contributions(result, players) -> dict[str, float]:
    summary = result.summary().loc[result.outliers[0]]
    return {str(p): float(summary.loc[p, "mean"]) for p in players}


def _max_mcse(result) -> float:
    """The largest Monte Carlo standard error of any player's contribution in any draw."""
    return float(result.standard_errors[..., [result.nodes.index(p) for p in result.players]].max())


def bayes_rca_result(bench, args: argparse.Namespace, mechanisms: dict | None = None) -> dict[str, Any]:
    """Fit ``BayesianSCM`` (``mechanisms`` overriding the automatic assignment) and attribute the outlier, timed."""
    import bayes_rca

    start = time.perf_counter()
    model = bayes_rca.BayesianSCM(bench.system.graph, mechanisms=mechanisms, num_draws=args.draws, seed=args.seed,
                                  progress=False).fit(bench.train)
    fit_s = time.perf_counter() - start
    start = time.perf_counter()
    result = bayes_rca.attribute_outliers(model, bench.target, bench.outlier, num_samples=args.samples,
                                          num_permutations=args.permutations, seed=args.seed,
                                          tail_df=args.tail_df)
    attribute_s = time.perf_counter() - start
    summary = result.summary().loc[result.outliers[0]]
    return {"method": "bayes_rca", "fit_s": fit_s, "attribute_s": attribute_s, "peak_rss_mib": peak_rss_mib(),
            "contributions": _contributions(result, bench.players), "max_mcse": _max_mcse(result),
            "p_top_cause": {str(p): float(summary.loc[p, "p_top_cause"]) for p in bench.players},
            "families": model.fit_report_["family"].value_counts().to_dict(),
            "methods": model.fit_report_["method"].value_counts().to_dict(),
            "converged": bool(model.converged_), "settings": {k: str(v) for k, v in result.settings.items()}}


def truth_result(oracle, bench, args: argparse.Namespace) -> dict[str, Any]:
    """The attribution of the outlier by ``oracle`` (the true parameters), timed."""
    import bayes_rca

    start = time.perf_counter()
    result = bayes_rca.attribute_outliers(oracle, bench.target, bench.outlier, num_samples=args.truth_samples,
                                          num_permutations=args.truth_permutations, seed=args.seed + 1,
                                          tail_df=args.tail_df)
    return {"method": "truth", "fit_s": 0.0, "attribute_s": time.perf_counter() - start,
            "peak_rss_mib": peak_rss_mib(), "contributions": _contributions(result, bench.players),
            "max_mcse": _max_mcse(result), "injected": bench.injected}


def dowhy_result(bench, seed: int) -> dict[str, Any]:
    """DoWhy's automatic assignment, fit and point estimate of the outlier, timed."""
    warnings.filterwarnings("ignore")
    result = time_dowhy(bench, seed, 0)[0]
    return {"method": "DoWhy point estimate", "fit_s": result.timing.fit_s, "attribute_s": result.timing.attribute_s,
            "peak_rss_mib": result.timing.peak_rss_mib,
            "contributions": {str(k): v for k, v in result.contributions.items()}}


def run_bayes_rca(args: argparse.Namespace) -> dict[str, Any]:
    return bayes_rca_result(student_t_bench(args.seed, args.df, args.rows), args)


def run_truth(args: argparse.Namespace) -> dict[str, Any]:
    import bayes_rca

    bench = student_t_bench(args.seed, args.df, args.rows)
    oracle = bench.system.oracle_model()
    out = truth_result(oracle, bench, args)
    if args.brute_force:
        start = time.perf_counter()
        brute = bayes_rca.attribute_outliers(oracle, bench.target, bench.outlier, estimator="monte_carlo",
                                             num_samples=args.brute_samples, num_permutations=100,
                                             seed=args.seed + 2)
        out["brute_force"] = {"contributions": _contributions(brute, bench.players), "max_mcse": _max_mcse(brute),
                              "seconds": time.perf_counter() - start}
    return out


def run_dowhy(args: argparse.Namespace) -> dict[str, Any]:
    return dowhy_result(student_t_bench(args.seed, args.df, args.rows), args.seed)


RUNNERS = {"bayes_rca": run_bayes_rca, "truth": run_truth, "dowhy": run_dowhy}


def _child(script: str, name: str, argv: list[str]) -> dict[str, Any]:
    """Run ``script``'s runner ``name`` in a child process (its own peak RSS) and return its JSON result."""
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as handle:
        path = handle.name
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    subprocess.run([sys.executable, script, *argv, "--only", name, "--json", path], check=True, env=env)
    return json.loads(Path(path).read_text())


def report_table(results: list[dict[str, Any]], args: argparse.Namespace, title: str,
                 required_ratio: float) -> dict[str, Any]:
    """Print the table of ``results`` (bayes_rca, truth, optionally DoWhy) and the ratio against its target."""
    by_name = {r["method"]: r for r in results}
    ours = by_name["bayes_rca"]
    ours_total = ours["fit_s"] + ours["attribute_s"]
    truth_top = top_nodes(by_name["truth"]["contributions"], 1)[0]
    table = Table(title=title)
    for column in ("method", "fit s", "attribute s", "total s", "total ÷ bayes_rca", "max MC SE (nats)",
                   "peak RSS MiB", "top cause", "= truth"):
        table.add_column(column, justify="left" if column in ("method", "top cause") else "right")
    for r in results:
        total = r["fit_s"] + r["attribute_s"]
        top = top_nodes(r["contributions"], 1)[0]
        table.add_row(r["method"], f"{r['fit_s']:.1f}", f"{r['attribute_s']:.1f}", f"{total:.1f}",
                      f"{total / ours_total:.2f}", f"{r.get('max_mcse', float('nan')):.3f}",
                      f"{r['peak_rss_mib']:.0f}", top, "yes" if top == truth_top else "NO")
    console.print(table)
    console.print(f"injected: {by_name['truth']['injected']}; bayes_rca families {ours['families']}, methods "
                  f"{ours['methods']}, converged {ours['converged']}")
    if "brute_force" in by_name["truth"]:
        brute = by_name["truth"]["brute_force"]
        console.print(f"brute force (general Monte Carlo game at the true parameters, {brute['seconds']:.0f} s): top "
                      f"{top_nodes(brute['contributions'], 1)[0]}, max SE {brute['max_mcse']:.3f}")
    if "DoWhy point estimate" in by_name:
        dowhy = by_name["DoWhy point estimate"]
        ratio = (dowhy["fit_s"] + dowhy["attribute_s"]) / ours_total
        console.print(f"DoWhy fit + point estimate over bayes_rca fit + attribution with intervals: {ratio:.2f}x "
                      f"(target >= {required_ratio:g})")
    summary = {"results": results, "args": {k: str(v) for k, v in vars(args).items()}}
    print(json.dumps(summary))
    return summary


def bench_parser(description: str, runners: dict[str, Any], samples: int, permutations: int, truth_samples: int,
                 truth_permutations: int) -> argparse.ArgumentParser:
    """The arguments every bench of this kind takes (seed, rows, draws, sample sizes, DoWhy, child protocol)."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--rows", type=int, default=2000)
    parser.add_argument("--draws", type=int, default=100)
    parser.add_argument("--samples", type=int, default=samples)
    parser.add_argument("--permutations", type=int, default=permutations)
    parser.add_argument("--truth-samples", type=int, default=truth_samples)
    parser.add_argument("--truth-permutations", type=int, default=truth_permutations)
    parser.add_argument("--tail-df", type=float, default=None,
                        help="the robust game for bayes_rca and the truth (DoWhy has none)")
    parser.add_argument("--skip-dowhy", action="store_true")
    parser.add_argument("--only", choices=list(runners), help=argparse.SUPPRESS)
    parser.add_argument("--json", type=Path)
    return parser


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = bench_parser(__doc__.splitlines()[0], RUNNERS, 1024, 100, 16384, 1000)
    parser.add_argument("--df", type=float, default=3.0)
    parser.add_argument("--brute-force", action="store_true")
    parser.add_argument("--brute-samples", type=int, default=20000)
    return parser.parse_args(argv)


def run_bench(script: str, argv: list[str], args: argparse.Namespace, runners: dict[str, Any], title: str,
              required_ratio: float) -> None:
    """A bench's main: one runner (``--only``, in a child) or all of them in children, then the table."""
    if args.only:
        args.json.write_text(json.dumps(runners[args.only](args), default=float))
        return
    passthrough = [a for a in argv if a != "--skip-dowhy"]
    if "--json" in passthrough:
        at = passthrough.index("--json")
        del passthrough[at:at + 2]
    names = ["bayes_rca", "truth"] + ([] if args.skip_dowhy else ["dowhy"])
    results = [_child(script, name, passthrough) for name in names]
    summary = report_table(results, args, title, required_ratio)
    if args.json:
        args.json.write_text(json.dumps(summary, default=float))


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    title = (f"Student-t({args.df:g}) bench system: 64 nodes, 17 players, {args.rows} rows; bayes_rca "
             f"{args.draws} draws, {args.samples} mixing samples, {args.permutations} permutations")
    run_bench(__file__, argv, args, RUNNERS, title, required_ratio=2.0)


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
