"""Printing, writing and logging a distribution-change attribution (``bayes-rca change``)."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from rich.console import Console

from bayes_rca.app.report import frame_table, prepare_output
from bayes_rca.change.results import DistributionChangeResult
from bayes_rca.model.scm import BayesianSCM

CHANGE_FILES = ("change_contributions.csv", "change_total.csv", "mechanisms_before.csv", "mechanisms_after.csv",
                "change.png", "change.nc", "change.json")
"""Every file :func:`write_change` writes; only these are cleared and logged."""

MECHANISM_COLUMNS = ["family", "method", "rows", "parameters", "converged"]


def prepare_change_output(folder: str | Path) -> Path:
    """Create ``folder``, check that it can be written, and remove the :data:`CHANGE_FILES` an earlier run left
    (:func:`bayes_rca.app.report.prepare_output`)."""
    return prepare_output(folder, CHANGE_FILES)


def _mechanisms(model: BayesianSCM) -> pd.DataFrame:
    report = model.fit_report_
    return report[[column for column in MECHANISM_COLUMNS if column in report.columns]]


def _number(value: Any) -> Any:
    """A JSON-safe scalar: numpy numbers as Python ones, NaN and infinities as None."""
    if isinstance(value, (np.floating, float)):
        return None if not math.isfinite(float(value)) else float(value)
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.bool_):
        return bool(value)
    return value


def change_document(result: DistributionChangeResult, delta: float | None, alpha: float,
                    extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """The result as a JSON-ready dict: settings, the total change, per-mechanism summary and the named ones."""
    summary = result.summary(delta=delta)
    total = result.total_summary()
    rows = [{"node": str(node), **{column: _number(value) for column, value in row.items()}}
            for node, row in summary.iterrows()]
    document = {
        "target": str(result.target), "functional": result.functional,
        "delta": _number(result.threshold(delta)),
        "alpha": alpha,
        "changed": ([str(node) for node in result.changed(delta, alpha)] if result.threshold(delta) is not None
                    else None),
        "total": {key: _number(value) for key, value in total.items()},
        "contributions": rows,
        "settings": {key: _number(value) if not isinstance(value, (dict, list)) else value
                     for key, value in result.settings.items()},
        **(extra or {}),
    }
    if result.total_standard_error is not None:
        document["total"]["mcse"] = _number(np.sqrt(np.mean(result.total_standard_error**2)))
    return document


def print_change(console: Console, result: DistributionChangeResult, old_model: BayesianSCM,
                 new_model: BayesianSCM, delta: float | None, alpha: float) -> None:
    """Print the mechanisms of both periods, the total change and the contributions, and the named mechanisms."""
    console.print(frame_table(_mechanisms(old_model), "Mechanisms, before"))
    console.print(frame_table(_mechanisms(new_model), "Mechanisms, after"))
    total = result.total_summary().to_frame().T.rename_axis("change")
    console.print(frame_table(total, f"Change of the {result.functional} of {result.target!r} (after - before)"))
    console.print(frame_table(result.summary(delta=delta), f"Contributions of the mechanisms to the change "
                                                           f"({result.settings.get('estimator')})"))
    threshold = result.threshold(delta)
    named = result.changed(delta, alpha) if threshold is not None else []
    rule = f"P(|phi| > {threshold:.3g}) > {1 - alpha:g}" if threshold is not None else "no threshold"
    console.print(f"changed ({rule}): {', '.join(map(str, named)) if named else 'none'}", markup=False,
                  soft_wrap=True)


def write_change(result: DistributionChangeResult, old_model: BayesianSCM, new_model: BayesianSCM,
                 folder: str | Path, document: dict[str, Any]) -> Path:
    """Write the summary and total (CSV), both fit reports (CSV), forest plot (PNG), posterior (netCDF) and
    ``document`` (JSON) to ``folder`` (the :data:`CHANGE_FILES` left there by an earlier run are removed first)."""
    folder = prepare_change_output(folder)
    delta = document.get("delta")
    result.summary(delta=delta).to_csv(folder / "change_contributions.csv")
    result.total_summary().to_frame().T.to_csv(folder / "change_total.csv", index=False)
    old_model.fit_report_.to_csv(folder / "mechanisms_before.csv")
    new_model.fit_report_.to_csv(folder / "mechanisms_after.csv")
    result.plot(path=folder / "change.png")
    result.to_inference_data().to_netcdf(str(folder / "change.nc"))
    (folder / "change.json").write_text(json.dumps(document, indent=2))
    return folder


def log_change(result: DistributionChangeResult, old_model: BayesianSCM, new_model: BayesianSCM,
               artifacts_dir: str | Path, experiment: str, params: dict[str, Any] | None = None,
               metrics: dict[str, float] | None = None, tracking_uri: str | None = None) -> str:
    """Log one distribution-change attribution as an MLflow run (settings, mechanism families of both periods,
    total change, top contribution, the :data:`CHANGE_FILES`) and return its run id."""
    from bayes_rca.app.tracking import default_tracking_uri, experiment_id, log_run, mlflow_key, tracking_client

    tracking_uri = tracking_uri or default_tracking_uri()
    client = tracking_client(tracking_uri)
    summary = result.summary()
    values = {**result.settings, "target": str(result.target), "functional": result.functional,
              "num_draws": old_model.num_draws, **(params or {}),
              **{mlflow_key(f"mechanism_before.{node}"): family
                 for node, family in old_model.fit_report_["family"].items()},
              **{mlflow_key(f"mechanism_after.{node}"): family
                 for node, family in new_model.fit_report_["family"].items()}}
    numbers = {"total_change_mean": float(result.total.mean()), "top_contribution_mean": float(summary["mean"].iloc[0]),
               "num_changed": float(len(result.changed())) if result.default_delta is not None else float("nan"),
               "max_mcse": float(result.standard_errors.max()), **(metrics or {})}
    numbers = {key: value for key, value in numbers.items() if math.isfinite(value)}
    return log_run(client, experiment_id(client, experiment, tracking_uri), {"top_change": str(summary.index[0])},
                   values, numbers, artifacts_dir, CHANGE_FILES)
