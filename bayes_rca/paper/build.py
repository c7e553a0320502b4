"""``bayes-rca paper build``: LaTeX tables, figures and ``main.tex`` from the MLflow runs of named experiments.

What is built depends on what an experiment's runs logged:

* **calibration** (cells with ``player_coverage_*`` metrics, i.e. synthetic benchmarks with known true
  contributions): one table of every pure calibration study side by side (:mod:`bayes_rca.paper.summary`)
  with a paragraph on where bayes_rca's 90 % coverage falls outside 85--95 %; per experiment, coverage of the
  central 50/80/90/95 % intervals and their width, over all players and over true contributions above 3 nats,
  Brier score of P(top cause) against the true top cause (a table each);
  coverage vs nominal level, width vs training size, reliability diagram of P(top cause), runtime vs training
  size, and a forest plot of one attribution (figures).
* **accuracy** (every other harness experiment): NDCG@k, top-k recall, specificity per method, one block per
  setting that varies in the sweep (e.g. PetShop scenario x metric, one table per split; never pooled), NDCG@k
  per method and top-k per setting (figures).
* **performance** (runs tagged ``role = bench``, logged by ``bayes-rca paper bench``): fit and attribution
  seconds vs number of ancestors per tool (table and figure).

Every number in a table is a mean over logged cell runs (± standard error over them where there are several),
with their run ids in a LaTeX comment on the row. A study without runs in the store keeps what an earlier build
wrote for it into the output folder (:mod:`bayes_rca.paper.earlier`; marked as kept), or else is skipped with a
message naming the command that produces it.
"""

from __future__ import annotations

import math
import re
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from bayes_rca.paper.earlier import earlier_sections
from bayes_rca.paper.latex import Group, Row, Table, escape, figure, mean_se, number
from bayes_rca.paper.runs import ExperimentRuns, RunStore

DEFAULT_EXPERIMENTS = ("paper_calibration_lg", "paper_calibration_lg_dowhy", "paper_calibration_student_t",
                       "paper_calibration_student_t_dowhy", "icml2022", "petshop", "paper_performance")
LEVELS = (50, 80, 90, 95)
TARGET_LEVEL, TARGET_RANGE = 90, (0.85, 0.95)  # coverage at 90 % outside this range is flagged
LATEX_INSTALL = "apt-get install texlive-latex-base texlive-latex-extra latexmk"
ACCURACY_METRICS = (("ndcg_at_1", "NDCG@1"), ("ndcg_at_3", "NDCG@3"), ("ndcg_at_10", "NDCG@10"),
                    ("top1_recall", "top-1"), ("top3_recall", "top-3"),
                    ("shapley_top1_agreement", "top-1 = true Shapley top-1"), ("specificity", "specificity"),
                    ("failed_cases", "failed cases"))
METHOD_ORDER = ("bayes_rca", "bayes_rca_linear", "bayes_rca_svi", "bayes_rca_nuts", "bayes_rca_censored", "dowhy",
                "dowhy_bootstrap", "dowhy_petshop")
CONTEXT_NAMES = {"param.benchmark.scenario": "scenario", "param.benchmark.metric": "metric",
                 "param.benchmark.split": "split", "param.benchmark.family": "family",
                 "param.benchmark.num_rows": "rows", "param.benchmark.num_nodes": "nodes"}


@dataclass
class BuildReport:
    """What ``build_paper`` wrote, kept and skipped, the coverage values it flagged and the PDF (if built)."""

    out: Path
    tables: list[Path] = field(default_factory=list)
    figures: list[Path] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)  # experiments without runs now, kept from an earlier build
    flags: list[str] = field(default_factory=list)
    pdf: Path | None = None
    pdf_message: str = ""
    widths: dict[str, float] = field(default_factory=dict)  # of each figure, as a share of the text width


# ---------------------------------------------------------------------------------------------------- helpers

def _metric(frame: pd.DataFrame, name: str) -> pd.Series:
    column = f"metric.{name}"
    return frame[column].astype(float) if column in frame else pd.Series(np.nan, index=frame.index)


def _has(frame: pd.DataFrame, name: str) -> bool:
    return f"metric.{name}" in frame and frame[f"metric.{name}"].notna().any()


