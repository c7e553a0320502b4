"""Reliability, round 2 (issue 16): inputs that were silently wrong, tracebacks or unclear errors, through the API
and the CLI. Every case is catalogued in docs/reliability.md."""

from __future__ import annotations

import os
import re
import warnings
from pathlib import Path

import networkx as nx
import numpy as np
import pandas as pd
import pytest

from bayes_rca import BayesianSCM, attribute_outliers
from bayes_rca.attribution import resolve_device
from bayes_rca.check import check_config
from bayes_rca.cli import main
from bayes_rca.data import validate_outliers, validate_training_data
from bayes_rca.errors import BayesRCAError, ConfigError, DataError, GraphError
from bayes_rca.graph_io import read_graph
from bayes_rca.harness.compare import compare
from bayes_rca.harness.config import load_config
from bayes_rca.harness.rerun import rerun
from bayes_rca.harness.runner import SweepFailed, run_experiment
from bayes_rca.mechanisms import make_mechanism
from bayes_rca.report import OUTPUT_FILES, prepare_output
from tests.conftest import TARGET
from tests.test_reliability import attribute, conjugate_families, edit_csv, files, last_error_line  # noqa: F401

GRAPH = "cause,effect\nA,B\nA,C\nB,D\nC,D\nD,E\n"  # the fixture's graph without the isolated F


def error_of(capsys, *argv: str) -> str:
    """Run ``bayes-rca argv``, check it exits with 2, and return its one error line."""
    assert main(list(argv)) == 2
    return last_error_line(capsys)


# ---------------------------------------------------------------------------------------------------------------
# silently wrong


def test_nan_in_an_adjacency_matrix_is_an_error_not_an_edge(files, capsys):
    (files / "graph.csv").write_text(",A,B\nA,0,nan\nB,0,0\n")
    message = "graph.csv, line 2: adjacency entry 'nan' for column 'B' is not a finite number; use 0 for no edge"
    with pytest.raises(GraphError, match=re.escape(message)):
        read_graph("graph.csv")
    assert attribute() == 2
    assert message in last_error_line(capsys)


def test_a_byte_order_mark_is_not_part_of_the_first_name(files, capsys):
    (files / "graph.csv").write_bytes(b"\xef\xbb\xbf" + GRAPH.replace("cause,effect\n", "").encode())
    assert sorted(read_graph("graph.csv")) == ["A", "B", "C", "D", "E"]
    (files / "adjacency.csv").write_bytes(b"\xef\xbb\xbf,A,B\nA,0,1\nB,0,0\n")
    assert list(read_graph("adjacency.csv").edges) == [("A", "B")]
    (files / "normal.csv").write_bytes(b"\xef\xbb\xbf" + (files / "normal.csv").read_bytes())
    assert attribute("--missing", "latent") == 0
    assert "marginalised" not in capsys.readouterr().err


def test_fewer_monte_carlo_samples_than_batches_is_an_error(files, capsys, fitted):
    message = "num_samples (--samples) must be an integer of at least 10: the Monte Carlo game splits its samples"
    with pytest.raises(BayesRCAError, match=re.escape(message)):
        attribute_outliers(fitted, TARGET, pd.read_csv(files / "incident.csv"), estimator="monte_carlo", num_samples=5)
    assert message in error_of(capsys, "attribute", "--graph", "graph.csv", "--data", "normal.csv", "--outliers",
                               "incident.csv", "--target", TARGET, "--no-track", "--samples", "5")


def test_a_reused_output_folder_keeps_no_earlier_results_and_logs_only_this_run(files, monkeypatch):
    pd.concat([pd.read_csv("incident.csv")] * 2, ignore_index=True).to_csv("two.csv", index=False)
    assert attribute("--outliers", "two.csv", "--linear") == 0
    assert (files / "out" / "contributions_pooled.csv").exists()
    (files / "out" / "notes.txt").write_text("mine")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{files / 'store.db'}")
    args = ["attribute", "--graph", "graph.csv", "--data", "normal.csv", "--outliers", "incident.csv", "--target",
            TARGET, "--draws", "20", "--output", "out", "--linear"]
    assert main(args) == 0
    assert not (files / "out" / "contributions_pooled.csv").exists()  # from the first run: removed
    assert (files / "out" / "notes.txt").read_text() == "mine"  # not a file of this tool: kept
    import mlflow

    client = mlflow.MlflowClient(os.environ["MLFLOW_TRACKING_URI"])
    (run,) = client.search_runs([client.get_experiment_by_name("bayes_rca-attribute").experiment_id])
    logged = sorted(item.path for item in client.list_artifacts(run.info.run_id))
    assert logged == sorted(set(OUTPUT_FILES) - {"contributions_pooled.csv"})


