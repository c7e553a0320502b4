"""The attribution's mathematics on linear-Gaussian systems, against references computed here independently.

References are written with numpy/scipy from the true system (total effects ``(I - B)^{-1}``), never through
bayes_rca's own game or Shapley code: closed-form IT scores, a brute-force Monte Carlo of every coalition's
counterfactual tail probability followed by Shapley values over all orders, and the oracle model's exact answer.
"""

from __future__ import annotations

import itertools
import math

import networkx as nx
import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import special, stats

from bayes_rca import BayesianSCM, attribute_outliers
from bayes_rca.data.synthetic import LinearGaussianSystem, random_dag, random_linear_system
from tests.conftest import PLAYERS, TARGET, linear_algebra, true_noise

NON_PLAYERS = ["E", "F"]


def closed_form_score(system: LinearGaussianSystem, target, row: pd.DataFrame) -> float:
    """-log P(|X_t - mu_t| >= |x_t - mu_t|) = -log(2 Phi(-|x_t - mu_t| / sd_t)) from the true system."""
    nodes, _, c, s, total = linear_algebra(system)
    t = nodes.index(target)
    mean, sd = total[t] @ c, math.sqrt(((total[t] * s) ** 2).sum())
    z = abs(float(row[target].iloc[0]) - mean) / sd
    return -(math.log(2.0) + special.log_ndtr(-z))


def by_node(result, draw: int = 0, row: int = 0) -> pd.Series:
    return pd.Series(result.contributions[draw, row], index=result.nodes)


# ---------------------------------------------------------------------------------------------------------------
# a. oracle model on random DAGs: efficiency, null player, closed-form IT score


@st.composite
def random_cases(draw):
    size = draw(st.integers(5, 9))
    seed = draw(st.integers(0, 2**20))
    graph = random_dag(size, max_parents=3, seed=seed)
    base = random_linear_system(graph, seed=seed, random_signs=True)
    rng = np.random.default_rng(seed + 1)  # non-trivial intercepts and noise scales
    system = LinearGaussianSystem(graph, base.coefficients,
                                  {n: float(rng.normal(0, 5)) for n in graph},
                                  {n: float(rng.uniform(0.3, 3.0)) for n in graph})
    target = draw(st.sampled_from(sorted(graph.nodes)))
    injected = draw(st.dictionaries(st.sampled_from(sorted(graph.nodes)), st.floats(-8, 8), min_size=1, max_size=4))
    background = draw(st.one_of(st.none(), st.integers(0, 1000)))
    feature_map = draw(st.sampled_from(["median_cdf_quantile", "zscore"]))
    return system, target, system.outlier(injected, seed=background), feature_map


@settings(max_examples=40, deadline=None, database=None)
@given(random_cases())
def test_oracle_efficiency_null_player_and_closed_form_score(case):
    system, target, row, feature_map = case
    result = attribute_outliers(system.oracle_model(), target, row, feature_map=feature_map)
    contributions, score = by_node(result), float(result.scores[0, 0])
    ancestors = nx.ancestors(system.graph, target)
    assert set(result.players) == ancestors | {target} and result.players[-1] == target
    assert score == pytest.approx(closed_form_score(system, target, row), rel=1e-9, abs=1e-10)
    assert contributions.sum() == pytest.approx(score, rel=1e-9, abs=1e-10)
    outsiders = [n for n in system.graph if n not in ancestors and n != target]
    assert (contributions[outsiders] == 0.0).all()
    assert (result.standard_errors == 0.0).all()
    # the abducted noise is the true residual: the oracle's standardisation is the identity, so its
    # "standardised units" are data units, and the noise is noise_sd times the standard noise
    noise = true_noise(system, row.iloc[0])
    np.testing.assert_allclose(result.noise[0, 0], [system.noise_sd[p] * noise[p] for p in result.players],
                               atol=1e-8, rtol=1e-10)