def _stats(values: pd.Series) -> tuple[float, float, int]:
    values = values.dropna()
    if values.empty:
        return float("nan"), float("nan"), 0
    se = float(values.std(ddof=1) / math.sqrt(len(values))) if len(values) > 1 else float("nan")
    return float(values.mean()), se, len(values)


def _method_key(method: str) -> tuple[int, str]:
    return (METHOD_ORDER.index(method) if method in METHOD_ORDER else len(METHOD_ORDER), method)


def _as_number(text: object) -> float:
    try:
        return float(text)
    except (TypeError, ValueError):
        return float("nan")


def _varying(cells: pd.DataFrame, exclude: tuple[str, ...]) -> list[str]:
    """The swept params (other than seed, method and method options, and ``exclude``) that take several values."""
    params = [c for c in cells.columns if c.startswith("param.") and c not in ("param.seed", "param.method", *exclude)
              and not c.startswith("param.method_options")]
    return [c for c in params if cells[c].nunique(dropna=False) > 1]


def _context_label(keys: list[str], values: tuple) -> str:
    return ", ".join(f"{CONTEXT_NAMES.get(k, k.removeprefix('param.'))} {escape(v)}" for k, v in zip(keys, values))


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "_", text).strip("_")


def _sorted_groups(cells: pd.DataFrame, keys: list[str]) -> list[tuple[tuple, pd.DataFrame]]:
    if not keys:
        return [((), cells)]
    groups = [(key if isinstance(key, tuple) else (key,), frame) for key, frame in cells.groupby(keys, dropna=False)]

    def order(item: tuple[tuple, pd.DataFrame]) -> tuple:
        return tuple((_as_number(v), str(v)) for v in item[0])

    return sorted(groups, key=order)


def _count(frame: pd.DataFrame, per_case: str) -> int:
    """Total count over the cells of a per-outlier mean metric (e.g. players scored)."""
    cases = _metric(frame, "num_cases").fillna(0) - _metric(frame, "failed_cases").fillna(0)
    return int(round(float((_metric(frame, per_case).fillna(0) * cases).sum())))


# ------------------------------------------------------------------------------------------------ calibration

