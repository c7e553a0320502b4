"""Fuzzing the command line with malformed inputs (hypothesis): graph files (CSV adjacency matrix, edge list, DOT),
CSV data files and YAML experiment configs, each a valid file with one to three generated corruptions.

Every input must end in one of two ways: exit status 2 with exactly one line ``bayes-rca: error: ...`` (the last
line on stderr) that names the culprit (its file, or what the file holds: the causal graph, the training data,
the outlier rows, a config key), or a correct run (exit status 0, with its results written). Never a traceback,
another exception or a hang. The counts of the last run are printed at the end of the module (``-s`` shows them)
and written to the file named by ``BAYES_RCA_FUZZ_COUNTS`` if set; docs/reliability.md reports them. The default
run is derandomised (the 'ci' profile's examples, the same every time); ``BAYES_RCA_FUZZ_EXAMPLES=N`` runs N random
examples per test instead.
"""

from __future__ import annotations

import contextlib
import copy
import io
import json
import os
import signal
import tempfile
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bayes_rca.app.cli import main

NODES = ["A", "B", "C", "D"]
EDGES = [("A", "B"), ("B", "D"), ("C", "D")]
TARGET = "D"
TIME_LIMIT_S = 120  # one CLI run; far above the 1-3 s a run takes
COUNTS: Counter = Counter()
EXAMPLES = int(os.environ.get("BAYES_RCA_FUZZ_EXAMPLES", "0"))  # more examples, random ones: a longer search
FUZZ = settings(max_examples=EXAMPLES or settings().max_examples, derandomize=not EXAMPLES, database=None,
                deadline=None, suppress_health_check=[HealthCheck.too_slow])

CELLS = ["", "nan", "NaN", "inf", "-inf", "x", "1,5", "1e308", "-1e308", "1e-320", " ", "NULL", "true", "0x1F",
         '"', "1e400", "-0", "३", "1_000", "10" * 40]
NAMES = ["", " A", "a", "A ", "B", "Z", "A;B", "\ufeffA", "0", "D\tE", '"A"', "A,B"]


def base_files(folder: Path) -> None:
    """A valid problem A -> B -> D <- C: graph files in three formats, 60 normal rows, one outlier row at D."""
    rng = np.random.default_rng(0)
    a, c = rng.normal(10.0, 2.0, 60), rng.normal(3.0, 1.0, 60)
    b = 1.2 * a + rng.normal(0.0, 1.5, 60)
    d = 1.5 * b - 0.7 * c + rng.normal(0.0, 0.7, 60)
    pd.DataFrame({"A": a, "B": b, "C": c, "D": d}).to_csv(folder / "normal.csv", index=False)
    pd.DataFrame({"A": [10.0], "B": [20.0], "C": [3.0], "D": [28.0]}).to_csv(folder / "incident.csv", index=False)
    matrix = pd.DataFrame(0, index=NODES, columns=NODES)
    for cause, effect in EDGES:
        matrix.loc[cause, effect] = 1
    matrix.to_csv(folder / "adjacency.csv")
    (folder / "edges.csv").write_text("cause,effect\n" + "".join(f"{u},{v}\n" for u, v in EDGES))
    (folder / "graph.dot").write_text("digraph {\n" + "".join(f"  {u} -> {v};\n" for u, v in EDGES) + "}\n")


# ---------------------------------------------------------------------------------------------------------------
# corruptions of a text file: each is a function of the file's text and the hypothesis data object


def _cell_edit(text: str, data: st.DataObject, delimiter: str = ",") -> str:
    lines = text.split("\n")
    row = data.draw(st.integers(0, max(len(lines) - 2, 0)))
    cells = lines[row].split(delimiter)
    column = data.draw(st.integers(0, len(cells) - 1))
    cells[column] = data.draw(st.sampled_from(CELLS + NAMES) | st.text(max_size=6))
    lines[row] = delimiter.join(cells)
    return "\n".join(lines)


def _line_edit(text: str, data: st.DataObject) -> str:
    lines = text.split("\n")
    row = data.draw(st.integers(0, max(len(lines) - 1, 0)))
    how = data.draw(st.sampled_from(["drop", "duplicate", "blank", "swap", "add_field", "drop_field"]))
    if how == "drop":
        del lines[row]
    elif how == "duplicate":
        lines.insert(row, lines[row])
    elif how == "blank":
        lines.insert(row, "")
    elif how == "swap" and row + 1 < len(lines):
        lines[row], lines[row + 1] = lines[row + 1], lines[row]
    elif how == "add_field":
        lines[row] += "," + data.draw(st.sampled_from(CELLS + NAMES))
    elif how == "drop_field":
        lines[row] = lines[row].rpartition(",")[0]
    return "\n".join(lines)


