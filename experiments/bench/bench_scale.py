"""Benchmark of scale: a 100-ancestor target, a batch of outlier rows, peak memory (issue 4, targets 2, 4, 5).

Each measurement runs in its own child process, so that its peak resident memory is its own.

- ``hundred``: a 200-node random linear DAG, a target with 100 ancestors, 2000 rows, 200 posterior draws; the
  contributions by antithetic permutations, drawn in rounds until every Monte Carlo standard error is at most
  ``--tolerance`` nats. Prints fit and attribution seconds, the largest standard error, peak RSS.
- ``batch``: the 64-node, 16-ancestor system of ``bench_attribution.py``; after an untimed warm-up call, one
  outlier row, then ``--rows`` outlier rows in one call. Prints both times and their ratio (target: under 10x for
  100 rows).

Run from the repository root::

    python experiments/bench/bench_scale.py [--device cuda] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from bench_attribution import build_system, peak_rss_mib

import bayes_rca


def hundred_ancestors(args: argparse.Namespace) -> dict[str, Any]:
    """Fit and attribute one outlier at a 100-ancestor target to the requested standard error."""
    bench = build_system(200, 100, 2000, max_parents=6, seed=args.seed)
    start = time.perf_counter()
    model = bayes_rca.BayesianSCM(bench.system.graph, num_draws=args.draws, seed=args.seed,
                                  progress=False).fit(bench.train)
    fit_s = time.perf_counter() - start
    start = time.perf_counter()
    result = bayes_rca.attribute_outliers(model, bench.target, bench.outlier, tolerance=args.tolerance,
                                          device=args.device, seed=args.seed)
    attribute_s = time.perf_counter() - start
    players = [result.nodes.index(p) for p in result.players]
    errors = result.standard_errors[..., players]
    truth = bayes_rca.attribute_outliers(bench.system.oracle_model(), bench.target, bench.outlier,
                                         tolerance=args.tolerance, seed=args.seed)
    top = [result.players[i] for i in np.argsort(-result.contributions[:, 0, players].mean(0))[:3]]
    return {"case": "hundred", "nodes": 200, "ancestors": len(bench.players) - 1, "draws": args.draws,
            "fit_s": fit_s, "attribute_s": attribute_s, "max_standard_error": float(errors.max()),
            "mean_standard_error": float(errors.mean()), "injected": {str(k): v for k, v in bench.injected.items()},
            "top3": [str(n) for n in top],
            "oracle_top3": [str(result.players[i]) for i in np.argsort(-truth.contributions[0, 0, players])[:3]],
            "peak_rss_mib": peak_rss_mib(), "device": args.device}


def batch_of_rows(args: argparse.Namespace) -> dict[str, Any]:
    """Time one outlier row against ``args.rows`` rows in one call (shared work across rows)."""
    bench = build_system(64, 16, 2000, max_parents=3, seed=args.seed)
    model = bayes_rca.BayesianSCM(bench.system.graph, num_draws=args.draws, seed=args.seed,
                                  progress=False).fit(bench.train)
    rng = np.random.default_rng(args.seed)
    ancestors = bench.players[:-1]
    rows = []
    for _ in range(args.rows):
        chosen = rng.choice(len(ancestors), size=int(rng.integers(1, 4)), replace=False)
        rows.append(bench.system.outlier({ancestors[int(i)]: float(rng.uniform(3, 5)) for i in chosen}))
    outliers = pd.concat(rows, ignore_index=True)
    bayes_rca.attribute_outliers(model, bench.target, outliers.iloc[1:2], device=args.device, seed=args.seed)  # warm-up
    timings = {}
    for label, frame in (("one_row_s", outliers.iloc[:1]), ("batch_s", outliers)):
        start = time.perf_counter()
        bayes_rca.attribute_outliers(model, bench.target, frame, device=args.device, seed=args.seed)
        timings[label] = time.perf_counter() - start
    return {"case": "batch", "nodes": 64, "ancestors": len(ancestors), "rows": args.rows, "draws": args.draws,
            **timings, "ratio": timings["batch_s"] / timings["one_row_s"], "peak_rss_mib": peak_rss_mib(),
            "device": args.device}


CASES = {"hundred": hundred_ancestors, "batch": batch_of_rows}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--case", choices=sorted(CASES), help="run one case in this process (internal)")
    parser.add_argument("--draws", type=int, default=200)
    parser.add_argument("--tolerance", type=float, default=0.05, help="largest Monte Carlo standard error")
    parser.add_argument("--rows", type=int, default=100, help="outlier rows of the batch case")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    torch.set_num_threads(max(1, torch.get_num_threads()))
    if args.case:
        print(json.dumps(CASES[args.case](args)))
        return
    results = []
    for case in CASES:
        command = [sys.executable, __file__, "--case", case, *sys.argv[1:]]
        if "--json" in command:
            at = command.index("--json")
            del command[at:at + 2]
        output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
        results.append(json.loads(output.strip().splitlines()[-1]))
        print(json.dumps(results[-1]), flush=True)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
