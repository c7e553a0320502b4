"""The scale-mixture game (linear players with Gaussian or Student-t noise) and its control variate.

Checked against a brute-force simulation of the structural equations (independent of the game's algebra),
against the exact linear-Gaussian game where every player is Gaussian, for the calibration of its standard
errors over seeds, and for the unbiasedness of the control-variate Shapley estimator.
"""

from __future__ import annotations

from dataclasses import replace

import networkx as nx
import numpy as np
import pytest
import torch

from bayes_rca import attribute_outliers
from bayes_rca.attribution.abduction import Players
from bayes_rca.attribution.linear_game import LinearGaussianGame
from bayes_rca.attribution.monte_carlo_game import MonteCarloGame
from bayes_rca.graph.dag import ancestors_of
from bayes_rca.attribution.scale_mixture_game import ScaleMixtureGame, supports_scale_mixture_game
from bayes_rca.attribution.scores import get_feature_map
from bayes_rca.attribution.shapley import coalition_masks
from bayes_rca.data.synthetic import LinearGaussianSystem

DF = 3.0


def diamond(noise_df: float | None = DF) -> LinearGaussianSystem:
    """A -> B, A -> C, B -> D, C -> D, E -> D: five players of target D."""
    graph = nx.DiGraph([("A", "B"), ("A", "C"), ("B", "D"), ("C", "D"), ("E", "D")])
    coefficients = {("A", "B"): 1.5, ("A", "C"): -0.8, ("B", "D"): 1.0, ("C", "D"): 0.7, ("E", "D"): 1.2}
    intercepts = {n: 0.5 * i for i, n in enumerate(graph)}
    noise_sd = {"A": 1.0, "B": 0.5, "C": 2.0, "D": 0.7, "E": 1.0}
    return LinearGaussianSystem(graph, coefficients, intercepts, noise_sd, noise_df)


def players_of(system: LinearGaussianSystem, injected: dict, draws: int = 1) -> Players:
    model = system.oracle_model()
    names = [*ancestors_of(system.graph, "D"), "D"]
    nodes = []
    for name in names:
        node = model.nodes_[name]
        params = {k: v.repeat(draws, *[1] * (v.dim() - 1)) for k, v in node.params.items()}
        nodes.append(replace(node, posterior=replace(node.posterior, params=params)))
    values = torch.tensor(system.outlier(injected)[names].to_numpy(), dtype=torch.float64)
    return Players.abduct(nodes, values)


def brute_force(system: LinearGaussianSystem, injected: dict, coalition: list[str], samples: int,
                seed: int) -> tuple[float, float]:
    """``-log P(outlier event)`` with the coalition's noise redrawn, by simulating the system; and its SE."""
    rng = np.random.default_rng(seed)
    nodes = list(system.graph)
    base = np.zeros((samples, len(nodes)))
    for name, value in injected.items():
        base[:, nodes.index(name)] = value
    for name in coalition:
        base[:, nodes.index(name)] = rng.standard_t(system.noise_df, samples)
    import pandas as pd

    target = system.propagate(pd.DataFrame(base, columns=nodes))["D"].to_numpy()
    centre = float(system.propagate(pd.DataFrame(np.zeros((1, len(nodes))), columns=nodes))["D"].iloc[0])
    observed = float(system.outlier(injected)["D"].iloc[0])
    distance = abs(observed - centre)
    hits = np.abs(target - centre) >= distance
    p = hits.mean()
    return -np.log(p), np.sqrt((1 - p) / (p * samples))


