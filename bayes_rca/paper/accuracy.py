"""The outputs of an accuracy experiment: NDCG@k, top-k recall and specificity per method, one block per setting
that varies in the sweep and one table per split (never pooled); seconds per method; NDCG@k per method and top-k
per setting (figures)."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import numpy as np

from bayes_rca.paper.cells import (
    CONTEXT_NAMES,
    _context_label,
    _has,
    _line_style,
    _method_key,
    _metric,
    _slug,
    _sorted_groups,
    _stats,
    _varying,
)
from bayes_rca.paper.latex import Group, Row, Table, escape, mean_se
from bayes_rca.paper.runs import ExperimentRuns

ACCURACY_METRICS = (("ndcg_at_1", "NDCG@1"), ("ndcg_at_3", "NDCG@3"), ("ndcg_at_10", "NDCG@10"),
                    ("top1_recall", "top-1"), ("top3_recall", "top-3"),
                    ("shapley_top1_agreement", "top-1 = true Shapley top-1"), ("specificity", "specificity"),
                    ("failed_cases", "failed cases"))


def accuracy_tables(runs: ExperimentRuns) -> list[tuple[str, Table]]:
    """Method x metric tables of an accuracy experiment, one block per swept setting, one table per split."""
    cells = runs.cells
    metrics = [(key, title) for key, title in ACCURACY_METRICS if _has(cells, key)]
    contexts = _varying(cells, ())
    split_key = "param.benchmark.split" if "param.benchmark.split" in contexts else None
    inner = [k for k in contexts if k != split_key]
    tables = []
    for split, frame in _sorted_groups(cells, [split_key] if split_key else []):
        groups = []
        for context, sub in _sorted_groups(frame, inner):
            group = Group(_context_label(inner, context))
            for method, rows in sorted(sub.groupby("param.method"), key=lambda item: _method_key(item[0])):
                cellrow = [escape(method), str(len(rows))]
                cellrow += [mean_se(*_stats(_metric(rows, key))[:2]) for key, _ in metrics]
                group.rows.append(Row(cellrow, rows["run_id"].tolist()))
            groups.append(group)
        suffix = f"_{_slug(str(split[0]))}" if split_key else ""
        where = f", split \\texttt{{{escape(split[0])}}}" if split_key else ""
        caption = (f"Accuracy per method, experiment \\texttt{{{escape(runs.name)}}}{where}"
                   + (", per setting (not pooled)" if inner else "") + ".")
        notes = ("Mean over the cell runs (seeds) of each method and setting, $\\pm$ standard error where there are "
                 "several; runs: how many. Top-$k$: share of outliers whose root cause is among the method's top "
                 "$k$ (ties share credit). ")
        if any(key == "specificity" for key, _ in metrics):
            notes += "Specificity: share of normal-data checks where the method names no root cause. "
        if any(key == "shapley_top1_agreement" for key, _ in metrics):
            notes += ("Top-1 = true Shapley top-1: how often the method's top cause is that of the exact "
                      "attribution at the true parameters. ")
        header = ["method", "runs", *[title for _, title in metrics]]
        tables.append((f"{runs.name}_accuracy{suffix}",
                       Table(header, groups, caption, f"tab:{_slug(runs.name)}_accuracy{suffix}", notes=notes,
                             source=f"experiment {runs.name}, sweeps {' '.join(runs.parents())}")))
    return tables


def runtime_table(runs: ExperimentRuns) -> tuple[str, Table] | None:
    """Fit and attribution seconds per method, over every cell of the experiment."""
    cells = runs.cells
    if not _has(cells, "fit_seconds"):
        return None
    group = Group("")
    for method, rows in sorted(cells.groupby("param.method"), key=lambda item: _method_key(item[0])):
        group.rows.append(Row([escape(method), str(len(rows)), mean_se(*_stats(_metric(rows, "fit_seconds"))[:2], 2),
                               mean_se(*_stats(_metric(rows, "attribute_seconds"))[:2], 3)], rows["run_id"].tolist()))
    caption = (f"Seconds per method (one core per cell), experiment \\texttt{{{escape(runs.name)}}}: fit, and "
               "attribution per outlier; mean over every cell run, $\\pm$ standard error.")
    return (f"{runs.name}_runtime", Table(["method", "runs", "fit s", "attribute s / outlier"], [group], caption,
                                          f"tab:{_slug(runs.name)}_runtime", source=f"experiment {runs.name}"))


def accuracy_figures(runs: ExperimentRuns, folder: Path, save: Callable[..., Path]
                     ) -> list[tuple[str, Path, str, list[str]]]:
    """NDCG@k per method (where NDCG is defined) and top-k per setting and method."""
    import matplotlib.pyplot as plt

    cells, name, out = runs.cells, _slug(runs.name), []
    methods = sorted(cells["param.method"].unique(), key=_method_key)
    ks = [k for k in range(1, 11) if _has(cells, f"ndcg_at_{k}")]
    if ks:
        figure_, axis = plt.subplots(figsize=(5.5, 3.6))
        for m, method in enumerate(methods):
            rows = cells[cells["param.method"] == method]
            axis.plot(ks, [_stats(_metric(rows, f"ndcg_at_{k}"))[0] for k in ks], _line_style(m // 10), marker="o",
                      ms=3, label=method)
        axis.set(xlabel="k", ylabel="NDCG@k", ylim=(0, 1.02), xticks=ks)
        axis.legend(fontsize=6, ncol=2)
        out.append((f"{name}_ndcg", save(figure_, folder / f"{name}_ndcg"),
                    f"NDCG@k per method (mean over cell runs), experiment \\texttt{{{escape(runs.name)}}}.",
                    cells["run_id"].tolist()))
    contexts = _varying(cells, ())
    if _has(cells, "top1_recall") and contexts:
        groups = _sorted_groups(cells, contexts)
        columns = min(3, len(groups))
        figure_, axes = plt.subplots(math.ceil(len(groups) / columns), columns, figsize=(3.4 * columns,
                                     2.9 * math.ceil(len(groups) / columns)), squeeze=False, sharey=True)
        for axis, (context, sub) in zip(axes.flat, groups):
            x = np.arange(len(methods))
            for metric, alpha in (("top3_recall", 0.35), ("top1_recall", 1.0)):
                axis.bar(x, [_stats(_metric(sub[sub["param.method"] == method], metric))[0] for method in methods],
                         color="C0", alpha=alpha, label="top-3" if metric == "top3_recall" else "top-1")
            axis.set_xticks(x, methods, rotation=70, fontsize=6)
            axis.set_title(", ".join(str(v) for v in context), fontsize=8)
            axis.set_ylim(0, 1.05)
        for axis in list(axes.flat)[len(groups):]:
            axis.axis("off")
        axes[0, 0].legend(fontsize=7)
        out.append((f"{name}_topk", save(figure_, folder / f"{name}_topk"),
                    "Top-1 (dark) and top-3 (light) recall per method and setting "
                    f"({', '.join(CONTEXT_NAMES.get(k, k) for k in contexts)}), experiment "
                    f"\\texttt{{{escape(runs.name)}}}.", cells["run_id"].tolist()))
    return out
