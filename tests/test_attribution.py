"""The attribution's mathematics: Shapley axioms, closed forms, brute force, posterior vs truth, determinism."""

from __future__ import annotations

import itertools
import math

import networkx as nx
import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy import stats

from bayes_rca import BayesianSCM, attribute_outliers
from bayes_rca.attribution.api import default_max_exact_players
from bayes_rca.data.synthetic import random_dag, random_linear_system
from bayes_rca.graph.dag import ancestors_of


def total_effects(system) -> tuple[list, np.ndarray]:
    nodes = list(system.graph.nodes)
    coupling = np.zeros((len(nodes), len(nodes)))
    for (parent, child), value in system.coefficients.items():
        coupling[nodes.index(child), nodes.index(parent)] = value
    return nodes, np.linalg.inv(np.eye(len(nodes)) - coupling)


def closed_form_score(system, target, row) -> float:
    """-log P(|X_t - mu| >= |x_t - mu|) from the true linear system, with numpy/scipy only."""
    nodes, effects = total_effects(system)
    t = nodes.index(target)
    intercepts = np.array([system.intercepts[n] for n in nodes])
    sd = np.array([system.noise_sd[n] for n in nodes])
    mean, std = effects[t] @ intercepts, math.sqrt(((effects[t] * sd) ** 2).sum())
    z = abs(row[target].iloc[0] - mean) / std
    return -(math.log(2.0) + stats.norm.logsf(z))


@st.composite
def systems_and_outliers(draw):
    size = draw(st.integers(4, 8))
    seed = draw(st.integers(0, 10_000))
    graph = random_dag(size, max_parents=3, seed=seed)
    system = random_linear_system(graph, seed=seed, random_signs=draw(st.booleans()))
    target = draw(st.sampled_from(sorted(graph.nodes)))
    players = [*ancestors_of(graph, target), target]
    injected = draw(st.dictionaries(st.sampled_from(players), st.floats(-6, 6), min_size=1, max_size=3))
    return system, target, system.outlier(injected, seed=seed)


@given(systems_and_outliers())
def test_oracle_axioms_and_closed_form_score(case):
    system, target, row = case
    result = attribute_outliers(system.oracle_model(), target, row)
    players = set(ancestors_of(system.graph, target)) | {target}
    contributions = pd.Series(result.contributions[0, 0], index=result.nodes)
    assert contributions.sum() == pytest.approx(result.scores[0, 0], rel=1e-9, abs=1e-9)
    assert (contributions[[n for n in result.nodes if n not in players]] == 0.0).all()
    assert result.scores[0, 0] == pytest.approx(closed_form_score(system, target, row), rel=1e-7, abs=1e-9)


def brute_force_shapley(system, target, row, samples: int, seed: int) -> dict:
    """Shapley values of -log P(|X_t - mu| >= |x_t - mu| | noise of S redrawn) by simulation, numpy only."""
    rng = np.random.default_rng(seed)
    nodes, effects = total_effects(system)
    players = [*ancestors_of(system.graph, target), target]
    t = nodes.index(target)
    sd = np.array([system.noise_sd[n] for n in nodes])
    intercepts = np.array([system.intercepts[n] for n in nodes])
    values = row[nodes].to_numpy()[0]
    coupling = np.eye(len(nodes)) - np.linalg.inv(effects)
    observed_noise = values - intercepts - coupling @ values  # in data units
    mean = effects[t] @ intercepts
    distance = abs(values[t] - mean)
    fresh = rng.standard_normal((samples, len(nodes))) * sd

    def log_p(coalition: frozenset) -> float:
        noise = np.tile(observed_noise, (samples, 1))
        for node in coalition:
            noise[:, nodes.index(node)] = fresh[:, nodes.index(node)]
        x_t = (intercepts + noise) @ effects[t]
        return math.log(max(np.mean(np.abs(x_t - mean) >= distance - 1e-12), 1e-300))

    cache = {frozenset(s): log_p(frozenset(s)) for r in range(len(players) + 1)
             for s in itertools.combinations(players, r)}
    shapley = dict.fromkeys(players, 0.0)
    orders = list(itertools.permutations(players))
    for order in orders:
        seen = frozenset()
        for node in order:
            shapley[node] += (cache[seen] - cache[seen | {node}]) / len(orders)
            seen = seen | {node}
    return shapley


def test_analytic_path_agrees_with_brute_force_simulation(diamond):
    target = "d"
    row = diamond.outlier({"a": 2.5, "e": 1.5, "d": 0.5})
    result = attribute_outliers(diamond.oracle_model(), target, row, estimator="analytic")
    brute = brute_force_shapley(diamond, target, row, samples=400_000, seed=0)
    ours = pd.Series(result.contributions[0, 0], index=result.nodes)
    for node, value in brute.items():
        assert ours[node] == pytest.approx(value, abs=0.06), node