@pytest.mark.parametrize("injected", [{"A": 4.0}, {"E": 10.0}, {"B": 3.0, "C": -6.0}])
def test_coalition_values_agree_with_a_simulation_of_the_system(injected):
    system = diamond()
    players = players_of(system, injected)
    names = [node.name for node in players.nodes]
    game = ScaleMixtureGame(players, get_feature_map("median_cdf_quantile"), 4096, torch.Generator().manual_seed(1))
    masks = coalition_masks(len(names), 1, 1 << len(names))
    values, batches = game(masks)
    errors = batches.std(0) / np.sqrt(batches.shape[0])
    for c, mask in enumerate(masks):
        coalition = [n for n, m in zip(names, mask.tolist()) if m]
        truth, truth_se = brute_force(system, injected, coalition, 400_000, seed=c)
        value, se = float(values[0, 0, c]), float(errors[0, 0, c])
        assert abs(value - truth) <= 4.0 * np.hypot(se, truth_se) + 1e-3, (coalition, value, se, truth, truth_se)


def test_gaussian_players_give_the_exact_linear_gaussian_game():
    system = diamond(noise_df=None)
    players = players_of(system, {"A": 5.0, "E": -3.0}, draws=3)
    masks = coalition_masks(5, 0, 32)
    tau = get_feature_map("median_cdf_quantile")
    smg = ScaleMixtureGame(players, tau, 64, torch.Generator().manual_seed(0))
    exact, _ = LinearGaussianGame(players, tau)(masks)
    values, batches = smg(masks)
    assert smg.control_variate() is None
    torch.testing.assert_close(values, exact, atol=2e-5, rtol=1e-5)  # float32 sums of identical terms
    assert float((batches.std(0)).max()) < 1e-5


def test_standard_errors_match_the_spread_over_seeds():
    system = diamond()
    players = players_of(system, {"A": 6.0, "C": 3.0})
    masks = coalition_masks(5, 1, 32)
    tau = get_feature_map("median_cdf_quantile")
    runs = [ScaleMixtureGame(players, tau, 256, torch.Generator().manual_seed(seed))(masks) for seed in range(40)]
    values = torch.stack([v[0, 0] for v, _ in runs])  # (seeds, C)
    reported = torch.stack([b.std(0)[0, 0] / np.sqrt(b.shape[0]) for _, b in runs]).mean(0)
    spread = values.std(0)
    moving = spread > 1e-6  # coalitions with a Student-t player
    ratio = spread[moving] / reported[moving]
    assert 0.6 < float(ratio.median()) < 1.6, ratio
    assert float(ratio.max()) < 2.5, ratio


def test_control_variate_permutations_agree_with_the_exact_enumeration():
    system = diamond()
    graph = system.graph
    outlier = system.outlier({"A": 5.0, "E": 2.0})
    oracle = system.oracle_model()
    kwargs = dict(num_samples=4096, seed=3)
    exact = attribute_outliers(oracle, "D", outlier, max_exact_players=5, **kwargs)
    sampled = attribute_outliers(oracle, "D", outlier, max_exact_players=2, num_permutations=200, **kwargs)
    assert exact.settings["estimator"] == "scale_mixture"
    assert sampled.settings["shapley"] == "permutation_control_variate"
    index = [exact.nodes.index(p) for p in exact.players]
    gap = np.abs(sampled.contributions[0, 0, index] - exact.contributions[0, 0, index])
    se = np.hypot(sampled.standard_errors[0, 0, index], exact.standard_errors[0, 0, index])
    assert (gap <= 4.0 * se + 1e-3).all(), (gap, se)
    assert sampled.contributions[0, 0].sum() == pytest.approx(sampled.scores[0, 0], abs=1e-8)
    assert nx.is_directed_acyclic_graph(graph)


def test_the_control_variate_removes_most_of_the_permutation_spread():
    system = diamond()
    outlier = system.outlier({"A": 8.0})
    oracle = system.oracle_model()
    with_control = attribute_outliers(oracle, "D", outlier, max_exact_players=2, num_permutations=100,
                                      num_samples=2048, seed=0)
    players = players_of(system, {"A": 8.0})
    game = ScaleMixtureGame(players, get_feature_map("median_cdf_quantile"), 2048, torch.Generator().manual_seed(0))
    from bayes_rca.attribution.shapley import permutation_shapley

    plain = permutation_shapley(game, 5, 100, torch.Generator().manual_seed(0), game.chunk_size)
    index = [with_control.nodes.index(p) for p in with_control.players]
    assert with_control.standard_errors[0, 0, index].max() < 0.5 * float(plain.standard_error.max())


