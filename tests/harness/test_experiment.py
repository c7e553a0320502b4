"""The experiments harness end to end: configs, sweeps logged to MLflow, compare, rerun, resume, executors."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import mlflow
import pytest
import yaml

from bayes_rca.errors import ConfigError
from bayes_rca.harness.compare import cell_runs
from bayes_rca.harness.config import config_hash, expand_cells, load_config
from bayes_rca.harness.rerun import rerun
from bayes_rca.harness.runner import run_experiment

REPO = Path(__file__).resolve().parents[2]


def write_config(folder: Path, executor: str = "sequential", methods: dict | None = None, seeds=(0, 1)) -> Path:
    config = {"name": "tiny", "methods": methods or {"naive": {}, "random": {}, "bayes_rca": {"num_draws": 40}},
              "benchmark": {"family": "icml2022", "num_rows": 150, "num_outliers": 2},
              "sweep": {"seed": list(seeds)}, "execution": {"executor": executor, "workers": 2},
              "tracking": {"uri": f"sqlite:///{folder / 'mlflow.db'}", "experiment": "tiny"}}
    path = folder / "tiny.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def test_config_errors_name_file_and_key(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("name: x\nbenchmark:\n  num_rowz: 10\n")
    with pytest.raises(ConfigError, match=r"bad.yaml: unknown key 'benchmark.num_rowz'"):
        load_config(path)
    path.write_text("name: x\nseed: [1\n")
    with pytest.raises(ConfigError, match=r"bad.yaml: malformed YAML"):
        load_config(path)
    path.write_text("name: x\n")
    with pytest.raises(ConfigError, match=r"key 'benchmark.num_rows' must be int, got 'many'"):
        load_config(path, ["benchmark.num_rows=many"])
    with pytest.raises(ConfigError, match=r"override 'seed' must look like key=value"):
        load_config(path, ["seed"])
    path.write_text("name: x\nsweep:\n  benchmark.family: [icml2022, 7]\n")
    with pytest.raises(ConfigError, match=r"sweep benchmark.family=7.*must be str"):
        load_config(path)
    path.write_text("!!python/object/apply:os.system ['echo unsafe']\n")
    with pytest.raises(ConfigError, match="malformed YAML"):
        load_config(path)


def test_sweep_grid_and_overrides(tmp_path):
    path = write_config(tmp_path)
    config, raw = load_config(path, ["sweep.benchmark.num_rows=[100, 200]", "seed=5"])
    cells = expand_cells(raw)
    assert len(cells) == 2 * 2 * 3
    assert {c["benchmark"]["num_rows"] for c in cells} == {100, 200}
    assert {c["method"] for c in cells} == {"naive", "random", "bayes_rca"}
    assert len({config_hash(c) for c in cells}) == len(cells)
    assert config_hash(cells[0]) == config_hash(dict(reversed(list(cells[0].items()))))


def test_a_zipped_sweep_moves_its_keys_together_and_may_set_method_options(tmp_path):
    path = write_config(tmp_path)
    _, raw = load_config(path, ["sweep.benchmark.num_rows+methods.naive.seed=[[100, 1], [200, 2]]"])
    cells = [c for c in expand_cells(raw) if c["method"] == "naive"]
    assert sorted((c["benchmark"]["num_rows"], c["method_options"]["seed"]) for c in cells) == [
        (100, 1), (100, 1), (200, 2), (200, 2)]  # x 2 seeds of the config's grid, never (100, 2)
    with pytest.raises(ConfigError, match="needs values of 2 entries"):
        load_config(path, ["sweep.benchmark.num_rows+methods.naive.seed=[100, 200]"])


def test_sweep_logs_runs_compares_reruns_and_resumes(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = write_config(tmp_path)
    parent, table = run_experiment(path, output=tmp_path / "out", report=lambda _: None)
    runs = cell_runs(parent, f"sqlite:///{tmp_path / 'mlflow.db'}")
    assert len(runs) == 6
    for metric in ("ndcg_at_1", "ndcg_at_3", "top1_recall", "top3_recall", "fit_seconds", "attribute_seconds"):
        assert runs[f"metric.{metric}"].notna().all(), metric
        if metric.startswith(("ndcg", "top")):
            assert runs[f"metric.{metric}"].between(0, 1).all()
    bayes = runs[runs["param.method"] == "bayes_rca"]
    assert bayes["metric.coverage_90"].between(0, 1).all() and bayes["metric.top_cause_brier"].notna().all()
    assert set(table.index) == {"naive", "random", "bayes_rca"}
    assert (tmp_path / "out" / "tiny" / "comparison.md").read_text().count("|") > 10

    client = mlflow.MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    child = client.search_runs([client.get_run(parent).info.experiment_id],
                               f"tags.mlflow.parentRunId = '{parent}' and tags.method = 'bayes_rca'")[0]
    names = {a.path for a in client.list_artifacts(child.info.run_id)}
    assert {"cases.csv", "resolved_config.yaml", "ndcg.png", "posterior_case0.nc"} <= names
    assert {"git_commit", "version.torch", "cell_hash", "seed"} <= set(child.data.tags)
    lines = list(rerun(child.info.run_id, f"sqlite:///{tmp_path / 'mlflow.db'}"))
    assert "identical metrics" in lines[0]

    messages = []
    again, _ = run_experiment(path, output=tmp_path / "out", report=messages.append)
    assert again == parent and "6 already finished, 0 to run" in messages[0]


def test_killed_sweep_resumes_without_losing_results(tmp_path):
    path = write_config(tmp_path, methods={"bayes_rca": {"num_draws": 40}, "naive": {}}, seeds=tuple(range(6)))
    db = f"sqlite:///{tmp_path / 'mlflow.db'}"
    script = f"from bayes_rca.harness.runner import run_experiment; run_experiment({str(path)!r}, output={str(tmp_path)!r})"
    process = subprocess.Popen([sys.executable, "-c", script], cwd=tmp_path, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    client = mlflow.MlflowClient(db)
    deadline = time.time() + 240
    finished = []
    while time.time() < deadline and process.poll() is None:
        time.sleep(0.5)
        try:
            experiment = client.get_experiment_by_name("tiny")
            if experiment is None:
                continue
            runs = client.search_runs([experiment.experiment_id], "tags.role = 'cell'")
        except Exception:  # the store may be mid-migration
            continue
        finished = [r for r in runs if r.info.status == "FINISHED"]
        running = [r for r in runs if r.info.status == "RUNNING"]
        if finished and running:
            break
    assert process.poll() is None, "the sweep ended before it could be killed; make its cells slower"
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    # the store as the kill left it (a cell seen running may have finished between the last look and the kill)
    runs = client.search_runs([client.get_experiment_by_name("tiny").experiment_id], "tags.role = 'cell'")
    killed = {r.info.run_id for r in runs if r.info.status == "RUNNING"}
    kept = {r.data.tags["cell_hash"]: r.info.run_id for r in runs if r.info.status == "FINISHED"}
    assert kept and len(kept) < 12

    parent, _ = run_experiment(path, output=tmp_path, report=lambda _: None)
    cells = client.search_runs([client.get_experiment_by_name("tiny").experiment_id], "tags.role = 'cell'")
    statuses = {r.info.run_id: r.info.status for r in cells}
    assert all(statuses[run_id] == "FAILED" for run_id in killed)
    finished_now = {r.data.tags["cell_hash"]: r.info.run_id for r in cells if r.info.status == "FINISHED"}
    assert len(finished_now) == 12
    assert all(finished_now[h] == run_id for h, run_id in kept.items()), "finished cells were recomputed"


def test_process_executor_gives_the_same_numbers(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    results = {}
    for executor in ("sequential", "processes"):
        folder = tmp_path / executor
        folder.mkdir()
        path = write_config(folder, executor, methods={"naive": {}, "bayes_rca": {"num_draws": 30}}, seeds=(0,))
        parent, _ = run_experiment(path, output=folder, report=lambda _: None)
        results[executor] = cell_runs(parent, f"sqlite:///{folder / 'mlflow.db'}").set_index("param.method")
    for metric in ("metric.ndcg_at_1", "metric.ndcg_at_3", "metric.coverage_90", "metric.top_cause_brier"):
        assert results["sequential"].loc["bayes_rca", metric] == results["processes"].loc["bayes_rca", metric]


def test_ray_executor_with_a_local_instance(tmp_path, monkeypatch):
    ray = pytest.importorskip("ray")
    monkeypatch.chdir(tmp_path)
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, _node_ip_address="127.0.0.1")
    try:
        path = write_config(tmp_path, executor="ray", methods={"naive": {}, "random": {}}, seeds=(0, 1))
        parent, table = run_experiment(path, output=tmp_path, report=lambda _: None)
        runs = cell_runs(parent, f"sqlite:///{tmp_path / 'mlflow.db'}")
        assert len(runs) == 4 and runs["metric.ndcg_at_1"].notna().all()
    finally:
        ray.shutdown()


def test_smoke_config_logs_every_method_with_its_metrics(tmp_path, monkeypatch):
    """The CI sweep, configs/smoke.yaml as shipped, into a local store in the working folder."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    config = yaml.safe_load((REPO / "configs" / "smoke.yaml").read_text())
    parent, table = run_experiment(REPO / "configs" / "smoke.yaml", output=tmp_path / "out", report=lambda _: None)
    runs = cell_runs(parent, f"sqlite:///{tmp_path / 'mlflow.db'}")
    assert len(runs) == len(config["methods"]) * len(config["sweep"]["seed"])
    assert set(runs["param.method"]) == set(config["methods"]) == set(table.index)
    assert runs["metric.ndcg_at_1"].between(0, 1).all() and runs["metric.top3_recall"].between(0, 1).all()
    assert runs["metric.attribute_seconds"].gt(0).all()
    bayes = runs[runs["param.method"] == "bayes_rca"]
    assert bayes["metric.coverage_90"].between(0, 1).all() and bayes["metric.shapley_top1_agreement"].notna().all()
    # a method that ranks at random does worse than the method the benchmark is built for
    assert table.loc["bayes_rca", "ndcg_at_3_mean"] > table.loc["random", "ndcg_at_3_mean"]
