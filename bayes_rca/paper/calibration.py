"""The coverage tables of a calibration experiment: coverage of the central 50/80/90/95 % intervals and their
width per method and training size, over all players and over true contributions above 3 nats, with the Brier
score of P(top cause) and the error of the point estimates; a 90 % coverage outside 85--95 % is flagged."""

from __future__ import annotations

import math

from bayes_rca.paper.cells import (
    LEVELS,
    TARGET_LEVEL,
    TARGET_RANGE,
    _as_number,
    _context_label,
    _count,
    _method_key,
    _metric,
    _slug,
    _sorted_groups,
    _stats,
    _varying,
)
from bayes_rca.paper.latex import Group, Row, Table, escape, mean_se
from bayes_rca.paper.runs import ExperimentRuns


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
