"""Per-issue PetShop evaluation of harness methods, printed as one line per issue and one summary line per cell.

The quick way to see *why* a method ranks as it does (the top three nodes and their scores, what its decision
rule reports); the logged, resumable evaluation is ``bayes-rca experiment run configs/petshop.yaml``. Methods get
the options of ``configs/petshop.yaml`` unless ``--option key=value`` (applied to every ``bayes_rca*`` method).

    python experiments/petshop_eval.py --split validation --methods bayes_rca,mad_traversal --specificity
"""

from __future__ import annotations

import argparse
import time
import warnings
from pathlib import Path

import numpy as np
import yaml

from bayes_rca.harness.config import expand_cells, load_raw
from bayes_rca.harness.methods import make_method
from bayes_rca.harness.metrics import recall_at_k
from bayes_rca.harness.real_data import petshop_benchmark

ROOT = Path(__file__).resolve().parents[1]


def _value(text: str):
    return yaml.safe_load(text)


def _options(cells: list[dict], method: str, scenario: str, metric: str) -> dict:
    """The options of ``method`` in the config's cell of that scenario and metric (any one, if none matches)."""
    matching = [cell for cell in cells if cell["method"] == method]
    exact = [cell for cell in matching
             if cell["benchmark"].get("scenario") == scenario and cell["benchmark"].get("metric") == metric]
    chosen = exact or matching
    return dict(chosen[0]["method_options"]) if chosen else {}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--split", default="train")
    parser.add_argument("--methods", default="bayes_rca,mad_traversal")
    parser.add_argument("--scenarios", default="low_traffic,high_traffic")
    parser.add_argument("--metrics", default="latency,availability")
    parser.add_argument("--data-root", default=str(ROOT.parent / "shared" / "data" / "petshop"))
    parser.add_argument("--specificity", action="store_true", help="also refit on the normal-period splits")
    parser.add_argument("--option", action="append", default=[], help="key=value for the bayes_rca methods")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    cells = expand_cells(load_raw(ROOT / "configs" / "petshop.yaml"))  # the sweep may set options per metric
    extra = {k: _value(v) for k, v in (o.split("=", 1) for o in args.option)}
    for scenario in args.scenarios.split(","):
        for metric in args.metrics.split(","):
            try:
                bench = petshop_benchmark(args.data_root, scenario, args.split, metric, specificity=args.specificity)
            except Exception as error:  # a scenario without this split or metric
                print(f"{scenario} {metric}: skipped ({error})")
                continue
            for name in args.methods.split(","):
                options = {**_options(cells, name, scenario, metric),
                           **(extra if name.startswith("bayes_rca") else {})}
                method = make_method(name, **options)
                raw = getattr(method, "uses_raw_data", False)
                start = time.perf_counter()
                method.fit(bench.raw_graph if raw else bench.graph, bench.raw_train if raw else bench.train)
                fit_seconds = time.perf_counter() - start
                top1, top3, seconds = [], [], []
                for case in bench.cases:
                    row = case.raw_rows if raw else (case.observed_row if method.uses_missing_values else case.row)
                    start = time.perf_counter()
                    attribution = method.attribute(case.target, row)
                    seconds.append(time.perf_counter() - start)
                    top1.append(recall_at_k(attribution, case.root_cause, 1))
                    top3.append(recall_at_k(attribution, case.root_cause, 3))
                    best = attribution.scores.sort_values(ascending=False).head(3)
                    print(f"  {scenario} {metric} {name} {case.name} root={case.root_cause} top1={top1[-1]:.2f} "
                          f"top3={top3[-1]:.2f} reported={list(attribution.reported or [])[:3]} "
                          f"best={[(str(k), round(float(v), 2)) for k, v in best.items()]} {seconds[-1]:.1f}s")
                right = []
                for normal in bench.normal_cases if method.abstains else []:
                    refit = make_method(name, **options)
                    refit.fit(normal.raw_graph if raw else normal.graph, normal.raw_train if raw else normal.train)
                    row = normal.raw_rows if raw else (normal.observed_row if refit.uses_missing_values else normal.row)
                    right.append(not refit.attribute(normal.target, row).reported)
                specificity = f"{np.mean(right):.2f}" if right else "-"
                print(f"{scenario} {args.split} {metric} {name}: top1={np.mean(top1):.3f} top3={np.mean(top3):.3f} "
                      f"specificity={specificity} fit={fit_seconds:.1f}s attribute={np.median(seconds):.1f}s median "
                      f"({max(seconds):.1f}s max)")


if __name__ == "__main__":
    main()
