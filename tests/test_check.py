"""``bayes-rca check``: static checks of graph, data, mechanisms and configs, before any fitting."""

from __future__ import annotations

from pathlib import Path

import networkx as nx
import numpy as np
import pandas as pd
import pytest

from bayes_rca.app.check import Finding, check_config, check_model_inputs
from bayes_rca.app.cli import main

ROOT = Path(__file__).resolve().parents[1]


def _frame(columns: list[str], rows: int = 50, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({column: rng.normal(size=rows) for column in columns})


def _about(report, level: str, subject: str) -> list[Finding]:
    return [f for f in report.findings if f.level == level and f.subject == subject]


@pytest.fixture()
def graph() -> nx.DiGraph:
    """A -> B -> D, C -> D, E -> F, and G isolated."""
    graph = nx.DiGraph([("A", "B"), ("B", "D"), ("C", "D"), ("E", "F")])
    graph.add_node("G")
    return graph


def test_clean_inputs_have_no_findings_but_the_isolated_node(graph):
    report = check_model_inputs(graph, _frame(list(graph)))
    assert report.ok
    assert [(f.level, f.subject) for f in report.findings] == [("warning", "G")]
    assert "isolated" in report.findings[0].message
    assert set(report.blame["target"]) == {"D", "F", "G"}  # the sinks
    mechanisms = report.mechanisms.set_index("node")
    assert mechanisms.loc["A", "mechanism"] == "gaussian_root" and mechanisms.loc["D", "parameters"] == 4
    assert (mechanisms["assigned"] == "auto").all() and (mechanisms["rows_available"] == 50).all()


def test_cycle_is_an_error_naming_its_nodes_and_stops_the_graph_checks():
    report = check_model_inputs(nx.DiGraph([("A", "B"), ("B", "C"), ("C", "A"), ("C", "D")]), _frame(["Z"]))
    assert not report.ok and len(report.findings) == 1
    message = report.findings[0].message
    assert "cycle" in message and all(node in message for node in "ABC") and "D" not in message
    assert report.blame.empty and report.mechanisms.empty


def test_blame_table_lists_exactly_ancestors_and_the_target(graph):
    report = check_model_inputs(graph, None, targets=["D", "B", "A"])
    blame = report.blame.set_index("target")
    assert sorted(blame.loc["D", "blameable"]) == ["A", "B", "C", "D"]
    assert sorted(blame.loc["D", "never_blamed"]) == ["E", "F", "G"]
    assert blame.loc["B", "blameable"] == ["A", "B"]
    no_ancestors = "target 'A' has no ancestors: only itself can be blamed"
    assert [f.message for f in _about(report, "warning", "A")] == [no_ancestors]
    assert report.mechanisms["rows_available"].isna().all()  # no data: graph checks only


def test_unknown_target_is_an_error(graph):
    report = check_model_inputs(graph, None, targets=["Nope", "D"])
    assert not report.ok and "'Nope' is not a node" in _about(report, "error", "Nope")[0].message
    assert list(report.blame["target"]) == ["D"]


def test_column_problems(graph):
    data = _frame(["A", "B", "C", "E", "F", "G", "timestamp"]).drop(columns="C")
    data["E"] = 3.0
    data["F"] = "slow"
    data.loc[:6, "A"] = np.nan
    data["G"] = np.nan
    report = check_model_inputs(graph, data)
    assert "graph node 'C' has no data column" in _about(report, "error", "C")[0].message
    assert "unused" in _about(report, "warning", "timestamp")[0].message
    assert "constant" in _about(report, "warning", "E")[0].message
    assert "not numeric" in _about(report, "error", "F")[0].message
    assert "only missing values" in _about(report, "error", "G")[0].message
    assert "7 missing value(s)" in _about(report, "warning", "A")[0].message
    rows = report.mechanisms.set_index("node")["rows_available"]
    assert rows["A"] == 43 and rows["B"] == 43 and pd.isna(rows["D"])  # D's parent C has no column


def test_mechanism_overrides(graph):
    data = _frame(list(graph), rows=10)
    report = check_model_inputs(graph, data, mechanisms={"D": "fourier_gaussian", "B": "cubic", "Q": "linear_gaussian",
                                                         "A": "linear_gaussian"})
    too_few = _about(report, "error", "D")[0].message
    assert "10 usable training rows" in too_few and "fourier_gaussian" in too_few
    assert "unknown mechanism family 'cubic'" in _about(report, "error", "B")[0].message
    assert "linear_student_t" in _about(report, "error", "B")[0].message  # the known families are listed
    assert "not a node of the graph" in _about(report, "error", "Q")[0].message
    assert "root node" in _about(report, "error", "A")[0].message
    assert _about(report, "warning", "F")  # 10 rows for 3 parameters: fewer than 5 per parameter
    assert report.mechanisms.set_index("node").loc["D", "assigned"] == "given"


def test_fourier_with_enough_rows_is_fine(graph):
    report = check_model_inputs(graph, _frame(list(graph), rows=400), mechanisms={"D": "fourier_gaussian"})
    assert report.ok and not _about(report, "warning", "D")


@pytest.fixture()
def files(tmp_path) -> Path:
    pd.DataFrame([("A", "B"), ("B", "D"), ("C", "D")], columns=["source", "target"]).to_csv(
        tmp_path / "graph.csv", index=False)
    _frame(["A", "B", "C", "D", "extra"]).to_csv(tmp_path / "data.csv", index_label="row")
    return tmp_path


def test_cli_warnings_only_exit_0(files, capsys):
    code = main(["check", "--graph", str(files / "graph.csv"), "--data", str(files / "data.csv"),
                 "--index-col", "row"])
    out = capsys.readouterr().out
    assert code == 0
    assert "extra" in out and "check: 0 errors, 1 warning" in out.strip().splitlines()[-1]


def test_cli_errors_exit_2(files, capsys):
    pd.read_csv(files / "data.csv").drop(columns="C").to_csv(files / "data.csv", index=False)
    code = main(["check", "--graph", str(files / "graph.csv"), "--data", str(files / "data.csv"),
                 "--index-col", "row", "--target", "D", "--mechanism", "B=cubic"])
    out = capsys.readouterr().out
    assert code == 2
    assert "'C'" in out and "cubic" in out and out.strip().splitlines()[-1].startswith("check: 2 errors")


def test_cli_cycle_is_a_finding(files, capsys):
    (files / "graph.csv").write_text("source,target\nA,B\nB,A\n")
    assert main(["check", "--graph", str(files / "graph.csv")]) == 2
    assert "cycle A -> B -> A" in capsys.readouterr().out


def test_cli_needs_config_or_graph(files, capsys):
    assert main(["check"]) == 2
    assert "exactly one of" in capsys.readouterr().err


def test_smoke_config_passes(capsys):
    assert main(["check", str(ROOT / "configs" / "smoke.yaml")]) == 0
    assert "16 cells" in capsys.readouterr().out


def test_bad_configs(tmp_path, capsys):
    (tmp_path / "bad.yaml").write_text("name: bad\nbenchmark: {familly: icml2022}\n")
    assert main(["check", str(tmp_path / "bad.yaml")]) == 2
    assert "familly" in capsys.readouterr().out
    (tmp_path / "method.yaml").write_text("name: m\nmethods: {nope: {}, circa: {wrong_option: 1}}\n"
                                          "benchmark: {family: galaxy}\n")
    report = check_config(tmp_path / "method.yaml")
    assert {f.subject for f in report.findings if f.level == "error"} == {"nope", "circa", "benchmark"}


def test_mechanism_values_are_checked_against_the_data(graph):
    data = _frame(list(graph), rows=40)
    data["B"] = (data["B"] > 0).astype(float)  # a 0/1 column: the fit will give it probit_threshold
    data["D"] = (data["D"] > 0).astype(float)
    data.loc[3, "D"] = 0.5
    report = check_model_inputs(graph, data, mechanisms={"D": "probit_threshold", "F": "censored_gaussian"})
    table = report.mechanisms.set_index("node")
    assert table.loc["B", "mechanism"] == "probit_threshold" and table.loc["B", "assigned"] == "auto"
    assert ("node 'D' has a probit_threshold mechanism, but its training value 0.5 is not 0 or 1"
            in _about(report, "error", "D")[0].message)
    assert not _about(report, "error", "F")  # a censored node without a pile-up: no bound, nothing wrong
