"""No rank of the shipped PetShop model, nor of the robust game on the ICML protocol, rests on a tie at a cap.

With ``max_nats`` the contributions of several nodes could all sit at the floor of the tail probability and tie;
the ranking was then decided by the tie. The shipped PetShop config uses no cap (the robust Student-t game
instead): here the top three posterior-mean contributions must be distinct, and no game value may sit at a cap.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml

from bayes_rca.harness.benchmarks import make_benchmark
from bayes_rca.harness.methods import make_method
from bayes_rca.harness.real_data import petshop_benchmark

ROOT = Path(__file__).resolve().parents[2]
SHARED = ROOT.parent / "shared" / "data" / "petshop"
CONFIG = yaml.safe_load((ROOT / "configs" / "petshop.yaml").read_text())


def _assert_no_tie_in_top3(scores, label: str) -> None:
    top = np.sort(scores.to_numpy())[::-1][:3]
    gaps = -np.diff(top)
    assert (gaps > 1e-6 * max(1.0, abs(top[0]))).all(), f"{label}: top-3 contributions tie: {top}"


def test_the_shipped_petshop_model_uses_no_cap():
    options = CONFIG["methods"]["bayes_rca"]
    assert "max_nats" not in options and options["tail_df"] > 0


@pytest.mark.skipif(not (SHARED / "low_traffic").is_dir(), reason=f"the PetShop data set is not at {SHARED}")
@pytest.mark.parametrize("metric", ["latency", "availability"])
def test_petshop_ranks_do_not_rest_on_ties(metric):
    bench = petshop_benchmark(SHARED, "low_traffic", "train", metric, specificity=False)
    options = {**CONFIG["methods"]["bayes_rca"], "num_draws": 50}
    method = make_method("bayes_rca", **options).fit(bench.graph, bench.train)
    for case in bench.cases[:2]:
        attribution = method.attribute(case.target, case.observed_row)
        _assert_no_tie_in_top3(attribution.scores, f"{metric}/{case.name}")
        assert np.isfinite(attribution.draws.to_numpy()).all()


def test_icml_ranks_do_not_rest_on_ties():
    bench = make_benchmark("icml2022", seed=0, num_rows=500, num_outliers=3)
    method = make_method("bayes_rca", mechanisms="linear", tail_df=2.0, num_draws=50).fit(bench.graph, bench.train)
    for index, case in enumerate(bench.cases):
        _assert_no_tie_in_top3(method.attribute(case.target, case.row).scores, f"icml2022 case {index}")


def test_the_tie_check_catches_a_cap():
    """The same check fails on the old capped game where two far-out noises both reach the floor."""
    bench = make_benchmark("icml2022", seed=0, num_rows=500, num_outliers=1)
    case = bench.cases[0]
    row = case.row.copy()
    for node in [case.target, *list(bench.graph.predecessors(case.target))[:1]]:
        row[node] = row[node] + 1e4  # two noises thousands of sds out
    method = make_method("bayes_rca", mechanisms="linear", max_nats=5.0, num_draws=20).fit(bench.graph, bench.train)
    with pytest.raises(AssertionError, match="tie"):
        _assert_no_tie_in_top3(method.attribute(case.target, row).scores, "capped")
