"""The full calibration table: nominal against empirical coverage of every calibration study, side by side.

One block per calibration experiment (linear-Gaussian, Student-t and nonlinear systems; bayes_rca alone and
against DoWhy's bootstrap), one row per method and training size: coverage of the central 50/80/90/95 % intervals
over all players (the per-outlier metrics the experiment tables average too), the mean width of the 90 % intervals
and the truth's Monte Carlo standard error, read from the per-player artifacts (``contributions.csv``, column
``truth_se``; runs without that column, or with every value 0, have an exact truth). A 90 % coverage outside
85--95 % is marked. The run ids of every row are in a comment above it. :func:`coverage_statement` words the
flagged cells for the paper.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import pandas as pd

from bayes_rca.paper.cells import (
    LEVELS,
    TARGET_LEVEL,
    TARGET_RANGE,
    _as_number,
    _count,
    _metric,
    _method_key,
    _stats,
)
from bayes_rca.paper.earlier import EarlierSummary
from bayes_rca.paper.latex import Group, Row, Table, escape, mean_se, number
from bayes_rca.paper.runs import ExperimentRuns, RunStore

FAMILY_WORDS = {"icml2022": "linear-Gaussian", "student_t": "linear, Student-t(3) noise",
                "nonlinear": "nonlinear mechanisms, Gaussian noise"}
EXACT = "exact"


def truth_error_summary(store: RunStore, run_ids: list[str]) -> tuple[float, float, float] | None:
    """Mean and largest standard error of the true contributions, and the largest ratio of that error to the
    width of the method's 90 % interval (positive widths only), over every player in the ``contributions.csv``
    of ``run_ids``; None when no run logged ``truth_se`` (an exact truth)."""
    frames = []
    for run_id in run_ids:
        table = store.artifact_table(run_id, "contributions.csv")
        if table is not None and "truth_se" in table:
            frames.append(table)
    if not frames:
        return None
    data = pd.concat(frames)
    width = data["high_90"] - data["low_90"]
    ratio = (data["truth_se"] / width)[width > 0]
    return (float(data["truth_se"].mean()), float(data["truth_se"].max()),
            float(ratio.max()) if len(ratio) else float("nan"))


def _families(cells: pd.DataFrame) -> list[str]:
    """The benchmark families of the cells (sorted)."""
    return sorted(cells["param.benchmark.family"].dropna().unique()) if "param.benchmark.family" in cells else []


def _label(runs: ExperimentRuns, cells: pd.DataFrame) -> str:
    """``linear-Gaussian, 10-node graphs: experiment ...`` from the cells' family and node count."""
    families = _families(cells)
    words = ", ".join(FAMILY_WORDS.get(family, family) for family in families) or "synthetic"
    nodes = sorted({str(v) for v in cells.get("param.benchmark.num_nodes", pd.Series(dtype=str)).dropna()}
                   - {"None", ""})
    size = f", {'/'.join(nodes)}-node graphs" if nodes else ""
    return f"{escape(words + size)}: experiment \\texttt{{{escape(runs.name)}}}"


def _coverage_cell(mean: float, se: float, level: int) -> str:
    text = mean_se(mean, se)
    low, high = TARGET_RANGE
    if level == TARGET_LEVEL and math.isfinite(mean) and not low <= mean <= high:
        return rf"\textbf{{{text}}}$^\dagger$"
    return text


KEPT_LABEL = " (kept from an earlier build)"


