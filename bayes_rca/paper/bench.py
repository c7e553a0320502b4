"""``bayes-rca paper bench``: ``experiments/bench/bench_attribution.py`` at several ancestor counts, logged as runs.

Each benchmark run (one ancestor count) is an MLflow run tagged ``role = bench`` in the experiment
``paper_performance``, with the script's arguments as params, ``num_ancestors`` and ``<tool>.fit_s`` /
``<tool>.attribute_s`` / ``<tool>.peak_rss_mib`` as metrics and the script's JSON line as an artifact. A run
with the same arguments that already finished is skipped (resumable, like every sweep).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

from bayes_rca.app.tracking import default_tracking_uri, experiment_id, tracking_client
from bayes_rca.harness.config import config_hash
from bayes_rca.harness.tracking import provenance_tags

SCRIPT = Path("experiments/bench/bench_attribution.py")
EXPERIMENT = "paper_performance"
TOOL_NAMES = {"DoWhy point estimate": "dowhy"}


def tool_key(method: str) -> str:
    """A metric-key prefix for a row of the benchmark's table: ``bayes_rca (exact 2^17)`` -> ``bayes_rca`` (its
    estimator is logged as the param ``bayes_rca_estimator``), ``DoWhy point estimate`` -> ``dowhy``."""
    if method.startswith("bayes_rca"):
        return "bayes_rca"
    return TOOL_NAMES.get(method) or re.sub(r"[^a-z0-9]+", "_", method.lower()).strip("_")


def run_bench(ancestors: list[int], nodes: int = 64, rows: int = 2000, skip_dowhy: bool = False, seed: int = 0,
              tracking_uri: str | None = None, experiment: str = EXPERIMENT,
              report: Callable[[str], None] = print) -> list[str]:
    """Run the benchmark once per ancestor count (not yet logged ones only) and log each; return the run ids."""
    uri = tracking_uri or default_tracking_uri()
    client = tracking_client(uri)
    exp = experiment_id(client, experiment, uri)
    ids = []
    for count in ancestors:
        params = {"nodes": nodes, "ancestors": count, "rows": rows, "seed": seed, "dowhy": not skip_dowhy,
                  "script": str(SCRIPT)}
        key = config_hash(params)
        done = client.search_runs([exp], f"tags.role = 'bench' and tags.bench_hash = '{key}' and "
                                  "attributes.status = 'FINISHED'", max_results=1)
        if done:
            report(f"bench {count} ancestors: already logged (run {done[0].info.run_id})")
            ids.append(done[0].info.run_id)
            continue
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / "bench.json"
            command = [sys.executable, str(SCRIPT), "--nodes", str(nodes), "--ancestors", str(count), "--rows",
                       str(rows), "--seed", str(seed), "--default-only", "--json", str(path)]
            if skip_dowhy:
                command.append("--skip-dowhy")
            report(f"bench {count} ancestors: {' '.join(command[1:])}")
            done_ = subprocess.run(command, capture_output=True, text=True, env={**os.environ, "PYTHONHASHSEED": "0"})
            if done_.returncode != 0:
                report(f"bench {count} ancestors FAILED:\n{done_.stderr[-2000:]}")
                continue
            result = json.loads(path.read_text())
            run = client.create_run(exp, run_name=f"bench-{count}", tags={"role": "bench", "bench_hash": key,
                                                                          **provenance_tags()})
            for name, value in params.items():
                client.log_param(run.info.run_id, name, str(value))
            client.log_metric(run.info.run_id, "num_ancestors", float(result["num_ancestors"]))
            for row in result["rows"]:
                if row["method"].startswith("bayes_rca"):
                    estimator = row["method"].removeprefix("bayes_rca").strip(" ()")
                    client.log_param(run.info.run_id, "bayes_rca_estimator", estimator)
                for metric in ("fit_s", "attribute_s", "peak_rss_mib"):
                    client.log_metric(run.info.run_id, f"{tool_key(row['method'])}.{metric}", float(row[metric]))
            client.log_artifact(run.info.run_id, str(path))
            client.set_terminated(run.info.run_id, "FINISHED")
            report(f"bench {count} ancestors: logged run {run.info.run_id}")
            ids.append(run.info.run_id)
    return ids
