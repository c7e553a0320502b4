"""Printing results as rich tables and writing them to a folder."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pandas as pd
from rich.console import Console
from rich.table import Table
from rich.text import Text

from bayes_rca.app.check import LEVELS, CheckReport
from bayes_rca.attribution.api import not_an_outlier_notice
from bayes_rca.attribution.results import AttributionResult
from bayes_rca.errors import BayesRCAError
from bayes_rca.model.scm import BayesianSCM


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
    notice = not_an_outlier_notice(result)
    if notice:
        console.print(notice, markup=False, soft_wrap=True)
    console.print(frame_table(result.summary(), f"Contributions to the outlier at {result.target!r} (nats)"))


OUTPUT_FILES = ("contributions.csv", "it_score.csv", "contributions_pooled.csv", "mechanisms.csv", "contributions.png",
                "attribution.nc")  # every file write_attribution writes; only these are cleared and logged


def prepare_output(folder: str | Path, files: tuple[str, ...] | None = None) -> Path:
    """Create ``folder`` if needed, check that files can be written there, and remove the files of
    :data:`OUTPUT_FILES` an earlier run left in it (other files are kept). Call it before fitting.

    Raises
    ------
    BayesRCAError
        ``folder`` is a file, or cannot be created or written to.
    """
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise BayesRCAError(f"output folder {folder} is an existing file, not a folder")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
        for name in OUTPUT_FILES if files is None else files:
            (folder / name).unlink(missing_ok=True)
    except OSError as error:
        raise BayesRCAError(f"cannot write to output folder {folder}: {error.strerror or error}") from None
    return folder


def write_attribution(result: AttributionResult, model: BayesianSCM, folder: str | Path) -> Path:
    """Write summary, IT scores, pooled summary, fit report (CSV), forest plot (PNG), posterior (netCDF).

    The files of :data:`OUTPUT_FILES` an earlier run left in ``folder`` are removed first.
    """
    folder = prepare_output(folder)
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