# ---------------------------------------------------------------------------------------------------------------
# b. analytic path vs a brute-force Monte Carlo of every coalition


def brute_force_attribution(system: LinearGaussianSystem, target, row: pd.DataFrame, samples: int, batches: int,
                            seed: int) -> tuple[dict, dict, float]:
    """Shapley values of g(S) = -log P(|X_t - mu| >= |x_t - mu| | noise of S redrawn, the rest abducted).

    Every coalition is simulated (common random numbers across coalitions) by propagating the noise through
    the structural equations in topological order. Returns the Shapley values, their standard errors from
    ``batches`` independent batches, and g(all players).
    """
    nodes, B, c, s, total = linear_algebra(system)
    index = {n: k for k, n in enumerate(nodes)}
    order = [index[n] for n in nx.topological_sort(system.graph)]
    t = index[target]
    players = sorted(nx.ancestors(system.graph, target), key=str) + [target]
    observed = row[nodes].to_numpy(dtype=float)[0]
    abducted = (observed - c - B @ observed) / s  # true standard noise of the row
    mean = total[t] @ c
    distance = abs(observed[t] - mean)
    rng = np.random.default_rng(seed)
    fresh = rng.standard_normal((samples, len(nodes)))

    def hits(coalition) -> np.ndarray:
        noise = np.tile(abducted, (samples, 1))
        for player in coalition:
            noise[:, index[player]] = fresh[:, index[player]]
        values = np.zeros_like(noise)
        for k in order:  # X_k = c_k + sum_j B[k, j] X_j + s_k N_k
            values[:, k] = c[k] + values @ B[k] + s[k] * noise[:, k]
        return np.abs(values[:, t] - mean) >= distance * (1 - 1e-12)

    coalitions = [frozenset(S) for r in range(len(players) + 1) for S in itertools.combinations(players, r)]
    simulated = {S: hits(S) for S in coalitions}
    # g from all samples (log of the pooled frequency: negligible bias); the batches only give the spread
    g = {S: -np.log(np.append(hit.mean(), hit.reshape(batches, -1).mean(1))) for S, hit in simulated.items()}
    assert all(np.isfinite(v).all() for v in g.values()), "some coalition's event is too rare to simulate"
    phi = {p: np.zeros(batches + 1) for p in players}
    orders = list(itertools.permutations(players))
    for permutation in orders:
        seen = frozenset()
        for player in permutation:
            phi[player] += (g[seen | {player}] - g[seen]) / len(orders)
            seen = seen | {player}
    estimate = {p: float(v[0]) for p, v in phi.items()}
    error = {p: float(v[1:].std(ddof=1) / math.sqrt(batches)) for p, v in phi.items()}
    return estimate, error, float(g[frozenset(players)][0])


@pytest.mark.parametrize("injected", [{"A": 1.5, "B": 1.5, "C": 1.0, "D": 1.5},
                                      {"A": 2.0, "B": 1.5, "C": -1.0, "D": 2.0}])
def test_analytic_path_agrees_with_brute_force_monte_carlo(system, oracle, injected):
    row = system.outlier(injected)
    nodes, _, c, s, total = linear_algebra(system)
    t = nodes.index(TARGET)
    z = abs(row[TARGET].iloc[0] - total[t] @ c) / math.sqrt(((total[t] * s) ** 2).sum())
    assert 2.5 < z < 3.5  # a moderate outlier, spread over the players, so that every coalition's event
    # has probability above 0.5% and 200k samples estimate its log well
    result = attribute_outliers(oracle, TARGET, row, estimator="analytic")
    estimate, error, full = brute_force_attribution(system, TARGET, row, samples=200_000, batches=20, seed=1)
    ours = by_node(result)
    assert full == pytest.approx(result.scores[0, 0], abs=0.08)  # about 4 standard errors
    for player in PLAYERS:
        assert abs(ours[player] - estimate[player]) <= 4 * error[player] + 0.01, (player, ours[player], estimate)
    assert (ours[NON_PLAYERS] == 0.0).all()