def calibration_tables(runs: ExperimentRuns, flags: list[str]) -> list[tuple[str, Table]]:
    """The coverage tables (all players, true contributions above 3 nats) of a calibration experiment."""
    cells = runs.cells[runs.cells["metric.player_coverage_90"].notna()] if "metric.player_coverage_90" in \
        runs.cells else runs.cells.iloc[:0]
    contexts = _varying(cells, ("param.benchmark.num_rows",))
    tables = []
    for subset, prefix, count_metric in (("all", "player", "calib_players"), ("large", "large", "calib_large")):
        header = ["method", "rows", "outliers", "contributions", *[f"{level}\\,\\%" for level in LEVELS],
                  "width 90\\,\\%"]
        if subset == "all":
            header += ["Brier P(top)", "abs.\\ error"]
        groups = []
        for context, frame in _sorted_groups(cells, contexts):
            group = Group(_context_label(contexts, context))
            for (method, rows), sub in sorted(frame.groupby(["param.method", "param.benchmark.num_rows"]),
                                              key=lambda item: (_method_key(item[0][0]), _as_number(item[0][1]))):
                outliers = int(round(float((_metric(sub, "num_cases") - _metric(sub, "failed_cases").fillna(0)).sum())))
                cellrow = [escape(method), str(rows), str(outliers), str(_count(sub, count_metric))]
                for level in LEVELS:
                    mean, se, _ = _stats(_metric(sub, f"{prefix}_coverage_{level}"))
                    text = mean_se(mean, se)
                    low, high = TARGET_RANGE
                    if level == TARGET_LEVEL and math.isfinite(mean) and not low <= mean <= high:
                        text = rf"\textbf{{{text}}}$^\dagger$"
                        where = "all players" if subset == "all" else "true contributions > 3 nats"
                        flags.append(f"{runs.name}: {method}, {rows} rows, {where}: coverage of the 90 % intervals "
                                     f"{mean:.3f} (outside {low:.2f}-{high:.2f})")
                    cellrow.append(text)
                cellrow.append(mean_se(*_stats(_metric(sub, f"{prefix}_width_90"))[:2]))
                if subset == "all":
                    cellrow.append(mean_se(*_stats(_metric(sub, "top_cause_brier_true"))[:2]))
                    cellrow.append(mean_se(*_stats(_metric(sub, "player_abs_error"))[:2]))
                ids = sub["run_id"].tolist() if subset == "all" else \
                    sub.loc[_metric(sub, f"{prefix}_coverage_90").notna(), "run_id"].tolist()
                group.rows.append(Row(cellrow, ids))
            groups.append(group)
        what = "every contribution of a player (the target and its ancestors)" if subset == "all" else \
            "the true contributions above 3 nats"
        truth = ("the attribution at the true parameters by a very large Monte Carlo, whose standard error is in "
                 "the calibration summary table" if (_metric(cells, "truth_se_max") > 0).any()
                 else "exact attribution at the true parameters")
        caption = (f"Coverage of the central intervals of {what}: share of true contributions ({truth}) inside "
                   f"each method's central interval at each nominal level, experiment "
                   f"\\texttt{{{escape(runs.name)}}}.")
        notes = ("Mean over outliers, $\\pm$ standard error over seeds (one cell run per seed, method and training "
                 "size); contributions: how many were scored. Width: mean width of the 90\\,\\% intervals, in nats. ")
        if subset == "all":
            notes += ("Brier P(top): Brier score of P(node has the largest contribution) against the node with the "
                      "largest true contribution. Abs.\\ error: mean absolute error of the point estimates (posterior "
                      "mean; bootstrap median). ")
        if (cells["param.method"] == "dowhy_bootstrap").any():
            notes += ("DoWhy: percentile intervals of the bootstrap replicates; its \\texttt{confidence\\_level=0.95} "
                      "(the 5th--95th percentile) is the 90\\,\\% column. ")
        notes += "$^\\dagger$ 90\\,\\% coverage outside 85--95\\,\\%."
        label = f"tab:{_slug(runs.name)}_{subset}"
        tables.append((f"{runs.name}_coverage_{subset}",
                       Table(header, groups, caption, label, notes=notes,
                             source=f"experiment {runs.name}, sweeps {' '.join(runs.parents())}")))
    return tables


def _line_style(index: int) -> str:
    return ("-", "--", ":", "-.")[index % 4]