# ---------------------------------------------------------------------------------------------------------------
# tracebacks before: seeds, devices, output folders, executors, run ids, tuple names


@pytest.mark.parametrize("seed", ["-1", "99999999999999999999"])
def test_a_seed_out_of_range_is_an_error_before_fitting(files, capsys, seed, system):
    message = f"seed must be an integer from 0 to 18446744073709551615 (2**64 - 1), got {seed}"
    with pytest.raises(BayesRCAError, match=re.escape(message)):
        BayesianSCM(system.graph, seed=int(seed))
    assert message in error_of(capsys, "attribute", "--graph", "graph.csv", "--data", "normal.csv", "--outliers",
                               "incident.csv", "--target", TARGET, "--no-track", "--seed", seed)
    assert message in error_of(capsys, "demo", "--no-track", "--seed", seed)


@pytest.mark.parametrize("device, message", [
    ("foo", "unknown device 'foo'; use 'cpu' or 'cuda' (or 'cuda:N')"),
    ("meta", "device 'meta' cannot run the attribution; use 'cpu' or 'cuda' (or 'cuda:N')"),
])
def test_an_unknown_or_unusable_device_is_an_error(files, capsys, fitted, device, message):
    with pytest.raises(BayesRCAError, match=re.escape(message)):
        resolve_device(device)
    with pytest.raises(BayesRCAError, match=re.escape(message)):
        attribute_outliers(fitted, TARGET, pd.read_csv(files / "incident.csv"), device=device)
    assert attribute("--device", device) == 2
    assert message in last_error_line(capsys)
    assert not (files / "out").exists()


@pytest.mark.parametrize("output, message", [
    ("/proc/bayes_rca_out", "cannot write to output folder /proc/bayes_rca_out: No such file or directory"),
    ("afile", "output folder afile is an existing file, not a folder"),
])
def test_an_output_folder_that_cannot_be_written_fails_before_fitting(files, capsys, output, message):
    (files / "afile").write_text("")
    with pytest.raises(BayesRCAError, match=re.escape(message)):
        prepare_output(output)
    assert main(["attribute", "--graph", "graph.csv", "--data", "normal.csv", "--outliers", "incident.csv",
                 "--target", TARGET, "--no-track", "--linear", "--output", output]) == 2
    captured = capsys.readouterr()
    assert "Mechanisms" not in captured.out  # nothing was fitted
    assert captured.err.strip().splitlines()[-1] == f"bayes-rca: error: {message}"


def sweep_config(tmp_path: Path, execution: str = "") -> str:
    path = tmp_path / "bad.yaml"
    path.write_text(f"name: bad\nbenchmark:\n  num_nodes: 5\n  num_rows: 100\n  num_outliers: 1\n  min_ancestors: 1\n"
                    f"methods:\n  bayes_rca: {{num_draws: 20}}\n{execution}tracking:\n"
                    f"  uri: sqlite:///{tmp_path / 'store.db'}\n")
    return str(path)


@pytest.mark.parametrize("execution, message", [
    ("execution: {executor: processes, workers: 0}\n", "key 'execution.workers' must be at least 1, got 0"),
    ("execution: {executor: threads}\n",
     "key 'execution.executor' must be one of sequential, processes, ray, got 'threads'"),
])
def test_an_executor_or_worker_count_that_cannot_run_fails_at_load_and_check(tmp_path, capsys, execution, message):
    path = sweep_config(tmp_path, execution)
    with pytest.raises(ConfigError, match=re.escape(f"{path}: {message}")):
        load_config(path)
    assert message in error_of(capsys, "experiment", "run", path)
    assert not (tmp_path / "store.db").exists()  # no parent run was created, so none is left RUNNING
    assert any(message in finding.message for finding in check_config(path).findings if finding.level == "error")
    assert main(["check", path]) == 2


