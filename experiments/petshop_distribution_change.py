"""PetShop as a real case of distribution-change attribution (issue 18): which services' mechanisms changed?

    python experiments/petshop_distribution_change.py [--data-root ../shared/data/petshop]

Two comparisons per scenario and metric, target ``PetSite`` (the target of every PetShop issue), functional the
difference of means:

- ``normal halves``: the normal period's first half against its second half. Nothing was injected, so a
  mechanism named changed is a false alarm (or a real drift of the system over the two days).
- ``normal vs issues``: the normal period against the issue windows of a split pooled (every row of every issue
  window whose target has that metric; 5 rows per window). One window alone has fewer rows than PetSite's
  mechanism has parameters (12 parents), so the windows of a split and metric are pooled; in the ``validation``
  split they have different root causes, so the change is a mixture of several faults.

The model is fixed in advance, the service model of the outlier method (``configs/petshop.yaml``, chosen before
any validation result was seen): pass-through linear-Gaussian mechanisms (``pass_through_gaussian``, Gaussian
roots), constant nodes at the finest noise scale of the varying ones, nodes with fewer than 10 normal values
marginalised out and other gaps imputed with the normal median (:func:`bayes_rca.data.tables.prepare_observed`);
the closed-form game, 200 draws per period, the default decision rule (``P(|phi| > delta) > 0.95``, delta a tenth
of the old target's sd). Nothing is tuned to the labels: the root causes are read only to print, after the fact,
where they rank.

Data used: ``graph.csv`` and ``noissue/`` of each scenario, and the issue folders of ``low_traffic/train``,
``low_traffic/validation`` and ``high_traffic/train`` only (the allowed splits; nothing else is opened).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bayes_rca.change.api import attribute_distribution_change, fit_periods  # noqa: E402
from bayes_rca.data.tables import prepare_observed, read_metrics, select_metric  # noqa: E402
from bayes_rca.graph.io import read_graph  # noqa: E402

TARGET = "PetSite"
ALLOWED = (("low_traffic", "train"), ("low_traffic", "validation"), ("high_traffic", "train"))
SCENARIOS = ("low_traffic", "high_traffic")
METRICS = ("latency", "availability")


def read_issue_windows(folder: Path, metric: str) -> tuple[pd.DataFrame, list[str], list[str]]:
    """Every row of the issue windows in ``folder`` (one split) whose target has ``metric``, the issue names and
    their root causes (only printed)."""
    scenario, split = folder.parent.name, folder.name
    if (scenario, split) not in ALLOWED:
        raise SystemExit(f"refusing to read {scenario}/{split}: only {ALLOWED} are used")
    windows, names, causes = [], [], []
    for issue in sorted(folder.iterdir(), key=lambda p: int(p.name.split("_")[-1])):
        spec = json.loads((issue / "target.json").read_text())
        if spec["target"]["metric"] != metric or spec["target"]["agg"] != "Average":
            continue
        frame = select_metric(read_metrics(issue / "metrics.csv"), metric, "Average")
        windows.append(frame.set_axis([f"{issue.name}@{i}" for i in range(len(frame))]))
        names.append(issue.name)
        causes.append(spec["root_cause"]["node"])
    return pd.concat(windows), names, causes


def attribute(graph, old_raw: pd.DataFrame, new_raw: pd.DataFrame, seed: int) -> tuple:
    """Prepare both periods against the old one's observations, fit the service model, attribute the change."""
    prepared, old, new, dropped, _ = prepare_observed(graph, old_raw, new_raw, 10)
    mechanisms = {node: "pass_through_gaussian" if prepared.in_degree(node) else "gaussian_root"
                  for node in prepared}
    start = time.perf_counter()
    old_model, new_model = fit_periods(old, new, prepared, mechanisms, num_draws=200, seed=seed,
                                       constant_noise="finest")
    result = attribute_distribution_change(old_model, new_model, TARGET, "mean", seed=seed)
    return result, time.perf_counter() - start, dropped


def describe(result, causes: list[str] | None) -> dict:
    summary = result.summary()
    total = result.total_summary()
    ranks = {node: position + 1 for position, node in enumerate(summary.index)}
    row = {"rows": None, "total_mean": total["mean"], "total_hdi": f"[{total['hdi_5%']:.3g}, {total['hdi_95%']:.3g}]",
           "first": summary.index[0], "first_mean": summary["mean"].iloc[0],
           "first_p_changed": summary["p_changed"].iloc[0], "named": ", ".join(map(str, result.changed())) or "none",
           "players": len(result.players)}
    if causes is not None:
        distinct = sorted(set(causes))
        row["root_causes"] = ", ".join(f"{cause} ({causes.count(cause)}x, rank {ranks.get(cause, '-')})"
                                       for cause in distinct)
    return row


def to_markdown(frame: pd.DataFrame) -> str:
    """A GitHub Markdown table (floats to 3 significant digits)."""
    def cell(value) -> str:
        if isinstance(value, float):
            return "" if np.isnan(value) else f"{value:.3g}"
        return "" if value is None else str(value)

    lines = ["| " + " | ".join(frame.columns) + " |", "|" + "---|" * len(frame.columns)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-root", default=str(ROOT.parent / "shared" / "data" / "petshop"))
    parser.add_argument("--output", default=str(ROOT / "outputs" / "petshop_distribution_change"))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--scenarios", default=",".join(SCENARIOS), help="comma-separated scenario folders")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    rows = []
    for scenario in args.scenarios.split(","):
        if scenario not in SCENARIOS:
            raise SystemExit(f"unknown scenario {scenario!r}; use {', '.join(SCENARIOS)}")
        folder = Path(args.data_root) / scenario
        graph = read_graph(folder / "graph.csv", fmt="adjacency").reverse(copy=True)
        normal_all = read_metrics(folder / "noissue" / "metrics.csv")
        for metric in METRICS:
            normal = select_metric(normal_all, metric, "Average")
            half = len(normal) // 2
            result, seconds, dropped = attribute(graph, normal.iloc[:half], normal.iloc[half:], args.seed)
            rows.append({"scenario": scenario, "metric": metric, "comparison": "normal halves",
                         **describe(result, None), "rows": f"{half} vs {len(normal) - half}", "seconds": seconds,
                         "dropped": len(dropped)})
            print(rows[-1], flush=True)
            for split in ("train", "validation"):
                if (scenario, split) not in ALLOWED or not (folder / split).is_dir():
                    continue
                windows, names, causes = read_issue_windows(folder / split, metric)
                result, seconds, dropped = attribute(graph, normal, windows, args.seed)
                rows.append({"scenario": scenario, "metric": metric, "comparison": f"normal vs {split} issues",
                             **describe(result, causes), "rows": f"{len(normal)} vs {len(windows)} ({len(names)} "
                                                                  "windows)",
                             "seconds": seconds, "dropped": len(dropped)})
                print(rows[-1], flush=True)
    table = pd.DataFrame(rows)
    output = Path(args.output) / "_".join(args.scenarios.split(","))
    output.mkdir(parents=True, exist_ok=True)
    table.to_csv(output / "petshop_distribution_change.csv", index=False)
    columns = ["scenario", "metric", "comparison", "rows", "total_mean", "total_hdi", "first", "first_mean",
               "first_p_changed", "named", "root_causes", "seconds"]
    markdown = to_markdown(table.reindex(columns=columns))
    (output / "petshop_distribution_change.md").write_text(markdown + "\n")
    print(markdown)
    print(f"written {output}/petshop_distribution_change.md")
    return 0


if __name__ == "__main__":
    np.set_printoptions(precision=3)
    sys.exit(main())
