"""``bayes-rca change``: distribution-change attribution on two CSV files, end to end, and its clear errors."""

from __future__ import annotations

import json
from dataclasses import replace

import mlflow
import pandas as pd
import pytest

from bayes_rca.app.cli import main
from bayes_rca.data.synthetic import microservice_system

SYSTEM = microservice_system(seed=2)


@pytest.fixture()
def periods(tmp_path):
    """Calls graph, a before period and an after period in which Cache got 5 ms slower (its mechanism's
    intercept), and a second sample of the before period."""
    SYSTEM.sample(800, seed=2).to_csv(tmp_path / "before.csv", index_label="row")
    SYSTEM.sample(800, seed=4).to_csv(tmp_path / "same.csv", index_label="row")
    slower = replace(SYSTEM, intercepts={**SYSTEM.intercepts, "Cache": SYSTEM.intercepts["Cache"] + 5.0})
    slower.sample(800, seed=3).to_csv(tmp_path / "after.csv", index_label="row")
    calls = [(callee, caller) for caller, callee in SYSTEM.graph.edges]  # caller -> callee
    pd.DataFrame(calls, columns=["caller", "callee"]).to_csv(tmp_path / "calls.csv", index=False)
    return tmp_path


BASE = ["change", "--graph", "calls.csv", "--dependencies", "--before", "before.csv", "--index-col", "row",
        "--target", "Website", "--draws", "60"]


def test_change_on_files_names_the_changed_mechanism(periods, monkeypatch, capsys):
    monkeypatch.chdir(periods)
    code = main([*BASE, "--after", "after.csv", "--no-track", "--output", "res"])
    out = capsys.readouterr().out
    assert code == 0
    assert "changed (P(|phi| >" in out and out.strip().splitlines()[-2].endswith(": Cache")
    table = pd.read_csv(periods / "res" / "change_contributions.csv")
    assert table.iloc[0]["node"] == "Cache" and table.iloc[0]["p_changed"] == 1.0
    total = pd.read_csv(periods / "res" / "change_total.csv")
    assert abs(table["mean"].sum() - total["mean"].iloc[0]) < 1e-6
    for name in ("mechanisms_before.csv", "mechanisms_after.csv", "change.png", "change.nc", "change.json"):
        assert (periods / "res" / name).stat().st_size > 0


def test_json_output_and_specificity_on_two_samples_of_one_period(periods, monkeypatch, capsys):
    monkeypatch.chdir(periods)
    assert main([*BASE, "--after", "same.csv", "--no-track", "--json", "--output", "res"]) == 0
    captured = capsys.readouterr()
    document = json.loads(captured.out)  # stdout is JSON only; the timing line goes to stderr
    assert "results in res/" in captured.err
    assert document["changed"] == [] and document["functional"] == "mean" and document["target"] == "Website"
    assert {row["node"] for row in document["contributions"]} == set(SYSTEM.graph.nodes)
    assert document["settings"]["estimator"] == "analytic" and document["rows_before"] == 800
    assert document["total"]["hdi_5%"] <= 0.0 <= document["total"]["hdi_95%"]
    assert json.loads((periods / "res" / "change.json").read_text()) == document


def test_monte_carlo_functional_and_mlflow_run(periods, monkeypatch, capsys):
    monkeypatch.chdir(periods)
    uri = f"sqlite:///{periods / 'store.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    code = main([*BASE, "--after", "after.csv", "--functional", "quantile(0.9)", "--estimator", "monte_carlo",
                 "--samples", "1000", "--json", "--output", "res"])
    assert code == 0
    document = json.loads(capsys.readouterr().out)
    assert document["settings"]["estimator"] == "monte_carlo" and document["functional"] == "quantile(0.9)"
    assert document["changed"][0] == "Cache" and document["total"]["mcse"] > 0
    client = mlflow.MlflowClient(uri)
    run = client.search_runs([client.get_experiment_by_name("bayes_rca-change").experiment_id])[0]
    assert run.data.tags["top_change"] == "Cache" and run.data.params["functional"] == "quantile(0.9)"
    assert run.data.metrics["fit_seconds"] > 0 and run.data.params["mechanism_after.Cache"] == "gaussian_root"
    assert {"change.nc", "change_contributions.csv", "change.json"} <= {a.path for a in
                                                                       client.list_artifacts(run.info.run_id)}


