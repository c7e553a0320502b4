"""The logged runs the paper is built from: finished cell runs of harness sweeps and logged benchmark runs.

Every number of the paper comes from one of these runs; nothing is recomputed. A cell run of the same resolved
config (same ``cell_hash``) logged by several sweeps (a sweep rerun with more seeds is a new parent run) is
counted once, the latest.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from bayes_rca.app.tracking import default_tracking_uri, tracking_client


@dataclass
class ExperimentRuns:
    """The finished runs of one MLflow experiment.

    ``cells``: one row per harness cell run, columns ``run_id``, ``parent_id``, ``start_time``, ``param.<key>``
    (the resolved cell config, flattened) and ``metric.<key>``. ``bench``: one row per benchmark run (tag
    ``role`` = ``bench``), the same columns.
    """

    name: str
    cells: pd.DataFrame = field(default_factory=pd.DataFrame)
    bench: pd.DataFrame = field(default_factory=pd.DataFrame)
    experiment_id: str | None = None

    @property
    def empty(self) -> bool:
        return self.cells.empty and self.bench.empty

    def parents(self) -> list[str]:
        """The sweep (parent) run ids the cells belong to."""
        if self.cells.empty:
            return []
        return sorted(self.cells["parent_id"].dropna().unique())


def _frame(runs: list[Any]) -> pd.DataFrame:
    rows = []
    for run in runs:
        rows.append({"run_id": run.info.run_id, "parent_id": run.data.tags.get("mlflow.parentRunId"),
                     "start_time": run.info.start_time, "cell_hash": run.data.tags.get("cell_hash"),
                     **{f"param.{k}": v for k, v in run.data.params.items()},
                     **{f"metric.{k}": v for k, v in run.data.metrics.items()}})
    return pd.DataFrame(rows)


class RunStore:
    """Read access to an MLflow store (default: ``MLFLOW_TRACKING_URI`` or ``sqlite:///mlflow.db`` here)."""

    def __init__(self, tracking_uri: str | None = None) -> None:
        os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")  # one bar per artifact otherwise
        self.uri = tracking_uri or default_tracking_uri()
        self.client = tracking_client(self.uri)
        self._artifacts = tempfile.TemporaryDirectory(prefix="bayes_rca_paper_")

    def experiment(self, name: str) -> ExperimentRuns:
        """The finished cell and benchmark runs of experiment ``name`` (empty if it does not exist)."""
        experiment = self.client.get_experiment_by_name(name)
        if experiment is None:
            return ExperimentRuns(name)
        ids = [experiment.experiment_id]
        cells = _frame(self.client.search_runs(ids, "tags.role = 'cell' and attributes.status = 'FINISHED'",
                                               max_results=50000))
        if not cells.empty:  # the latest run of each resolved config
            cells = (cells.sort_values("start_time").drop_duplicates("cell_hash", keep="last")
                     .sort_values("start_time").reset_index(drop=True))
        bench = _frame(self.client.search_runs(ids, "tags.role = 'bench' and attributes.status = 'FINISHED'",
                                               max_results=50000))
        return ExperimentRuns(name, cells, bench, experiment.experiment_id)

    def artifact_table(self, run_id: str, name: str) -> pd.DataFrame | None:
        """The CSV artifact ``name`` of run ``run_id``, or None if it has none."""
        folder = Path(self._artifacts.name) / run_id
        path = folder / name
        if not path.exists():
            names = {item.path for item in self.client.list_artifacts(run_id)}
            if name not in names:
                return None
            folder.mkdir(parents=True, exist_ok=True)
            path = Path(self.client.download_artifacts(run_id, name, str(folder)))
        return pd.read_csv(path)

    def close(self) -> None:
        self._artifacts.cleanup()
