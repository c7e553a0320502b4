"""The PetShop loader, the real-data benchmark and a harness cell on it.

Most tests build a small scenario folder of the PetShop layout (with a ``test`` split, which the shared copy
lacks); the last ones run on the shared data set and are skipped, with the reason, where ``../shared`` is absent.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bayes_rca.data.datasets import load_scenario
from bayes_rca.data.tables import read_metrics
from bayes_rca.errors import DataError
from bayes_rca.harness.cell import run_cell
from bayes_rca.harness.config import expand_cells
from bayes_rca.harness.real_data import petshop_benchmark, specificity_points

SHARED = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "petshop"
needs_shared = pytest.mark.skipif(not (SHARED / "low_traffic").is_dir(),
                                  reason=f"the PetShop data set is not at {SHARED.resolve()} (../shared absent)")

# call graph: Site calls Search and Db; Search calls Db; Cache is called by nobody and never reports
CALLS = {("Site", "Search"), ("Site", "Db"), ("Search", "Db")}
SERVICES = ["Site", "Search", "Db", "Cache"]


def _write_metrics(path: Path, frame: pd.DataFrame) -> None:
    """A metrics file of the PetShop layout: header rows service / metric / statistic, index unix_timestamp."""
    path.parent.mkdir(parents=True, exist_ok=True)
    columns = pd.MultiIndex.from_tuples([(service, "latency", "Average") for service in frame.columns],
                                        names=["microservice", "metric", "statistic"])
    pd.DataFrame(frame.to_numpy(), index=pd.Index(frame.index, name="unix_timestamp"), columns=columns).to_csv(path)


def _latencies(rng: np.random.Generator, rows: int, search_delay: float = 0.0) -> pd.DataFrame:
    db = 0.02 + 0.002 * rng.standard_normal(rows)
    search = 0.05 + db + 0.003 * rng.standard_normal(rows) + search_delay
    site = 0.1 + search + db + 0.004 * rng.standard_normal(rows)
    return pd.DataFrame({"Site": site, "Search": search, "Db": db, "Cache": np.nan})


@pytest.fixture(scope="module")
def scenario(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("petshop") / "tiny"
    root.mkdir()
    adjacency = pd.DataFrame(0.0, index=SERVICES, columns=SERVICES)
    for caller, callee in CALLS:
        adjacency.loc[caller, callee] = 1.0
    adjacency.to_csv(root / "graph.csv")
    rng = np.random.default_rng(0)
    normal = _latencies(rng, 200)
    normal.loc[rng.choice(200, 20, replace=False), "Db"] = np.nan  # windows without traffic
    normal.index = 1_600_000_000 + 300 * np.arange(200)
    _write_metrics(root / "noissue" / "metrics.csv", normal)
    for number, delay in enumerate([0.5, 1.0]):
        issue = _latencies(rng, 5, search_delay=delay)
        issue.iloc[2, issue.columns.get_loc("Db")] = np.nan if number == 1 else issue.iloc[2]["Db"]
        issue.index = 1_700_000_000 + 300 * np.arange(5) + 100_000 * number
        folder = root / "test" / f"issue_{number}"
        _write_metrics(folder / "metrics.csv", issue)
        target = {"target": {"node": "Site", "metric": "latency", "agg": "Average",
                             "timestamp": int(issue.index[1]) + 10},
                  "root_cause": {"node": "Search", "metric": None}}
        (folder / "target.json").write_text(json.dumps(target))
    return root


def test_loader_finds_any_split_and_the_analysed_row(scenario: Path) -> None:
    loaded = load_scenario(scenario)
    assert list(loaded.issues) == ["test"]
    issues = loaded.select("test")
    assert [issue.name for issue in issues] == ["issue_0", "issue_1"]
    assert issues[0].row_position == 2  # the first row at or after the target's timestamp
    assert set(loaded.causal_graph.edges) == {(callee, caller) for caller, callee in CALLS}
    with pytest.raises(DataError, match="no split 'train'; found: test"):
        loaded.select("train")


def test_loader_errors_name_the_file(tmp_path: Path, scenario: Path) -> None:
    with pytest.raises(DataError, match="does not exist"):
        load_scenario(tmp_path / "nowhere")
    bad = tmp_path / "bad.csv"
    bad.write_text("a,b\n1,x\n")
    with pytest.raises(DataError, match="bad.csv"):
        read_metrics(bad)


def test_benchmark_marginalises_silent_nodes_and_imputes_the_rest(scenario: Path) -> None:
    bench = petshop_benchmark(scenario.parent, "tiny", "test", "latency")
    assert "Cache" not in bench.graph  # never observed: left out of the model
    assert set(bench.graph.edges) == {("Search", "Site"), ("Db", "Site"), ("Db", "Search")}
    assert not bench.train.isna().any().any()
    assert [case.root_cause for case in bench.cases] == ["Search", "Search"]
    assert len(bench.normal_cases) == len(specificity_points(200)) == 5
    first = bench.normal_cases[0]
    assert len(first.train) == 100 and len(first.row) == 1
    # the data as measured, for a method that uses_raw_data (mad_traversal): every node, gaps kept, the window
    # from the third row on (issues) and every normal row from the split's third on (specificity checks)
    assert "Cache" in bench.raw_graph and bench.raw_train["Db"].isna().sum() == 20
    assert bench.raw_train["Cache"].isna().all()
    assert [len(case.raw_rows) for case in bench.cases] == [3, 3] and np.isnan(bench.cases[1].raw_rows["Db"].iloc[0])
    assert (first.start, len(first.raw_train), len(first.raw_rows)) == (2, 100, 98)
    pd.testing.assert_frame_equal(first.raw_rows.iloc[[0]], first.observed_row.reindex(columns=first.window.columns))
    with pytest.raises(DataError, match="no issue with target metric 'availability'"):
        petshop_benchmark(scenario.parent, "tiny", "test", "availability")


def test_cell_scores_recall_and_specificity(scenario: Path) -> None:
    raw = {"name": "tiny", "methods": {"bayes_rca_linear": {"num_draws": 50}, "mad_traversal": {}, "naive": {},
                                       "bayes_rca": {"mechanisms": "linear", "missing": "latent", "num_draws": 50}},
           "benchmark": {"family": "petshop", "data_root": str(scenario.parent), "scenario": "tiny",
                         "split": "test", "metric": "latency"}}
    results = {cell["method"]: run_cell(cell) for cell in expand_cells(raw)}
    for result in results.values():
        assert result.error is None, result.error
        assert result.metrics["failed_cases"] == 0
        assert 0 <= result.metrics["specificity"] <= 1
    # a half-second delay at Search is thousands of its sds: every method that models it finds it
    assert results["bayes_rca_linear"].metrics["top1_recall"] == 1.0
    assert results["bayes_rca"].metrics["top1_recall"] == 1.0  # issue_1's Db is missing: inferred, not imputed
    assert results["mad_traversal"].metrics["top1_recall"] == 1.0
    assert results["naive"].metrics["specificity"] == 0.0  # it cannot say "no root cause"
    checks = pd.read_csv(pd.io.common.BytesIO(results["bayes_rca_linear"].artifacts["specificity.csv"]))
    assert len(checks) == 5 and checks["error"].isna().all()


@needs_shared
def test_shared_loader_reads_the_published_layout() -> None:
    loaded = load_scenario(SHARED / "low_traffic")
    assert "train" in loaded.issues and len(loaded.select("train")) == 8
    assert {issue.row_position for issue in loaded.select("train")} == {2}  # the authors' third row
    assert loaded.causal_graph.number_of_nodes() == 42


@needs_shared
def test_shared_issue_end_to_end() -> None:
    from bayes_rca.harness.methods import make_method

    bench = petshop_benchmark(SHARED, "low_traffic", "train", "latency", specificity=False)
    method = make_method("bayes_rca_linear", num_draws=50).fit(bench.graph, bench.train)
    case = bench.cases[0]
    answer = method.attribute(case.target, case.row)
    assert np.isfinite(answer.scores).all()
    assert answer.scores.idxmax() == case.root_cause == "PetSearch_AWS::ECS::Fargate"


def test_check_reports_a_missing_data_root_and_split(tmp_path: Path, scenario: Path) -> None:
    from bayes_rca.app.check import check_config

    config = tmp_path / "petshop.yaml"
    config.write_text("name: p\nmethods: {naive: {}}\nbenchmark: {family: petshop, data_root: /nowhere}\n")
    report = check_config(config)
    assert not report.ok
    assert any(f.level == "error" and "does not exist" in f.message for f in report.findings)
    config.write_text(f"name: p\nmethods: {{naive: {{}}}}\nbenchmark: {{family: petshop, data_root: {scenario.parent},"
                      " scenario: tiny, split: train}\n")
    report = check_config(config)
    assert any(f.level == "error" and "no split 'train'; found: test" in f.message for f in report.findings)
