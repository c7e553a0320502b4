"""The command line end to end: demo with MLflow logging, attribute on graph + CSV files, clear errors."""

from __future__ import annotations

import mlflow
import pandas as pd
import pytest

from bayes_rca.app.cli import main
from bayes_rca.data.synthetic import microservice_system


def test_demo_logs_a_complete_run(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    uri = f"sqlite:///{tmp_path / 'store.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    assert main(["demo", "--rows", "400", "--draws", "60", "--output", str(tmp_path / "demo")]) == 0
    out = capsys.readouterr().out
    assert "ranked first: True" in out and "Contributions" in out
    for name in ("contributions.csv", "it_score.csv", "mechanisms.csv", "contributions.png", "attribution.nc"):
        assert (tmp_path / "demo" / name).stat().st_size > 0
    client = mlflow.MlflowClient(uri)
    run = client.search_runs([client.get_experiment_by_name("bayes_rca-demo").experiment_id])[0]
    assert run.data.metrics["top1_correct"] == 1.0 and run.data.metrics["fit_seconds"] > 0
    assert run.data.params["true_root_cause"] == run.data.tags["top_cause"]
    assert {"attribution.nc", "contributions.png"} <= {a.path for a in client.list_artifacts(run.info.run_id)}


@pytest.fixture()
def service_files(tmp_path):
    system = microservice_system(seed=2)
    system.sample(500, seed=2).to_csv(tmp_path / "normal.csv", index_label="row")
    system.outlier({"Cache": 6.0}).to_csv(tmp_path / "incident.csv", index_label="row")
    calls = [(callee, caller) for caller, callee in system.graph.edges]  # caller -> callee
    pd.DataFrame(calls, columns=["caller", "callee"]).to_csv(tmp_path / "calls.csv", index=False)
    nodes = list(system.graph.nodes)
    adjacency = pd.DataFrame(0, index=nodes, columns=nodes)
    for cause, effect in system.graph.edges:
        adjacency.loc[cause, effect] = 1
    adjacency.to_csv(tmp_path / "causal_adjacency.csv")
    return tmp_path


@pytest.mark.parametrize("graph_args", [["--graph", "calls.csv", "--dependencies"],
                                        ["--graph", "causal_adjacency.csv"]])
def test_attribute_on_files(service_files, monkeypatch, capsys, graph_args):
    monkeypatch.chdir(service_files)
    code = main(["attribute", *graph_args, "--data", "normal.csv", "--outliers", "incident.csv",
                 "--index-col", "row", "--target", "Website", "--draws", "50", "--no-track", "--output", "res"])
    assert code == 0
    table = pd.read_csv(service_files / "res" / "contributions.csv")
    assert table.iloc[0]["node"] == "Cache"
    assert abs(table["mean"].sum() - pd.read_csv(service_files / "res" / "it_score.csv")["mean"].iloc[0]) < 1e-6


@pytest.mark.parametrize("setup, message", [
    (lambda d: (d / "calls.csv").write_text("caller,callee\nWebsite,Frontend\nFrontend,Website\n"),
     "acyclic, but it has the cycle"),
    (lambda d: (d / "calls.csv").write_text("caller,callee\nWebsite,Frontend,CDN\n"),
     r"calls.csv, line 2: an edge list row needs exactly two node names"),
    (lambda d: pd.read_csv(d / "normal.csv").drop(columns="Cache").to_csv(d / "normal.csv", index=False),
     "training data has no column for graph node\\(s\\) 'Cache'"),
    (lambda d: pd.read_csv(d / "incident.csv").assign(Website=float("nan")).to_csv(d / "incident.csv", index=False),
     "outlier row 0 has a missing value in column 'Website'"),
])
def test_attribute_errors_exit_2_with_a_clear_message(service_files, monkeypatch, capsys, setup, message):
    monkeypatch.chdir(service_files)
    setup(service_files)
    code = main(["attribute", "--graph", "calls.csv", "--dependencies", "--data", "normal.csv",
                 "--outliers", "incident.csv", "--target", "Website", "--no-track"])
    err = capsys.readouterr().err
    last = err.strip().splitlines()[-1]
    assert code == 2
    assert last.startswith("bayes-rca: error:") and "Traceback" not in err
    assert pd.Series([last]).str.contains(message).iloc[0], last


def test_unknown_target_and_bad_mechanism_flag(service_files, monkeypatch, capsys):
    monkeypatch.chdir(service_files)
    base = ["attribute", "--graph", "calls.csv", "--dependencies", "--data", "normal.csv", "--outliers",
            "incident.csv", "--no-track"]
    assert main([*base, "--target", "Nope"]) == 2
    assert "target 'Nope' is not a node of the causal graph" in capsys.readouterr().err
    assert main([*base, "--target", "Website", "--mechanism", "Cache=quadratic"]) == 2
    assert "unknown mechanism family 'quadratic' for node 'Cache'" in capsys.readouterr().err
    assert main([*base, "--target", "Website", "--mechanism", "Cache=censored_gaussian(cap=3)"]) == 2
    assert "unknown option(s) cap; censored_gaussian accepts lower, upper" in capsys.readouterr().err
    assert main([*base, "--target", "Website", "--mechanism", "Cache"]) == 2
    assert "--mechanism expects NODE=FAMILY" in capsys.readouterr().err