# ---------------------------------------------------------------------------------------------------------------
# c. Monte Carlo estimator vs the analytic one


@pytest.mark.parametrize("injected, seed", [({"B": 3.0, "C": 1.5}, 0), ({"A": -2.5, "D": 2.0}, 1)])
def test_monte_carlo_estimator_agrees_with_analytic(system, oracle, injected, seed):
    row = system.outlier(injected)
    exact = attribute_outliers(oracle, TARGET, row, estimator="analytic")
    estimate = attribute_outliers(oracle, TARGET, row, estimator="monte_carlo", num_samples=20_000, seed=seed)
    assert estimate.settings["estimator"] == "monte_carlo"
    players = [estimate.nodes.index(p) for p in PLAYERS]
    error = estimate.standard_errors[0, 0, players]
    assert (error > 0).all() and (error < 0.05).all()
    gap = np.abs(estimate.contributions[0, 0, players] - exact.contributions[0, 0, players])
    assert (gap <= 4 * error + 0.01).all(), (gap, error)
    assert estimate.scores[0, 0] == pytest.approx(exact.scores[0, 0], abs=0.05)
    np.testing.assert_allclose(estimate.contributions.sum(-1), estimate.scores, rtol=1e-9)
    assert (by_node(estimate)[NON_PLAYERS] == 0.0).all()


def test_monte_carlo_estimator_on_a_fitted_model_tracks_the_analytic_posterior(system, fitted, outliers):
    row = outliers.iloc[[1]]
    exact = attribute_outliers(fitted, TARGET, row)
    estimate = attribute_outliers(fitted, TARGET, row, estimator="monte_carlo", num_samples=2000, seed=3)
    gap = np.abs(estimate.contributions - exact.contributions)
    assert np.mean(gap <= 4 * estimate.standard_errors + 0.01) > 0.97
    np.testing.assert_allclose(estimate.contributions.mean(0), exact.contributions.mean(0), atol=0.05)


# ---------------------------------------------------------------------------------------------------------------
# d, e. fitted model vs the oracle; the true root cause ranks first


def test_posterior_contributions_match_the_oracle(oracle, fitted, outliers):
    truth = attribute_outliers(oracle, TARGET, outliers)
    posterior = attribute_outliers(fitted, TARGET, outliers)
    assert posterior.contributions.shape == (100, 3, 6)
    mean = posterior.contributions.mean(0)
    tolerance = np.maximum(0.3, 0.05 * np.abs(truth.contributions[0]))
    assert (np.abs(mean - truth.contributions[0]) <= tolerance).all(), (mean, truth.contributions[0])
    summary = posterior.summary()
    inside = []
    for row in range(3):
        for player in PLAYERS:
            low, high = summary.loc[(row, player), ["hdi_5%", "hdi_95%"]]
            inside.append(low <= truth.contributions[0, row, truth.nodes.index(player)] <= high)
    # one fit: the 12 intervals are strongly correlated, so only "most" here; calibration over many fits is
    # checked by test_posterior_intervals_are_calibrated_over_many_datasets (slow)
    assert np.mean(inside) > 0.5, inside
    # the IT score's posterior too
    scores = posterior.score_summary()
    for row in range(3):
        assert scores.loc[row, "mean"] == pytest.approx(truth.scores[0, row], rel=0.05, abs=0.3)


