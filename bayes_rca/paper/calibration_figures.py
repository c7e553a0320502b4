"""The figures of a calibration experiment: coverage vs nominal level, width vs training size, reliability diagram
of P(top cause), runtime vs training size, and a forest plot of one attribution. Each is ``(file stem, PDF path,
caption, run ids)``."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from bayes_rca.paper.cells import LEVELS, _as_number, _line_style, _method_key, _metric, _slug, _stats
from bayes_rca.paper.latex import escape
from bayes_rca.paper.runs import ExperimentRuns, RunStore

Figure = tuple[str, Path, str, list[str]]


@dataclass
class _Study:
    """What every figure of one calibration experiment draws from: its cells with intervals, their methods and
    training sizes (ordered), and where and how a figure is saved."""

    experiment: str
    cells: pd.DataFrame
    folder: Path
    save: Callable[..., Path]

    def __post_init__(self) -> None:
        self.methods = sorted(self.cells["param.method"].unique(), key=_method_key)
        self.sizes = sorted(self.cells["param.benchmark.num_rows"].unique(), key=_as_number)
        self.name, self.ids = _slug(self.experiment), self.cells["run_id"].tolist()

    def cell(self, method: str, size: object) -> pd.DataFrame:
        return self.cells[(self.cells["param.method"] == method) & (self.cells["param.benchmark.num_rows"] == size)]

    def saved(self, stem: str, figure_, caption: str) -> Figure:
        """Save ``figure_`` as ``<experiment>_<stem>`` and name the experiment at the end of ``caption``."""
        return (f"{self.name}_{stem}", self.save(figure_, self.folder / f"{self.name}_{stem}"),
                f"{caption}\\texttt{{{escape(self.experiment)}}}.", self.ids)


def calibration_figures(runs: ExperimentRuns, store: RunStore, folder: Path,
                        save: Callable[..., Path], report: Callable[[str], None]) -> list[Figure]:
    """Coverage vs nominal, width vs rows, reliability diagram, runtime vs rows, forest plot; as (file stem,
    caption, run ids)."""
    study = _Study(runs.name, runs.cells[_metric(runs.cells, "player_coverage_90").notna()], folder, save)
    out = [_coverage_vs_nominal(study)]
    if len(study.sizes) > 1:
        out.append(_width_vs_rows(study))
    else:
        report(f"skipped the width and runtime vs training size figures of {runs.name}: one training size only")
    reliability = _reliability(study, store)
    if reliability:
        out.append(reliability)
    else:
        report(f"skipped the reliability diagram of {runs.name}: no run has a contributions.csv artifact with "
               "P(top cause)")
    if len(study.sizes) > 1:
        out.append(_runtime_vs_rows(study))
    forest = _forest(study.cells, store, folder, save, runs.name)
    if forest:
        out.append(forest)
    return out


def _coverage_vs_nominal(study: _Study) -> Figure:
    import matplotlib.pyplot as plt

    colours = plt.cm.viridis(np.linspace(0, 0.85, max(len(study.sizes), 1)))
    figure_, axes = plt.subplots(1, 2, figsize=(9, 3.8), sharey=True)
    panels = ((axes[0], "player", "all contributions"), (axes[1], "large", "true contribution > 3 nats"))
    for axis, prefix, title in panels:
        axis.plot([0.4, 1], [0.4, 1], color="grey", lw=0.8)
        for m, method in enumerate(study.methods):
            for s, size in enumerate(study.sizes):
                sub = study.cell(method, size)
                means = [_stats(_metric(sub, f"{prefix}_coverage_{level}"))[0] for level in LEVELS]
                axis.plot([level / 100 for level in LEVELS], means, _line_style(m), marker="o", ms=3,
                          color=colours[s], label=f"{method}, {size} rows")
        axis.set(title=title, xlabel="nominal level", xlim=(0.45, 1.0), ylim=(0.0, 1.02))
    axes[0].set_ylabel("empirical coverage")
    axes[1].legend(fontsize=6, loc="lower right")
    return study.saved("coverage_vs_nominal", figure_,
                       "Empirical coverage of the central intervals against their nominal level, per method (line "
                       "style) and training size (colour); the grey line is perfect calibration. Experiment ")


def _width_vs_rows(study: _Study) -> Figure:
    return _against_rows(study, "width_vs_rows",
                         (("player_width_90", "o", ", all"), ("large_width_90", "s", ", > 3 nats")),
                         "mean width of 90 % intervals (nats)",
                         "Mean width of the 90\\,\\% intervals against the number of training rows, over all "
                         "contributions (circles) and true contributions above 3 nats (squares). Experiment ")


def _against_rows(study: _Study, stem: str, series: tuple[tuple[str, str, str], ...], ylabel: str,
                  caption: str) -> Figure:
    """One line per method and ``(metric, marker, label)`` of ``series``: its mean against the training rows."""
    import matplotlib.pyplot as plt

    figure_, axis = plt.subplots(figsize=(5, 3.6))
    for m, method in enumerate(study.methods):
        for metric, marker, label in series:
            means = [_stats(_metric(study.cell(method, size), metric))[0] for size in study.sizes]
            axis.plot([_as_number(s) for s in study.sizes], means, _line_style(m), marker=marker,
                      label=f"{method}{label}")
    axis.set(xscale="log", yscale="log", xlabel="training rows", ylabel=ylabel)
    axis.legend(fontsize=7)
    return study.saved(stem, figure_, caption)


def _reliability(study: _Study, store: RunStore) -> Figure | None:
    """Reliability diagram of P(top cause), from the per-player artifacts; None if no run has them."""
    import matplotlib.pyplot as plt

    tables: dict[str, list[pd.DataFrame]] = {}
    for run_id, method in zip(study.cells["run_id"], study.cells["param.method"]):
        table = store.artifact_table(run_id, "contributions.csv")
        if table is not None and table["top_probability"].notna().any():
            tables.setdefault(method, []).append(table)
    if not tables:
        return None
    figure_, (axis, counts) = plt.subplots(2, 1, figsize=(5, 5.2), sharex=True,
                                           gridspec_kw={"height_ratios": [3, 1]})
    axis.plot([0, 1], [0, 1], color="grey", lw=0.8)
    edges = np.linspace(0, 1, 11)
    for m, (method, frames) in enumerate(sorted(tables.items(), key=lambda item: _method_key(item[0]))):
        data = pd.concat(frames)
        which = np.clip(np.digitize(data["top_probability"], edges[1:-1]), 0, len(edges) - 2)
        grouped = data.assign(bin=which).groupby("bin")
        brier = _stats(_metric(study.cells[study.cells["param.method"] == method], "top_cause_brier_true"))[0]
        axis.plot(grouped["top_probability"].mean(), grouped["true_top"].mean(), _line_style(m), marker="o",
                  label=f"{method} (Brier {brier:.3f})")
        counts.bar(edges[:-1] + 0.05 + 0.03 * (m - 0.5), grouped.size().reindex(range(10), fill_value=0),
                   width=0.03, label=method)
    axis.set(ylabel="observed frequency of true top cause", xlim=(0, 1), ylim=(0, 1))
    axis.legend(fontsize=7, loc="upper left")
    counts.set(yscale="log", xlabel="P(top cause)", ylabel="players")
    return study.saved("reliability", figure_,
                       "Reliability diagram of P(node has the largest contribution): players binned by their "
                       "predicted probability (ten bins), against how often they have the largest true contribution; "
                       "the lower panel counts the players per bin. Brier scores are those of the table. Experiment ")


def _runtime_vs_rows(study: _Study) -> Figure:
    return _against_rows(study, "runtime_vs_rows",
                         (("fit_seconds", "o", ": fit"), ("attribute_seconds", "s", ": attribution per outlier")),
                         "seconds (one core)",
                         "Fit seconds and attribution seconds per outlier against training rows (one core per cell; "
                         "the machine was shared, so these are upper bounds). Experiment ")


def _forest(cells: pd.DataFrame, store: RunStore, folder: Path, save: Callable[..., Path],
            experiment: str) -> Figure | None:
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
