"""Recompute logged cells from their recorded configs and check that the numbers are the same."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path

import yaml

from bayes_rca.app.tracking import default_tracking_uri, get_run, tracking_client
from bayes_rca.harness.cell import run_cell


def rerun(run_id: str, tracking_uri: str | None = None) -> Iterator[str]:
    """Rerun a cell run (or every finished cell of a sweep run) and report logged vs recomputed metrics."""
    uri = tracking_uri or default_tracking_uri()
    client = tracking_client(uri)
    run = get_run(client, run_id, uri)
    if run.data.tags.get("role") == "sweep":
        children = client.search_runs([run.info.experiment_id], f"tags.mlflow.parentRunId = '{run_id}' and "
                                      "attributes.status = 'FINISHED'", max_results=50000)
    else:
        children = [run]
    for child in children:
        with tempfile.TemporaryDirectory() as folder:
            path = client.download_artifacts(child.info.run_id, "resolved_config.yaml", folder)
            cell = yaml.safe_load(Path(path).read_text())
        result = run_cell(cell)
        if result.error:
            yield f"{child.info.run_id}: rerun FAILED\n{result.error}"
            continue
        logged = child.data.metrics
        keys = [k for k in sorted(logged) if not k.endswith("seconds")]
        same = all(abs(logged[k] - result.metrics.get(k, float("nan"))) <= 1e-9 * (1 + abs(logged[k])) for k in keys)
        yield f"{child.info.run_id} ({cell['method']}, seed {cell['seed']}): " + (
            "identical metrics" if same else "DIFFERENT metrics")
        for key in keys:
            yield f"  {key:24s} logged {logged[key]:.6g}  rerun {result.metrics.get(key, float('nan')):.6g}"
