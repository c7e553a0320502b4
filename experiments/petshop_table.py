"""The README's PetShop table from a sweep's comparison CSV (``bayes-rca experiment compare RUN --output DIR``).

    python experiments/petshop_table.py outputs/compare/comparison_<run>.csv [scenario, if the sweep had one]

One row per method; per scenario x metric cell top-1 / top-3 recall / specificity (a method without a decision
rule scores 0 there), failed cases where there were any, and the mean attribution seconds per issue.
"""

from __future__ import annotations

import sys

import pandas as pd

ORDER = ["bayes_rca", "bayes_rca_linear", "mad_traversal", "traversal", "smooth_traversal", "dowhy_petshop", "dowhy",
         "circa", "naive", "score_ordering", "random"]


def _cell(row: pd.Series) -> str:
    spec = row.get("specificity_mean")
    text = f"{row.top1_recall_mean:.2f} / {row.top3_recall_mean:.2f} / " + (f"{spec:.2f}" if pd.notna(spec) else "–")
    failed = row.get("failed_cases_mean", 0.0)
    return text + (f" ({int(round(failed))} failed)" if pd.notna(failed) and failed > 0 else "")


def table(frame: pd.DataFrame, scenario: str = "low_traffic") -> str:
    """The Markdown table of a comparison frame (``scenario``: the one scenario of a sweep that did not vary it)."""
    if "benchmark.scenario" not in frame:
        frame = frame.assign(**{"benchmark.scenario": scenario})
    cells = [(s, m) for s in ("low_traffic", "high_traffic") for m in ("latency", "availability")
             if ((frame["benchmark.scenario"] == s) & (frame["benchmark.metric"] == m)).any()]
    lines = ["| method | " + " | ".join(f"{s.split('_')[0]} {m}: top-1 / top-3 / spec." for s, m in cells)
             + " | s per issue |", "|" + "---|" * (len(cells) + 2)]
    methods = [m for m in ORDER if m in set(frame.method)] + sorted(set(frame.method) - set(ORDER))
    for method in methods:
        rows = frame[frame.method == method]
        parts = []
        for scenario, metric in cells:
            match = rows[(rows["benchmark.scenario"] == scenario) & (rows["benchmark.metric"] == metric)]
            parts.append(_cell(match.iloc[0]) if len(match) else "–")
        lines.append(f"| {method} | " + " | ".join(parts) + f" | {rows.attribute_seconds_mean.mean():.2f} |")
    return "\n".join(lines)


if __name__ == "__main__":
    print(table(pd.read_csv(sys.argv[1]), *sys.argv[2:3]))
