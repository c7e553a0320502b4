"""The ``distribution_change`` family of the harness: injected changes, change methods, metrics, sweeps."""

from __future__ import annotations

import math
from pathlib import Path

import mlflow
import networkx as nx
import numpy as np
import pandas as pd
import pytest
import yaml

from bayes_rca.app.check import check_config
from bayes_rca.change.api import attribute_distribution_change
from bayes_rca.errors import BayesRCAError
from bayes_rca.graph.dag import blameable_nodes
from bayes_rca.harness import metrics
from bayes_rca.harness.cell import run_cell
from bayes_rca.harness.change_benchmark import CHANGE_FAMILY, make_change_case
from bayes_rca.harness.change_cell import score_change
from bayes_rca.harness.change_methods import CHANGE_METHODS, ChangeAttribution, ChangeMethod, make_change_method
from bayes_rca.harness.compare import cell_runs
from bayes_rca.harness.config import CHANGE_KINDS
from bayes_rca.harness.methods import make_method
from bayes_rca.harness.rerun import rerun
from bayes_rca.harness.runner import run_experiment

REPO = Path(__file__).resolve().parents[2]


def _means(system) -> pd.Series:
    """The node means of a linear-Gaussian system (its values at zero noise)."""
    zero = pd.DataFrame(np.zeros((1, system.graph.number_of_nodes())), columns=list(system.graph))
    return system.propagate(zero).iloc[0]


@pytest.mark.parametrize("kind", CHANGE_KINDS)
def test_the_family_injects_each_kind_where_expected(kind):
    for seed in range(4):
        case = make_change_case(seed, "mean", num_nodes=8, min_ancestors=4, num_rows=400, max_changes=2,
                                kinds=[kind])
        assert 1 <= len(case.changes) <= 2 and set(case.changes) <= set(case.players)
        assert set(case.changes.values()) == {kind}
        old, new = case.old, case.new
        for node in case.graph:
            edges = [(parent, node) for parent in case.graph.predecessors(node)]
            ratios = [new.coefficients[e] / old.coefficients[e] for e in edges]
            sd_ratio = new.noise_sd[node] / old.noise_sd[node]
            shift = (new.intercepts[node] - old.intercepts[node]) / old.noise_sd[node]
            if node not in case.changes:  # untouched mechanisms are the same in both periods
                assert ratios == [1.0] * len(edges) and sd_ratio == 1.0 and shift == 0.0
            elif kind == "coefficient":  # one parent's weight x U(1.3, 2)
                changed = [r for r in ratios if r != 1.0]
                assert len(changed) == 1 and 1.3 <= changed[0] <= 2.0 and sd_ratio == 1.0 and shift == 0.0
            elif kind == "noise_scale":
                assert 1.5 <= sd_ratio <= 2.5 and ratios == [1.0] * len(edges) and shift == 0.0
                residual = case.new_data[node] - new.intercepts[node] - sum(
                    new.coefficients[e] * case.new_data[e[0]] for e in edges)
                assert residual.std() == pytest.approx(new.noise_sd[node], rel=0.15)  # the data follow
            else:  # a root's mean moved by U(0.5, 1.5) noise sds
                assert not edges and 0.5 <= abs(shift) <= 1.5 and sd_ratio == 1.0
                moved = case.new_data[node].mean() - case.old_data[node].mean()
                assert moved == pytest.approx(shift * old.noise_sd[node], abs=0.3 * old.noise_sd[node])
        # the exact contributions: efficiency (the mean's total change), zero off the players
        truth = case.truth
        assert truth.drop(case.players).abs().max() == 0.0
        total = _means(new)[case.target] - _means(old)[case.target]
        assert truth.sum() == pytest.approx(total, abs=1e-9)
        if kind == "noise_scale":  # a changed noise scale does not move the mean: nothing is relevant
            assert case.relevant == [] and truth.abs().max() < 1e-12
        # the no-change case is a second sample of the old period
        assert not np.allclose(case.same_data.to_numpy(), case.old_data.to_numpy())


def test_the_kl_truth_of_a_root_shift_is_the_closed_form():
    case = make_change_case(2, "kl", num_nodes=8, min_ancestors=4, num_rows=50, max_changes=1,
                            kinds=["root_shift"])
    (root,) = case.changes
    old_model = case.old.oracle_model()
    variance = attribute_distribution_change(old_model, old_model, case.target, "mean").old_moments[0, 1]
    shift = _means(case.new)[case.target] - _means(case.old)[case.target]
    assert case.truth[root] == pytest.approx(shift**2 / (2 * variance), rel=1e-9)  # KL of a mean shift
    assert case.threshold == pytest.approx(0.005)
    assert case.relevant == ([root] if case.truth[root] >= 0.005 else [])


