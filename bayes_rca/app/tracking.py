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

from bayes_rca.attribution.results import AttributionResult
from bayes_rca.errors import BayesRCAError
from bayes_rca.model.scm import BayesianSCM


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


def tracking_client(tracking_uri: str) -> Any:
    """An ``MlflowClient`` of the store ``tracking_uri``, opened now: a store MLflow cannot open (a file store this
    MLflow refuses, a folder that does not exist) is a :class:`BayesRCAError` naming it, before anything runs."""
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    try:
        client = MlflowClient(tracking_uri)
        client.search_experiments(max_results=1)
    except MlflowException as error:
        reason = " ".join(str(error.message).split()).split(". ")[0]
        raise BayesRCAError(f"cannot use the MLflow store {tracking_uri!r}: {reason}; a store is e.g. "
                            "sqlite:///path/to/mlflow.db or a tracking server's http://host:port") from None
    return client


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


def experiment_id(client: Any, name: str, tracking_uri: str) -> str:
    """The id of the experiment ``name`` in ``client``'s store, created (artifacts at :func:`artifact_location`)
    if it does not exist."""
    experiment = client.get_experiment_by_name(name)
    if experiment is not None:
        return experiment.experiment_id
    return client.create_experiment(name, artifact_location=artifact_location(tracking_uri))


def _batches(items: list, size: int = 100) -> list[list]:
    return [items[start:start + size] for start in range(0, len(items), size)]


def log_attribution(result: AttributionResult, model: BayesianSCM, artifacts_dir: str | Path, experiment: str,
                    params: dict[str, Any] | None = None, metrics: dict[str, float] | None = None,
                    tracking_uri: str | None = None, project_dir: str | Path | None = None) -> str:
    """Log one attribution as an MLflow run and return its run id.

    Logs the settings and ``params``, per-node mechanism families, ``metrics`` plus summary metrics (IT score,
    top contribution), and the files of :data:`bayes_rca.app.report.OUTPUT_FILES` in ``artifacts_dir`` (summary
    tables, plot, posterior netCDF; other files there are not logged). The store is ``tracking_uri``, else
    :func:`default_tracking_uri`; MLflow's global tracking URI (and ``MLFLOW_TRACKING_URI``) is left as it was.
    """
    from bayes_rca.app.report import OUTPUT_FILES

    tracking_uri = tracking_uri or default_tracking_uri(project_dir)
    client = tracking_client(tracking_uri)
    summary = result.summary()
    first = summary.loc[result.outliers[0]]
    report: pd.DataFrame = model.fit_report_
    values = {**result.settings, "target": str(result.target), "inference": model.inference,
              "num_draws": model.num_draws, "num_chains": model.num_chains, **(params or {}),
              **{mlflow_key(f"mechanism.{node}"): family for node, family in report["family"].items()}}
    numbers = {"it_score_mean": float(result.scores.mean()), "top_contribution_mean": float(first["mean"].iloc[0]),
               "top_cause_probability": float(first["p_top_cause"].iloc[0]),
               "max_mcse": float(result.standard_errors.max()), **(metrics or {})}
    return log_run(client, experiment_id(client, experiment, tracking_uri), {"top_cause": str(first.index[0])},
                   values, numbers, artifacts_dir, OUTPUT_FILES)


def log_run(client, experiment: str, tags: dict[str, str], params: dict, metrics: dict[str, float],
            artifacts_dir: str | Path, files: tuple[str, ...]) -> str:
    """One finished MLflow run in experiment id ``experiment``: params, metrics and the ``files`` found in
    ``artifacts_dir``; marked FAILED (and the error re-raised) if logging fails. Returns the run id."""
    import time

    from mlflow.entities import Metric, Param

    now = int(time.time() * 1000)
    run_id = client.create_run(experiment, tags=tags).info.run_id
    try:
        for batch in _batches([Param(key, str(value)[:6000]) for key, value in params.items()]):
            client.log_batch(run_id, params=batch)
        client.log_batch(run_id, metrics=[Metric(key, value, now, 0) for key, value in metrics.items()])
        for name in files:
            if (Path(artifacts_dir) / name).is_file():
                client.log_artifact(run_id, str(Path(artifacts_dir) / name))
    except BaseException:
        client.set_terminated(run_id, status="FAILED")
        raise
    client.set_terminated(run_id, status="FINISHED")
    return run_id