def calibration_figures(runs: ExperimentRuns, store: RunStore, folder: Path,
                        save: Callable[..., Path], report: Callable[[str], None]
                        ) -> list[tuple[str, Path, str, list[str]]]:
    """Coverage vs nominal, width vs rows, reliability diagram, runtime vs rows, forest plot; as (file stem,
    caption, run ids)."""
    import matplotlib.pyplot as plt

    cells = runs.cells[_metric(runs.cells, "player_coverage_90").notna()]
    methods = sorted(cells["param.method"].unique(), key=_method_key)
    sizes = sorted(cells["param.benchmark.num_rows"].unique(), key=_as_number)
    colours = plt.cm.viridis(np.linspace(0, 0.85, max(len(sizes), 1)))
    name, ids = _slug(runs.name), cells["run_id"].tolist()
    out = []

    # coverage vs nominal level
    figure_, axes = plt.subplots(1, 2, figsize=(9, 3.8), sharey=True)
    panels = ((axes[0], "player", "all contributions"), (axes[1], "large", "true contribution > 3 nats"))
    for axis, prefix, title in panels:
        axis.plot([0.4, 1], [0.4, 1], color="grey", lw=0.8)
        for m, method in enumerate(methods):
            for s, size in enumerate(sizes):
                sub = cells[(cells["param.method"] == method) & (cells["param.benchmark.num_rows"] == size)]
                means = [_stats(_metric(sub, f"{prefix}_coverage_{level}"))[0] for level in LEVELS]
                axis.plot([level / 100 for level in LEVELS], means, _line_style(m), marker="o", ms=3,
                          color=colours[s], label=f"{method}, {size} rows")
        axis.set(title=title, xlabel="nominal level", xlim=(0.45, 1.0), ylim=(0.0, 1.02))
    axes[0].set_ylabel("empirical coverage")
    axes[1].legend(fontsize=6, loc="lower right")
    out.append((f"{name}_coverage_vs_nominal", save(figure_, folder / f"{name}_coverage_vs_nominal"),
                "Empirical coverage of the central intervals against their nominal level, per method (line style) "
                f"and training size (colour); the grey line is perfect calibration. Experiment "
                f"\\texttt{{{escape(runs.name)}}}.", ids))

    # width vs training size
    if len(sizes) > 1:
        figure_, axis = plt.subplots(figsize=(5, 3.6))
        for m, method in enumerate(methods):
            for prefix, marker in (("player", "o"), ("large", "s")):
                means = [_stats(_metric(cells[(cells["param.method"] == method)
                                              & (cells["param.benchmark.num_rows"] == size)], f"{prefix}_width_90"))[0]
                         for size in sizes]
                axis.plot([_as_number(s) for s in sizes], means, _line_style(m), marker=marker,
                          label=f"{method}, {'all' if prefix == 'player' else '> 3 nats'}")
        axis.set(xscale="log", yscale="log", xlabel="training rows", ylabel="mean width of 90 % intervals (nats)")
        axis.legend(fontsize=7)
        out.append((f"{name}_width_vs_rows", save(figure_, folder / f"{name}_width_vs_rows"),
                    "Mean width of the 90\\,\\% intervals against the number of training rows, over all contributions "
                    f"(circles) and true contributions above 3 nats (squares). Experiment "
                    f"\\texttt{{{escape(runs.name)}}}.", ids))
    else:
        report(f"skipped the width and runtime vs training size figures of {runs.name}: one training size only")

    # reliability diagram of P(top cause), from the per-player artifacts
    tables = {}
    for run_id, method in zip(cells["run_id"], cells["param.method"]):
        table = store.artifact_table(run_id, "contributions.csv")
        if table is not None and table["top_probability"].notna().any():
            tables.setdefault(method, []).append(table)
    if tables:
        figure_, (axis, counts) = plt.subplots(2, 1, figsize=(5, 5.2), sharex=True,
                                               gridspec_kw={"height_ratios": [3, 1]})
        axis.plot([0, 1], [0, 1], color="grey", lw=0.8)
        edges = np.linspace(0, 1, 11)
        for m, (method, frames) in enumerate(sorted(tables.items(), key=lambda item: _method_key(item[0]))):
            data = pd.concat(frames)
            which = np.clip(np.digitize(data["top_probability"], edges[1:-1]), 0, len(edges) - 2)
            grouped = data.assign(bin=which).groupby("bin")
            brier = _stats(_metric(cells[cells["param.method"] == method], "top_cause_brier_true"))[0]
            axis.plot(grouped["top_probability"].mean(), grouped["true_top"].mean(), _line_style(m), marker="o",
                      label=f"{method} (Brier {brier:.3f})")
            counts.bar(edges[:-1] + 0.05 + 0.03 * (m - 0.5), grouped.size().reindex(range(10), fill_value=0),
                       width=0.03, label=method)
        axis.set(ylabel="observed frequency of true top cause", xlim=(0, 1), ylim=(0, 1))
        axis.legend(fontsize=7, loc="upper left")
        counts.set(yscale="log", xlabel="P(top cause)", ylabel="players")
        out.append((f"{name}_reliability", save(figure_, folder / f"{name}_reliability"),
                    "Reliability diagram of P(node has the largest contribution): players binned by their predicted "
                    "probability (ten bins), against how often they have the largest true contribution; the "
                    "lower panel counts the players per bin. Brier scores are those of the table. Experiment "
                    f"\\texttt{{{escape(runs.name)}}}.", ids))
    else:
        report(f"skipped the reliability diagram of {runs.name}: no run has a contributions.csv artifact with "
               "P(top cause)")

    # runtime vs training size
    if len(sizes) > 1:
        figure_, axis = plt.subplots(figsize=(5, 3.6))
        for m, method in enumerate(methods):
            for metric, marker in (("fit_seconds", "o"), ("attribute_seconds", "s")):
                means = [_stats(_metric(cells[(cells["param.method"] == method)
                                              & (cells["param.benchmark.num_rows"] == size)], metric))[0]
                         for size in sizes]
                axis.plot([_as_number(s) for s in sizes], means, _line_style(m), marker=marker,
                          label=f"{method}: {'fit' if metric == 'fit_seconds' else 'attribution per outlier'}")
        axis.set(xscale="log", yscale="log", xlabel="training rows", ylabel="seconds (one core)")
        axis.legend(fontsize=7)
        out.append((f"{name}_runtime_vs_rows", save(figure_, folder / f"{name}_runtime_vs_rows"),
                    "Fit seconds and attribution seconds per outlier against training rows (one core per cell; the "
                    "machine was shared, so these are upper bounds). Experiment "
                    f"\\texttt{{{escape(runs.name)}}}.", ids))

    forest = _forest(cells, store, folder, save, runs.name)
    if forest:
        out.append(forest)
    return out