def _drop_cache(directory):
    pd.read_csv(directory / "after.csv").drop(columns="Cache").to_csv(directory / "after.csv", index=False)


def _gap(directory):
    frame = pd.read_csv(directory / "before.csv")
    frame.loc[3, "Auth"] = float("nan")
    frame.to_csv(directory / "before.csv", index=False)


def _text(directory):
    frame = pd.read_csv(directory / "after.csv")
    frame["Cart"] = frame["Cart"].astype(str).str.replace(".", ",", regex=False)
    frame.to_csv(directory / "after.csv", index=False)


@pytest.mark.parametrize("setup, extra, message", [
    (_drop_cache, [], r"--after after.csv: training data has no column for graph node\(s\) 'Cache'"),
    (_gap, [], r"--before before.csv: the file row 3 has a missing value in column 'Auth'.*--dropna"),
    (_text, [], r"--after after.csv: training data has non-numeric column\(s\) 'Cart'"),
    (None, ["--target", "Nowhere"], "target 'Nowhere'"),
    (None, ["--functional", "median"], "unknown functional 'median'"),
    (None, ["--functional", "kl", "--mechanism", "Cart=linear_student_t"],
     r"--functional kl \(closed form only\) needs linear-Gaussian mechanisms; not so for \{'Cart'"),
    (None, ["--functional", "kl", "--estimator", "monte_carlo"], "kl is closed form only"),
    (None, ["--estimator", "analytic", "--auto"], "--estimator analytic needs linear-Gaussian mechanisms"),
    (None, ["--mechanism", "Nowhere=linear_gaussian"], r"--mechanism names node\(s\) \['Nowhere'\]"),
    (None, ["--mechanism", "Cart=bogus"], "unknown mechanism family 'bogus'"),
    (None, ["--samples", "3"], "num_samples"),
    (None, ["--alpha", "2"], "--alpha must lie strictly between 0 and 1"),
    (None, ["--before", "missing.csv"], "data file missing.csv does not exist"),
])
def test_change_errors_exit_2_with_a_clear_message(periods, monkeypatch, capsys, setup, extra, message):
    monkeypatch.chdir(periods)
    if setup is not None:
        setup(periods)
    code = main([*BASE, "--after", "after.csv", "--no-track", *extra])
    err = capsys.readouterr().err
    last = err.strip().splitlines()[-1]
    assert code == 2
    assert last.startswith("bayes-rca: error:") and "Traceback" not in err
    assert pd.Series([last]).str.contains(message).iloc[0], last


def test_dropna_leaves_out_rows_with_gaps(periods, monkeypatch, capsys):
    monkeypatch.chdir(periods)
    _gap(periods)
    code = main([*BASE, "--after", "after.csv", "--no-track", "--dropna", "--json", "--output", "res"])
    captured = capsys.readouterr()
    assert code == 0
    assert "--before before.csv: 1 of 800 row(s) have a missing value and are left out" in captured.err
    assert json.loads(captured.out)["rows_before"] == 799


def test_a_fit_error_names_the_period(periods, monkeypatch, capsys):
    monkeypatch.chdir(periods)
    SYSTEM.sample(3, seed=9).to_csv(periods / "tiny.csv", index_label="row")
    code = main([*BASE, "--after", "tiny.csv", "--no-track"])
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert code == 2 and last.startswith("bayes-rca: error: --after tiny.csv: node '"), last
    assert "usable training rows" in last
