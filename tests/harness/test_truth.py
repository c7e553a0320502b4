"""The true attribution of synthetic outliers: exact for linear-Gaussian systems, a large Monte Carlo with its
standard error for Student-t noise."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd
import pytest

from bayes_rca.errors import BayesRCAWarning
from bayes_rca.graph.dag import blameable_nodes
from bayes_rca.harness import truth as truth_module
from bayes_rca.harness.benchmarks import STUDENT_T_DF, make_benchmark
from bayes_rca.harness.cell import score_case
from bayes_rca.harness.methods.base import Attribution
from bayes_rca.harness.truth import true_attribution, truth_error_metrics


@pytest.fixture(autouse=True)
def _quiet():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", BayesRCAWarning)  # mild outliers are announced; not what is tested
        yield


def test_student_t_family_has_its_true_system():
    bench = make_benchmark("student_t", seed=2, num_rows=4000, num_outliers=1, num_nodes=7, min_ancestors=3)
    linear = bench.system.linear
    assert linear is not None and linear.noise_df == STUDENT_T_DF
    assert all(sd == pytest.approx(1 / math.sqrt(3)) for sd in linear.noise_sd.values())
    # the same system: unit-variance noise n is t noise n sqrt(3) of scale 1 / sqrt(3)
    noise = bench.system.sample_noise(50, np.random.default_rng(0))
    np.testing.assert_allclose(linear.propagate(noise * math.sqrt(3)).to_numpy(),
                               bench.system.propagate(noise).to_numpy(), rtol=1e-12, atol=1e-12)
    assert make_benchmark("nonlinear", seed=2, num_rows=10, num_outliers=1).system.linear is None


def test_student_t_truth_is_efficient_and_its_error_is_honest(monkeypatch):
    bench = make_benchmark("student_t", seed=1, num_rows=10, num_outliers=1, num_nodes=7, min_ancestors=3)
    case = bench.cases[0]
    players = blameable_nodes(bench.graph, case.target)
    monkeypatch.setattr(truth_module, "TRUTH_MIXING_SAMPLES", 8192)
    first = true_attribution(bench, case)
    assert (first.standard_errors[players] > 0).all() and first.standard_errors[players].max() < 0.05
    outside = [n for n in bench.graph if n not in players]
    assert (first.contributions[outside] == 0).all() and (first.standard_errors[outside] == 0).all()
    monkeypatch.setattr(truth_module, "TRUTH_SEED", truth_module.TRUTH_SEED + 1)
    second = true_attribution(bench, case)
    gap = (first.contributions - second.contributions)[players]
    spread = np.sqrt(first.standard_errors[players] ** 2 + second.standard_errors[players] ** 2)
    assert (gap.abs() <= 5 * spread).all()  # two seeds agree within their standard errors
    assert not np.allclose(first.contributions[players], second.contributions[players])


def test_linear_gaussian_truth_is_exact():
    bench = make_benchmark("icml2022", seed=0, num_rows=10, num_outliers=1, num_nodes=7, min_ancestors=3)
    truth = true_attribution(bench, bench.cases[0])
    assert (truth.standard_errors == 0).all()


def test_truth_error_metrics_against_widths():
    draws = pd.DataFrame({"a": np.linspace(0, 1, 101), "b": np.linspace(0, 2, 101), "c": np.zeros(101)})
    errors = pd.Series({"a": 0.01, "b": 0.04, "c": 0.02})
    row = truth_error_metrics(Attribution(draws.mean(), draws), errors)
    assert row["truth_se_mean"] == pytest.approx(0.07 / 3) and row["truth_se_max"] == 0.04
    # 90 % widths 0.9 and 1.8; the zero-width node is left out of the ratios
    assert row["truth_se_width_ratio"] == pytest.approx((0.01 / 0.9 + 0.04 / 1.8) / 2)
    assert row["truth_se_width_ratio_max"] == pytest.approx(0.04 / 1.8)
    assert math.isnan(truth_error_metrics(Attribution(draws.mean()), errors)["truth_se_width_ratio"])


def test_score_case_logs_the_truth_error(monkeypatch):
    monkeypatch.setattr(truth_module, "TRUTH_MIXING_SAMPLES", 4096)
    bench = make_benchmark("student_t", seed=0, num_rows=10, num_outliers=1, num_nodes=7, min_ancestors=3)
    case = bench.cases[0]
    truth = true_attribution(bench, case).contributions
    draws = pd.DataFrame([truth.to_numpy() + shift for shift in np.linspace(-0.5, 0.5, 21)], columns=truth.index)
    details: list[pd.DataFrame] = []
    row = score_case(Attribution(truth, draws), bench, case, details=details)
    assert row["player_coverage_90"] == 1.0 and row["truth_se_max"] > 0 and row["truth_se_width_ratio"] < 0.1
    assert (details[0]["truth_se"] > 0).all()