def _forest(cells: pd.DataFrame, store: RunStore, folder: Path, save: Callable[..., Path],
            experiment: str) -> tuple[str, Path, str, list[str]] | None:
    """Forest plot of one outlier's attribution: 50 % and 90 % intervals per player and method, and the truth."""
    import matplotlib.pyplot as plt

    sizes = sorted(cells["param.benchmark.num_rows"].unique(), key=_as_number)
    size = sizes[len(sizes) // 2]
    chosen = cells[cells["param.benchmark.num_rows"] == size]
    seed = sorted(chosen["param.seed"].unique(), key=_as_number)[0]
    chosen = chosen[chosen["param.seed"] == seed]
    tables = []
    for run_id, method in sorted(zip(chosen["run_id"], chosen["param.method"]), key=lambda item: _method_key(item[1])):
        table = store.artifact_table(run_id, "contributions.csv")
        if table is not None:
            tables.append((run_id, method, table[table["case"] == table["case"].min()]))
    if not tables:
        return None
    nodes = tables[0][2].sort_values("truth")["node"].tolist()
    figure_, axis = plt.subplots(figsize=(5.5, 0.28 * len(nodes) + 1.2))
    y = np.arange(len(nodes))
    for m, (_, method, table) in enumerate(tables):
        table = table.set_index("node").reindex(nodes)
        offset = 0.18 * (m - (len(tables) - 1) / 2)
        axis.hlines(y + offset, table["low_90"], table["high_90"], color=f"C{m}", lw=1.2)
        axis.hlines(y + offset, table["low_50"], table["high_50"], color=f"C{m}", lw=3.5, label=method)
        axis.plot(table["score"], y + offset, "|", color="black", ms=6)
    truth = tables[0][2].set_index("node").reindex(nodes)["truth"]
    axis.plot(truth, y, "x", color="red", label="true contribution")
    axis.set_yticks(y, nodes)
    axis.set(xlabel="contribution (nats)", title=f"target {tables[0][2]['target'].iloc[0]}, {size} rows, seed {seed}")
    axis.legend(fontsize=7, loc="lower right")
    name = _slug(experiment)
    return (f"{name}_forest", save(figure_, folder / f"{name}_forest"),
            "One attribution (the first outlier of one seed): each player's 50\\,\\% (thick) and 90\\,\\% (thin) "
            "interval per method, the point estimate (bar) and the true contribution (attribution at the true "
            f"parameters; cross). Experiment \\texttt{{{escape(experiment)}}}.", [t[0] for t in tables])


# --------------------------------------------------------------------------------------------------- accuracy

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


# ------------------------------------------------------------------------------------------------ performance

def performance_outputs(runs: ExperimentRuns, folder: Path, save: Callable[..., Path]
                        ) -> tuple[tuple[str, Table] | None, list[tuple[str, Path, str, list[str]]]]:
    """Seconds vs ancestors per tool, from benchmark runs (``bayes-rca paper bench``)."""
    import matplotlib.pyplot as plt

    bench = runs.bench.copy()
    bench["ancestors"] = _metric(bench, "num_ancestors")
    tools = sorted({c.removeprefix("metric.").rsplit(".", 1)[0] for c in bench.columns
                    if c.startswith("metric.") and c.endswith(".attribute_s")})
    group = Group("")
    for _, run in bench.sort_values("ancestors").iterrows():
        cells = [str(int(run["ancestors"])), escape(run.get("param.nodes", "")), escape(run.get("param.rows", ""))]
        for tool in tools:
            cells += [number(run.get(f"metric.{tool}.fit_s"), 2), number(run.get(f"metric.{tool}.attribute_s"), 2)]
        group.rows.append(Row(cells, [run["run_id"]]))
    header = ["ancestors", "nodes", "rows"]
    for tool in tools:
        header += [f"{escape(tool)} fit s", f"{escape(tool)} attr.\\ s"]
    table = (f"{runs.name}_seconds",
             Table(header, [group], "Fit and attribution seconds of one outlier against the number of the target's "
                   f"ancestors (\\texttt{{experiments/bench/bench\\_attribution.py}}, one run each), experiment "
                   f"\\texttt{{{escape(runs.name)}}}.", f"tab:{_slug(runs.name)}_seconds",
                   align="rrr" + "rr" * len(tools), source=f"experiment {runs.name}"))
    figure_, axis = plt.subplots(figsize=(5.5, 3.6))
    for t, tool in enumerate(tools):
        ordered = bench.sort_values("ancestors")
        for metric, marker in (("fit_s", "o"), ("attribute_s", "s")):
            axis.plot(ordered["ancestors"], _metric(ordered, f"{tool}.{metric}"), _line_style(t), marker=marker,
                      color=f"C{t}", label=f"{tool}: {'fit' if metric == 'fit_s' else 'attribution'}")
    axis.set(yscale="log", xlabel="ancestors of the target", ylabel="seconds")
    axis.legend(fontsize=6)
    name = _slug(runs.name)
    figures = [(f"{name}_runtime", save(figure_, folder / f"{name}_runtime"),
                "Runtime scaling: fit and attribution seconds against the number of ancestors of the target, per "
                f"tool, experiment \\texttt{{{escape(runs.name)}}}.", bench["run_id"].tolist())]
    return table, figures


# ------------------------------------------------------------------------------------------------------ build

def _saver(report: BuildReport) -> Callable[..., Path]:
    import matplotlib.pyplot as plt

    def save(figure_, stem: Path) -> Path:
        from matplotlib.ticker import NullFormatter, ScalarFormatter

        for axis in figure_.axes:  # plain numbers on log axes (0.2, 0.5, 1), not 2 x 10^-1
            for which in (axis.xaxis, axis.yaxis):
                if which.get_scale() == "log":
                    which.set_major_formatter(ScalarFormatter())
                    which.set_minor_formatter(NullFormatter())
        report.widths[stem.name] = min(1.0, figure_.get_size_inches()[0] / 9.0)
        figure_.tight_layout()
        for suffix in (".pdf", ".png"):
            figure_.savefig(stem.with_suffix(suffix), dpi=150)
            report.figures.append(stem.with_suffix(suffix))
        plt.close(figure_)
        return stem.with_suffix(".pdf")

    return save


def _kinds(runs: ExperimentRuns) -> list[str]:
    """``performance`` for benchmark runs; ``calibration`` where cells logged coverage against true contributions;
    ``accuracy`` unless every method of the experiment did (a pure calibration study)."""
    if not runs.bench.empty:
        return ["performance"]
    cells = runs.cells
    calibrated = cells.loc[_metric(cells, "player_coverage_90").notna(), "param.method"].unique()
    kinds = ["calibration"] if len(calibrated) else []
    if set(cells["param.method"]) - set(calibrated):
        kinds.append("accuracy")
    return kinds


SECTION_TITLES = {"calibration": "Calibration of the intervals", "accuracy": "Accuracy",
                  "performance": "Performance"}
KEPT_NOTE = (r"\emph{Kept from an earlier build: this experiment's runs are not in the store the paper was built "
             r"from this time; the ids of the runs behind its numbers are in the table and figure sources.}")


def _main_tex(sections: dict[str, list[str]], skipped: list[str], uri: str) -> str:
    lines = [r"\documentclass[10pt]{article}", r"\usepackage[margin=2cm]{geometry}", r"\usepackage{booktabs}",
             r"\usepackage{graphicx}", r"\usepackage{amssymb}", r"\usepackage{adjustbox}",
             r"\title{bayes\_rca: calibration, accuracy and performance}",
             r"\author{generated by \texttt{bayes-rca paper build}}", r"\date{}", r"\begin{document}", r"\maketitle",
             "Every number in the tables below is read from a logged MLflow run (store "
             rf"\texttt{{{escape(uri)}}}); the run ids are in a comment beside each row of the table sources "
             r"(\texttt{tables/*.tex}), and the configs that produced them are listed in \texttt{README.md}."]
    for kind in ("calibration", "accuracy", "performance"):
        if sections.get(kind):
            lines += ["", rf"\section{{{SECTION_TITLES[kind]}}}", *sections[kind], r"\clearpage"]
    if skipped:
        lines += ["", r"\section*{Not built}", r"\begin{itemize}"]
        lines += [rf"\item {escape(message)}" for message in skipped]
        lines.append(r"\end{itemize}")
    lines.append(r"\end{document}")
    return "\n".join(lines) + "\n"


def _config_for(experiment: str) -> str:
    """The config (under configs/) whose sweep logs to ``experiment``, for messages; else a generic hint."""
    import yaml

    for path in sorted(Path("configs").glob("**/*.yaml")):
        try:
            raw = yaml.safe_load(path.read_text()) or {}
        except (OSError, yaml.YAMLError):
            continue
        if isinstance(raw, dict) and (raw.get("tracking") or {}).get("experiment", raw.get("name")) == experiment:
            return f"bayes-rca experiment run {path}"
    if experiment == "paper_performance":
        return "bayes-rca paper bench"
    return f"the config whose tracking.experiment is {experiment}"


def build_pdf(out: Path) -> tuple[Path | None, str]:
    """Build ``out/main.pdf`` with latexmk (or pdflatex twice) if found; else say how to install a toolchain."""
    if shutil.which("latexmk"):
        command = ["latexmk", "-pdf", "-interaction=nonstopmode", "-halt-on-error", "main.tex"]
        runs = [command]
    elif shutil.which("pdflatex"):
        runs = [["pdflatex", "-interaction=nonstopmode", "-halt-on-error", "main.tex"]] * 2
    else:
        return None, (f"no LaTeX toolchain found (latexmk or pdflatex): the sources are written to {out}/; to build "
                      f"the PDF install one, e.g. `{LATEX_INSTALL}` (Debian/Ubuntu, as root), then run "
                      "`bayes-rca paper build` (or `make paper`) again")
    for command in runs:
        done = subprocess.run(command, cwd=out, capture_output=True, text=True, timeout=600)
        if done.returncode != 0:
            tail = "\n".join((done.stdout or "").splitlines()[-15:])
            return None, f"{command[0]} failed (exit {done.returncode}); see {out}/main.log\n{tail}"
    if shutil.which("latexmk"):
        subprocess.run(["latexmk", "-c", "main.tex"], cwd=out, capture_output=True, timeout=120)
    return out / "main.pdf", f"built {out / 'main.pdf'}"


def _add_summary(calibrated: list[ExperimentRuns], store: RunStore, result: BuildReport,
                 sections: dict[str, list[str]], tables_dir: Path) -> None:
    """Put the table of every calibration study and the 90 % coverage paragraph first in the calibration section."""
    from bayes_rca.paper.summary import calibration_summary_table, coverage_statement

    table = calibration_summary_table(calibrated, store) if calibrated else None
    if table is None:
        return
    path = tables_dir / "calibration_summary.tex"
    path.write_text(table.render())
    result.tables.append(path)
    statement = coverage_statement(result.flags, [runs.name for runs in calibrated])
    sections["calibration"] = [r"\subsection{All calibration studies}", statement,
                               rf"\input{{tables/{path.name}}}", r"\clearpage", *sections.get("calibration", [])]


def build_paper(experiments: list[str] | None = None, out: str | Path = "paper", tracking_uri: str | None = None,
                pdf: bool = True, report: Callable[[str], None] = print) -> BuildReport:
    """Write the tables, figures and ``main.tex`` of ``experiments`` (default :data:`DEFAULT_EXPERIMENTS`) into
    ``out``, then build the PDF when ``pdf`` and a LaTeX toolchain is found."""
    import matplotlib

    matplotlib.use("Agg")
    out = Path(out)
    tables_dir, figures_dir = out / "tables", out / "figures"
    tables_dir.mkdir(parents=True, exist_ok=True)
    figures_dir.mkdir(parents=True, exist_ok=True)
    result = BuildReport(out)
    save = _saver(result)
    store = RunStore(tracking_uri)
    sections: dict[str, list[str]] = {}
    calibrated: list[ExperimentRuns] = []
    earlier = earlier_sections(out / "main.tex", SECTION_TITLES)

    def add_table(kind: str, stem: str, table: Table) -> None:
        path = tables_dir / f"{_slug(stem)}.tex"
        path.write_text(table.render())
        result.tables.append(path)
        sections.setdefault(kind, []).append(rf"\input{{tables/{path.name}}}")

    def add_figures(kind: str, items: list[tuple[str, Path, str, list[str]]]) -> None:
        for stem, (pdf_path, caption, ids) in ((item[0], item[1:]) for item in items):
            snippet = figures_dir / f"{stem}.tex"
            width = rf"{result.widths.get(Path(pdf_path).stem, 1.0):.2f}\linewidth"
            snippet.write_text(figure(f"figures/{Path(pdf_path).name}", caption, f"fig:{stem}", ids, width))
            sections.setdefault(kind, []).append(rf"\input{{figures/{snippet.name}}}")

    try:
        for name in experiments or list(DEFAULT_EXPERIMENTS):
            runs = store.experiment(name)
            if runs.empty and escape(name) in earlier:
                for kind, lines in earlier[escape(name)]:
                    block = sections.setdefault(kind, [])
                    block += [r"\clearpage"] if block else []
                    block += [rf"\subsection{{Experiment \texttt{{{escape(name)}}}}}", KEPT_NOTE, *lines]
                result.kept.append(name)
                report(f"kept experiment {name} from the earlier build in {out}: no finished runs in {store.uri}")
                continue
            if runs.empty:
                message = f"experiment {name}: no finished runs in {store.uri}; produce them with `{_config_for(name)}`"
                result.skipped.append(message)
                report(f"skipped {message}")
                continue
            kinds = _kinds(runs)
            for kind in kinds:  # each experiment on its own pages: its floats stay under its heading
                lines = sections.setdefault(kind, [])
                lines += [r"\clearpage"] if lines else []
                lines.append(rf"\subsection{{Experiment \texttt{{{escape(name)}}}}}")
            if "calibration" in kinds:
                kind = "calibration"
                if kinds == ["calibration"]:  # a calibration study (every method has intervals)
                    calibrated.append(runs)
                for stem, table in calibration_tables(runs, result.flags):
                    add_table(kind, stem, table)
                add_figures(kind, calibration_figures(runs, store, figures_dir, save, report))
            if "accuracy" in kinds:
                kind = "accuracy"
                for stem, table in accuracy_tables(runs):
                    add_table(kind, stem, table)
                runtime = runtime_table(runs)
                if runtime:
                    add_table(kind, *runtime)
                figures = accuracy_figures(runs, figures_dir, save)
                if not figures:
                    report(f"experiment {name}: no NDCG or top-k figure (no NDCG and no swept setting)")
                add_figures(kind, figures)
            if "performance" in kinds:
                kind = "performance"
                table, figures = performance_outputs(runs, figures_dir, save)
                if table:
                    add_table(kind, *table)
                add_figures(kind, figures)
            report(f"experiment {name} ({', '.join(kinds)}): {len(runs.cells) or len(runs.bench)} runs")
        _add_summary(calibrated, store, result, sections, tables_dir)
    finally:
        store.close()
    (out / "main.tex").write_text(_main_tex(sections, result.skipped, store.uri))
    report(f"wrote {len(result.tables)} tables, {len(result.figures)} figure files and {out / 'main.tex'}")
    for flag in result.flags:
        report(f"flag: {flag}")
    if pdf:
        result.pdf, result.pdf_message = build_pdf(out)
        report(result.pdf_message)
    return result
