"""Shared fixtures: small linear-Gaussian systems and models fitted once per session.

``diamond``/``fitted_diamond`` serve tests/test_attribution.py. ``system``/``oracle``/``fitted``/``outliers`` serve
the test_attribution_math, test_results and test_mechanisms modules; that system (target ``D``)::

    A -> B -> D -> E        F (isolated root)
    A -> C -> D

has non-zero intercepts and unequal noise scales, so that a mix-up of data units and standardised units would
show. ``E`` (a descendant of the target) and ``F`` (unrelated) must always get exactly zero.
"""

from __future__ import annotations

import os
import warnings

import networkx as nx
import numpy as np
import pandas as pd
import pytest
import torch
from hypothesis import HealthCheck, settings

from bayes_rca import BayesianSCM
from bayes_rca.data.synthetic import LinearGaussianSystem
from bayes_rca.graph.dag import topological_order

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


TARGET = "D"
PLAYERS = ["A", "B", "C", "D"]


def make_system() -> LinearGaussianSystem:
    graph = nx.DiGraph([("A", "B"), ("A", "C"), ("B", "D"), ("C", "D"), ("D", "E")])
    graph.add_node("F")
    coefficients = {("A", "B"): 1.2, ("A", "C"): -0.8, ("B", "D"): 1.5, ("C", "D"): 0.7, ("D", "E"): 0.9}
    intercepts = {"A": 10.0, "B": -2.0, "C": 3.0, "D": 1.0, "E": 0.0, "F": 5.0}
    noise_sd = {"A": 2.0, "B": 1.5, "C": 1.0, "D": 0.7, "E": 1.0, "F": 3.0}
    return LinearGaussianSystem(graph, coefficients, intercepts, noise_sd)


def linear_algebra(system: LinearGaussianSystem) -> tuple[list, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Independent numpy description of a linear-Gaussian system: ``X = c + B X + s * N``.

    Returns the node order, ``B`` (``B[child, parent]``), ``c``, ``s`` and the total-effect matrix
    ``T = (I - B)^{-1}`` (``X = T (c + s * N)``).
    """
    nodes = list(system.graph.nodes)
    index = {node: k for k, node in enumerate(nodes)}
    B = np.zeros((len(nodes), len(nodes)))
    for (parent, child), coefficient in system.coefficients.items():
        B[index[child], index[parent]] = coefficient
    c = np.array([system.intercepts[n] for n in nodes], dtype=float)
    s = np.array([system.noise_sd[n] for n in nodes], dtype=float)
    total = np.linalg.inv(np.eye(len(nodes)) - B)
    return nodes, B, c, s, total


def true_noise(system: LinearGaussianSystem, row: pd.Series) -> dict:
    """Standard noise of each node in an observed row, from the true mechanisms."""
    noise = {}
    for node in topological_order(system.graph):
        location = system.intercepts[node] + sum(system.coefficients[p, node] * row[p]
                                                 for p in system.graph.predecessors(node))
        noise[node] = (row[node] - location) / system.noise_sd[node]
    return noise


@pytest.fixture(scope="session")
def system() -> LinearGaussianSystem:
    return make_system()


@pytest.fixture(scope="session")
def oracle(system):
    return system.oracle_model()


@pytest.fixture(scope="session")
def training_data(system) -> pd.DataFrame:
    return system.sample(3000, seed=11)


@pytest.fixture(scope="session")
def fitted(system, training_data) -> BayesianSCM:
    """The system fitted on 3000 rows, 100 exact (conjugate) posterior draws per node."""
    return BayesianSCM(system.graph, num_draws=100, seed=3, progress=False).fit(training_data)


@pytest.fixture(scope="session")
def outliers(system) -> pd.DataFrame:
    """Three outlier rows at D: a dominant shift at B, a mixed one, and one at D itself."""
    rows = [system.outlier({"B": 5.0}), system.outlier({"A": 2.5, "C": -2.0, "D": 1.0}),
            system.outlier({"D": 4.5, "B": -0.5})]
    return pd.concat(rows, ignore_index=True)
