"""The general Monte Carlo game where a mechanism has a kink at the point of zero noise (no finite gradient there):
``Y = sign(X) sqrt|X| + N``, ``X ~ Normal(0, 1)``, the outlier row at the kink (``X = 0``). The gradient that aims the
proposal's line is NaN there; the game must still give the exact IT score (by quadrature), not NaN or the
zero-count floor."""

from __future__ import annotations

import math
from typing import ClassVar

import networkx as nx
import pandas as pd
import pytest
import torch
from scipy import integrate, stats

from bayes_rca import BayesianSCM, attribute_outliers
from bayes_rca.inference import PosteriorFit
from bayes_rca.model.mechanisms import GaussianRoot, Mechanism
from bayes_rca.model.node import FittedNode, Standardizer
from bayes_rca.model.noise import GaussianNoise


class SignedRoot(Mechanism):
    """``f(x) = sign(x) sqrt|x|``, unit Gaussian noise (no parameters; the true function)."""

    accepts_roots: ClassVar[bool] = False

    def __init__(self) -> None:
        self.name = "signed_root"

    def prior(self, num_parents: int, dtype: torch.dtype) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    def location(self, parents: torch.Tensor, params: dict[str, torch.Tensor]) -> torch.Tensor:
        return torch.sign(parents[..., 0]) * torch.sqrt(parents[..., 0].abs())

    def noise(self, params: dict[str, torch.Tensor]) -> GaussianNoise:
        return GaussianNoise(params["noise_scale"].unsqueeze(-1))

    def num_parameters(self, num_parents: int) -> int:
        return 1


def _model() -> BayesianSCM:
    graph = nx.DiGraph([("X", "Y")])
    model = BayesianSCM(graph, num_draws=1, progress=False)
    one = torch.ones(1, dtype=torch.float64)

    def identity(parents: int) -> Standardizer:
        return Standardizer(torch.zeros(parents, dtype=torch.float64), torch.ones(parents, dtype=torch.float64),
                            0.0, 1.0)

    model.nodes_ = {
        "X": FittedNode("X", (), GaussianRoot(), identity(0),
                        PosteriorFit({"bias": 0 * one, "noise_var": one}, "conjugate", 1)),
        "Y": FittedNode("Y", ("X",), SignedRoot(), identity(1),
                        PosteriorFit({"noise_scale": one}, "conjugate", 1)),
    }
    return model


@pytest.mark.parametrize("y", [3.0, 5.0])
def test_a_kink_at_zero_noise_gives_the_exact_score(y: float) -> None:
    tail, _ = integrate.quad(lambda x: stats.norm.pdf(x) * stats.norm.sf(y - math.copysign(math.sqrt(abs(x)), x)),
                             -12, 12, points=[0.0], epsabs=1e-14)
    exact = -math.log(2 * tail)  # median-CDF quantile score of an upper-tail value
    result = attribute_outliers(_model(), "Y", pd.DataFrame({"X": [0.0], "Y": [y]}), estimator="monte_carlo",
                                num_samples=20_000, seed=0)
    score = float(result.scores[0, 0])
    assert math.isfinite(score) and score == pytest.approx(exact, abs=0.1), (score, exact)
    contributions = result.contributions[0, 0]
    assert contributions.sum() == pytest.approx(score, abs=1e-9)
    assert contributions[result.nodes.index("Y")] > contributions[result.nodes.index("X")]
