"""MLflow bookkeeping of sweeps: a parent run per sweep, a child run per cell, resume by cell hash."""

from __future__ import annotations

import importlib.metadata
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import pandas as pd

from bayes_rca.app.tracking import default_tracking_uri, experiment_id, tracking_client
from bayes_rca.harness.cell import CellResult
from bayes_rca.harness.config import config_hash

PACKAGES = ("bayes_rca", "torch", "pyro-ppl", "numpy", "arviz", "dowhy", "mlflow")


def flatten(mapping: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"a": {"b": 1}}`` -> ``{"a.b": 1}``."""
    flat = {}
    for key, value in mapping.items():
        if isinstance(value, dict) and value:
            flat.update(flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def provenance_tags() -> dict[str, str]:
    """Git commit and package versions of this process."""
    tags = {}
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5,
                                cwd=Path(__file__).resolve().parent)
        if commit.returncode == 0:
            tags["git_commit"] = commit.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        pass
    for package in PACKAGES:
        try:
            tags[f"version.{package}"] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            continue
    return tags


class SweepTracker:
    """Logs one sweep: finds or creates its parent run, skips finished cells, logs each cell as it finishes."""

    def __init__(self, experiment: str, sweep_config: dict[str, Any], tracking_uri: str | None = None) -> None:
        tracking_uri = tracking_uri or default_tracking_uri()  # MLflow's global tracking URI is left alone
        self.client = tracking_client(tracking_uri)
        self.experiment_id = experiment_id(self.client, experiment, tracking_uri)
        self.sweep_hash = config_hash(sweep_config)
        parents = self.client.search_runs([self.experiment_id], f"tags.sweep_hash = '{self.sweep_hash}' and "
                                          "tags.role = 'sweep'", max_results=1)
        if parents:
            self.parent_id = parents[0].info.run_id
            self.client.update_run(self.parent_id, status="RUNNING")
        else:
            run = self.client.create_run(self.experiment_id, run_name=sweep_config.get("name"),
                                         tags={"role": "sweep", "sweep_hash": self.sweep_hash, **provenance_tags()})
            self.parent_id = run.info.run_id
            self._log_yaml(self.parent_id, sweep_config, "sweep_config.yaml")
        self._fail_interrupted()

    def _children(self, extra: str = "") -> list:
        query = f"tags.mlflow.parentRunId = '{self.parent_id}'" + (f" and {extra}" if extra else "")
        return self.client.search_runs([self.experiment_id], query, max_results=50000)

    def _fail_interrupted(self) -> None:
        """Mark cells left ``RUNNING`` by a killed sweep as failed; they are redone."""
        for run in self._children("attributes.status = 'RUNNING'"):
            self.client.set_tag(run.info.run_id, "failure", "interrupted: the sweep process died during this cell")
            self.client.set_terminated(run.info.run_id, status="FAILED")

    def finished_hashes(self) -> set[str]:
        """Hashes of the cells that already have a finished run."""
        return {run.data.tags["cell_hash"] for run in self._children("attributes.status = 'FINISHED'")}

    def _log_yaml(self, run_id: str, mapping: dict[str, Any], name: str) -> None:
        import yaml

        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / name
            path.write_text(yaml.safe_dump(mapping, sort_keys=True))
            self.client.log_artifact(run_id, str(path))

    def start_cell(self, cell: dict[str, Any]) -> str:
        """Create the cell's child run (status RUNNING) and return its id."""
        tags = {"mlflow.parentRunId": self.parent_id, "role": "cell", "cell_hash": config_hash(cell),
                "sweep_hash": self.sweep_hash, "method": cell["method"], "seed": str(cell["seed"]),
                **provenance_tags()}
        run = self.client.create_run(self.experiment_id, run_name=f"{cell['method']}-{config_hash(cell)[:8]}",
                                     tags=tags)
        params = {key: str(value)[:6000] for key, value in flatten(cell).items()}
        for chunk in range(0, len(params), 100):
            batch = dict(list(params.items())[chunk:chunk + 100])
            self.client.log_batch(run.info.run_id, params=[_param(k, v) for k, v in batch.items()])
        return run.info.run_id

    def finish_cell(self, run_id: str, result: CellResult) -> None:
        """Log a finished cell's metrics and artifacts and close its run (FAILED if the cell raised)."""
        from mlflow.entities import Metric

        now = int(pd.Timestamp.now().timestamp() * 1000)
        self.client.log_batch(run_id, metrics=[Metric(k, v, now, 0) for k, v in result.metrics.items()])
        with tempfile.TemporaryDirectory() as folder:
            for name, data in result.artifacts.items():
                (Path(folder) / name).write_bytes(data)
            if result.error:
                (Path(folder) / "error.txt").write_text(result.error)
            self.client.log_artifacts(run_id, folder)
        if result.error:
            self.client.set_tag(run_id, "failure", result.error.strip().splitlines()[-1][:500])
        self.client.set_terminated(run_id, status="FAILED" if result.error else "FINISHED")

    def finish_sweep(self, table: pd.DataFrame | None, complete: bool) -> None:
        """Log the comparison table and close the parent run."""
        if table is not None and len(table):
            with tempfile.TemporaryDirectory() as folder:
                table.to_csv(Path(folder) / "comparison.csv")
                self.client.log_artifacts(self.parent_id, folder)
        self.client.set_terminated(self.parent_id, status="FINISHED" if complete else "FAILED")


def _param(key: str, value: str):
    from mlflow.entities import Param

    return Param(key, value)