def _whole_edit(text: str, data: st.DataObject) -> str:
    how = data.draw(st.sampled_from(["bom", "semicolons", "tabs", "spaces", "crlf", "truncate", "empty", "header_only",
                                     "random", "upper", "quote"]))
    if how == "bom":
        return "\ufeff" + text
    if how == "semicolons":
        return text.replace(",", ";")
    if how == "tabs":
        return text.replace(",", "\t")
    if how == "spaces":
        return text.replace(",", ", ")
    if how == "crlf":
        return text.replace("\n", "\r\n")
    if how == "truncate":
        return text[:data.draw(st.integers(0, len(text)))]
    if how == "empty":
        return ""
    if how == "header_only":
        return text.split("\n")[0] + "\n"
    if how == "upper":
        return text.upper()
    if how == "quote":
        return text.replace(",", '",', 1)
    return data.draw(st.text(max_size=80))


def corrupt(text: str, data: st.DataObject, edits: list[Callable[[str, st.DataObject], str]]) -> str:
    """``text`` with one to three of ``edits`` applied."""
    for _ in range(data.draw(st.integers(1, 3))):
        text = data.draw(st.sampled_from(edits))(text, data)
    return text


def _dot_edit(text: str, data: st.DataObject) -> str:
    how = data.draw(st.sampled_from(["undirected", "cycle", "self_loop", "brace", "arrow", "quote", "attribute",
                                     "strict", "unknown_node", "subgraph", "comment"]))
    if how == "undirected":
        return text.replace("digraph", "graph").replace("->", "--")
    if how == "cycle":
        return text.replace("}", "  D -> A;\n}")
    if how == "self_loop":
        return text.replace("}", "  B -> B;\n}")
    if how == "brace":
        return text.replace("}", "", 1)
    if how == "arrow":
        return text.replace("->", data.draw(st.sampled_from(["-", "=>", "<-", "->->", ""])), 1)
    if how == "quote":
        return text.replace("A", '"A', 1)
    if how == "attribute":
        return text.replace(";", ' [weight="x"];', 1)
    if how == "strict":
        return "strict " + text
    if how == "unknown_node":
        return text.replace("}", "  Z -> D;\n}")
    if how == "subgraph":
        return text.replace("}", "  subgraph cluster { C -> B; }\n}")
    return text.replace("{", "{ // " + data.draw(st.text(max_size=10)) + "\n", 1)


# ---------------------------------------------------------------------------------------------------------------
# running the CLI in process


class TimeLimit(Exception):
    """A CLI run took longer than :data:`TIME_LIMIT_S` (a hang)."""


