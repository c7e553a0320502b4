"""The ``extrapolating_fourier`` family: a Fourier regression within the parents' training range and a noise that
widens beyond it, with the general Monte Carlo game that simulates its noise multipliers.

Checked: the fit is :class:`FourierGaussian`'s (every training row is in the range); abduction inverts the
location-scale form also beyond the range; every coalition value of the Monte Carlo game on a chain with such a
node lies within a few standard errors of an independent numpy brute force of the same structural equations;
and on a call chain whose middle node follows a far-out callee more steeply than in normal operation, the
middle node is not blamed (a plain Fourier fit blames it).
"""

from __future__ import annotations

import math

import networkx as nx
import numpy as np
import pandas as pd
import pytest
import torch
from scipy import special

from bayes_rca import BayesianSCM, attribute_outliers
from bayes_rca.attribution.abduction import Players
from bayes_rca.attribution.monte_carlo_game import MonteCarloGame
from bayes_rca.attribution.scores import MedianCDFQuantile
from bayes_rca.attribution.shapley import coalition_masks

GRAPH = nx.DiGraph([("callee", "caller"), ("caller", "web")])


def _call_chain(rows: int, seed: int) -> pd.DataFrame:
    """callee -> caller -> web: the caller grows faster than linearly in the callee (``x + x|x|/2``)."""
    rng = np.random.default_rng(seed)
    callee = rng.standard_normal(rows)
    caller = callee + 0.5 * callee * np.abs(callee) + 0.3 * rng.standard_normal(rows)
    web = caller + rng.standard_normal(rows)
    return pd.DataFrame({"callee": callee, "caller": caller, "web": web})


def _outlier(callee: float) -> pd.DataFrame:
    caller = callee + 0.5 * callee * abs(callee)
    return pd.DataFrame({"callee": [callee], "caller": [caller], "web": [caller]})


@pytest.fixture(scope="module")
def data() -> pd.DataFrame:
    return _call_chain(2000, seed=0)


def _fit(data: pd.DataFrame, family: str, draws: int = 40) -> BayesianSCM:
    return BayesianSCM(GRAPH, mechanisms={"caller": family, "web": "linear_gaussian"}, num_draws=draws, seed=0,
                       progress=False).fit(data)


def test_the_fit_within_the_range_is_the_fourier_regression_s_and_recovers_the_function(data):
    extrapolating, plain = _fit(data, "extrapolating_fourier"), _fit(data, "fourier_gaussian")
    node, reference = extrapolating.nodes_["caller"], plain.nodes_["caller"]
    assert node.mechanism.name == "extrapolating_fourier" and node.params.keys() == reference.params.keys()
    for name, value in node.params.items():
        torch.testing.assert_close(value, reference.params[name])  # same design, same grid, same draws
    grid = torch.linspace(-2.0, 2.0, 41, dtype=torch.float64).view(1, -1, 1)
    truth = (grid + 0.5 * grid * grid.abs())[0, :, 0]
    batch = grid.expand(node.params["bias"].shape[0], -1, -1)
    torch.testing.assert_close(node.location(batch).mean(0), truth, atol=0.1, rtol=0.0)
    torch.testing.assert_close(node.noise_multiplier(batch), torch.ones(batch.shape[:2], dtype=torch.float64))


def test_abduction_inverts_the_location_scale_form_beyond_the_range(data):
    node = _fit(data, "extrapolating_fourier", draws=8).nodes_["caller"]
    parents = torch.tensor([[0.5], [3.0], [8.0], [-9.0]], dtype=torch.float64)  # in range, and beyond it
    noise = torch.tensor([0.3, -1.2, 2.0, 0.7], dtype=torch.float64)
    batch = parents.expand(8, -1, -1)
    location, multiplier = node.location(batch), node.noise_multiplier(batch)
    assert bool((multiplier[:, 2:] > 3.0).all()) and bool((multiplier[:, 0] == 1.0).all())
    values = location + node.standardizer.scale * multiplier * noise  # (D, R): differs per draw
    torch.testing.assert_close(node.abduct(values, batch), noise.expand(8, -1))


