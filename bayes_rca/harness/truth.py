"""The true attribution of a synthetic outlier: its attribution at the generating system's true parameters.

* **Linear-Gaussian** systems: exact (the analytic game of the oracle model, every coalition enumerated up to
  the default limit of one draw, permutations until every standard error is :data:`TRUTH_TOLERANCE` above);
  its standard error is 0 when enumerated.
* **Linear systems with Student-t noise** (the ``student_t`` family): the scale-mixture game of the oracle model
  (:mod:`bayes_rca.attribution.scale_mixture_game`: exact given the noises' mixing variables, which are sampled) with a
  very large budget: :data:`TRUTH_MIXING_SAMPLES` mixing samples per coalition (32 times bayes_rca's
  attribution default), shared by all coalitions, every coalition enumerated up to
  :data:`TRUTH_MAX_EXACT_PLAYERS` players and, above, permutations around the exact control variate drawn until
  every standard error is at most :data:`TRUTH_TOLERANCE` (at most :data:`TRUTH_MAX_PERMUTATIONS`). Its Monte
  Carlo standard error (the mixing samples' delta-method error plus the permutations') is reported per player
  (``truth_se`` in ``contributions.csv``) and summarised against the method's interval widths
  (:func:`truth_error_metrics`). On 20-29-node systems a truth costs 2-15 s of one core.

* **Nonlinear systems with Gaussian noise** (the ``nonlinear`` family): a brute-force importance-sampled Monte
  Carlo of bayes_rca's game at the true functions (:mod:`bayes_rca.harness.truth_nonlinear`: 65536 samples per
  coalition, every coalition enumerated up to :data:`~bayes_rca.harness.truth_nonlinear.TRUTH_MAX_PLAYERS`
  players; above, no truth), with its standard error per player from 64 batches.

The Monte Carlo truths' random numbers come from their own seed (:data:`TRUTH_SEED`), never a method's, so
their Monte Carlo error and a method's are independent.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import pandas as pd

from bayes_rca.attribution.api import attribute_outliers
from bayes_rca.errors import BayesRCAWarning
from bayes_rca.harness.benchmarks import Benchmark, OutlierCase
from bayes_rca.harness.methods.base import Attribution
from bayes_rca.harness.truth_nonlinear import nonlinear_true_attribution

TRUTH_MIXING_SAMPLES = 65_536
"""Mixing samples per coalition of the Student-t truth (bayes_rca's attribution default is 2000)."""
TRUTH_MAX_EXACT_PLAYERS = 13
"""Up to this many players every coalition of the Student-t truth is enumerated (no permutation error)."""
TRUTH_TOLERANCE = 0.01
"""Above that, permutations are drawn until every contribution's standard error is at most this (nats); it
cannot fall below the error of the mixing samples, which the permutations share."""
TRUTH_MAX_PERMUTATIONS = 2000
TRUTH_SEED = 987_654_321
"""Seed of the truth's random numbers (no sweep uses it as a method's seed)."""


@dataclass(frozen=True)
class TrueAttribution:
    """Contributions at the true parameters and their Monte Carlo standard errors (both per graph node, nats)."""

    contributions: pd.Series
    standard_errors: pd.Series


def true_attribution(benchmark: Benchmark, case: OutlierCase) -> TrueAttribution | None:
    """The attribution of ``case`` at the true parameters, where the system is linear with Gaussian or Student-t
    noise (``benchmark.system.linear``) or has additive Gaussian noise and at most
    :data:`~bayes_rca.harness.truth_nonlinear.TRUTH_MAX_PLAYERS` players (the ``nonlinear`` family); else None."""
    if benchmark.system is None:
        return None
    if benchmark.system.linear is None:
        found = nonlinear_true_attribution(benchmark.system, case.target, case.row, seed=TRUTH_SEED)
        return None if found is None else TrueAttribution(found[0], found[1])
    linear = benchmark.system.linear
    budget = {} if linear.noise_df is None else {
        "num_samples": TRUTH_MIXING_SAMPLES, "max_exact_players": TRUTH_MAX_EXACT_PLAYERS,
        "max_permutations": TRUTH_MAX_PERMUTATIONS, "seed": TRUTH_SEED}
    with warnings.catch_warnings():  # "not an outlier" is the method's notice to give, not the truth's
        warnings.simplefilter("ignore", BayesRCAWarning)
        oracle = attribute_outliers(linear.oracle_model(), case.target, case.row, tolerance=TRUTH_TOLERANCE,
                                    **budget)
    return TrueAttribution(pd.Series(oracle.contributions[0, 0], index=oracle.nodes),
                           pd.Series(oracle.standard_errors[0, 0], index=oracle.nodes))


def true_contributions(benchmark: Benchmark, case: OutlierCase) -> pd.Series | None:
    """The contributions of :func:`true_attribution` (None where the truth is unknown)."""
    truth = true_attribution(benchmark, case)
    return None if truth is None else truth.contributions


def truth_error_metrics(attribution: Attribution, standard_errors: pd.Series,
                        probability: float = 0.9) -> dict[str, float]:
    """How large the truth's Monte Carlo error is, over the players (the index of ``standard_errors``).

    ``truth_se_mean`` / ``truth_se_max``: mean and largest standard error of the true contributions (nats);
    ``truth_se_width_ratio`` / ``truth_se_width_ratio_max``: mean and largest ratio of that standard error to
    the width of the method's central ``probability`` interval, over the players whose interval has positive
    width (NaN for a method without draws). The truth's error adds to the method's in quadrature, so a
    calibrated Gaussian 90 % interval covers a truth with ratio ``r`` with probability
    ``P(|Z| <= 1.645 / sqrt(1 + (3.29 r)^2))``: 0.900 at r = 0.01, 0.898 at 0.03, 0.895 at 0.05, 0.882 at 0.1.
    """
    nodes = list(standard_errors.index)
    row = {"truth_se_mean": float(standard_errors.mean()), "truth_se_max": float(standard_errors.max())}
    interval = attribution.interval(probability)
    ratios = pd.Series(dtype=float)
    if interval is not None:
        width = (interval[1] - interval[0]).reindex(nodes)
        positive = width > 0
        ratios = standard_errors[positive] / width[positive]
    row["truth_se_width_ratio"] = float(ratios.mean()) if len(ratios) else float("nan")
    row["truth_se_width_ratio_max"] = float(ratios.max()) if len(ratios) else float("nan")
    return row

