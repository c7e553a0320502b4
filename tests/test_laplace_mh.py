"""The Laplace-proposal Metropolis-Hastings sampler of the linear Student-t families: recovery, agreement with
NUTS, determinism, diagnostics."""

from __future__ import annotations

import networkx as nx
import numpy as np
import pandas as pd
import pytest
import torch

from bayes_rca import BayesianSCM
from bayes_rca.inference import fit_posterior
from bayes_rca.inference.diagnostics import MAX_RHAT, convergence_problems, rhat_limit
from bayes_rca.inference.laplace_mh import sample_student_t
from bayes_rca.model.mechanisms import LinearStudentT, StudentTRoot


def regression(rows: int, seed: int, df: float = 3.0) -> tuple[torch.Tensor, torch.Tensor]:
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((rows, 2))
    y = 0.4 + x @ np.array([0.9, -0.5]) + 0.6 * rng.standard_t(df, rows)
    return torch.tensor(x), torch.tensor(y)


@pytest.mark.parametrize("seed", [0, 1])
def test_recovers_weights_scale_and_degrees_of_freedom(seed):
    x, y = regression(3000, seed)
    torch.manual_seed(seed)
    params, diagnostics = sample_student_t(x, y, 200)
    weight, spread = params["weight"].mean(0), params["weight"].std(0)
    assert torch.all((weight - torch.tensor([0.9, -0.5], dtype=torch.float64)).abs() < 4 * spread)
    assert abs(float(params["bias"].mean()) - 0.4) < 4 * float(params["bias"].std())
    assert abs(float(params["noise_scale"].mean()) - 0.6) < 4 * float(params["noise_scale"].std())
    assert 2.2 < float(params["df_minus_two"].mean()) + 2.0 < 4.5
    assert diagnostics["max_rhat"] <= rhat_limit(diagnostics["draws_per_chain"])


def test_a_root_node_has_no_weights():
    rng = np.random.default_rng(4)
    y = torch.tensor(2.0 + rng.standard_t(4.0, 2000))
    torch.manual_seed(0)
    params, _ = sample_student_t(torch.zeros(2000, 0, dtype=torch.float64), y, 100)
    assert set(params) == {"bias", "noise_scale", "df_minus_two"}
    assert abs(float(params["bias"].mean()) - 2.0) < 0.1


@pytest.mark.slow
def test_agrees_with_nuts_on_the_same_posterior():
    x, y = regression(300, 7)
    mechanism = LinearStudentT()
    torch.manual_seed(0)
    sampled = fit_posterior(mechanism, x, y, "laplace_mh", 400)
    torch.manual_seed(0)
    nuts = fit_posterior(mechanism, x, y, "nuts", 400, num_chains=2)
    for name in ("bias", "weight", "noise_scale", "df_minus_two"):
        g, n = sampled.params[name], nuts.params[name]
        gap = (g.mean(0) - n.mean(0)).abs() / n.std(0)
        ratio = g.std(0) / n.std(0)
        assert torch.all(gap < 0.35), (name, gap)
        assert torch.all((ratio > 0.7) & (ratio < 1.4)), (name, ratio)


def test_automatic_assignment_fits_heavy_tails_by_laplace_mh_deterministically():
    rng = np.random.default_rng(2)
    x = rng.standard_t(3.0, 1500)
    data = pd.DataFrame({"x": x, "y": 1.5 * x + rng.standard_t(3.0, 1500)})
    graph = nx.DiGraph([("x", "y")])
    first = BayesianSCM(graph, num_draws=100, seed=5, progress=False).fit(data)
    second = BayesianSCM(graph, num_draws=100, seed=5, progress=False).fit(data)
    report = first.fit_report_
    assert report.loc["y", "family"] == "linear_student_t" and report.loc["y", "method"] == "laplace_mh"
    assert report.loc["x", "family"] == "student_t_root" and report["converged"].all()
    for name in ("x", "y"):
        for key, value in first.node(name).params.items():
            torch.testing.assert_close(value, second.node(name).params[key], rtol=0, atol=0)
    assert float(first.node("y").params["weight"].mean()) == pytest.approx(1.5 * x.std(ddof=1) / data["y"].std(),
                                                                          rel=0.05)


def test_rhat_limit_is_strict_for_long_chains_and_allows_for_short_ones():
    assert rhat_limit(None) == MAX_RHAT
    assert rhat_limit(10_000) == MAX_RHAT
    assert rhat_limit(100) == pytest.approx(1.04)
    assert convergence_problems({"max_rhat": 1.03, "draws_per_chain": 100.0}) == []
    assert convergence_problems({"max_rhat": 1.03}) == ["R-hat 1.030 > 1.01"]
    assert convergence_problems({"max_rhat": 1.06, "draws_per_chain": 100.0}) == ["R-hat 1.060 > 1.04"]


def test_laplace_mh_for_a_family_without_the_sampler_is_an_error():
    from bayes_rca.errors import MechanismError
    from bayes_rca.model.mechanisms import GaussianRoot

    with pytest.raises(MechanismError, match="no Laplace-proposal sampler"):
        fit_posterior(GaussianRoot(), torch.zeros(10, 0, dtype=torch.float64), torch.randn(10, dtype=torch.float64),
                      "laplace_mh", 8)
    assert StudentTRoot.laplace_mh and LinearStudentT.laplace_mh


def test_proposal_scale_is_the_inflated_inverse_hessian_and_survives_an_indefinite_one():
    from bayes_rca.inference.laplace_mh import PROPOSAL_INFLATION, _proposal_factor

    mode = torch.zeros(3, dtype=torch.float64)
    a = torch.tensor([[2.0, 0.3, 0.0], [0.3, 1.0, 0.2], [0.0, 0.2, 0.5]], dtype=torch.float64)
    chol = _proposal_factor(mode, a)
    torch.testing.assert_close(chol @ chol.T, torch.linalg.inv(a) * PROPOSAL_INFLATION, rtol=1e-8, atol=1e-10)
    indefinite = torch.tensor([[1.0, 2.0, 0.0], [2.0, 1.0, 0.0], [0.0, 0.0, 1.0]], dtype=torch.float64)  # eig -1
    chol = _proposal_factor(mode, indefinite)
    assert torch.isfinite(chol).all()
    scale = torch.linalg.eigvalsh(chol @ chol.T)
    assert float(scale.max()) > 1e5  # the direction of negative curvature gets a wide proposal, not a crash
