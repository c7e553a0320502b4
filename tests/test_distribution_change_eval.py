"""experiments/distribution_change_eval.py: the benchmark of injected mechanism changes, on a small grid."""

from __future__ import annotations

import importlib.util
import math
import sys
from pathlib import Path

import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("distribution_change_eval",
                                              ROOT / "experiments" / "distribution_change_eval.py")
evaluation = importlib.util.module_from_spec(spec)
sys.modules[spec.name] = evaluation  # dataclasses look their module up
spec.loader.exec_module(evaluation)


def test_the_shipped_config_loads_with_overrides():
    config = evaluation.load_config(str(ROOT / "configs" / "distribution_change.yaml"),
                                    ["seeds=[0]", "methods.bayes_rca.num_draws=50"])
    assert config["seeds"] == [0] and config["methods"]["bayes_rca"]["num_draws"] == 50
    assert set(config["methods"]) == {"bayes_rca", "dowhy", "dowhy_bootstrap", "ks_residual"}
    with pytest.raises(SystemExit, match="unknown key benchmark.rows"):
        evaluation.load_config(None, ["benchmark.rows=3"])
    with pytest.raises(SystemExit, match="unknown method"):
        evaluation.load_config(None, ["methods={nope: {}}"])


def test_cases_carry_their_truth():
    case = evaluation.make_case(3, num_nodes=8, min_ancestors=4, num_rows=200, max_changes=3,
                                kinds=["coefficient", "noise_scale", "root_shift"])
    assert len(case.players) >= 5 and case.players[-1] == case.target
    assert 1 <= len(case.changes) <= 3 and set(case.changes) <= set(case.players)
    for functional in ("mean", "kl"):
        truth = case.truth(functional)
        assert math.isclose(truth.sum(), float(truth[case.players].sum()))  # non-players get exactly 0
        assert set(case.relevant(functional)) <= set(case.changes)
    # an unchanged period has no relevant change and zero truth
    same = evaluation.Case(case.graph, case.target, case.old, case.old, case.old_data, case.same_data,
                           case.same_data, {})
    assert same.relevant("kl") == [] and (same.truth("kl") == 0).all()


def test_a_small_sweep_runs_and_prints_its_table(tmp_path, capsys):
    code = evaluation.main(["seeds=[2, 3]", "benchmark.num_rows=300", "methods={bayes_rca: {num_draws: 50}, "
                            "ks_residual: {}}", "--no-track", "--output", str(tmp_path)])
    assert code == 0
    out = capsys.readouterr().out
    assert "| functional | method | top1 |" in out
    cases = pd.read_csv(tmp_path / "distribution_change" / "cases.csv")
    assert len(cases) == 8 and (cases["error"].fillna("") == "").all()
    ours = cases[cases["method"] == "bayes_rca"]
    assert ours["coverage_90"].notna().all() and ours["specificity"].notna().all()
    assert cases[cases["method"] == "ks_residual"]["mae"].isna().all()  # no contributions