@pytest.mark.parametrize("action", ["compare", "rerun"])
def test_an_unknown_run_id_is_a_clear_error(tmp_path, capsys, action):
    uri = f"sqlite:///{tmp_path / 'store.db'}"
    message = f"no run with id 'deadbeef' in the MLflow store {uri}"
    with pytest.raises(BayesRCAError, match=re.escape(message)):
        compare("deadbeef", uri) if action == "compare" else list(rerun("deadbeef", uri))
    assert message in error_of(capsys, "experiment", action, "deadbeef", "--tracking-uri", uri)


def test_a_sweep_whose_every_cell_failed_exits_2(tmp_path, capsys):
    path = sweep_config(tmp_path)
    Path(path).write_text(Path(path).read_text().replace("num_rows: 100", "num_rows: -5"))
    with pytest.raises(SweepFailed, match=r"sweep 'bad': all 1 cell\(s\) run FAILED \(parent run \w+\); first error: "):
        run_experiment(path, output=tmp_path / "out", report=lambda _: None)
    line = error_of(capsys, "experiment", "run", path, "--output", str(tmp_path / "out"))
    assert re.search(r"sweep 'bad': all 1 cell\(s\) run FAILED", line)
    import mlflow

    client = mlflow.MlflowClient(f"sqlite:///{tmp_path / 'store.db'}")
    runs = client.search_runs([client.get_experiment_by_name("bad").experiment_id], "tags.role = 'sweep'")
    assert [run.info.status for run in runs] == ["FAILED"]


def test_tuple_node_names_and_multiindex_columns_are_clear_errors(system):
    graph = nx.relabel_nodes(system.graph, {node: ("svc", node) for node in system.graph})
    with pytest.raises(GraphError, match=re.escape("graph node ('svc', 'A') is a tuple; node names must be strings "
                                                   "or numbers: join its parts, e.g. 'svc/A'")):
        BayesianSCM(graph)
    data = system.sample(20, seed=0)
    data.columns = pd.MultiIndex.from_tuples([("svc", column) for column in data.columns])
    with pytest.raises(DataError, match=re.escape("training data has MultiIndex columns (2 levels, e.g. "
                                                  "('svc', 'A')); give one level of node names")):
        validate_training_data(system.graph, data)


# ---------------------------------------------------------------------------------------------------------------
# unclear before: graph formats, DOT, undirected graphs, delimiters


def test_a_two_line_edge_list_is_read_as_an_edge_list(files, capsys):
    (files / "graph.csv").write_text("A,B\nB,D\n")
    assert list(read_graph("graph.csv").edges) == [("A", "B"), ("B", "D")]
    with pytest.raises(GraphError, match=re.escape("graph.csv, line 2: adjacency entry 'D' for column 'B' is not a "
                                                   "number; the file looks like an edge list (two node names per "
                                                   "row): give --graph-format edgelist")):
        read_graph("graph.csv", "adjacency")
    assert attribute("--linear") == 0


def test_an_adjacency_matrix_read_as_an_edge_list_says_so(files, capsys):
    message = "; the file looks like an adjacency matrix: give --graph-format adjacency (or auto)"
    with pytest.raises(GraphError, match=re.escape(message)):
        read_graph("graph.csv", "edgelist")
    assert message in error_of(capsys, "attribute", "--graph", "graph.csv", "--graph-format", "edgelist", "--data",
                               "normal.csv", "--outliers", "incident.csv", "--target", TARGET, "--no-track")
    (files / "graph.csv").write_text("A,B\nA,0,1\nB,0,0\n")  # no leading empty cell
    with pytest.raises(GraphError, match=re.escape("looks like an adjacency matrix (numbers after the first column), "
                                                   "but its first row is not an empty cell followed by the names")):
        read_graph("graph.csv")


@pytest.mark.parametrize("name, text, message", [
    ("bad.dot", "digraph { A -> B; B -> ; }\n",
     "cannot parse DOT file bad.dot: line 1, column 21: Expected rbrace, found '-'"),
    ("und.dot", "graph { A -- B; B -- D; C -- D; }\n",
     "DOT file und.dot describes an undirected graph; a causal graph needs directed edges (write 'digraph' and '->')"),
    ("und.graphml", '<?xml version="1.0"?><graphml xmlns="http://graphml.graphdrawing.org/xmlns"><graph '
     'edgedefault="undirected"><node id="A"/><node id="B"/><edge source="A" target="B"/></graph></graphml>',
     'GraphML file und.graphml describes an undirected graph; a causal graph needs directed edges '
     '(edgedefault="directed")'),
])
def test_malformed_or_undirected_dot_and_graphml_are_one_line(files, capsys, name, text, message):
    (files / name).write_text(text)
    with pytest.raises(GraphError, match=re.escape(message)):
        read_graph(name)
    err_line = error_of(capsys, "attribute", "--graph", name, "--data", "normal.csv", "--outliers", "incident.csv",
                        "--target", TARGET, "--no-track")
    assert err_line == f"bayes-rca: error: {message}"
    assert capsys.readouterr().out == ""  # pydot's dump of the file is not printed