class ChainBruteForce:
    """Every coalition of the chain ``callee -> caller -> web`` by plain simulation in numpy: ``callee`` a
    Gaussian root, ``caller`` the fitted node's own location and noise multiplier (standardised, recomputed
    here from its parameters), ``web`` linear-Gaussian; the redrawn noise of ``callee`` is drawn around its
    abducted value as well (``q = (p + p(. - n)) / 2``), the target's own Gaussian noise integrated exactly."""

    def __init__(self, model: BayesianSCM, row: pd.DataFrame, thresholds: tuple[float, float], draw: int) -> None:
        self.nodes = [model.nodes_[name] for name in ("callee", "caller", "web")]
        self.row, self.draw = row, draw
        self.lo, self.hi = thresholds

    def _param(self, node, name: str) -> np.ndarray:
        return node.params[name][self.draw].numpy()

    def caller_value(self, callee: np.ndarray, noise: np.ndarray) -> np.ndarray:
        node = self.nodes[1]
        mechanism, std = node.mechanism, node.standardizer
        x = (callee - float(std.parent_loc[0])) / float(std.parent_scale[0])
        low, high = float(mechanism._low[0]), float(mechanism._high[0])
        clipped = np.clip(x, low, high)
        excess = x - clipped
        freq, phases = mechanism.frequencies[0].numpy(), mechanism.phases.numpy()
        coef = math.sqrt(2.0 / mechanism.num_features) * self._param(node, "shrinkage") * self._param(node, "coef_raw")
        location = (self._param(node, "bias") + self._param(node, "weight")[0] * x
                    + np.cos(clipped[:, None] * freq + phases) @ coef)
        sigma = float(self._param(node, "noise_scale"))
        multiplier = np.sqrt(1.0 + mechanism.far_sd**2 * excess**2 / sigma**2)
        return float(std.loc) + float(std.scale) * (location + multiplier * noise)

    def caller_tail(self, callee: np.ndarray, lo: float, hi: float) -> np.ndarray:
        """``P(caller <= lo or >= hi)`` with its own noise redrawn (the caller as the target): its value at zero
        noise and at one noise sd give the location and the scale, the multiplier included."""
        node = self.nodes[1]
        sigma = float(self._param(node, "noise_scale"))
        location = self.caller_value(callee, np.zeros_like(callee))
        scale = self.caller_value(callee, np.full_like(callee, sigma)) - location
        return special.ndtr((lo - location) / scale) + special.ndtr((location - hi) / scale)

    def values(self, abducted: np.ndarray, samples: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
        rng = np.random.default_rng(seed)
        callee_node, caller_node, web_node = self.nodes
        sd = [float(torch.sqrt(node.noise().variance[self.draw, 0])) for node in self.nodes]
        shifted = rng.integers(2, size=samples) == 1
        fresh_callee = sd[0] * rng.standard_normal(samples) + np.where(shifted, abducted[0], 0.0)
        log_p = -0.5 * (fresh_callee / sd[0]) ** 2
        log_q = np.logaddexp(log_p, -0.5 * ((fresh_callee - abducted[0]) / sd[0]) ** 2) - math.log(2.0)
        fresh_caller = sd[1] * rng.standard_normal(samples)
        std0 = callee_node.standardizer
        bias_w = web_node.params["bias"][self.draw].item(), web_node.params["weight"][self.draw, 0].item()
        values, errors = np.zeros(8), np.zeros(8)
        for code in range(1, 8):
            redrawn = [(code >> k) & 1 == 1 for k in range(3)]
            n0 = fresh_callee if redrawn[0] else np.full(samples, abducted[0])
            weight = np.exp(log_p - log_q) if redrawn[0] else np.ones(samples)
            callee = float(std0.loc) + float(std0.scale) * (self._param(callee_node, "bias") + n0)  # a root
            caller = self.caller_value(callee, fresh_caller if redrawn[1] else np.full(samples, abducted[1]))
            std2 = web_node.standardizer
            location = float(std2.loc) + float(std2.scale) * (
                bias_w[0] + bias_w[1] * (caller - float(std2.parent_loc[0])) / float(std2.parent_scale[0]))
            if redrawn[2]:
                scale = float(std2.scale) * sd[2]
                tail = special.ndtr((self.lo - location) / scale) + special.ndtr((location - self.hi) / scale)
            else:
                value = location + float(std2.scale) * abducted[2]
                tail = ((value <= self.lo) | (value >= self.hi)).astype(float)
            terms = weight * tail
            values[code] = -math.log(terms.mean())
            errors[code] = terms.std() / math.sqrt(samples) / terms.mean()
        return values, errors


def test_the_monte_carlo_game_simulates_the_multiplier_coalition_by_coalition(data):
    """The callee 6 sd out (beyond its training range, so the caller's noise multiplier is about 20): every
    coalition value of the game (one draw, 4000 samples) within 4 combined standard errors of a 400,000-sample
    brute force of the same equations, at the game's own thresholds. With the multiplier left out of the
    simulation the caller's redrawn noise could not follow the callee and the values of coalitions that redraw
    the caller and keep the callee move by nats."""
    model = _fit(data, "extrapolating_fourier", draws=2)
    row = _outlier(6.0)
    nodes = [model.nodes_[name] for name in ("callee", "caller", "web")]
    players = Players.abduct(nodes, torch.tensor(row.values, dtype=torch.float64))
    game = MonteCarloGame(players, MedianCDFQuantile(), 4000, torch.Generator().manual_seed(0))
    masks = coalition_masks(3, 0, 8)
    values, batches = game(masks)
    error = (batches.std(0) / math.sqrt(batches.shape[0]))[0, 0].numpy()
    multiplier = nodes[1].noise_multiplier(torch.tensor([[[6.0]]], dtype=torch.float64).expand(2, -1, -1))  # 2 draws
    assert float(multiplier.min()) > 5.0
    brute = ChainBruteForce(model, row, (float(game.lo[0, 0]), float(game.hi[0, 0])), draw=0)
    truth, truth_error = brute.values(players.noise[0, 0].numpy(), 400_000, seed=1)
    difference = values[0, 0].numpy() - truth
    exact = np.abs(difference) < 1e-6  # the empty coalition and {web}: no sampled noise in either
    z = np.where(exact, 0.0, difference / np.maximum(np.sqrt(error**2 + truth_error**2), 1e-300))
    assert exact.sum() == 2 and np.abs(z).max() < 4.0, (values[0, 0].numpy(), truth, difference, z)


@pytest.mark.parametrize("tail_df", [None, 2.0])
def test_a_caller_that_followed_a_far_callee_is_not_blamed(data, tail_df):
    """The callee 6 sd out, beyond anything in the 2000 normal rows (max about 3.5); the caller followed it by
    its true (convex) function, far above the fitted trend's continuation. A plain Fourier fit abducts a huge
    noise for the caller and ranks it first; the extrapolating family widens the caller's noise with the
    callee's distance from the data, and the callee comes first in nearly every posterior draw."""
    row = _outlier(6.0)
    plain = attribute_outliers(_fit(data, "fourier_gaussian"), "web", row, num_samples=500, tail_df=tail_df)
    widening = attribute_outliers(_fit(data, "extrapolating_fourier"), "web", row, num_samples=500, tail_df=tail_df)
    assert plain.settings["estimator"] == widening.settings["estimator"] == "monte_carlo"
    assert plain.top_cause_probability().iloc[0].idxmax() == "caller"
    top = widening.top_cause_probability().iloc[0]
    assert top.idxmax() == "callee" and top["callee"] > 0.9, top
    np.testing.assert_allclose(widening.contributions.sum(-1), widening.scores, atol=1e-9)  # efficiency per draw


def test_the_target_s_own_multiplier_enters_its_integrated_tail_and_thresholds(data):
    """The caller as the target (callee -> caller): with the callee kept 6 sd out the caller's redrawn noise is
    about 20 times wider than in normal operation, and its tail probability, integrated exactly, must say so;
    the coalitions that redraw the callee are simulated. Against the brute force's closed form and simulation
    at the game's thresholds."""
    model = _fit(data, "extrapolating_fourier", draws=2)
    row = _outlier(6.0)[["callee", "caller"]]
    nodes = [model.nodes_[name] for name in ("callee", "caller")]
    players = Players.abduct(nodes, torch.tensor(row.values, dtype=torch.float64))
    game = MonteCarloGame(players, MedianCDFQuantile(), 4000, torch.Generator().manual_seed(0))
    values, batches = game(coalition_masks(2, 0, 4))
    error = (batches.std(0) / math.sqrt(batches.shape[0]))[0, 0].numpy()
    lo, hi = float(game.lo[0, 0]), float(game.hi[0, 0])
    brute = ChainBruteForce(model, row, (lo, hi), draw=0)
    callee_node = nodes[0]
    abducted = players.noise[0, 0].numpy()
    std0 = callee_node.standardizer
    bias = float(callee_node.params["bias"][0])
    kept_callee = np.array([float(std0.loc) + float(std0.scale) * (bias + abducted[0])])
    only_caller = -math.log(float(brute.caller_tail(kept_callee, lo, hi)[0]))  # exact: nothing sampled
    rng = np.random.default_rng(1)
    fresh = float(std0.loc) + float(std0.scale) * (bias + float(torch.sqrt(callee_node.noise().variance[0, 0]))
                                                   * rng.standard_normal(400_000))
    both_terms = brute.caller_tail(fresh, lo, hi)
    both = -math.log(both_terms.mean())
    both_error = both_terms.std() / math.sqrt(len(both_terms)) / both_terms.mean()
    assert values[0, 0, 2].item() == pytest.approx(only_caller, abs=1e-6)
    assert abs(values[0, 0, 3].item() - both) < 4.0 * math.hypot(error[3], both_error), (values[0, 0], both)
    assert only_caller < 3.0  # the widened noise: the caller's own redraw reaches the observed value easily


def test_the_automatic_assignment_takes_the_extrapolating_family_and_binds_its_range(data):
    """The caller's convex response is nonlinear: the automatic assignment proposes the Fourier family in its
    extrapolating form (identical within the range, so LOO cannot tell them apart), bound to the callee's
    training range, and the far callee is the top cause."""
    model = BayesianSCM(GRAPH, num_draws=40, seed=0, progress=False).fit(data)
    node = model.nodes_["caller"]
    assert model.fit_report_.loc["caller", "family"] == "extrapolating_fourier"
    low, high = node.mechanism._low, node.mechanism._high
    standard = node.standardizer.parents(torch.tensor(data[["callee"]].values))
    assert float(low) == pytest.approx(float(standard.min())) and float(high) == pytest.approx(float(standard.max()))
    result = attribute_outliers(model, "web", _outlier(6.0), num_samples=500, tail_df=2.0)
    assert result.top_cause_probability().iloc[0]["callee"] > 0.9


def test_the_distribution_change_simulation_widens_the_noise_beyond_the_range(data):
    """Distribution change with the callee's mechanism from a period where it sits 6 sd higher: the coalition
    that takes the new callee and keeps the old caller simulates the caller beyond its training range, where its
    noise is widened (``X = f + m scale N``), exactly as the node's own location and multiplier say."""
    from bayes_rca.change.functionals import get_functional
    from bayes_rca.change.games import MonteCarloChangeGame

    old = _fit(data, "extrapolating_fourier", draws=2)
    shifted = data.assign(callee=data["callee"] + 6.0)
    new = _fit(shifted, "extrapolating_fourier", draws=2)
    names = ["callee", "caller", "web"]
    game = MonteCarloChangeGame([old.nodes_[n] for n in names], [new.nodes_[n] for n in names], [[], [0], [1]],
                                get_functional("mean"), 2000, torch.Generator().manual_seed(0))
    masks = torch.tensor([[True, False, False]])
    simulated = game.simulate(masks)[:, 0]  # (D, S): web's samples
    callee_node, caller_node, web_node = (game.new_nodes[0], game.old_nodes[1], game.old_nodes[2])
    empty = torch.zeros(2, 2000, 0, dtype=torch.float64)
    callee = callee_node.value_at(callee_node.location(empty), game.new_noise[..., 0])
    parents = callee.unsqueeze(-1)
    multiplier = caller_node.noise_multiplier(parents)
    assert float(multiplier.mean()) > 5.0  # beyond the old caller's range
    caller = caller_node.value_at(caller_node.location(parents), game.old_noise[..., 1] * multiplier)
    web = web_node.value_at(web_node.location(caller.unsqueeze(-1)), game.old_noise[..., 2])
    torch.testing.assert_close(simulated, web)


def test_a_missing_value_is_completed_with_the_widened_noise(data):
    """The completion of missing values simulates the extrapolating caller with its multiplier and weighs an
    observed value below it by the widened noise's density: for the callee missing and the caller 30 at the
    row, every particle's log-density is the callee's prior plus the caller's widened likelihood."""
    from bayes_rca.attribution.latent import _simulate

    model = _fit(data, "extrapolating_fourier", draws=2)
    nodes = [model.nodes_[name] for name in ("callee", "caller", "web")]
    row = torch.tensor([float("nan"), 30.0, 30.0], dtype=torch.float64)
    noise = torch.tensor([[[0.0], [6.0], [8.0]]] * 2, dtype=torch.float64)  # (D, P, M): the callee's noise
    values, log_density = _simulate(nodes, row, noise)
    callee_node, caller_node, _ = nodes
    callee = callee_node.value_at(callee_node.location(torch.zeros(2, 3, 0, dtype=torch.float64)), noise[..., 0])
    torch.testing.assert_close(values[..., 0], callee)
    parents = callee.unsqueeze(-1)
    multiplier = caller_node.noise_multiplier(parents)
    assert float(multiplier[:, 2].min()) > 10.0 and float(multiplier[:, 0].max()) == 1.0
    residual = (30.0 - caller_node.location(parents)) / caller_node.standardizer.scale / multiplier
    # web and its parent are observed: the same factor in every particle, left out
    expected = (callee_node.noise().log_prob(noise[..., 0]) + caller_node.noise().log_prob(residual)
                - torch.log(multiplier))
    torch.testing.assert_close(log_density, expected)
