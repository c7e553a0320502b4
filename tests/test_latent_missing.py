"""Missing values in an outlier row as latent variables.

The noise given the observed entries is Gaussian; its samples must match an independent Gaussian conditioning
of the joint law, the attribution must keep its axioms per (draw, sample), and intervals must widen when a
parent is hidden while still covering the contributions of the full row.
"""

from __future__ import annotations

import warnings

import networkx as nx
import numpy as np
import pandas as pd
import pytest
import torch

from bayes_rca import attribute_outliers
from bayes_rca.attribution.latent import conditional_noise, sample_missing
from bayes_rca.data.synthetic import LinearGaussianSystem
from bayes_rca.errors import BayesRCAWarning, DataError

GRAPH = nx.DiGraph([("A", "B"), ("B", "T"), ("C", "T")])
SYSTEM = LinearGaussianSystem(GRAPH, {("A", "B"): 1.5, ("B", "T"): 0.8, ("C", "T"): -1.2},
                              {"A": 1.0, "B": -2.0, "C": 0.5, "T": 3.0}, {"A": 1.0, "B": 0.5, "C": 2.0, "T": 0.7})
ORDER = ["A", "B", "C", "T"]


def _brute_force_conditional(hidden: list[str], row: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Mean and covariance of the noise given the observed values, by conditioning the joint Gaussian."""
    size = len(ORDER)
    coupling = np.zeros((size, size))
    for (parent, child), weight in SYSTEM.coefficients.items():
        coupling[ORDER.index(child), ORDER.index(parent)] = weight
    total = np.linalg.inv(np.eye(size) - coupling)
    sd = np.array([SYSTEM.noise_sd[n] for n in ORDER])
    mean_x = total @ np.array([SYSTEM.intercepts[n] for n in ORDER])
    # joint of (N, X) with N ~ Normal(0, diag(sd^2)) in data units, X = mean_x + total N
    cov_nn, cov_xn = np.diag(sd**2), total @ np.diag(sd**2)
    cov_xx = total @ np.diag(sd**2) @ total.T
    observed = [ORDER.index(n) for n in ORDER if n not in hidden]
    gain = cov_xn[observed].T @ np.linalg.inv(cov_xx[np.ix_(observed, observed)])
    mean = gain @ (row[[ORDER[i] for i in observed]].to_numpy() - mean_x[observed])
    return mean, cov_nn - gain @ cov_xn[observed]


@pytest.mark.parametrize("hidden", [["A"], ["B"], ["A", "B"], ["A", "C"]])
def test_conditional_noise_matches_gaussian_conditioning(hidden: list[str]) -> None:
    model = SYSTEM.oracle_model()
    row = SYSTEM.outlier({"A": 3.0, "C": -1.0}, seed=1).iloc[0]
    values = torch.tensor(row[ORDER].where(~row[ORDER].index.isin(hidden)).to_numpy(dtype=float))
    samples = conditional_noise([model.node(n) for n in ORDER], values, 40_000, torch.Generator().manual_seed(0))
    mean, cov = _brute_force_conditional(hidden, row)  # the oracle's standardiser is the identity: same units
    assert np.allclose(samples.mean(0).numpy(), mean, atol=0.03)
    assert np.allclose(np.cov(samples.numpy().T), cov, atol=0.04)
    observed_with_observed_parents = [n for n in ORDER if n not in hidden
                                      and not set(GRAPH.predecessors(n)) & set(hidden)]
    for node in observed_with_observed_parents:  # their noise is the residual, in every sample
        assert samples[:, ORDER.index(node)].std() < 1e-9


def test_hidden_parent_keeps_axioms_and_widens_intervals() -> None:
    model = SYSTEM.oracle_model()
    row = SYSTEM.outlier({"A": 4.0})
    full = attribute_outliers(model, "T", row)
    hidden = row.copy()
    hidden["A"] = np.nan
    latent = attribute_outliers(model, "T", hidden, num_latent_samples=400)  # verify=True: axioms per draw
    assert latent.contributions.shape[0] == 400 and latent.settings["missing"] == {0: ["A"]}
    assert np.allclose(latent.contributions.sum(-1), latent.scores)
    assert np.ptp(full.contributions[:, 0], axis=0).max() == 0  # one draw of known parameters: no spread
    width = np.subtract(*np.percentile(latent.contributions[:, 0], [95, 5], axis=0))
    assert width[ORDER.index("A")] > 0.5 and width[ORDER.index("B")] > 0.5
    assert width[ORDER.index("C")] < 1e-9 or width[ORDER.index("C")] < width[ORDER.index("A")]


def test_hidden_parent_intervals_cover_the_full_row_contributions() -> None:
    """Rows drawn from the system; 90% intervals with A hidden cover the contributions computed from the full row."""
    model = SYSTEM.oracle_model()
    rows = SYSTEM.sample(200, seed=3)
    rows = rows[(rows["T"] - rows["T"].median()).abs() > rows["T"].std()].iloc[:60].reset_index(drop=True)
    truth = attribute_outliers(model, "T", rows).contributions[0]  # (R, N): the full rows
    hidden = rows.assign(A=np.nan)
    latent = attribute_outliers(model, "T", hidden, num_latent_samples=400, seed=1).contributions  # (S, R, N)
    low, high = np.percentile(latent, [5, 95], axis=0)
    covered = (truth >= low - 1e-9) & (truth <= high + 1e-9)  # every node is a player here
    assert 0.8 <= covered.mean() < 1.0 and (high - low).mean() > 0.1


def test_missing_values_need_an_observed_target_and_finite_values() -> None:
    model = SYSTEM.oracle_model()
    row = SYSTEM.outlier({"A": 4.0})
    with pytest.raises(DataError, match="outlier row 0 has a missing value in column 'T'"):
        attribute_outliers(model, "T", row.assign(T=np.nan))
    with pytest.raises(DataError, match="infinite value in column 'A'"):
        attribute_outliers(model, "T", row.assign(A=np.inf))


def test_importance_sampling_of_missing_values_matches_gaussian_conditioning() -> None:
    """The path for any mechanisms (ancestral proposal, likelihood weights), checked where the answer is exact."""
    model = SYSTEM.oracle_model()
    row = SYSTEM.outlier({"A": 3.0, "C": -1.0}, seed=1).iloc[0]
    hidden = ["A", "B"]
    values = torch.tensor(row[ORDER].where(~row[ORDER].index.isin(hidden)).to_numpy(dtype=float))
    completed, effective = sample_missing([model.node(n) for n in ORDER], values, 50_000,
                                          torch.Generator().manual_seed(0), num_particles=200_000)
    mean, cov = _brute_force_conditional(hidden, row)  # of the noise; the hidden values follow from it
    intercept_a, weight_ab = SYSTEM.intercepts["A"], SYSTEM.coefficients["A", "B"]
    to_values = np.array([[1.0, 0.0, 0.0, 0.0], [weight_ab, 1.0, 0.0, 0.0]])  # (A, B) from (N_A, N_B)
    offset = np.array([intercept_a, SYSTEM.intercepts["B"] + weight_ab * intercept_a])
    expected_mean, expected_cov = offset + to_values @ mean, to_values @ cov @ to_values.T
    sample = completed[:, [ORDER.index(n) for n in hidden]].numpy()
    assert np.allclose(sample.mean(0), expected_mean, atol=0.03)
    assert np.allclose(np.cov(sample.T), expected_cov, atol=0.03)
    assert float(effective[0]) > 1000
    observed = [ORDER.index(n) for n in ORDER if n not in hidden]
    assert torch.equal(completed[:, observed], values[observed].expand(len(completed), -1))


def test_missing_parent_of_a_threshold_node_widens_its_intervals() -> None:
    """Missing values with mechanisms that are not linear-Gaussian: a 0/1 node below a hidden parent."""
    from bayes_rca import BayesianSCM

    rng = np.random.default_rng(0)
    n = 1500
    a = rng.normal(size=n)
    up = (1.5 * a + rng.normal(size=n) > 0).astype(float)
    data = pd.DataFrame({"A": a, "up": up, "T": 2.0 * up + 0.5 * a + rng.normal(scale=0.5, size=n)})
    graph = nx.DiGraph([("A", "up"), ("up", "T"), ("A", "T")])
    model = BayesianSCM(graph, num_draws=30, progress=False).fit(data)
    assert model.fit_report_.loc["up", "family"] == "probit_threshold"
    full = pd.DataFrame({"A": [2.5], "up": [1.0], "T": [5.0]})
    options = {"num_samples": 600, "num_latent_samples": 10, "seed": 0}
    observed = attribute_outliers(model, "T", full, **options)
    with warnings.catch_warnings():
        warnings.simplefilter("error", BayesRCAWarning)  # no degenerate importance weights
        hidden = attribute_outliers(model, "T", full.assign(A=np.nan), **options)
    assert hidden.settings["missing"] == {0: ["A"]}
    for result in (observed, hidden):
        assert np.allclose(result.contributions.sum(-1), result.scores)
    a_index = hidden.nodes.index("A")

    def spread(result) -> float:
        draws = result.contributions[:, 0, a_index]
        return float(np.quantile(draws, 0.95) - np.quantile(draws, 0.05))

    assert spread(hidden) > 1.5 * spread(observed)
    # the hidden A is inferred from up = 1 and T = 5 (both above their means): its posterior sits above 0
    noise_a = hidden.noise[:, 0, hidden.players.index("A")]
    assert 0.5 < float(np.median(noise_a * model.node("A").standardizer.scale)) < 3.5
