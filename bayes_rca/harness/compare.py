"""Method x metric tables (mean +- standard error over seeds) from the child runs of a sweep."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from bayes_rca.app.tracking import default_tracking_uri, get_run, tracking_client
from bayes_rca.harness.metrics import COMPARED

METRICS = COMPARED  # the metrics marked ``compared`` in bayes_rca.harness.metrics' tables


def cell_runs(parent_run_id: str, tracking_uri: str | None = None) -> pd.DataFrame:
    """One row per finished cell of the sweep: its params and metrics."""
    uri = tracking_uri or default_tracking_uri()
    client = tracking_client(uri)
    parent = get_run(client, parent_run_id, uri)
    runs = client.search_runs([parent.info.experiment_id],
                              f"tags.mlflow.parentRunId = '{parent_run_id}' and attributes.status = 'FINISHED'",
                              max_results=50000)
    return pd.DataFrame([{**{f"param.{k}": v for k, v in run.data.params.items()},
                          **{f"metric.{k}": v for k, v in run.data.metrics.items()}} for run in runs])


def comparison_table(runs: pd.DataFrame) -> pd.DataFrame:
    """Mean and standard error over seeds of each metric, per method and per swept setting."""
    if runs.empty:
        return pd.DataFrame()
    # a method's options belong to the method; seeds are what the mean and standard error run over
    params = [c for c in runs.columns if c.startswith("param.") and c != "param.seed"
              and not c.startswith("param.method_options")]
    varying = [c for c in params if runs[c].nunique(dropna=False) > 1 and c != "param.method"]
    keys = ["param.method", *varying]
    metrics = [f"metric.{m}" for m in METRICS if f"metric.{m}" in runs.columns]
    grouped = runs.groupby(keys, dropna=False)[metrics]
    mean, sem, count = grouped.mean(), grouped.sem(), grouped.size()
    table = pd.concat({"mean": mean, "se": sem}, axis=1).swaplevel(axis=1).sort_index(axis=1, level=0)
    table.columns = [f"{metric.removeprefix('metric.')}_{stat}" for metric, stat in table.columns]
    table["runs"] = count
    table.index.names = [k.removeprefix("param.") for k in keys]
    return table


def to_markdown(table: pd.DataFrame, digits: int = 3) -> str:
    """A GitHub Markdown table with ``mean ± se`` cells."""
    metrics = [c.removesuffix("_mean") for c in table.columns if c.endswith("_mean")]
    header = [*table.index.names, *metrics, "runs"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for index, row in table.iterrows():
        labels = index if isinstance(index, tuple) else (index,)
        cells = []
        for metric in metrics:
            mean, se = row[f"{metric}_mean"], row[f"{metric}_se"]
            cells.append("" if pd.isna(mean) else f"{mean:.{digits}f}" + ("" if pd.isna(se) else f" ± {se:.{digits}f}"))
        lines.append("| " + " | ".join([*map(str, labels), *cells, str(int(row["runs"]))]) + " |")
    return "\n".join(lines) + "\n"


def write_comparison(table: pd.DataFrame, folder: str | Path, stem: str = "comparison") -> tuple[Path, Path]:
    """Write the table as CSV and Markdown; return both paths."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    csv_path, md_path = folder / f"{stem}.csv", folder / f"{stem}.md"
    table.to_csv(csv_path)
    md_path.write_text(to_markdown(table))
    return csv_path, md_path


def compare(parent_run_id: str, tracking_uri: str | None = None) -> pd.DataFrame:
    """The comparison table of a sweep's finished cells."""
    return comparison_table(cell_runs(parent_run_id, tracking_uri))


__all__ = ["METRICS", "cell_runs", "compare", "comparison_table", "to_markdown", "write_comparison"]