@pytest.mark.slow
def test_posterior_intervals_are_calibrated_over_many_datasets(system, oracle, outliers):
    """Over 40 independent training sets the 90% intervals cover the oracle's contributions about 90% of the time."""
    truth = attribute_outliers(oracle, TARGET, outliers)
    players = [truth.nodes.index(p) for p in PLAYERS]
    covered, covered_score = [], []
    for k in range(40):
        model = BayesianSCM(system.graph, num_draws=200, seed=k, progress=False).fit(system.sample(3000, seed=100 + k))
        posterior = attribute_outliers(model, TARGET, outliers)
        low, high = np.quantile(posterior.contributions[..., players], [0.05, 0.95], axis=0)
        covered.append((low <= truth.contributions[0][:, players]) & (truth.contributions[0][:, players] <= high))
        low, high = np.quantile(posterior.scores, [0.05, 0.95], axis=0)
        covered_score.append((low <= truth.scores[0]) & (truth.scores[0] <= high))
    assert 0.82 <= np.mean(covered) <= 0.97, np.mean(covered, axis=0)
    assert 0.75 <= np.mean(covered_score) <= 0.98


def test_true_root_cause_ranks_first(system, fitted, outliers):
    result = attribute_outliers(fitted, TARGET, outliers.iloc[[0]])  # 5 sd of noise injected at B
    summary = result.summary().loc[0]
    assert summary.index[0] == "B"
    assert summary.loc["B", "p_top_cause"] > 0.9
    assert summary.loc["B", "hdi_5%"] > summary.drop("B")["hdi_95%"].max()
    own = attribute_outliers(fitted, TARGET, outliers.iloc[[2]]).summary().loc[2]  # 4.5 sd at D itself
    assert own.index[0] == "D" and own.loc["D", "p_top_cause"] > 0.9


# ---------------------------------------------------------------------------------------------------------------
# f. determinism


def test_same_seed_gives_identical_numbers_and_other_seeds_differ(system):
    data = system.sample(400, seed=5)
    row = system.outlier({"B": 3.0, "A": 1.0})

    def run(fit_seed: int, attribution_seed: int):
        model = BayesianSCM(system.graph, num_draws=50, seed=fit_seed, progress=False).fit(data)
        analytic = attribute_outliers(model, TARGET, row, max_exact_players=2, num_permutations=20,
                                      seed=attribution_seed)
        monte_carlo = attribute_outliers(model, TARGET, row, estimator="monte_carlo", num_samples=500,
                                         max_exact_players=2, num_permutations=10, seed=attribution_seed)
        return analytic, monte_carlo

    first, again = run(0, 0), run(0, 0)
    assert first[0].settings["shapley"] == "permutation" and first[1].settings["estimator"] == "monte_carlo"
    for one, two in zip(first, again):
        for field in ("contributions", "standard_errors", "scores", "noise"):
            assert np.array_equal(getattr(one, field), getattr(two, field)), field
    other_fit = run(1, 0)
    assert not np.array_equal(first[0].contributions, other_fit[0].contributions)
    assert not np.array_equal(first[0].noise, other_fit[0].noise)
    other_attribution = run(0, 1)
    assert np.array_equal(first[0].scores, other_attribution[0].scores)  # same fit: same analytic score
    assert not np.array_equal(first[0].contributions, other_attribution[0].contributions)  # other permutations
    assert not np.array_equal(first[1].contributions, other_attribution[1].contributions)  # other MC samples


@pytest.mark.slow
def test_parallel_fit_gives_the_same_draws_as_a_serial_fit(system):
    """Each node is fitted on one thread from its own seed, so worker processes change nothing."""
    from bayes_rca import InferenceOptions

    data = system.sample(400, seed=6)
    kwargs = dict(num_draws=40, seed=4, progress=False, mechanisms={"C": "linear_student_t"},
                  options=InferenceOptions(svi_steps=100))
    serial = BayesianSCM(system.graph, n_jobs=1, **kwargs).fit(data)
    parallel = BayesianSCM(system.graph, n_jobs=2, **kwargs).fit(data)
    for name, draws in serial.posterior_draws().items():
        assert np.array_equal(draws, parallel.posterior_draws()[name]), name
    row = system.outlier({"C": 4.0})
    first = attribute_outliers(serial, TARGET, row, num_samples=400, seed=2)
    second = attribute_outliers(parallel, TARGET, row, num_samples=400, seed=2)
    assert np.array_equal(first.contributions, second.contributions)


