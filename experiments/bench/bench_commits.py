"""Benchmark check: the working tree against an earlier commit, on the bench system, in one run.

The system of ``bench_attribution.py`` (built once, here, by its ``build_system``) is fitted and attributed by
the working tree's ``bayes_rca`` and by the baseline commit's, checked out in a git worktree under the temporary
directory (created on the first run, reused afterwards). Each measurement is a fresh child process that imports
its own ``bayes_rca`` (``PYTHONPATH``), fits (timed), then attributes the outlier once (timed: the first call,
as in ``bench_attribution.py``, so one-off costs such as lazy imports count) and ``--warm-calls`` more times.
The two sides alternate, in the order ABBA BAAB ..., for ``--rounds`` rounds, so that a drift of the machine's
load falls on both. The script prints the median seconds of each side and their ratio, and the largest
difference of the posterior mean contributions between the sides (and within a side across rounds).

Exit status: 0 when both checks pass; 1 bit set when the current median attribution (first call) or fit is more
than ``--max-slowdown`` times the baseline's; 2 bit set when the contributions differ by more than
``--tolerance`` (skip with ``--numbers-may-differ`` where the commits are meant to give different numbers); 4 when
git or a run fails (the message says why).

Run from the repository root (``make bench-commits BASELINE=a993d40``)::

    python experiments/bench/bench_commits.py --baseline a993d40 [--rounds 5] [--max-slowdown 1.25]
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

SCRIPT = Path(__file__).resolve()
REPO = SCRIPT.parents[2]  # the working tree this script belongs to
CURRENT, BASELINE = "current", "baseline"
SETUP_FAILED = 4  # exit status when git or a measurement fails (not a verdict on speed or numbers)


class SetupError(Exception):
    """git or a child run failed; the message says which."""


# --------------------------------------------------------------------------------------------------- child side
def child(system_path: Path, out_path: Path, root: Path, draws: int, seed: int, warm_calls: int) -> None:
    """Fit and attribute the pickled system with the ``bayes_rca`` found under ``root``; write timings as JSON.

    Imports only what every version of the package has (``BayesianSCM``, ``attribute_outliers``), so that an
    older commit can be measured with this newer script.
    """
    import warnings

    import numpy as np

    import bayes_rca

    warnings.filterwarnings("ignore")
    imported = Path(bayes_rca.__file__).resolve()
    if root.resolve() not in imported.parents:
        raise SystemExit(f"bayes_rca was imported from {imported}, not from {root}")
    with open(system_path, "rb") as handle:
        system = pickle.load(handle)

    start = time.perf_counter()
    model = bayes_rca.BayesianSCM(system["graph"], num_draws=draws, seed=seed, progress=False).fit(system["train"])
    fit_s = time.perf_counter() - start

    def attribute() -> tuple[Any, float, float]:
        begin, begin_cpu = time.perf_counter(), time.process_time()
        value = bayes_rca.attribute_outliers(model, target=system["target"], outliers=system["outlier"],
                                             device="cpu")
        return value, time.perf_counter() - begin, time.process_time() - begin_cpu

    result, first_s, first_cpu_s = attribute()
    warm_s = [attribute()[1] for _ in range(warm_calls)]
    contributions = np.asarray(result.contributions, dtype=np.float64)  # (D, R, N)
    np.save(out_path.with_suffix(".npy"), contributions)
    record = {"bayes_rca": str(imported.parent), "fit_s": fit_s, "attribute_s": first_s,
              "attribute_cpu_s": first_cpu_s, "warm_s": warm_s,
              "nodes": [str(n) for n in result.nodes], "players": [str(p) for p in result.players],
              "settings": {k: str(v) for k, v in result.settings.items()}}
    out_path.write_text(json.dumps(record))


# -------------------------------------------------------------------------------------------------- parent side
def git(*args: str, cwd: Path = REPO) -> str:
    """Output of a git command in ``cwd`` (stripped); raises with git's message if it fails."""
    done = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True)
    if done.returncode != 0:
        raise SetupError(f"git {' '.join(args)} failed: {done.stderr.strip()}")
    return done.stdout.strip()


def baseline_worktree(revision: str, parent: Path | None) -> tuple[Path, str]:
    """A detached worktree of ``revision`` (reused when one is already there at that commit) and its commit."""
    commit = git("rev-parse", "--verify", f"{revision}^{{commit}}")
    path = (parent or Path(tempfile.gettempdir()) / "bayes_rca_bench_worktrees") / commit[:12]
    if path.exists():
        if (path / ".git").exists() and git("rev-parse", "HEAD", cwd=path) == commit:
            return path, commit
        raise SetupError(f"{path} exists but is not a worktree at {commit[:12]}; remove it or pass --worktree-dir")
    git("worktree", "prune")  # forget a worktree whose folder was deleted, so that the path can be reused
    path.parent.mkdir(parents=True, exist_ok=True)
    git("worktree", "add", "--detach", str(path), commit)
    return path, commit


def describe_current() -> str:
    """HEAD's short hash, with ``+changes`` when the working tree differs from it."""
    head = git("rev-parse", "--short=12", "HEAD")
    dirty = git("status", "--porcelain", "--untracked-files=no")
    return f"{head}+changes" if dirty else head