@contextlib.contextmanager
def time_limit(seconds: int) -> Iterator[None]:
    def stop(signum, frame):
        raise TimeLimit(f"the run did not return within {seconds} s")

    previous = signal.signal(signal.SIGALRM, stop)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def run_cli(argv: list[str]) -> tuple[int, str, str]:
    """``bayes-rca argv`` in this process: exit status (SystemExit caught), stdout, stderr."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err), time_limit(TIME_LIMIT_S):
        try:
            code = main(argv)
        except SystemExit as exit_:
            code = exit_.code if isinstance(exit_.code, int) else 2
    return code, out.getvalue(), err.getvalue()


def judge(kind: str, code: int, out: str, err: str, culprits: tuple[str, ...], done: Callable[[], bool]) -> None:
    """Count the outcome and assert it is a clear error naming a culprit or a correct run."""
    COUNTS["inputs", kind] += 1
    assert "Traceback" not in out + err, err[-3000:]
    if code == 0:
        assert done(), f"exit 0 without results\n{out[-2000:]}\n{err[-2000:]}"
        COUNTS["correct", kind] += 1
        return
    assert code == 2, (code, err[-3000:])
    lines = err.strip().splitlines()
    errors = [line for line in lines if line.startswith("bayes-rca: error: ")]
    assert len(errors) == 1 and lines[-1] == errors[0], err[-3000:]
    assert any(culprit in errors[0] for culprit in culprits), errors[0]
    COUNTS["clear", kind] += 1


def attribute_run(kind: str, name: str, text: str | bytes, graph: str, culprits: tuple[str, ...]) -> None:
    with tempfile.TemporaryDirectory() as folder, contextlib.chdir(folder):
        base_files(Path(folder))
        if isinstance(text, bytes):
            Path(name).write_bytes(text)
        else:
            Path(name).write_text(text, encoding="utf-8", newline="")
        code, out, err = run_cli(["attribute", "--graph", graph, "--data", "normal.csv", "--outliers", "incident.csv",
                                  "--target", TARGET, "--linear", "--draws", "10", "--no-track", "--output", "out"])
        judge(kind, code, out, err, culprits, lambda: Path("out/contributions.csv").is_file())


GRAPH_CULPRITS = ("causal graph", "graph node", "graph file")


@FUZZ
@given(st.sampled_from(["adjacency.csv", "edges.csv"]), st.data())
def test_malformed_csv_graph_files(name, data):
    with tempfile.TemporaryDirectory() as folder:
        base_files(Path(folder))
        text = (Path(folder) / name).read_text()
    text = corrupt(text, data, [_cell_edit, _line_edit, _whole_edit])
    attribute_run("graph", name, text, name, (name, *GRAPH_CULPRITS))


@FUZZ
@given(st.data())
def test_malformed_dot_graph_files(data):
    text = "digraph {\n" + "".join(f"  {u} -> {v};\n" for u, v in EDGES) + "}\n"
    text = corrupt(text, data, [_dot_edit, _dot_edit, _whole_edit])
    attribute_run("graph", "graph.dot", text, "graph.dot", ("graph.dot", *GRAPH_CULPRITS))


@FUZZ
@given(st.sampled_from(["normal.csv", "incident.csv"]), st.data())
def test_malformed_csv_data_files(name, data):
    with tempfile.TemporaryDirectory() as folder:
        base_files(Path(folder))
        text = (Path(folder) / name).read_text()
    raw = data.draw(st.integers(0, 9), label="one in ten: random bytes") == 0
    content: str | bytes = data.draw(st.binary(max_size=60)) if raw else \
        corrupt(text, data, [_cell_edit, _cell_edit, _line_edit, _whole_edit])
    role = ("training data",) if name == "normal.csv" else ("outlier data", "outlier row")
    attribute_run("data", name, content, "edges.csv", (name, *role, "data file"))


BASE_CONFIG = {"name": "fuzz", "seed": 0, "methods": {"naive": {}},
               "benchmark": {"family": "icml2022", "num_nodes": 5, "num_rows": 60, "num_outliers": 1,
                             "min_ancestors": 1},
               "execution": {"executor": "sequential", "workers": 1}}
CONFIG_KEYS = ["name", "seed", "methods", "methods.naive", "methods.random", "methods.bayes_rca.num_draws",
               "benchmark", "benchmark.family", "benchmark.num_nodes", "benchmark.num_rows", "benchmark.num_outliers",
               "benchmark.min_ancestors", "benchmark.data_root", "benchmark.rowz", "sweep", "sweep.seed",
               "sweep.benchmark.num_rows", "execution", "execution.executor", "execution.workers",
               "execution.ray_address", "tracking", "tracking.uri", "unknown"]
CONFIG_VALUES = [None, -5, 0, 1, 3, 2.5, True, "many", "", [], [1, 2], [0, -1], {}, {"a": 1}, 10 ** 30, "ray",
                 "threads", "processes", "petshop", "nope", "local", [None], float("nan")]


def _set(config: dict, key: str, value: object) -> None:
    *parents, last = key.split(".")
    node = config
    for part in parents:
        if not isinstance(node.get(part), dict):
            node[part] = {}
        node = node[part]
    node[last] = value


@FUZZ
@given(data=st.data())
def test_malformed_yaml_configs(tmp_path_factory, data):
    store = tmp_path_factory.getbasetemp() / "fuzz_store"  # one store for every example: finished cells are reused
    store.mkdir(exist_ok=True)
    config = json.loads(json.dumps(BASE_CONFIG))
    config["tracking"] = {"uri": f"sqlite:///{store / 'mlflow.db'}"}
    for _ in range(data.draw(st.integers(1, 3))):
        value = copy.deepcopy(data.draw(st.sampled_from(CONFIG_VALUES)))  # a fresh copy: never shared, never cyclic
        _set(config, data.draw(st.sampled_from(CONFIG_KEYS)), value)
    text = yaml.safe_dump(config, sort_keys=False)
    how = data.draw(st.sampled_from(["as is", "as is", "as is", "text", "tag", "alias", "recursive", "deep", "list",
                                     "tabs"]))
    if how == "text":
        text = corrupt(text, data, [_whole_edit, _line_edit])
    elif how == "tag":
        text = text.replace("seed: 0", "seed: !!python/object/apply:os.getcwd []")
    elif how == "alias":
        text = "a: &a [x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\n" \
               "c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]\n" + text.replace("seed: 0", "seed: *c")
    elif how == "recursive":
        text = text.replace("benchmark:", "benchmark: &loop", 1).replace("  family:", "  again: *loop\n  family:", 1)
    elif how == "deep":
        text = text.replace("seed: 0", "seed: " + "[" * 3000 + "]" * 3000)
    elif how == "list":
        text = "- " + text.replace("\n", "\n  ")
    elif how == "tabs":
        text = text.replace("  ", "\t", 1)
    with tempfile.TemporaryDirectory() as folder, contextlib.chdir(folder):
        Path("fuzz.yaml").write_text(text)
        code, out, err = run_cli(["experiment", "run", "fuzz.yaml", "--output", "out"])
        judge("config", code, out, err, ("fuzz.yaml", "sweep '"), lambda: "sweep parent run" in out)


@pytest.fixture(scope="module", autouse=True)
def report_counts() -> Iterator[None]:
    """Print (and write to ``BAYES_RCA_FUZZ_COUNTS``) how many inputs were tried, clear errors and correct runs."""
    yield
    kinds = sorted({kind for _, kind in COUNTS})
    table = {kind: {what: COUNTS[what, kind] for what in ("inputs", "clear", "correct")} for kind in kinds}
    table["all"] = {what: sum(COUNTS[what, kind] for kind in kinds) for what in ("inputs", "clear", "correct")}
    print(f"\nfuzzing counts: {json.dumps(table)}")
    if os.environ.get("BAYES_RCA_FUZZ_COUNTS"):
        Path(os.environ["BAYES_RCA_FUZZ_COUNTS"]).write_text(json.dumps(table, indent=1) + "\n")