# ---------------------------------------------------------------------------------------------------------------
# g. permutation sampling vs exact enumeration


@pytest.fixture(scope="module")
def six_player_system() -> LinearGaussianSystem:
    """X5 has all of X0..X4 as ancestors: six players."""
    graph = nx.DiGraph([("X0", "X1"), ("X1", "X2"), ("X0", "X3"), ("X2", "X4"), ("X3", "X4"), ("X4", "X5"),
                        ("X1", "X5"), ("X3", "X5")])
    return random_linear_system(graph, seed=4, coefficient_range=(0.4, 1.2), random_signs=True)


def test_permutation_sampling_agrees_with_exact_within_its_standard_errors(six_player_system):
    system = six_player_system
    data = system.sample(1000, seed=2)
    model = BayesianSCM(system.graph, num_draws=50, seed=2, progress=False).fit(data)
    row = system.outlier({"X0": 2.0, "X2": -2.5, "X5": 1.5})
    exact = attribute_outliers(model, "X5", row)
    sampled = attribute_outliers(model, "X5", row, max_exact_players=3, num_permutations=2000, seed=9)
    assert len(exact.players) == 6
    assert exact.settings["shapley"] == "exact" and sampled.settings["shapley"] == "permutation"
    np.testing.assert_array_equal(sampled.scores, exact.scores)
    gap = np.abs(sampled.contributions - exact.contributions)
    error = sampled.standard_errors
    assert (error[..., :6] > 0).all()
    assert (gap <= 4.5 * error + 1e-12).all()
    assert np.sqrt(np.mean((gap / np.where(error > 0, error, 1)) ** 2)) < 1.5  # errors are not wildly too wide
    # efficiency holds exactly for each estimate, not just on average
    np.testing.assert_allclose(sampled.contributions.sum(-1), sampled.scores, rtol=1e-12, atol=1e-12)
    oracle = system.oracle_model()
    truth_sampled = attribute_outliers(oracle, "X5", row, max_exact_players=3, num_permutations=2000, seed=1)
    truth_exact = attribute_outliers(oracle, "X5", row)
    assert (np.abs(truth_sampled.contributions - truth_exact.contributions)
            <= 4.5 * truth_sampled.standard_errors + 1e-12).all()


# ---------------------------------------------------------------------------------------------------------------
# h. several outlier rows at once


def test_several_rows_at_once_equal_each_row_alone(fitted, outliers):
    together = attribute_outliers(fitted, TARGET, outliers)
    assert together.outliers == [0, 1, 2]
    for row in range(3):
        alone = attribute_outliers(fitted, TARGET, outliers.iloc[[row]])
        np.testing.assert_allclose(together.contributions[:, row], alone.contributions[:, 0], rtol=1e-12,
                                   atol=1e-12)
        np.testing.assert_allclose(together.scores[:, row], alone.scores[:, 0], rtol=1e-12)
        np.testing.assert_allclose(together.noise[:, row], alone.noise[:, 0], rtol=1e-12, atol=1e-12)
    pooled = together.pooled_summary()
    assert sorted(pooled.index) == sorted(PLAYERS)
    for player in PLAYERS:
        k = together.nodes.index(player)
        assert pooled.loc[player, "mean"] == pytest.approx(together.contributions[:, :, k].mean(), rel=1e-12)
        per_draw_mean = together.contributions[:, :, k].mean(1)
        assert pooled.loc[player, "median"] == pytest.approx(np.median(per_draw_mean), rel=1e-12)
    assert pooled["p_top_cause"].sum() == pytest.approx(1.0)
    # a Series is one row
    series = attribute_outliers(fitted, TARGET, outliers.iloc[1])
    np.testing.assert_allclose(series.contributions[:, 0], together.contributions[:, 1], rtol=1e-12, atol=1e-12)