def test_auto_uses_the_scale_mixture_game_only_where_it_applies():
    system = diamond()
    oracle = system.oracle_model()
    assert supports_scale_mixture_game(list(oracle.nodes_.values()))
    outlier = system.outlier({"A": 5.0})
    result = attribute_outliers(oracle, "D", outlier, num_samples=256)
    assert result.settings["estimator"] == "scale_mixture"
    forced = attribute_outliers(oracle, "D", outlier, num_samples=256, estimator="monte_carlo")
    assert forced.settings["estimator"] == "monte_carlo"


def test_monte_carlo_game_standard_errors_are_finite_and_calibrated_far_out():
    """The general game's batches are linearised: no exploding log of a batch without hits."""
    system = diamond()
    players = players_of(system, {"E": 12.0})
    masks = coalition_masks(5, 1, 32)
    tau = get_feature_map("median_cdf_quantile")
    runs = [MonteCarloGame(players, tau, 2000, torch.Generator().manual_seed(seed))(masks) for seed in range(12)]
    values = torch.stack([v[0, 0] for v, _ in runs])
    reported = torch.stack([b.std(0)[0, 0] / np.sqrt(b.shape[0]) for _, b in runs])
    assert bool(torch.isfinite(reported).all()) and float(reported.max()) < 2.0
    spread, typical = values.std(0), reported.mean(0)
    moving = spread > 1e-6
    assert float((spread[moving] / typical[moving]).median()) < 2.0


def test_the_robust_game_of_gaussian_players_is_the_closed_form_student_t_game():
    """With ``tail_df`` and every player Gaussian, the common factor is the only thing sampled, and the game is
    the closed-form robust game (Student-t with ``tail_df`` degrees of freedom) up to its Monte Carlo error, the
    reported standard errors covering the difference; its control variate is that closed form itself."""
    system = diamond(noise_df=None)
    players = players_of(system, {"A": 5.0, "E": -3.0}, draws=3)
    masks = coalition_masks(5, 0, 32)
    tau = get_feature_map("median_cdf_quantile")
    smg = ScaleMixtureGame(players, tau, 4096, torch.Generator().manual_seed(0), tail_df=2.0)
    exact, _ = LinearGaussianGame(players, tau, tail_df=2.0)(masks)
    values, batches = smg(masks)
    error = batches.std(0) / np.sqrt(batches.shape[0])
    z = ((values - exact) / error.clamp_min(1e-12))[..., 1:]
    assert float(error.max()) < 0.1 and float(z.abs().max()) < 4.5 and float(z.square().mean().sqrt()) < 1.6
    assert smg.control_variate().df == 2.0


@pytest.mark.parametrize("injected", [{"A": 4.0}, {"E": 10.0}])
def test_the_robust_game_of_student_t_players_agrees_with_the_general_monte_carlo_one(injected):
    """Student-t players and the common factor: the scale-mixture game (the mixing variables sampled, the
    Gaussian part exact) against the general Monte Carlo game (every noise sampled, an independent
    estimator), coalition by coalition within 4 combined standard errors."""
    system = diamond()
    players = players_of(system, injected)
    tau = get_feature_map("median_cdf_quantile")
    masks = coalition_masks(5, 1, 32)
    smg_values, smg_batches = ScaleMixtureGame(players, tau, 4096, torch.Generator().manual_seed(1),
                                               tail_df=2.0)(masks)
    mc_values, mc_batches = MonteCarloGame(players, tau, 8000, torch.Generator().manual_seed(2), tail_df=2.0)(masks)
    combined = torch.sqrt(smg_batches.var(0) / smg_batches.shape[0] + mc_batches.var(0) / mc_batches.shape[0])
    z = (smg_values - mc_values) / combined
    assert float(z.abs().max()) < 4.0 and float(combined.max()) < 0.2, (z.abs().max(), combined.max())