def test_metrics_on_a_hand_made_case():
    players = ["A", "B", "C", "T"]
    truth = pd.Series({"A": 1.0, "B": 0.0, "C": 0.5, "T": 0.0, "U": 0.0})
    scores = pd.Series({"A": 0.9, "B": 0.7, "U": 0.3, "C": 0.1, "T": 0.05})
    point = pd.Series({"A": 0.9, "B": 0.2, "C": 0.1, "T": 0.0, "U": 0.0})
    draws = pd.DataFrame({"A": [0.8, 0.9, 1.1], "B": [-0.1, 0.2, 0.3], "C": [0.0, 0.1, 0.2], "T": [0.0, 0.0, 0.0],
                          "U": [0.0, 0.0, 0.0]})
    answer = ChangeAttribution(scores, point, draws, named=["A", "B"])
    row = score_change(answer, players, truth, relevant=["A", "C"], changed=["A", "C", "T"])
    assert row["top1_recall"] == 1.0  # A, relevant, is first
    assert row["top3_recall"] == 0.5  # A, B, U: one of the two relevant mechanisms
    assert row["named_recall"] == 0.5 and row["false_alarms"] == 1.0  # B did not change
    assert row["contribution_mae"] == pytest.approx((0.1 + 0.2 + 0.4 + 0.0) / 4)
    assert row["coverage_90"] == 0.75  # C's interval [0.01, 0.19] misses 0.5
    widths = [np.percentile(draws[n], 95) - np.percentile(draws[n], 5) for n in players]
    assert row["interval_width_90"] == pytest.approx(np.mean(widths))
    assert row["relevant_changes"] == 2.0 and row["injected_changes"] == 3.0
    # a ranking without contributions or draws: those metrics are undefined
    ranking = score_change(ChangeAttribution(scores), players, truth, ["C"], ["C"])
    assert ranking["top1_recall"] == 0.0 and ranking["top3_recall"] == 0.0
    assert all(math.isnan(ranking[k]) for k in ("contribution_mae", "coverage_90", "interval_width_90"))
    assert math.isnan(score_change(answer, players, truth, [], [])["top1_recall"])  # nothing relevant
    # ties share the credit
    assert metrics.set_recall_at_k(pd.Series({"A": 1.0, "B": 1.0, "C": 0.0}), ["A"], 1) == 0.5


class _Stub(ChangeMethod):
    """Names every player on its first call (the change case) and nothing on its second (the no-change case),
    or fails."""

    name = "stub"

    def __init__(self, fail: bool = False) -> None:
        self.fail, self.calls = fail, 0

    def attribute_change(self, graph: nx.DiGraph, target, old, new, functional) -> ChangeAttribution:
        self.calls += 1
        if self.fail:
            raise RuntimeError("no answer")
        players = blameable_nodes(graph, target)
        return ChangeAttribution(pd.Series(0.0, index=list(graph)), named=players if self.calls == 1 else [])


def test_a_cell_scores_specificity_and_records_failures(monkeypatch):
    monkeypatch.setitem(CHANGE_METHODS, "stub", _Stub)
    bench = {"family": CHANGE_FAMILY, "num_nodes": 8, "min_ancestors": 4, "num_rows": 200, "functional": "kl",
             "max_changes": 3, "change_kinds": list(CHANGE_KINDS), "specificity": True}
    cell = {"name": "x", "seed": 3, "method": "stub", "method_options": {}, "benchmark": bench}
    case = make_change_case(3, "kl", 8, 4, 200)
    result = run_cell(cell)
    assert result.error is None and result.metrics["failed_cases"] == 0.0 and result.metrics["num_cases"] == 2.0
    assert result.metrics["specificity"] == 1.0 and result.metrics["named_recall"] == 1.0
    assert result.metrics["false_alarms"] == len(case.players) - len(case.changes)
    failed = run_cell({**cell, "method_options": {"fail": True}})
    assert failed.error is None and failed.metrics["failed_cases"] == 1.0
    assert failed.metrics["specificity"] == 0.0 and failed.metrics["top1_recall"] == 0.0  # no credit
    assert "RuntimeError: no answer" in failed.cases["error"].iloc[0]
    without = run_cell({**cell, "benchmark": {**bench, "specificity": False}})
    assert "specificity" not in without.metrics and without.metrics["num_cases"] == 1.0


def test_dowhy_change_methods_on_a_tiny_case():
    case = make_change_case(3, "kl", num_nodes=6, min_ancestors=3, num_rows=150)
    for name, options in (("dowhy_change", {"num_samples": 300}),
                          ("dowhy_change_bootstrap", {"num_bootstrap_resamples": 2, "num_samples": 300})):
        answer = make_change_method(name, seed=1, **options).attribute_change(
            case.graph, case.target, case.old_data, case.new_data, "kl")
        assert list(answer.scores.index) == list(answer.contributions.index)
        assert np.isfinite(answer.contributions).all() and set(answer.named) <= set(case.players)
        assert (answer.draws is None) == (name == "dowhy_change")
        if answer.draws is not None:
            assert answer.draws.shape == (2, case.graph.number_of_nodes())
        row = score_change(answer, case.players, case.truth, case.relevant, list(case.changes))
        assert 0.0 <= row["top3_recall"] <= 1.0 or math.isnan(row["top3_recall"])