def test_delimiters_decimal_commas_and_near_miss_headers_are_named(files, capsys, system):
    normal = pd.read_csv("normal.csv")
    normal.to_csv("normal.csv", sep=";", decimal=",", index=False)
    message = ("training data has no column for graph node(s) 'A', 'B', 'C', 'D', 'E', 'F'; its column "
               "'A;B;C;D;E;F' looks like a semicolon-delimited header: the file must be comma-separated, with '.' as "
               "the decimal point")
    assert message in error_of(capsys, *attribute_args())
    normal.to_csv("normal.csv", decimal=",", index=False)  # quoted "1,5" cells
    assert re.search(r"training data has non-numeric column\(s\) 'A' \(dtype \w+\).*; its values \(e.g. '[-\d]+,\d+'\) "
                     r"have a decimal comma: write '.' as the decimal point", error_of(capsys, *attribute_args()))
    (files / "normal.csv").write_text(normal.to_csv(index=False).replace(",", ", "))  # ", "-separated: read as such
    assert attribute("--linear") == 0
    with pytest.raises(DataError, match=re.escape("training data has no column for graph node(s) 'B'; near misses "
                                                  "(spaces, case or type differ): 'B' ~ column ' b'")):
        validate_training_data(system.graph, normal.rename(columns={"B": " b"}))
    with pytest.raises(DataError, match=re.escape("0 ~ column '0' (int vs str)")):
        validate_training_data(nx.DiGraph([(0, 1)]), pd.DataFrame({"0": [1.0, 2.0], "1": [2.0, 3.0]}))


def attribute_args() -> list[str]:
    return ["attribute", "--graph", "graph.csv", "--data", "normal.csv", "--outliers", "incident.csv", "--target",
            TARGET, "--no-track", "--output", "out"]


# ---------------------------------------------------------------------------------------------------------------
# one Mechanism instance for two nodes; numeric frames of dtype object


def test_one_mechanism_instance_for_two_nodes_is_copied_per_node():
    graph = nx.DiGraph([("a", "c"), ("a", "d"), ("b", "d")])
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(2, 200))
    data = pd.DataFrame({"a": a, "b": b, "c": a + rng.normal(size=200), "d": a - b + rng.normal(size=200)})
    shared = make_mechanism("fourier_gaussian", "c")  # set up in place for its number of parents
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = BayesianSCM(graph, mechanisms={"c": shared, "d": shared}, num_draws=20, progress=False).fit(data)
        result = attribute_outliers(model, "c", data.iloc[[0]] + 3.0, num_samples=200)
    assert model.mechanisms["c"] is not model.mechanisms["d"] and model.mechanisms["c"] is not shared
    assert np.isfinite(result.contributions).all()


def test_a_numeric_frame_of_dtype_object_is_converted_and_a_non_number_named(system):
    data = system.sample(30, seed=0)
    values = validate_training_data(system.graph, data.astype(object))
    assert (values.dtypes == np.float64).all()
    np.testing.assert_array_equal(values.to_numpy(), data[list(system.graph)].to_numpy())
    assert validate_outliers(data.iloc[[0]].astype(object), ["A", "B"]).dtypes.tolist() == [np.float64] * 2
    bad = data.astype(object)
    bad.loc[4, "C"] = "slow"
    with pytest.raises(DataError, match=re.escape("training data has non-numeric column(s) 'C' (dtype object); "
                                                  "every graph node must be numeric, but row 4 holds 'slow' (str)")):
        validate_training_data(system.graph, bad)
    model = BayesianSCM(system.graph, mechanisms=conjugate_families(system.graph), num_draws=20, progress=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.fit(data.astype(object))
        assert np.isfinite(attribute_outliers(model, TARGET, system.outlier({"B": 4.0}).astype(object)).scores).all()
