"""Logging attribution runs to MLflow: a local SQLite store in the project folder unless told otherwise.

A new experiment keeps its artifacts next to its store: ``mlartifacts/`` beside a SQLite file, inside a file
store, wherever a tracking server or another database's default puts them.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import pandas as pd

from bayes_rca.errors import BayesRCAError
from bayes_rca.results import AttributionResult
from bayes_rca.scm import BayesianSCM


def default_tracking_uri(project_dir: str | Path | None = None) -> str:
    """``MLFLOW_TRACKING_URI`` if set, else ``sqlite:///<project>/mlflow.db`` (no server needed)."""
    if os.environ.get("MLFLOW_TRACKING_URI"):
        return os.environ["MLFLOW_TRACKING_URI"]
    return f"sqlite:///{Path(project_dir or Path.cwd()).resolve() / 'mlflow.db'}"


def artifact_location(tracking_uri: str) -> str | None:
    """Where a new experiment in the store ``tracking_uri`` keeps its artifacts: ``mlartifacts`` in the folder of a
    SQLite store's file; None (the store's own default) for a file store, a tracking server or another database."""
    if tracking_uri.startswith("sqlite:///"):
        database = Path(tracking_uri.removeprefix("sqlite:///").partition("?")[0])
        return (database.resolve().parent / "mlartifacts").as_uri()
    return None


def get_run(client: Any, run_id: str, tracking_uri: str) -> Any:
    """``client.get_run(run_id)``; a run id the store does not know is a :class:`BayesRCAError` naming it."""
    from mlflow.exceptions import MlflowException

    try:
        return client.get_run(run_id)
    except MlflowException as error:
        if error.error_code != "RESOURCE_DOES_NOT_EXIST":
            raise
        raise BayesRCAError(f"no run with id {run_id!r} in the MLflow store {tracking_uri} (give --tracking-uri for "
                            "another store)") from None


def mlflow_key(name: str) -> str:
    """``name`` with every character MLflow rejects in a param or metric key (e.g. ``@``) replaced by ``_``."""
    return re.sub(r"[^\w\-. /:]", "_", name)


def _experiment_id(mlflow: Any, name: str, tracking_uri: str) -> str:
    experiment = mlflow.get_experiment_by_name(name)
    if experiment is not None:
        return experiment.experiment_id
    return mlflow.create_experiment(name, artifact_location=artifact_location(tracking_uri))


def log_attribution(result: AttributionResult, model: BayesianSCM, artifacts_dir: str | Path, experiment: str,
                    params: dict[str, Any] | None = None, metrics: dict[str, float] | None = None,
                    tracking_uri: str | None = None, project_dir: str | Path | None = None) -> str:
    """Log one attribution as an MLflow run and return its run id.

    Logs the settings and ``params``, per-node mechanism families, ``metrics`` plus summary metrics (IT score,
    top contribution), and the files of :data:`bayes_rca.report.OUTPUT_FILES` in ``artifacts_dir`` (summary
    tables, plot, posterior netCDF; other files there are not logged).
    """
    import mlflow

    from bayes_rca.report import OUTPUT_FILES

    tracking_uri = tracking_uri or default_tracking_uri(project_dir)
    mlflow.set_tracking_uri(tracking_uri)
    summary = result.summary()
    first = summary.loc[result.outliers[0]]
    with mlflow.start_run(experiment_id=_experiment_id(mlflow, experiment, tracking_uri)) as run:
        mlflow.log_params({**result.settings, "target": str(result.target), "inference": model.inference,
                           "num_draws": model.num_draws, "num_chains": model.num_chains, **(params or {})})
        report: pd.DataFrame = model.fit_report_
        mlflow.log_params({mlflow_key(f"mechanism.{node}"): family for node, family in report["family"].items()})
        mlflow.log_metrics({"it_score_mean": float(result.scores.mean()),
                            "top_contribution_mean": float(first["mean"].iloc[0]),
                            "top_cause_probability": float(first["p_top_cause"].iloc[0]),
                            "max_mcse": float(result.standard_errors.max()), **(metrics or {})})
        mlflow.set_tag("top_cause", str(first.index[0]))
        for name in OUTPUT_FILES:
            if (Path(artifacts_dir) / name).is_file():
                mlflow.log_artifact(str(Path(artifacts_dir) / name))
        return run.info.run_id