def test_unknown_names_list_the_choices(tmp_path):
    with pytest.raises(BayesRCAError, match="'naive' \\(an outlier-attribution method\\).*" + ", ".join(
            sorted(CHANGE_METHODS))):
        make_change_method("naive")
    with pytest.raises(BayesRCAError, match="'dowhy_change' \\(a distribution-change method"):
        make_method("dowhy_change")
    with pytest.raises(BayesRCAError, match="bad options"):
        make_change_method("ks_residual", alpha=2.0)
    with pytest.raises(BayesRCAError, match="change_kinds must be .*coefficient, noise_scale, root_shift"):
        make_change_case(0, kinds=["slope"])
    with pytest.raises(BayesRCAError, match="unknown functional 'median'; use one of mean"):
        make_change_case(0, functional="median")
    config = {"name": "bad", "methods": {"naive": {}, "ks_residual": {}},
              "benchmark": {"family": CHANGE_FAMILY, "change_kinds": ["slope"]}}
    (tmp_path / "bad.yaml").write_text(yaml.safe_dump(config))
    errors = {f.subject: f.message for f in check_config(tmp_path / "bad.yaml").findings if f.level == "error"}
    assert set(errors) == {"naive", "benchmark"} and "ks_residual" in errors["naive"]
    assert "root_shift" in errors["benchmark"]


def test_the_shipped_config_checks():
    report = check_config(REPO / "configs" / "distribution_change.yaml")
    assert not [f for f in report.findings if f.level == "error"]
    assert any("64 cells" in f.message for f in report.findings)


def test_a_tiny_config_runs_through_the_runner_into_mlflow(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    config = {"name": "tiny_change", "methods": {"bayes_rca_change": {"num_draws": 40}, "ks_residual": {}},
              "benchmark": {"family": CHANGE_FAMILY, "num_nodes": 7, "min_ancestors": 3, "num_rows": 150},
              "sweep": {"seed": [2, 3], "benchmark.functional": ["mean", "kl"]},
              "tracking": {"uri": uri, "experiment": "tiny_change"}}
    path = tmp_path / "tiny_change.yaml"
    path.write_text(yaml.safe_dump(config))
    messages: list[str] = []
    parent, table = run_experiment(path, output=tmp_path / "out", report=messages.append)
    assert any("distribution_change kl: top-1" in m for m in messages)
    runs = cell_runs(parent, uri)
    assert len(runs) == 8 and set(runs["param.benchmark.functional"]) == {"mean", "kl"}
    assert runs["metric.specificity"].between(0, 1).all() and runs["metric.attribute_seconds"].notna().all()
    assert runs["metric.top3_recall"].dropna().between(0, 1).all()
    ours = runs[runs["param.method"] == "bayes_rca_change"]
    assert ours["metric.coverage_90"].between(0, 1).all() and ours["metric.contribution_mae"].notna().all()
    assert "metric.coverage_90" not in runs or runs.loc[runs["param.method"] == "ks_residual",
                                                        "metric.coverage_90"].isna().all()
    assert set(table.index) == {(m, f) for m in ("bayes_rca_change", "ks_residual") for f in ("kl", "mean")}
    assert list(table.index.names) == ["method", "benchmark.functional"]
    assert {"top1_recall_mean", "coverage_90_mean", "specificity_mean", "attribute_seconds_mean"} <= set(table)
    assert (tmp_path / "out" / "tiny_change" / "comparison.md").read_text().count("bayes_rca_change") == 2
    # the cell's artifacts; it reruns to the same numbers; the sweep resumes with nothing to do
    client = mlflow.MlflowClient(uri)
    (cell,) = client.search_runs([client.get_run(parent).info.experiment_id],
                                 f"tags.mlflow.parentRunId = '{parent}' and tags.method = 'bayes_rca_change' and "
                                 "params.`benchmark.functional` = 'kl' and tags.seed = '2'")
    assert {"cases.csv", "contributions.csv", "resolved_config.yaml"} <= {
        artifact.path for artifact in client.list_artifacts(cell.info.run_id)}
    assert "identical metrics" in next(iter(rerun(cell.info.run_id, uri)))
    again: list[str] = []
    assert run_experiment(path, output=tmp_path / "out", report=again.append)[0] == parent
    assert "8 already finished, 0 to run" in again[0]