def calibration_summary_table(experiments: list[ExperimentRuns], store: RunStore, kept: Sequence[str] = (),
                              earlier: EarlierSummary | None = None, order: Sequence[str] = ()) -> Table | None:
    """The full calibration table of ``experiments`` (those whose cells logged ``player_coverage_90``) and of the
    studies ``kept`` (names of studies without runs now: the rows ``earlier`` holds for them), in the ``order``
    of the experiment names (others last)."""
    groups: list[tuple[str, Group]] = []
    earlier = earlier or EarlierSummary()
    for name in kept:
        if escape(name) in earlier.rows:
            groups.append((name, Group(earlier.labels[escape(name)] + KEPT_LABEL,
                                       rendered=earlier.rows[escape(name)])))
    for runs in experiments:
        cells = runs.cells[_metric(runs.cells, "player_coverage_90").notna()] if not runs.cells.empty else runs.cells
        if cells.empty:
            continue
        group = Group(_label(runs, cells))
        for (method, rows), sub in sorted(cells.groupby(["param.method", "param.benchmark.num_rows"]),
                                          key=lambda item: (_method_key(item[0][0]), _as_number(item[0][1]))):
            row = [escape(method), str(rows), str(_count(sub, "calib_players"))]
            for level in LEVELS:
                row.append(_coverage_cell(*_stats(_metric(sub, f"player_coverage_{level}"))[:2], level))
            row.append(mean_se(*_stats(_metric(sub, "player_width_90"))[:2]))
            errors = truth_error_summary(store, sub["run_id"].tolist())
            if errors is None or errors[1] == 0:  # no truth_se logged, or every one 0: an exact truth
                row += [EXACT, EXACT, EXACT]
            else:
                row += [number(errors[0], 4), number(errors[1], 4), number(errors[2], 3)]
            group.rows.append(Row(row, sub["run_id"].tolist()))
        groups.append((runs.name, group))
    if not groups:
        return None
    header = ["method", "rows", "contributions", *[f"{level}\\,\\%" for level in LEVELS], "width 90\\,\\%",
              "truth SE", "max truth SE", "max SE / width"]
    caption = ("Calibration of the central intervals, every study side by side: nominal level (columns 50--95\\,\\%) "
               "against the share of true contributions of the players (the target and its ancestors) inside each "
               "method's central interval. The truth is the attribution at the true parameters: exact for "
               "linear-Gaussian systems, a very large Monte Carlo for Student-t noise (65536 mixing samples of the "
               "scale-mixture game, every coalition enumerated), whose standard error is given.")
    if any("nonlinear" in _families(runs.cells) for runs in experiments):
        caption += (" For nonlinear mechanisms it is a very large importance-sampled Monte Carlo of the game at the "
                    "true functions and noise laws (every coalition enumerated; "
                    "\\texttt{bayes\\_rca.harness.truth\\_nonlinear}), whose standard error is given too.")
    notes = ("Coverage: mean over outliers, $\\pm$ standard error over seeds; contributions: how many were scored. "
             "Width: mean width of the 90\\,\\% intervals (nats). Truth SE: mean and largest Monte Carlo standard "
             "error of the true contributions (nats) over every scored contribution; max SE / width: the largest "
             "ratio of that error to the method's 90\\,\\% interval width (a ratio of 0.05 lowers the coverage of a "
             "calibrated Gaussian 90\\,\\% interval to 89.5\\,\\%). Exact: analytic game at the true parameters "
             "(every coalition up to 24 players). DoWhy: percentile intervals of 10 bootstrap refits. "
             "$^\\dagger$ 90\\,\\% coverage outside 85--95\\,\\%.")
    parents = {runs.name: " ".join(runs.parents()) for runs in experiments if not runs.cells.empty}
    parents |= {name: earlier.parents[escape(name)] + ", kept" for name, group in groups
                if group.rendered and escape(name) in earlier.parents}
    position = {name: index for index, name in enumerate(order)}
    groups.sort(key=lambda item: position.get(item[0], len(position)))
    sources = " ".join(f"{name} ({parents[name]})" for name, _ in groups if name in parents)
    return Table(header, [group for _, group in groups], caption, "tab:calibration_summary", notes=notes,
                 source=f"experiments {sources}")



def coverage_statement(flags: list[str], experiments: list[str], method: str = "bayes_rca",
                       kept_items: list[str] = ()) -> str:
    """A LaTeX paragraph saying where ``method``'s 90 % coverage falls outside 85--95 % in ``experiments`` (from
    the build's flags, ``<experiment>: <method>, ...``) and in the ``kept_items`` (``\\item`` lines an earlier
    build wrote for studies kept from it), or that it does nowhere."""
    low, high = TARGET_RANGE
    own = [flag for flag in flags if any(flag.startswith(f"{name}: {method},") for name in experiments)]
    kept_items = [line for line in kept_items if f": {escape(method)}," in line]
    if not own and not kept_items:
        return (f"\\paragraph{{Coverage at the 90\\,\\% level.}} {escape(method)}'s 90\\,\\% intervals cover between "
                f"{100 * low:.0f} and {100 * high:.0f}\\,\\% of the true contributions in every cell of every "
                "calibration study below.")
    items = "\n".join([*kept_items, *(rf"\item {escape(flag)}" for flag in own)])
    return (f"\\paragraph{{Coverage at the 90\\,\\% level.}} {escape(method)}'s 90\\,\\% intervals cover less than "
            f"{100 * low:.0f}\\,\\% or more than {100 * high:.0f}\\,\\% of the true contributions in "
            f"{len(own) + len(kept_items)} "
            f"cell(s) (marked $^\\dagger$ in the tables):\n\\begin{{itemize}}\n{items}\n\\end{{itemize}}")