def test_monte_carlo_estimator_agrees_with_analytic(diamond):
    row = diamond.outlier({"a": 3.0, "e": -1.0})
    oracle = diamond.oracle_model()
    exact = attribute_outliers(oracle, "d", row, estimator="analytic")
    estimate = attribute_outliers(oracle, "d", row, estimator="monte_carlo", num_samples=20_000, seed=2)
    gap = np.abs(estimate.contributions - exact.contributions)
    assert (gap <= 5 * estimate.standard_errors + 0.02).all()
    assert estimate.standard_errors[0, 0, estimate.nodes.index("a")] > 0
    np.testing.assert_allclose(estimate.contributions.sum(-1), estimate.scores, rtol=1e-9)


def test_posterior_matches_true_parameters_and_ranks_root_cause(diamond, fitted_diamond):
    row = diamond.outlier({"e": 5.0}, seed=4)
    truth = attribute_outliers(diamond.oracle_model(), "d", row)
    posterior = attribute_outliers(fitted_diamond, "d", row)
    mean = posterior.contributions[:, 0].mean(0)
    np.testing.assert_allclose(mean, truth.contributions[0, 0], atol=0.35)
    low, high = np.percentile(posterior.contributions[:, 0], [1, 99], axis=0)
    players = [posterior.nodes.index(p) for p in posterior.players]
    inside = (truth.contributions[0, 0, players] >= low[players]) & (truth.contributions[0, 0, players] <= high[players])
    assert inside.mean() >= 0.8
    summary = posterior.summary().loc[0]
    assert summary.index[0] == "e" and summary.loc["e", "p_top_cause"] > 0.9


def test_same_seed_same_numbers_different_seed_within_error(diamond):
    data = diamond.sample(500, seed=9)
    row = diamond.outlier({"a": 4.0})

    def run(seed: int):
        model = BayesianSCM(diamond.graph, num_draws=50, seed=seed, progress=False,
                            mechanisms={"e": "student_t_root"},
                            options=__import__("bayes_rca").InferenceOptions(svi_steps=150)).fit(data)
        return attribute_outliers(model, "d", row, seed=seed, num_samples=400, max_exact_players=3,
                                  num_permutations=40)

    first, second, other = run(0), run(0), run(1)
    np.testing.assert_array_equal(first.contributions, second.contributions)
    np.testing.assert_array_equal(first.scores, second.scores)
    assert not np.array_equal(first.contributions, other.contributions)


def test_permutation_sampling_matches_exact_enumeration(diamond, fitted_diamond):
    row = diamond.outlier({"a": 3.0, "c": 2.0})
    exact = attribute_outliers(fitted_diamond, "d", row)
    sampled = attribute_outliers(fitted_diamond, "d", row, max_exact_players=3, num_permutations=2000, seed=5)
    assert exact.settings["shapley"] == "exact" and sampled.settings["shapley"] == "permutation"
    gap = np.abs(sampled.contributions - exact.contributions)
    assert (gap <= 5 * sampled.standard_errors + 1e-9).all()
    np.testing.assert_allclose(sampled.contributions.sum(-1), sampled.scores, rtol=1e-9)


def test_several_rows_equal_rows_one_by_one(diamond, fitted_diamond):
    rows = pd.concat([diamond.outlier({"a": 3.0}), diamond.outlier({"e": 4.0}), diamond.outlier({"d": 5.0})],
                     ignore_index=True)
    together = attribute_outliers(fitted_diamond, "d", rows)
    for index in range(3):
        alone = attribute_outliers(fitted_diamond, "d", rows.iloc[[index]])
        np.testing.assert_allclose(together.contributions[:, index], alone.contributions[:, 0], rtol=1e-10)
    assert [together.summary().loc[i].index[0] for i in range(3)] == ["a", "e", "d"]
    pooled = together.pooled_summary()
    np.testing.assert_allclose(pooled.loc["a", "mean"], together.contributions[..., together.nodes.index("a")].mean())


def test_feature_maps_agree_on_gaussian_marginals_and_extreme_scores_grow(diamond, fitted_diamond):
    row = diamond.outlier({"a": 3.0})
    quantile = attribute_outliers(fitted_diamond, "d", row, feature_map="median_cdf_quantile")
    zscore = attribute_outliers(fitted_diamond, "d", row, feature_map="zscore")
    np.testing.assert_allclose(quantile.contributions, zscore.contributions, rtol=1e-8, atol=1e-10)
    scores = []
    for shift in (10.0, 20.0, 40.0):
        result = attribute_outliers(fitted_diamond, "d", diamond.outlier({"e": shift}))
        assert np.isfinite(result.contributions).all()
        scores.append(result.scores.mean())
    assert scores[0] < scores[1] < scores[2] and scores[2] > 100