def save_system(args: argparse.Namespace, folder: Path) -> tuple[Path, str]:
    """Build the bench system once (``bench_attribution.build_system``) and pickle what the children need."""
    sys.path.insert(0, str(SCRIPT.parent))
    from bench_attribution import build_system

    bench = build_system(args.nodes, args.ancestors, args.rows, args.max_parents, args.seed)
    path = folder / "system.pkl"
    with open(path, "wb") as handle:
        pickle.dump({"graph": bench.system.graph, "train": bench.train, "outlier": bench.outlier,
                     "target": bench.target}, handle)
    label = (f"random_dag({args.nodes}, max_parents={args.max_parents}, seed={bench.graph_seed}), target "
             f"{bench.target} with {len(bench.players) - 1} ancestors, {args.rows} rows, {args.draws} draws")
    return path, label


def measure(side: str, root: Path, system_path: Path, folder: Path, run: int, args: argparse.Namespace
            ) -> dict[str, Any]:
    """One child process on one side; its record, with the contributions loaded."""
    import numpy as np

    out = folder / f"{side}_{run}.json"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(root), *filter(None, [os.environ.get("PYTHONPATH")])]),
           "PYTHONHASHSEED": "0"}
    if args.threads:
        env.update({name: str(args.threads) for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")})
    command = [sys.executable, str(SCRIPT), "--child", str(system_path), str(out), str(root),
               "--draws", str(args.draws), "--seed", str(args.seed), "--warm-calls", str(args.warm_calls)]
    done = subprocess.run(command, env=env, cwd=folder, capture_output=True, text=True)
    if done.returncode != 0:
        raise SetupError(f"the {side} run failed ({root}):\n{done.stdout}{done.stderr}")
    record = json.loads(out.read_text())
    record["contributions"] = np.load(out.with_suffix(".npy"))
    return record


def order(rounds: int) -> list[str]:
    """ABBA BAAB ...: each round has one run per side; the first side alternates, pairs mirror each other."""
    sides = []
    for index in range(rounds):
        first = CURRENT if index % 4 in (0, 3) else BASELINE
        sides += [first, BASELINE if first == CURRENT else CURRENT]
    return sides


def largest_gap(records: list[dict[str, Any]], others: list[dict[str, Any]]) -> tuple[float, float]:
    """Largest absolute difference of posterior mean contributions, and of per-draw contributions, between
    any record of ``records`` and any of ``others`` (inf where the shapes or node orders differ)."""
    mean_gap = draw_gap = 0.0
    for a in records:
        for b in others:
            if a["nodes"] != b["nodes"] or a["contributions"].shape != b["contributions"].shape:
                return float("inf"), float("inf")
            mean_gap = max(mean_gap, float(abs(a["contributions"].mean(0) - b["contributions"].mean(0)).max()))
            draw_gap = max(draw_gap, float(abs(a["contributions"] - b["contributions"]).max()))
    return mean_gap, draw_gap


def report(runs: dict[str, list[dict[str, Any]]], labels: dict[str, str], system: str,
           args: argparse.Namespace) -> int:
    """Print the table and the checks; return the exit status."""
    from rich.console import Console
    from rich.table import Table

    console = Console(width=120)
    metrics = {"fit s": lambda r: r["fit_s"], "attribute s (first call)": lambda r: r["attribute_s"],
               "attribute CPU s (first call)": lambda r: r["attribute_cpu_s"]}
    if args.warm_calls:
        metrics["attribute s (warm, median)"] = lambda r: statistics.median(r["warm_s"])
    checked = ("fit s", "attribute s (first call)")  # the others are reported only
    table = Table(title=f"current {labels[CURRENT]} against baseline {labels[BASELINE]}: medians of {args.rounds} "
                        f"runs each\n{system}")
    for column in ("", "current", "baseline", "current ÷ baseline", "current min-max", "baseline min-max"):
        table.add_column(column, justify="left" if not column else "right")
    status, slower = 0, []
    for name, value in metrics.items():
        current = [value(r) for r in runs[CURRENT]]
        baseline = [value(r) for r in runs[BASELINE]]
        ratio = statistics.median(current) / statistics.median(baseline)
        table.add_row(name, f"{statistics.median(current):.3f}", f"{statistics.median(baseline):.3f}", f"{ratio:.2f}x",
                      *(f"{min(values):.2f}-{max(values):.2f}" for values in (current, baseline)))
        if name in checked and ratio > args.max_slowdown:
            slower.append(f"{name} {ratio:.2f}x")
    console.print(table)
    for side in (CURRENT, BASELINE):
        console.print(f"{side}: bayes_rca from {runs[side][0]['bayes_rca']}; settings "
                      f"{ {k: runs[side][0]['settings'].get(k) for k in ('estimator', 'shapley')} }")
    load = os.getloadavg()
    console.print(f"load average at the end (1/5/15 min): {load[0]:.2f} / {load[1]:.2f} / {load[2]:.2f} on "
                  f"{os.cpu_count()} CPUs (other work on the machine inflates both sides' times)")
    if slower:
        console.print(f"SLOWER than the baseline by more than {args.max_slowdown:g}x: {', '.join(slower)}")
        status |= 1
    else:
        console.print(f"speed: within {args.max_slowdown:g}x of the baseline")

    between = largest_gap(runs[CURRENT], runs[BASELINE])
    within = max(largest_gap(runs[side], runs[side])[1] for side in (CURRENT, BASELINE))
    console.print(f"posterior mean contributions differ by up to {between[0]:.3g} nats between the commits "
                  f"(per draw: {between[1]:.3g}); runs of one commit by up to {within:.3g}")
    if args.numbers_may_differ:
        console.print("numbers: not checked (--numbers-may-differ)")
    elif max(between[0], within) > args.tolerance:
        console.print(f"NUMBERS DIFFER by more than --tolerance {args.tolerance:g} (pass --numbers-may-differ "
                      "where the commits are meant to differ)")
        status |= 2
    else:
        console.print(f"numbers: agree within {args.tolerance:g}")
    return status


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options (``--child`` is the internal entry point of a measurement)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", help="commit (hash, tag, branch, HEAD~3, ...) to compare against")
    parser.add_argument("--rounds", type=int, default=5, help="runs of each side (alternating)")
    parser.add_argument("--max-slowdown", type=float, default=1.25,
                        help="fail when a current median (fit, first attribution) exceeds the baseline's times this")
    parser.add_argument("--tolerance", type=float, default=1e-9,
                        help="largest allowed difference of contributions (nats), between and within the sides")
    parser.add_argument("--numbers-may-differ", action="store_true",
                        help="report but do not check the difference of the contributions")
    parser.add_argument("--warm-calls", type=int, default=2,
                        help="attribution calls timed after the first one in each run (reported, not checked)")
    parser.add_argument("--threads", type=int, default=None,
                        help="OMP/MKL/OpenBLAS threads of both sides' runs (default: as the environment says); 1 keeps "
                             "a busy machine from slowing torch's spinning threads down by 10-100x")
    parser.add_argument("--worktree-dir", type=Path, default=None,
                        help="folder of the baseline worktrees (default: <tmp>/bayes_rca_bench_worktrees)")
    parser.add_argument("--remove-worktree", action="store_true", help="remove the baseline worktree afterwards")
    parser.add_argument("--nodes", type=int, default=64, help="nodes of the random DAG")
    parser.add_argument("--ancestors", type=int, default=16, help="wanted ancestors of the target")
    parser.add_argument("--max-parents", type=int, default=3, help="most parents per node of the random DAG")
    parser.add_argument("--rows", type=int, default=2000, help="normal training rows")
    parser.add_argument("--draws", type=int, default=200, help="bayes_rca posterior draws")
    parser.add_argument("--seed", type=int, default=0, help="seed of everything")
    parser.add_argument("--child", nargs=3, metavar=("SYSTEM", "OUT", "ROOT"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child is None and not args.baseline:
        parser.error("--baseline is required")
    if args.rounds < 1 or args.warm_calls < 0:
        parser.error("--rounds must be at least 1 and --warm-calls at least 0")
    return args


def compare(args: argparse.Namespace) -> int:
    """The alternating measurements of both sides and the report; the exit status of the checks."""
    worktree, commit = baseline_worktree(args.baseline, args.worktree_dir)
    roots = {CURRENT: REPO, BASELINE: worktree}
    labels = {CURRENT: describe_current(), BASELINE: f"{args.baseline} ({commit[:12]})"}
    print(f"current: {REPO} at {labels[CURRENT]}; baseline: {worktree} at {labels[BASELINE]}; threads: "
          f"{args.threads or os.environ.get('OMP_NUM_THREADS', 'torch default')}", flush=True)
    try:
        with tempfile.TemporaryDirectory(prefix="bench_commits_") as scratch:
            folder = Path(scratch)
            system_path, system = save_system(args, folder)
            print(f"system: {system}", flush=True)
            runs: dict[str, list[dict[str, Any]]] = {CURRENT: [], BASELINE: []}
            for run, side in enumerate(order(args.rounds)):
                record = measure(side, roots[side], system_path, folder, run, args)
                runs[side].append(record)
                print(f"  {side:8s} fit {record['fit_s']:6.2f} s  attribute {record['attribute_s']:6.2f} s  warm "
                      + " ".join(f"{s:.2f}" for s in record["warm_s"]), flush=True)
            return report(runs, labels, system, args)
    finally:
        if args.remove_worktree:
            git("worktree", "remove", "--force", str(worktree))


def main(argv: list[str] | None = None) -> int:
    """Build the system, run the alternating measurements, print the table; the exit status of the checks."""
    args = parse_args(argv)
    if args.child is not None:
        system_path, out_path, root = map(Path, args.child)
        child(system_path, out_path, root, args.draws, args.seed, args.warm_calls)
        return 0
    try:
        return compare(args)
    except SetupError as error:
        print(error, file=sys.stderr)
        return SETUP_FAILED


if __name__ == "__main__":
    sys.exit(main())