# ---------------------------------------------------------------------------------------------------------------
# i. feature maps and extreme outliers


def test_feature_maps_agree_on_linear_gaussian_models(oracle, fitted, outliers):
    for model in (oracle, fitted):
        quantile = attribute_outliers(model, TARGET, outliers, feature_map="median_cdf_quantile")
        zscore = attribute_outliers(model, TARGET, outliers, feature_map="zscore")
        assert (quantile.settings["feature_map"], zscore.settings["feature_map"]) == ("median_cdf_quantile", "zscore")
        np.testing.assert_allclose(quantile.contributions, zscore.contributions, rtol=1e-9, atol=1e-10)
        np.testing.assert_allclose(quantile.scores, zscore.scores, rtol=1e-12)


@pytest.mark.parametrize("feature_map", ["median_cdf_quantile", "zscore"])
def test_extreme_outliers_have_finite_increasing_scores(system, oracle, fitted, feature_map):
    nodes, _, c, s, total = linear_algebra(system)
    t = nodes.index(TARGET)
    sd = math.sqrt(((total[t] * s) ** 2).sum())
    mean = total[t] @ c
    previous = None
    for multiple in (10.0, 20.0, 40.0):
        # shift D by `multiple` marginal sds through its own noise
        row = system.outlier({TARGET: multiple * sd / system.noise_sd[TARGET]})
        assert (row[TARGET].iloc[0] - mean) / sd == pytest.approx(multiple)
        exact = attribute_outliers(oracle, TARGET, row, feature_map=feature_map)
        closed = -(math.log(2.0) + stats.norm.logsf(multiple))
        assert exact.scores[0, 0] == pytest.approx(closed, rel=1e-10)
        posterior = attribute_outliers(fitted, TARGET, row, feature_map=feature_map)
        assert np.isfinite(posterior.scores).all() and np.isfinite(posterior.contributions).all()
        np.testing.assert_allclose(posterior.contributions.sum(-1), posterior.scores, rtol=1e-9)
        assert posterior.summary().loc[0].index[0] == TARGET
        if previous is not None:
            assert (exact.scores > previous[0]).all() and (posterior.scores > previous[1]).all()
        previous = exact.scores, posterior.scores
    assert previous[0][0, 0] > 800  # 40 sd: -log(2 Phi(-40)) is about 804


def test_mild_row_in_the_bulk_has_small_score_and_median_row_scores_zero(system, oracle):
    nodes, _, c, _, total = linear_algebra(system)
    at_mean = pd.DataFrame([total @ c], columns=nodes)  # every node at its mean: tau(x) is minimal
    result = attribute_outliers(oracle, TARGET, at_mean)
    assert result.scores[0, 0] == pytest.approx(0.0, abs=1e-12)
    np.testing.assert_allclose(result.contributions, 0.0, atol=1e-12)


@pytest.mark.parametrize("multiple", [4.0, 6.0])
def test_monte_carlo_estimator_for_an_outlier_of_the_target_itself(system, oracle, multiple):
    nodes, _, c, s, total = linear_algebra(system)
    t = nodes.index(TARGET)
    sd = math.sqrt(((total[t] * s) ** 2).sum())
    row = system.outlier({TARGET: multiple * sd / system.noise_sd[TARGET]})  # `multiple` marginal sds at D
    exact = attribute_outliers(oracle, TARGET, row, estimator="analytic")
    estimate = attribute_outliers(oracle, TARGET, row, estimator="monte_carlo", num_samples=20_000, seed=0)
    assert estimate.scores[0, 0] == pytest.approx(exact.scores[0, 0], rel=0.05)
    gap = np.abs(estimate.contributions - exact.contributions)
    assert (gap <= 4 * estimate.standard_errors + 0.02 * np.abs(exact.contributions)).all()
