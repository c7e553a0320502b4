"""Reliability, round 2 (issue 16): inputs that were silently wrong, tracebacks or unclear errors, through the API
and the CLI. Every case is catalogued in docs/reliability.md."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import types
import unittest.mock
import urllib.parse
import warnings
from pathlib import Path

import networkx as nx
import numpy as np
import pandas as pd
import pytest

from bayes_rca import BayesianSCM, attribute_outliers
from bayes_rca.app.check import check_config, check_model_inputs
from bayes_rca.app.cli import main
from bayes_rca.app.report import OUTPUT_FILES, prepare_output
from bayes_rca.app.tracking import artifact_location, default_tracking_uri
from bayes_rca.attribution.api import resolve_device
from bayes_rca.attribution.results import NOT_AN_OUTLIER_NATS
from bayes_rca.data.checks import validate_complete, validate_outliers, validate_training_data
from bayes_rca.errors import BayesRCAError, BayesRCAWarning, ConfigError, DataError, GraphError, MissingDataError
from bayes_rca.graph.io import read_graph
from bayes_rca.harness.compare import compare
from bayes_rca.harness.config import ExecutionConfig, load_config, local_ray_problem
from bayes_rca.harness.executors import execute
from bayes_rca.harness.rerun import rerun
from bayes_rca.harness.runner import SweepFailed, run_experiment
from bayes_rca.harness.tracking import SweepTracker
from bayes_rca.model.mechanisms import make_mechanism
from tests.conftest import TARGET
from tests.test_reliability import (  # noqa: F401
    attribute,
    conjugate_families,
    edit_csv,
    files,
    last_error_line,
    write_adjacency,
)

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


# ---------------------------------------------------------------------------------------------------------------
# security: no local Ray instance, whose servers would listen on every interface

LOCAL_RAY = ("executor 'ray' without execution.ray_address would start a local Ray instance, whose GCS, raylet, "
             "worker and driver servers listen on every network interface (Ray cannot bind them to 127.0.0.1 only); "
             "on one machine use executor: processes, or give ray_address of a Ray cluster you have secured")


def ray_started() -> bool:
    ray = sys.modules.get("ray")
    return ray is not None and ray.is_initialized()


@pytest.mark.parametrize("execution", ["execution: {executor: ray}\n",
                                       "execution: {executor: ray, ray_address: local}\n"])
def test_a_local_ray_instance_is_refused_before_anything_starts(tmp_path, capsys, execution):
    path = sweep_config(tmp_path, execution)
    with pytest.raises(ConfigError, match=re.escape(f"{path}: {LOCAL_RAY}")):
        load_config(path)
    assert error_of(capsys, "experiment", "run", path) == f"bayes-rca: error: {path}: {LOCAL_RAY}"
    assert not (tmp_path / "store.db").exists()  # refused at load: no parent run, no Ray
    assert not ray_started()
    assert any(LOCAL_RAY in finding.message for finding in check_config(path).findings if finding.level == "error")
    assert main(["check", path]) == 2
    with pytest.raises(ConfigError, match=re.escape(LOCAL_RAY)):  # the executor itself, called directly
        next(execute([], "ray", 2, None, lambda cell: None))
    assert not ray_started()
    config, _ = load_config(path, ["execution.ray_address=10.0.0.5:6379"])  # a cluster of the user's: accepted
    assert config.execution.ray_address == "10.0.0.5:6379"


def test_the_ray_executor_only_connects_to_a_given_cluster(monkeypatch):
    calls = []
    fake = types.SimpleNamespace(is_initialized=lambda: False, init=lambda **kwargs: calls.append(kwargs),
                                 remote=lambda **options: lambda function: function)
    monkeypatch.setitem(sys.modules, "ray", fake)
    assert list(execute([], "ray", 2, "10.0.0.5:6379", lambda cell: None)) == []
    assert calls == [{"address": "10.0.0.5:6379", "log_to_driver": False}]
    for address in (None, "", "local"):
        with pytest.raises(ConfigError, match=re.escape(LOCAL_RAY)):
            list(execute([], "ray", 2, address, lambda cell: None))
    assert len(calls) == 1  # ray.init was never called to start a local instance
    fake.is_initialized = lambda: True  # Ray started by the caller (its own choice): used as it is
    assert local_ray_problem(ExecutionConfig("ray")) is None


RAY_LISTENERS = r"""
import json, os, re, subprocess, time
import ray
ray.init(num_cpus=1, include_dashboard=False, log_to_driver=False, _node_ip_address="127.0.0.1")
ray.get(ray.remote(lambda: 0).remote())
time.sleep(1)
parents = {}
for entry in os.listdir("/proc"):
    if entry.isdigit():
        try:
            parents[int(entry)] = int(open(f"/proc/{entry}/stat").read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            pass
ours, grew = {os.getpid()}, True
while grew:
    more = {pid for pid, parent in parents.items() if parent in ours} - ours
    ours |= more
    grew = bool(more)
listeners = []
for line in subprocess.run(["ss", "-ltnpH"], capture_output=True, text=True).stdout.splitlines():
    if any(int(pid) in ours for pid in re.findall(r"pid=(\d+)", line)):
        listeners.append([line.split()[3], re.search(r'\(\("([^"]+)"', line).group(1)])
ray.shutdown()
print(json.dumps(listeners))
"""


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("ss") is None, reason="needs ss (iproute2) to list listening sockets")
def test_a_local_ray_instance_listens_on_every_interface_which_is_why_it_is_refused(tmp_path):
    """The reason for the refusal, measured: even with ``_node_ip_address="127.0.0.1"`` and no dashboard, Ray's
    servers listen on all interfaces. If this fails, Ray binds to loopback now and local_ray_problem can go."""
    pytest.importorskip("ray")
    done = subprocess.run([sys.executable, "-c", RAY_LISTENERS], capture_output=True, text=True, timeout=300,
                          cwd=tmp_path, env={**os.environ, "RAY_USAGE_STATS_ENABLED": "0"})
    assert done.returncode == 0, done.stderr[-3000:]
    listeners = json.loads(done.stdout.strip().splitlines()[-1])
    processes = {name for _, name in listeners}
    assert {"gcs_server", "raylet"} <= processes, listeners
    loopback = ("127.0.0.1:", "[::1]:", "[::ffff:127.0.0.1]:")
    exposed = [(address, name) for address, name in listeners if not address.startswith(loopback)]
    assert {"gcs_server", "raylet"} <= {name for _, name in exposed}, listeners


# ---------------------------------------------------------------------------------------------------------------
# misleading but running: gaps under --missing error, near-constant columns, not-an-outlier rows, MLflow stores


GAP_MESSAGE = ("training data row 3 has a missing value in column 'B', the first of 2 gap(s) (in column(s) 'B', "
               "'D')")
MISSING_HINT = ("(--missing impute or latent drops nodes without data from the graph and imputes or infers missing "
                "values)")


def test_training_gaps_stop_missing_error_at_the_first_gap(files, capsys, system):
    edit_csv(files / "normal.csv", lambda f: f.assign(B=f["B"].where(f.index != 3), D=f["D"].where(f.index != 7)))
    assert error_of(capsys, *attribute_args()) == f"bayes-rca: error: {GAP_MESSAGE} {MISSING_HINT}"
    assert not (files / "out").exists()  # before the fit
    with pytest.raises(MissingDataError, match=re.escape(GAP_MESSAGE)) as raised:
        validate_complete(pd.read_csv("normal.csv")[list(system.graph)])
    assert raised.value.nodes == ("B", "D")
    assert attribute("--missing", "impute", "--linear") == 0  # the modes that fill gaps
    # the API fits each node on its complete rows, as documented (bayes_rca.data.checks)
    model = BayesianSCM(system.graph, mechanisms=conjugate_families(system.graph), num_draws=20,
                        progress=False).fit(pd.read_csv("normal.csv"))
    assert model.fit_report_.loc[["A", "B", "D"], "rows"].tolist() == [80, 79, 78]


@pytest.mark.parametrize("edit, message", [
    # errors --missing cannot fix: no hint
    (lambda d: edit_csv(d / "normal.csv", lambda f: f.assign(A=f["A"].where(f.index != 3, np.inf), E=np.nan)),
     "training data has infinite values in column(s) 'A'"),
    (lambda d: edit_csv(d / "incident.csv", lambda f: f.assign(D=np.nan)),
     "outlier row 0 has a missing value in column 'D', the target: the value to explain cannot be inferred "
     "(missing values of its ancestors can)"),
    (lambda d: edit_csv(d / "normal.csv", lambda f: f.drop(columns="D")),
     "training data has no column for graph node(s) 'D'"),
    (lambda d: edit_csv(d / "normal.csv", lambda f: f.assign(D=f["D"].where(f.index < 5))),
     "training data row 5 has a missing value in column 'D', the first of 75 gap(s) (in column(s) 'D')"),
    # errors it fixes: the hint, and nothing about the target said of an ancestor
    (lambda d: edit_csv(d / "incident.csv", lambda f: f.assign(A=np.nan)),
     f"outlier row 0 has a missing value in column 'A' {MISSING_HINT}"),
    (lambda d: edit_csv(d / "normal.csv", lambda f: f.drop(columns="C")),
     f"training data has no column for graph node(s) 'C' {MISSING_HINT}"),
    (lambda d: edit_csv(d / "normal.csv", lambda f: f.assign(E=np.nan)),
     f"training data column(s) 'E' contain only missing values {MISSING_HINT}"),
    (lambda d: edit_csv(d / "normal.csv", lambda f: f.assign(D=f["D"].where(f.index != 5))),
     f"training data row 5 has a missing value in column 'D', the first of 1 gap(s) (in column(s) 'D') "
     f"{MISSING_HINT}"),
], ids=["inf", "target in outlier", "target column", "target too sparse", "ancestor in outlier", "column",
        "all-NaN", "target gap"])
def test_the_missing_hint_only_where_missing_would_fix_it(files, capsys, edit, message):
    edit(files)
    assert error_of(capsys, *attribute_args()) == f"bayes-rca: error: {message}"


def test_an_ancestor_s_missing_outlier_value_is_not_called_the_target(system):
    row = system.outlier({"B": 4.0}).assign(A=np.nan)
    with pytest.raises(MissingDataError, match=r"^outlier row 0 has a missing value in column 'A'$"):
        validate_outliers(row, ["A", "B", "C", "D"])
    with pytest.raises(MissingDataError, match=re.escape("outlier row 0 has a missing value in column 'D', the "
                                                         "target: the value to explain cannot be inferred")):
        validate_outliers(row.assign(D=np.nan), ["A", "B", "C", "D"], ["A", "B", "C"], target="D")


def near_constant(system, rows: int = 80) -> pd.DataFrame:
    data = system.sample(rows, seed=1)
    return data.assign(D=5.0 + 1e-12 * np.random.default_rng(0).standard_normal(rows))


def test_a_nearly_constant_column_is_announced_before_fitting(files, capsys, system):
    data = near_constant(system)
    sd = data["D"].std()
    message = (f"training data column(s) 'D' (sd {sd:.3g}) are nearly constant: they vary by less than 1e-09 of their "
               "largest absolute value, so an outlier value off by more than rounding is millions of standard "
               "deviations out and gets an enormous score (z^2/2 nats); round such a column to make it constant, or "
               "bound the scores with max_nats (--max-nats)")
    model = BayesianSCM(system.graph, mechanisms=conjugate_families(system.graph), num_draws=20, progress=False)
    with pytest.warns(BayesRCAWarning, match=re.escape(message)):
        with unittest.mock.patch("bayes_rca.model.scm._fit_node", side_effect=AssertionError("fitted before the warning")):
            with pytest.raises(AssertionError, match="fitted before the warning"):
                model.fit(data)
    report = check_model_inputs(system.graph, data)
    assert [f.message for f in report.findings if f.subject == "D"] == [message]
    data.to_csv("normal.csv", index=False)
    assert attribute("--linear", "--max-nats", "30") == 0
    assert f"bayes-rca: warning: {message}" in capsys.readouterr().err.splitlines()
    with warnings.catch_warnings():  # a column in tiny units varies, relative to its size, as much as any
        warnings.simplefilter("error", BayesRCAWarning)
        small = system.sample(80, seed=1).assign(D=1e-14 * data["A"])
        BayesianSCM(system.graph, num_draws=20, progress=False).fit(small)


def test_a_row_that_is_not_an_outlier_is_announced(files, capsys, fitted, training_data):
    typical = training_data.mean().to_frame().T
    with pytest.warns(BayesRCAWarning, match=r"not an outlier at 'D': row\(s\) 0 \(0\.\d+ nats\) have an IT score "
                                             r"\(posterior median\) below 1 nat, so more than a third of normal "
                                             r"operation is at least as extreme there; their contributions rank "
                                             r"ordinary variation, not a root cause"):
        result = attribute_outliers(fitted, TARGET, typical)
    assert result.not_outliers().index.tolist() == [0] and result.not_outliers().iloc[0] < NOT_AN_OUTLIER_NATS
    typical.to_csv("incident.csv", index=False)
    assert attribute("--linear") == 0
    captured = capsys.readouterr()
    assert re.search(r"^not an outlier at 'D': row\(s\) 0 \(", captured.out, re.MULTILINE)
    assert re.search(r"^bayes-rca: warning: not an outlier at 'D'", captured.err, re.MULTILINE)


def test_mlflow_artifacts_go_next_to_the_store_not_into_the_working_folder(files, monkeypatch, capsys, tmp_path):
    store = tmp_path / "elsewhere" / "store.db"
    store.parent.mkdir()
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{store}")
    args = ["attribute", "--graph", "graph.csv", "--data", "normal.csv", "--outliers", "incident.csv", "--target",
            TARGET, "--draws", "20", "--output", "out", "--linear"]
    work = files / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    assert main([arg if not arg.endswith(".csv") else f"../{arg}" for arg in args]) == 0
    assert f"in sqlite:///{store}" in " ".join(capsys.readouterr().out.split())
    assert sorted(path.name for path in work.iterdir()) == ["out"]  # no mlflow.db, no mlartifacts here
    import mlflow

    client = mlflow.MlflowClient(f"sqlite:///{store}")
    experiment = client.get_experiment_by_name("bayes_rca-attribute")
    assert experiment.artifact_location == (store.parent / "mlartifacts").as_uri()
    (run,) = client.search_runs([experiment.experiment_id])
    artifacts = Path(urllib.parse.urlparse(run.info.artifact_uri).path)
    assert artifacts.is_relative_to(store.parent / "mlartifacts") and (artifacts / "contributions.csv").is_file()
    # the sweeps likewise, and a relative SQLite path is relative to the working folder
    tracker = SweepTracker("sweep", {"name": "sweep"}, f"sqlite:///{store}")
    assert client.get_experiment(tracker.experiment_id).artifact_location == (store.parent / "mlartifacts").as_uri()
    assert artifact_location("sqlite:///sub/x.db") == (work / "sub" / "mlartifacts").as_uri()
    assert artifact_location("http://127.0.0.1:5000") is None and artifact_location(f"file://{tmp_path}") is None


# ---------------------------------------------------------------------------------------------------------------
# "no column" messages that hide a type mismatch


def test_a_type_mismatch_of_node_names_and_columns_is_named_everywhere(files, capsys, system):
    numbered = nx.relabel_nodes(system.graph, {node: k for k, node in enumerate(system.graph)})
    data = system.sample(40, seed=0)
    data.columns = [str(k) for k in range(len(data.columns))]
    hint = "near misses (spaces, case or type differ): 0 ~ column '0' (int vs str)"
    for call in (lambda: validate_training_data(numbered, data), lambda: BayesianSCM(numbered).fit(data)):
        with pytest.raises(DataError, match=re.escape(hint)):
            call()
    stringy = nx.relabel_nodes(numbered, str)
    with pytest.raises(DataError, match=re.escape("'0' ~ column 0 (str vs int)")):  # the other way round
        validate_training_data(stringy, data.set_axis(range(len(data.columns)), axis=1))
    model = BayesianSCM(stringy, mechanisms=conjugate_families(stringy), num_draws=20, progress=False).fit(data)
    with pytest.raises(DataError, match=re.escape("outlier data has no column for graph node(s) '0', '1', '2', '3'; "
                                                  "near misses (spaces, case or type differ): '0' ~ column 0 (str "
                                                  "vs int)")):
        attribute_outliers(model, "3", data.iloc[[0]].set_axis(range(len(data.columns)), axis=1))
    findings = check_model_inputs(numbered, data).findings
    assert any(f.level == "error" and hint in f.message for f in findings), findings
    # on the command line node names and columns are both read as text: no mismatch can arise
    write_adjacency(stringy, files / "graph.csv")
    data.to_csv("normal.csv", index=False)
    data.iloc[[0]].assign(**{"3": data["3"].iloc[0] + 5}).to_csv("incident.csv", index=False)
    assert attribute("--linear", target="3") == 0


# ---------------------------------------------------------------------------------------------------------------
# found by the fuzzing test (tests/test_fuzz_inputs.py)


def test_a_header_one_name_short_is_an_error_not_a_shift(files, capsys):
    (files / "incident.csv").write_text("A,B,C,D,E,F\n10,20,3,28,1,2,x\n")  # pandas would make 10 the row label
    assert error_of(capsys, *attribute_args()) == (
        "bayes-rca: error: CSV file incident.csv: its rows have more fields than its header has names (6), so each "
        "row's first field(s) would become its label and its values would move to the left; name every column (or "
        "give --index-col for a column of row labels)")


@pytest.mark.parametrize("where", ["normal.csv", "incident.csv"])
def test_values_too_large_to_square_are_errors_before_fitting(files, capsys, system, where):
    edit_csv(files / where, lambda f: f.assign(A=f["A"].where(f.index != 0, 1e308)))
    what = "training data" if where == "normal.csv" else "outlier data"
    message = (f"{what} row 0 has the value 1e+308 in column 'A', beyond +-1e+100: its square overflows; rescale the "
               "column (other units)")
    assert error_of(capsys, *attribute_args()) == f"bayes-rca: error: {message}"  # was: non-finite contribution
    frame = pd.read_csv(where)
    with pytest.raises(DataError, match=re.escape(message)):
        (validate_training_data(system.graph, frame) if where == "normal.csv" else
         validate_outliers(frame, ["A", "B", "C", "D"]))
    if where == "normal.csv":
        assert message in [f.message for f in check_model_inputs(system.graph, frame).findings if f.level == "error"]


@pytest.mark.parametrize("text, message", [
    ("name: rec\nbenchmark: &b {family: icml2022, again: *b}\n",
     "key 'benchmark.again' refers back to key 'benchmark' (a recursive YAML alias)"),
    ("name: bomb\na: &a [x, x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
     "c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\nd: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]\n"
     "e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]\nf: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e, *e]\n"
     "g: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f, *f]\nh: &h [*g, *g, *g, *g, *g, *g, *g, *g, *g, *g]\n"
     "methods: {naive: {x: *h}}\nseed: *h\n",
     "key 'e' expands to more than 100000 values (YAML aliases of aliases?)"),
    ("name: deep\nseed: " + "[" * 3000 + "]" * 3000 + "\n", "the config is nested too deeply"),
])
def test_recursive_exploding_or_deep_yaml_is_one_line_at_once(tmp_path, capsys, text, message):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=re.escape(f"{path}: {message}")):
        load_config(path)
    assert main(["check", str(path)]) == 2
    assert [f.message for f in check_config(path).findings] == [f"{path}: {message}"]
    assert error_of(capsys, "experiment", "run", str(path)) == f"bayes-rca: error: {path}: {message}"
    with pytest.raises(ConfigError, match=re.escape("override 'seed=&s [*s]': key 'seed.0' refers back to key "
                                                    "'seed' (a recursive YAML alias)")):
        load_config(sweep_config(tmp_path), ["seed=&s [*s]"])


def test_a_graph_node_name_with_a_line_break_is_a_parse_error(files, capsys):
    (files / "g.dot").write_text("digraph {\n  A <- B;\n  B <- D;\n  C -> D;\n  D -> A;\n}\n")  # a node '<- B;...'

    message = ("graph file g.dot has a node name with an unprintable character (a line break, a control character "
               "or a byte-order mark): '<- B;\\n  B <- D;\\n  C -> D;\\n  D ->'; check the file's syntax")
    with pytest.raises(GraphError, match=re.escape(message)):
        read_graph("g.dot")
    assert error_of(capsys, "attribute", "--graph", "g.dot", "--data", "normal.csv", "--outliers", "incident.csv",
                    "--target", TARGET, "--no-track") == f"bayes-rca: error: {message}"


def test_row_labels_are_printed_as_plain_numbers(files, capsys):
    edit_csv(files / "normal.csv", lambda f: f.assign(t=range(1000, 1080), B=f["B"].where(f.index != 3)))
    edit_csv(files / "incident.csv", lambda f: f.assign(t=[2000]))
    line = error_of(capsys, *attribute_args(), "--index-col", "t")
    assert line.startswith("bayes-rca: error: training data row 1003 has a missing value in column 'B'"), line


def test_logging_leaves_mlflow_s_global_tracking_uri_alone_and_a_bad_store_fails_first(files, capsys, monkeypatch,
                                                                                       tmp_path):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    SweepTracker("sweep", {"name": "sweep"}, f"sqlite:///{tmp_path / 'a.db'}")  # mlflow.set_tracking_uri set it
    assert "MLFLOW_TRACKING_URI" not in os.environ  # so the next default store was the last one used
    assert default_tracking_uri() == f"sqlite:///{files / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "false")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "many")  # a file store, which MLflow 3 refuses
    assert main([*[arg for arg in attribute_args() if arg != "--no-track"], "--linear"]) == 2
    captured = capsys.readouterr()
    assert captured.err.strip().splitlines()[-1].startswith("bayes-rca: error: cannot use the MLflow store 'many': ")
    assert "Mechanisms" not in captured.out  # refused before the fit


@pytest.mark.parametrize("extra, message", [
    (("--tail-df", "-1"), "--tail-df must be positive, got -1.0"),
    (("--max-nats", "0"), "--max-nats must be positive, got 0.0"),
    (("--mechanism", "D=linear_student_t", "--estimator", "analytic"),
     "--estimator analytic needs linear-Gaussian mechanisms; not so for {'D': 'linear_student_t'} (--mechanism)"),
])
def test_game_options_that_cannot_hold_fail_before_fitting(files, capsys, extra, message):
    assert main([*attribute_args(), *extra]) == 2
    captured = capsys.readouterr()
    assert "Mechanisms" not in captured.out and "fitting mechanisms" not in captured.err  # nothing was fitted
    assert captured.err.strip().splitlines()[-1] == f"bayes-rca: error: {message}"