def test_nonlinear_monte_carlo_axioms():
    graph = nx.DiGraph([("x", "y"), ("y", "z")])
    rng = np.random.default_rng(0)
    x = rng.normal(size=1500)
    y = np.sin(2 * x) + 0.2 * rng.normal(size=1500)
    z = y + 0.3 * rng.standard_t(3, size=1500)
    data = pd.DataFrame({"x": x, "y": y, "z": z})
    model = BayesianSCM(graph, num_draws=40, seed=0, progress=False,
                        mechanisms={"y": "fourier_gaussian", "z": "linear_student_t"},
                        options=__import__("bayes_rca").InferenceOptions(svi_steps=300)).fit(data)
    row = pd.DataFrame({"x": [0.7], "y": [np.sin(1.4) + 2.0], "z": [np.sin(1.4) + 2.1]})
    result = attribute_outliers(model, "z", row, num_samples=1000)
    assert result.settings["estimator"] == "monte_carlo"
    np.testing.assert_allclose(result.contributions.sum(-1), result.scores, rtol=1e-9)
    assert result.summary().loc[0].index[0] == "y"


def test_default_enumerates_every_coalition_within_a_fixed_cost_per_row():
    """15 linear-Gaussian players: all 2^15 coalitions by default (no Monte Carlo error); Monte Carlo keeps 12."""
    assert [default_max_exact_players(True, draws) for draws in (1, 200, 1000, 4000, 10**6)] == [24, 17, 14, 12, 12]
    assert default_max_exact_players(False, 200) == 12
    graph = nx.DiGraph([(f"X{i}", f"X{i + 1}") for i in range(14)])
    system = random_linear_system(graph, seed=3)
    row = system.outlier({"X4": 4.0, "X11": -3.0})
    result = attribute_outliers(system.oracle_model(), "X14", row)  # one draw
    assert result.settings["shapley"] == "exact" and result.settings["max_exact_players"] == 24
    assert (result.standard_errors == 0).all()
    sampled = attribute_outliers(system.oracle_model(), "X14", row, max_exact_players=14, num_permutations=400)
    assert sampled.settings["shapley"] == "permutation"
    assert (np.abs(sampled.contributions - result.contributions) <= 5 * sampled.standard_errors + 1e-9).all()
    small = attribute_outliers(system.oracle_model(), "X2", row, estimator="monte_carlo", num_samples=200)
    assert small.settings["max_exact_players"] == 12 and small.settings["shapley"] == "exact"


class _BrokenGame:
    """A correct game with one defect: its score disagrees with its values, or one coalition's value is NaN."""

    def __init__(self, game, defect: str) -> None:
        self.game, self.defect = game, defect
        self.score = game.score + 1.0 if defect == "score" else game.score
        self.chunk_size = game.chunk_size

    def __call__(self, masks):
        values, batches = self.game(masks)
        if self.defect == "nan":
            values = values.clone()
            values[..., (masks.sum(-1) == 1).nonzero()[:1, 0]] = float("nan")
        return values, batches


@pytest.mark.filterwarnings("ignore::bayes_rca.errors.BayesRCAWarning")  # the row need not be an outlier
@pytest.mark.parametrize("estimator", ["analytic", "monte_carlo"])
@pytest.mark.parametrize("defect, message", [("score", "efficiency violated at draw 0"),
                                             ("nan", "non-finite contribution at draw 0, outlier 'x', node")])
def test_verification_catches_a_deliberately_broken_game(diamond, fitted_diamond, monkeypatch, estimator, defect,
                                                         message):
    import bayes_rca.attribution.api as attribution
    from bayes_rca.errors import VerificationError

    row = pd.DataFrame([diamond.sample(1, seed=9).iloc[0]], index=["x"])
    options = dict(estimator=estimator, num_samples=200)
    attribute_outliers(fitted_diamond, "d", row, **options)  # the game as built passes
    build = attribution.build_game
    monkeypatch.setattr(attribution, "build_game", lambda *a, **k: _BrokenGame(build(*a, **k), defect))
    with pytest.raises(VerificationError, match=message):
        attribute_outliers(fitted_diamond, "d", row, **options)
    attribute_outliers(fitted_diamond, "d", row, verify=False, **options)  # verify=False trusts the game
