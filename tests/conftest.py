"""Shared fixtures: small linear-Gaussian systems and models fitted once per session."""

from __future__ import annotations

import os
import warnings

import networkx as nx
import pytest
import torch
from hypothesis import HealthCheck, settings

from bayes_rca import BayesianSCM
from bayes_rca.synthetic import LinearGaussianSystem

warnings.filterwarnings("ignore", message=".*ArviZ is undergoing a major refactor.*")
torch.set_num_threads(1)  # one thread per test worker: pytest-xdist runs one worker per core
settings.register_profile("ci", max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


@pytest.fixture(scope="session")
def diamond() -> LinearGaussianSystem:
    """a -> b -> d, a -> c -> d, e -> d, plus an unrelated node u and a child of d."""
    graph = nx.DiGraph([("a", "b"), ("a", "c"), ("b", "d"), ("c", "d"), ("e", "d"), ("d", "f")])
    graph.add_node("u")
    coefficients = {("a", "b"): 1.5, ("a", "c"): -0.7, ("b", "d"): 0.8, ("c", "d"): 1.2, ("e", "d"): 0.6,
                    ("d", "f"): 2.0}
    return LinearGaussianSystem(graph, coefficients, {n: 1.0 for n in graph},
                                {"a": 1.0, "b": 0.5, "c": 0.8, "d": 1.0, "e": 2.0, "f": 1.0, "u": 1.0})


@pytest.fixture(scope="session")
def fitted_diamond(diamond) -> BayesianSCM:
    return BayesianSCM(diamond.graph, num_draws=200, seed=1, progress=False).fit(diamond.sample(4000, seed=3))
