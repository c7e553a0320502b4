"""Synthetic structural causal models with known ground truth: random linear-Gaussian DAGs and a
microservice latency system. They generate training data and outliers with injected noise, and give an
*oracle* model (the true parameters as a one-draw posterior) whose attribution is the ground truth."""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from dataclasses import dataclass

import networkx as nx
import numpy as np
import pandas as pd
import torch

from bayes_rca.graph.dag import parents_of, topological_order, validate_graph
from bayes_rca.inference import PosteriorFit
from bayes_rca.model.mechanisms import GaussianRoot, LinearGaussian, LinearStudentT, StudentTRoot
from bayes_rca.model.node import FittedNode, Standardizer
from bayes_rca.model.scm import BayesianSCM


@dataclass(frozen=True)
class LinearGaussianSystem:
    """``X_j = intercept_j + sum_i coef_(i, j) X_i + noise_sd_j * N_j`` with ``N_j ~ Normal(0, 1)``.

    With ``noise_df`` the standard noise is ``StudentT(noise_df)`` instead (``noise_sd`` is then its scale):
    the same linear system with heavy-tailed noise.

    Attributes
    ----------
    graph : networkx.DiGraph
    coefficients : mapping (parent, child) -> float
    intercepts, noise_sd : mapping node -> float
    noise_df : float, optional
    """

    graph: nx.DiGraph
    coefficients: Mapping[tuple[Hashable, Hashable], float]
    intercepts: Mapping[Hashable, float]
    noise_sd: Mapping[Hashable, float]
    noise_df: float | None = None

    def propagate(self, noise: pd.DataFrame) -> pd.DataFrame:
        """Node values for given standard noise values (one column per node)."""
        values = {}
        for node in topological_order(self.graph):
            value = self.intercepts[node] + self.noise_sd[node] * noise[node].to_numpy()
            for parent in parents_of(self.graph, node):
                value = value + self.coefficients[parent, node] * values[parent]
            values[node] = value
        return pd.DataFrame(values, index=noise.index)[list(self.graph.nodes)]

    def sample(self, num_rows: int, seed: int = 0) -> pd.DataFrame:
        """``num_rows`` rows of normal operation."""
        rng = np.random.default_rng(seed)
        shape = (num_rows, self.graph.number_of_nodes())
        standard = rng.standard_normal(shape) if self.noise_df is None else rng.standard_t(self.noise_df, shape)
        return self.propagate(pd.DataFrame(standard, columns=list(self.graph)))

    def outlier(self, injected: Mapping[Hashable, float], seed: int | None = None) -> pd.DataFrame:
        """One row whose standard noise is ``injected`` at the given nodes and 0 elsewhere (or normal with ``seed``)."""
        base = (np.zeros(self.graph.number_of_nodes()) if seed is None
                else np.random.default_rng(seed).standard_normal(self.graph.number_of_nodes()))
        noise = pd.DataFrame([base], columns=list(self.graph))
        for node, value in injected.items():
            noise[node] = value
        return self.propagate(noise)

    def oracle_model(self) -> BayesianSCM:
        """A fitted :class:`BayesianSCM` whose posterior is a point mass at the true parameters."""
        model = BayesianSCM(self.graph, progress=False, num_draws=1)
        nodes = {}
        for node in topological_order(self.graph):
            parents = tuple(parents_of(self.graph, node))
            params = {"bias": torch.tensor([self.intercepts[node]], dtype=torch.float64)}
            if self.noise_df is None:
                params["noise_var"] = torch.tensor([self.noise_sd[node] ** 2], dtype=torch.float64)
            else:
                params["noise_scale"] = torch.tensor([self.noise_sd[node]], dtype=torch.float64)
                params["df_minus_two"] = torch.tensor([self.noise_df - 2.0], dtype=torch.float64)
            if parents:
                params["weight"] = torch.tensor([[self.coefficients[p, node] for p in parents]], dtype=torch.float64)
            identity = Standardizer(torch.zeros(len(parents), dtype=torch.float64),
                                    torch.ones(len(parents), dtype=torch.float64), 0.0, 1.0)
            if self.noise_df is None:
                mechanism = LinearGaussian() if parents else GaussianRoot()
            else:
                mechanism = LinearStudentT() if parents else StudentTRoot()
            nodes[node] = FittedNode(node, parents, mechanism, identity, PosteriorFit(params, "conjugate", 1))
        model.nodes_ = nodes
        return model


def random_dag(num_nodes: int, max_parents: int = 3, seed: int = 0, prefix: str = "X") -> nx.DiGraph:
    """A random DAG on ``num_nodes`` nodes named ``X0..``: node ``j`` draws up to ``max_parents`` earlier nodes."""
    rng = np.random.default_rng(seed)
    graph = nx.DiGraph()
    names = [f"{prefix}{j}" for j in range(num_nodes)]
    graph.add_nodes_from(names)
    for j in range(1, num_nodes):
        count = int(rng.integers(0, min(j, max_parents) + 1))
        for i in rng.choice(j, size=count, replace=False):
            graph.add_edge(names[int(i)], names[j])
    return graph


def random_linear_system(graph: nx.DiGraph, seed: int = 0, coefficient_range: tuple[float, float] = (0.5, 2.0),
                         random_signs: bool = False) -> LinearGaussianSystem:
    """Linear-Gaussian mechanisms on ``graph``: coefficients ``U(coefficient_range)``, unit noise, zero intercepts."""
    rng = np.random.default_rng(seed)
    coefficients = {}
    for edge in sorted(graph.edges, key=str):
        sign = rng.choice([-1.0, 1.0]) if random_signs else 1.0
        coefficients[edge] = float(sign * rng.uniform(*coefficient_range))
    return LinearGaussianSystem(validate_graph(graph), coefficients, {n: 0.0 for n in graph}, {n: 1.0 for n in graph})


SERVICE_CALLS = {
    "Website": ["Frontend", "CDN"],
    "Frontend": ["Auth", "Catalog", "Cart"],
    "Auth": ["UserDB"],
    "Catalog": ["ProductDB", "Cache"],
    "Cart": ["ProductDB", "Cache", "Payment"],
    "Payment": ["PaymentGateway"],
}


def microservice_system(seed: int = 0) -> LinearGaussianSystem:
    """A latency system of 11 services: each service's latency is its own processing time plus the latencies
    of the services it calls (the causal graph is the call graph reversed), in milliseconds."""
    from bayes_rca.graph.dag import causal_graph_from_dependencies

    rng = np.random.default_rng(seed)
    graph = causal_graph_from_dependencies([(caller, callee) for caller, callees in SERVICE_CALLS.items()
                                            for callee in callees])
    coefficients = {(callee, caller): float(rng.uniform(0.8, 1.2)) for callee, caller in graph.edges}
    intercepts = {node: float(rng.uniform(5.0, 30.0)) for node in graph}
    noise_sd = {node: float(rng.uniform(1.0, 4.0)) for node in graph}
    return LinearGaussianSystem(graph, coefficients, intercepts, noise_sd)
