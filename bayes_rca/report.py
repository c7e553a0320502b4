"""Printing results as rich tables and writing them to a folder."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from rich.console import Console
from rich.table import Table
from rich.text import Text

from bayes_rca.check import LEVELS, CheckReport
from bayes_rca.results import AttributionResult
from bayes_rca.scm import BayesianSCM


def frame_table(frame: pd.DataFrame, title: str, digits: int = 3) -> Table:
    """A rich table of a data frame, index included, floats rounded to ``digits``."""
    table = Table(title=title, title_justify="left")
    flat = frame.reset_index()
    for column in flat.columns:
        table.add_column(str(column), justify="right" if pd.api.types.is_numeric_dtype(flat[column]) else "left")
    for row in flat.itertuples(index=False):
        table.add_row(*[f"{v:.{digits}f}" if isinstance(v, float) else str(v) for v in row])
    return table


def print_attribution(console: Console, result: AttributionResult, model: BayesianSCM) -> None:
    """Print the mechanisms, the IT scores and the contributions."""
    report = model.fit_report_[["family", "method", "rows", "parameters", "reason"]]
    console.print(frame_table(report, "Mechanisms"))
    console.print(frame_table(result.score_summary(), f"IT outlier score at {result.target!r}"))
    console.print(frame_table(result.summary(), f"Contributions to the outlier at {result.target!r} (nats)"))


def write_attribution(result: AttributionResult, model: BayesianSCM, folder: str | Path) -> Path:
    """Write summary, IT scores, pooled summary, fit report (CSV), forest plot (PNG), posterior (netCDF)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    result.summary().to_csv(folder / "contributions.csv")
    result.score_summary().to_csv(folder / "it_score.csv")
    if len(result.outliers) > 1:
        result.pooled_summary().to_csv(folder / "contributions_pooled.csv")
    model.fit_report_.to_csv(folder / "mechanisms.csv")
    result.plot(path=folder / "contributions.png")
    result.to_inference_data().to_netcdf(str(folder / "attribution.nc"))
    return folder


def print_check(console: Console, report: CheckReport) -> None:
    """Print the findings of a static check, the blame table and the mechanism table."""
    styles = {"error": "bold red", "warning": "yellow", "info": "dim"}
    findings = Table("level", "subject", "message", title="Findings")
    for finding in sorted(report.findings, key=lambda f: LEVELS.index(f.level)):
        findings.add_row(Text(finding.level, style=styles[finding.level]), Text(finding.subject),
                         Text(finding.message))
    if report.findings:
        console.print(findings)
    if len(report.blame):
        blame = Table("target", "can be blamed (ancestors and itself)", "never blamed", title="Blame")
        for row in report.blame.itertuples():
            blame.add_row(Text(str(row.target)), Text(", ".join(map(str, row.blameable))),
                          Text(", ".join(map(str, row.never_blamed))))
        console.print(blame)
    if len(report.mechanisms):
        table = Table("node", "parents", "mechanism", "assigned", "params", "rows needed", "rows usable",
                      title="Mechanisms")
        table.columns[2].no_wrap = True
        for row in report.mechanisms.itertuples(index=False):
            table.add_row(*(Text("-" if pd.isna(value) else str(value)) for value in row))
        console.print(table)
    errors, warnings_ = report.count("error"), report.count("warning")
    console.print(f"check: {errors} error{'s' * (errors != 1)}, {warnings_} warning{'s' * (warnings_ != 1)}",
                  markup=False)
