"""The paper pipeline end to end on a tiny sweep: logged runs -> LaTeX tables with run ids, figures, main.tex."""

from __future__ import annotations

import re
import shutil

import mlflow
import numpy as np
import pandas as pd
import pytest
import yaml

from bayes_rca.app.cli import main
from bayes_rca.harness.runner import run_experiment
from bayes_rca.paper import document
from bayes_rca.paper.build import build_paper
from bayes_rca.paper.latex import mean_se

EXPERIMENT = "paper_tiny"


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """A tiny calibration sweep (bayes_rca with intervals, naive without) and one fake benchmark run."""
    folder = tmp_path_factory.mktemp("paper")
    uri = f"sqlite:///{folder / 'mlflow.db'}"
    config = {"name": EXPERIMENT, "seed": 0,
              "methods": {"bayes_rca": {"num_draws": 30, "keep_posterior": False}, "naive": {}},
              "benchmark": {"family": "icml2022", "num_nodes": 7, "min_ancestors": 3, "num_rows": 60,
                            "num_outliers": 2},
              "sweep": {"benchmark.num_rows": [60, 120], "seed": [0, 1]},
              "execution": {"executor": "sequential"}, "tracking": {"uri": uri, "experiment": EXPERIMENT}}
    path = folder / "tiny.yaml"
    path.write_text(yaml.safe_dump(config))
    parent, _ = run_experiment(path, output=folder / "outputs", report=lambda line: None)
    client = mlflow.MlflowClient(uri)
    bench_experiment = client.create_experiment("paper_performance_tiny")
    bench = client.create_run(bench_experiment, tags={"role": "bench"})
    client.log_param(bench.info.run_id, "nodes", "64")
    client.log_param(bench.info.run_id, "rows", "2000")
    for key, value in {"num_ancestors": 16.0, "bayes_rca.fit_s": 0.7, "bayes_rca.attribute_s": 0.54,
                       "dowhy.fit_s": 31.2, "dowhy.attribute_s": 17.1}.items():
        client.log_metric(bench.info.run_id, key, value)
    client.set_terminated(bench.info.run_id, "FINISHED")
    cells = client.search_runs([client.get_experiment_by_name(EXPERIMENT).experiment_id],
                               f"tags.mlflow.parentRunId = '{parent}'")
    return {"uri": uri, "folder": folder, "cells": cells, "bench": bench.info.run_id}


@pytest.fixture(scope="module")
def paper(store):
    out = store["folder"] / "paper"
    lines: list[str] = []
    report = build_paper([EXPERIMENT, "paper_performance_tiny", "no_such_experiment"], out, store["uri"], pdf=False,
                         report=lines.append)
    return out, report, lines


STUDENT = "paper_tiny_student_t"


@pytest.fixture(scope="module")
def student_paper(store):
    """A tiny Student-t calibration study (bayes_rca only, truth by the large Monte Carlo) in the same store, and
    the paper built from it and the linear-Gaussian sweep."""
    folder = store["folder"]
    config = {"name": STUDENT, "seed": 0,
              "methods": {"bayes_rca": {"num_draws": 30, "keep_posterior": False, "num_samples": 256,
                                        "num_permutations": 20}},
              "benchmark": {"family": "student_t", "num_nodes": 7, "min_ancestors": 3, "num_rows": 80,
                            "num_outliers": 2},
              "sweep": {"seed": [0, 1]},
              "execution": {"executor": "sequential"}, "tracking": {"uri": store["uri"], "experiment": STUDENT}}
    path = folder / "student.yaml"
    path.write_text(yaml.safe_dump(config))
    parent, _ = run_experiment(path, output=folder / "outputs_student", report=lambda line: None)
    client = mlflow.MlflowClient(store["uri"])
    cells = client.search_runs([client.get_experiment_by_name(STUDENT).experiment_id],
                               f"tags.mlflow.parentRunId = '{parent}'")
    out = folder / "paper_student"
    report = build_paper([EXPERIMENT, STUDENT], out, store["uri"], pdf=False, report=lambda line: None)
    return {"out": out, "report": report, "cells": cells, "client": client}


