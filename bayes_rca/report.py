"""Printing results as rich tables and writing them to a folder."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from rich.console import Console
from rich.table import Table

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