def test_student_t_rows_come_from_logged_numbers(student_paper, tmp_path):
    out, cells, client = student_paper["out"], student_paper["cells"], student_paper["client"]
    assert len(cells) == 2 and all(run.info.status == "FINISHED" for run in cells)
    assert all(run.data.metrics["truth_se_max"] > 0 for run in cells)  # a Monte Carlo truth, its error logged
    values = [run.data.metrics["player_coverage_90"] for run in cells]
    cell = mean_se(float(np.mean(values)), float(np.std(values, ddof=1) / np.sqrt(2)))
    own = (out / "tables" / f"{STUDENT}_coverage_all.tex").read_text()
    assert "very large Monte Carlo" in own and cell in own
    summary = (out / "tables" / "calibration_summary.tex").read_text()
    block = summary.split(r"\texttt{paper\_tiny\_student\_t}")[1]
    lines = block.splitlines()
    line = next(line for line in lines if line.startswith("bayes\\_rca & 80 &"))
    assert cell in line  # the 90 % column is the logged metric
    comment = lines[lines.index(line) - 1]
    assert all(run.info.run_id in comment for run in cells)
    errors = []
    for run in cells:  # the truth-SE columns are the per-player truth_se of the runs' artifacts
        local = client.download_artifacts(run.info.run_id, "contributions.csv", str(tmp_path))
        errors.append(pd.read_csv(local)["truth_se"])
    errors = pd.concat(errors)
    assert f"& {errors.mean():.4f} & {errors.max():.4f} &" in line
    assert "linear, Student-t(3) noise, 7-node graphs" in summary
    assert r"\texttt{paper\_tiny}" not in summary  # not a pure calibration study (naive has no intervals)
    main_tex = (out / "main.tex").read_text()
    assert r"\input{tables/calibration_summary.tex}" in main_tex and "Coverage at the 90" in main_tex


def test_a_kept_study_keeps_its_summary_rows_beside_a_new_one(student_paper, store, tmp_path):
    """Rebuilt from a store holding only one of two calibration studies, the summary keeps the other one's rows
    (run-id comments and all) from the earlier build, marked kept, in the paper's order."""
    out = tmp_path / "paper"
    shutil.copytree(student_paper["out"], out)
    earlier = (out / "tables" / "calibration_summary.tex").read_text()
    earlier_rows = [line for line in earlier.split(r"\texttt{paper\_tiny\_student\_t}")[1].splitlines()[1:]
                    if line and not line.startswith("\\")]
    uri = f"sqlite:///{tmp_path / 'other.db'}"
    config = {"name": "paper_tiny_lg", "seed": 0, "methods": {"bayes_rca": {"num_draws": 20, "keep_posterior": False}},
              "benchmark": {"family": "icml2022", "num_nodes": 6, "min_ancestors": 2, "num_rows": 50,
                            "num_outliers": 1},
              "execution": {"executor": "sequential"}, "tracking": {"uri": uri, "experiment": "paper_tiny_lg"}}
    path = tmp_path / "lg.yaml"
    path.write_text(yaml.safe_dump(config))
    run_experiment(path, output=tmp_path / "outputs", report=lambda line: None)
    report = build_paper(["paper_tiny_lg", STUDENT], out, uri, pdf=False, report=lambda line: None)
    assert report.kept == [STUDENT]
    summary = (out / "tables" / "calibration_summary.tex").read_text()
    assert summary.index(r"\texttt{paper\_tiny\_lg}") < summary.index(r"\texttt{paper\_tiny\_student\_t}")
    assert r"\texttt{paper\_tiny\_student\_t} (kept from an earlier build)" in summary
    kept_rows = [line for line in summary.split(r"\texttt{paper\_tiny\_student\_t}")[1].splitlines()[1:]
                 if line and not line.startswith("\\")]
    assert kept_rows == earlier_rows and any(run.info.run_id in summary for run in student_paper["cells"])
    parents = {run.data.tags["mlflow.parentRunId"] for run in student_paper["cells"]}
    assert all(f"{STUDENT} ({parent}, kept)" in summary.splitlines()[0] for parent in parents)


def _cells(store, method, rows):
    return [run for run in store["cells"] if run.data.params["method"] == method
            and run.data.params["benchmark.num_rows"] == str(rows)]


def test_calibration_table_has_the_logged_numbers_and_their_run_ids(store, paper):
    out, report, _ = paper
    text = (out / "tables" / f"{EXPERIMENT}_coverage_all.tex").read_text()
    assert r"\toprule" in text and r"\bottomrule" in text and r"\midrule" in text  # booktabs
    for rows in (60, 120):
        runs = _cells(store, "bayes_rca", rows)
        assert len(runs) == 2 and all(run.info.status == "FINISHED" for run in runs)
        values = [run.data.metrics["player_coverage_90"] for run in runs]
        se = np.std(values, ddof=1) / np.sqrt(2)
        cell = mean_se(float(np.mean(values)), float(se))
        line = next(line for line in text.splitlines() if line.startswith(f"bayes\\_rca & {rows} &"))
        assert cell in line
        comment = text.splitlines()[text.splitlines().index(line) - 1]
        assert comment.startswith("% runs (2):")
        assert all(run.info.run_id in comment for run in runs)  # the run id of every number, beside it
    assert "naive" not in text  # no intervals: no coverage row
    large = (out / "tables" / f"{EXPERIMENT}_coverage_large.tex").read_text()
    assert "3 nats" in large


def test_accuracy_runtime_and_performance_tables(store, paper):
    out, _, _ = paper
    accuracy = (out / "tables" / f"{EXPERIMENT}_accuracy.tex").read_text()
    assert "rows 60" in accuracy and "rows 120" in accuracy  # one block per setting, not pooled
    runs = _cells(store, "naive", 120)
    line = next(line for line in accuracy.split("rows 120")[1].splitlines() if line.startswith("naive &"))
    values = [run.data.metrics["top1_recall"] for run in runs]
    assert mean_se(float(np.mean(values)), float(np.std(values, ddof=1) / np.sqrt(2))) in line
    ids = re.findall(r"[0-9a-f]{32}", accuracy)
    assert {run.info.run_id for run in store["cells"]} <= set(ids)
    assert (out / "tables" / f"{EXPERIMENT}_runtime.tex").exists()
    seconds = (out / "tables" / "paper_performance_tiny_seconds.tex").read_text()
    assert store["bench"] in seconds and "31.20" in seconds and "0.54" in seconds


def test_figures_and_main_tex(store, paper):
    out, report, lines = paper
    stems = ["coverage_vs_nominal", "width_vs_rows", "reliability", "runtime_vs_rows", "forest", "ndcg"]
    for stem in stems:
        for suffix in (".pdf", ".png", ".tex"):
            path = out / "figures" / f"{EXPERIMENT}_{stem}{suffix}"
            assert path.exists() and path.stat().st_size > 0, path
    snippet = (out / "figures" / f"{EXPERIMENT}_coverage_vs_nominal.tex").read_text()
    assert all(run.info.run_id in snippet for run in _cells(store, "bayes_rca", 60))
    assert (out / "figures" / "paper_performance_tiny_runtime.png").exists()
    main_tex = (out / "main.tex").read_text()
    for path in report.tables:
        assert rf"\input{{tables/{path.name}}}" in main_tex
    assert rf"\input{{figures/{EXPERIMENT}_forest.tex}}" in main_tex
    assert any("no_such_experiment" in line and "skipped" in line for line in lines)  # a clear message
    assert "no\\_such\\_experiment" in main_tex
    assert report.pdf is None


def test_an_experiment_without_runs_now_keeps_the_earlier_build(paper, tmp_path):
    earlier, _, _ = paper
    out = tmp_path / "paper"
    shutil.copytree(earlier, out)
    table = (out / "tables" / f"{EXPERIMENT}_coverage_all.tex").read_text()
    lines: list[str] = []
    report = build_paper([EXPERIMENT, "no_such_experiment"], out, f"sqlite:///{tmp_path / 'empty.db'}", pdf=False,
                         report=lines.append)
    assert report.kept == [EXPERIMENT] and any("kept experiment" in line for line in lines)
    main_tex = (out / "main.tex").read_text()
    assert rf"\input{{tables/{EXPERIMENT}_coverage_all.tex}}" in main_tex
    assert rf"\input{{figures/{EXPERIMENT}_forest.tex}}" in main_tex and "Kept from an earlier build" in main_tex
    assert (out / "tables" / f"{EXPERIMENT}_coverage_all.tex").read_text() == table  # untouched, run ids and all
    assert "no\\_such\\_experiment" in main_tex  # still skipped: nothing earlier


def test_no_latex_toolchain_stops_cleanly(tmp_path, monkeypatch):
    monkeypatch.setattr(document.shutil, "which", lambda name: None)
    pdf, message = document.build_pdf(tmp_path)
    assert pdf is None and "apt-get install texlive-latex-base texlive-latex-extra latexmk" in message


def test_cli_build(store, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(document.shutil, "which", lambda name: None)  # the sources, whatever is installed here
    status = main(["paper", "build", "--experiments", EXPERIMENT, "--tracking-uri", store["uri"], "--out",
                   str(tmp_path / "out")])
    assert status == 0
    assert (tmp_path / "out" / "main.tex").exists()
    assert "apt-get install" in capsys.readouterr().out


@pytest.mark.skipif(shutil.which("latexmk") is None and shutil.which("pdflatex") is None,
                    reason="no LaTeX toolchain (apt-get install texlive-latex-base texlive-latex-extra latexmk)")
def test_the_sources_compile(paper):
    out, _, _ = paper
    pdf, message = document.build_pdf(out)
    assert pdf is not None and pdf.stat().st_size > 0, message
