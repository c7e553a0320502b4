"""Benchmark (issue 15, target 2): bayes_rca vs DoWhy on a nonlinear variant of the bench system.

The graph, target and faults of ``bench_attribution.py`` (64-node random DAG, a target with 16 ancestors, 2000
rows, faults at 1-3 ancestors) with nonlinear additive-noise mechanisms:
``X_j = sum_i w_ij g_ij(X_i / s_i) + N_j``, ``N_j ~ Normal(0, 1)``, ``w_ij ~ U(0.5, 2)``, each ``g_ij`` one of
``tanh(x) + x / 2``, ``sin(x) + x / 2``, ``x |x| / 2`` and ``softplus`` (close to the harness's ``nonlinear``
family, whose ``tanh`` and ``sqrt`` would absorb the faults before they reach the target), on the parent in
units of its population sd ``s_i`` (so that no node's scale explodes down the 64-node DAG). The faults are the
linear bench's (3-5 noise sds at the same nodes), all stretched by one factor (in steps of 1/4) until the target's
value is beyond its population's 99.9 % quantile. Each method runs in its own child process, one after the other
in the same run:

- bayes_rca: ``fourier_gaussian`` for every node with parents (``--assignment fourier``, the issue's case),
  ``extrapolating_fourier`` (``--assignment extrapolating``: the same within the training range, a widening
  noise beyond it) or the automatic assignment (``--assignment auto``), ``--draws`` posterior draws, the general Monte Carlo game
  with ``--samples`` samples and ``--permutations`` permutations;
- DoWhy 0.14: ``auto.assign_causal_mechanisms`` (quality GOOD), ``fit``, ``attribute_anomalies`` (point
  estimate);
- the truth: the general Monte Carlo game at the true functions and noise laws (one draw, ``--truth-samples``
  samples, ``--truth-permutations`` permutations).

It prints fit / attribute / total seconds, DoWhy's total over bayes_rca's, the largest Monte Carlo standard error
of bayes_rca's contributions, peak RSS and the top cause of each method against the truth's; then one JSON line
(also written to ``--json PATH``). Run from the repository root::

    python experiments/bench/bench_fourier.py [--assignment auto] [--skip-dowhy] [--json out.json]
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Hashable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, ClassVar

import networkx as nx
import numpy as np
import pandas as pd
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_attribution import Benchmark, build_system  # noqa: E402
from bench_student_t import bayes_rca_result, bench_parser, dowhy_result, run_bench, truth_result  # noqa: E402

from bayes_rca.graph.dag import parents_of, topological_order  # noqa: E402
from bayes_rca.inference import PosteriorFit  # noqa: E402
from bayes_rca.model.mechanisms import GaussianRoot, Mechanism  # noqa: E402
from bayes_rca.model.node import FittedNode, Standardizer  # noqa: E402
from bayes_rca.model.noise import GaussianNoise  # noqa: E402
from bayes_rca.model.scm import BayesianSCM  # noqa: E402

SHAPES: tuple[Callable[[torch.Tensor], torch.Tensor], ...] = (
    lambda x: torch.tanh(x) + 0.5 * x, lambda x: torch.sin(x) + 0.5 * x, lambda x: 0.5 * x * x.abs(),
    torch.nn.functional.softplus,
)  # none saturates for a positive fault: a 3-5 sd fault reaches the target
SCALE_ROWS = 200_000  # simulated rows that fix each node's population sd s_i
OUTLIER_QUANTILE = 0.999  # the faults are stretched until the target's value is beyond this population quantile


@dataclass(frozen=True)
class NonlinearSystem:
    """``X_j = sum_i w_ij g_ij(X_i / s_i) + N_j`` with standard Gaussian noise on ``graph``."""

    graph: nx.DiGraph
    terms: dict[Hashable, list[tuple[int, float, int]]]  # node -> (parent index, w, shape index)
    scale: dict[Hashable, float]

    def location(self, node: Hashable, parents: torch.Tensor) -> torch.Tensor:
        """``f_j`` of the parents' values ``(..., p)`` in the order of ``parents_of``."""
        total = torch.zeros(parents.shape[:-1], dtype=parents.dtype, device=parents.device)
        for column, weight, shape in self.terms[node]:
            parent = parents_of(self.graph, node)[column]
            total = total + weight * SHAPES[shape](parents[..., column] / self.scale[parent])
        return total

    def propagate(self, noise: dict[Hashable, torch.Tensor]) -> pd.DataFrame:
        values: dict[Hashable, torch.Tensor] = {}
        for node in topological_order(self.graph):
            parents = [values[p] for p in parents_of(self.graph, node)]
            stacked = torch.stack(parents, -1) if parents else noise[node].new_zeros(len(noise[node]), 0)
            values[node] = self.location(node, stacked) + noise[node]
        return pd.DataFrame({n: values[n].numpy() for n in self.graph})[list(self.graph)]

    def sample(self, rows: int, seed: int) -> pd.DataFrame:
        generator = torch.Generator().manual_seed(seed)
        return self.propagate({n: torch.randn(rows, generator=generator, dtype=torch.float64) for n in self.graph})

    def outlier(self, injected: dict[Hashable, float]) -> pd.DataFrame:
        return self.propagate({n: torch.tensor([injected.get(n, 0.0)], dtype=torch.float64) for n in self.graph})

    def oracle_model(self) -> BayesianSCM:
        """A fitted :class:`BayesianSCM` whose posterior is a point mass at the true functions and noise."""
        model = BayesianSCM(self.graph, progress=False, num_draws=1)
        nodes = {}
        one = torch.ones(1, dtype=torch.float64)
        for node in topological_order(self.graph):
            parents = tuple(parents_of(self.graph, node))
            identity = Standardizer(torch.zeros(len(parents), dtype=torch.float64),
                                    torch.ones(len(parents), dtype=torch.float64), 0.0, 1.0)
            if parents:
                mechanism, params = TrueFunction(self, node), {"noise_scale": one}
            else:
                mechanism, params = GaussianRoot(), {"bias": 0 * one, "noise_var": one}
            nodes[node] = FittedNode(node, parents, mechanism, identity, PosteriorFit(params, "conjugate", 1))
        model.nodes_ = nodes
        return model


class TrueFunction(Mechanism):
    """The true ``f_j`` of a :class:`NonlinearSystem` node as a mechanism (data units, no parameters to fit)."""

    accepts_roots: ClassVar[bool] = False

    def __init__(self, system: NonlinearSystem, node: Hashable) -> None:
        self.system, self.node, self.name = system, node, "true_function"

    def prior(self, num_parents: int, dtype: torch.dtype) -> dict[str, torch.Tensor]:
        raise NotImplementedError("the true function is not fitted")

    def location(self, parents: torch.Tensor, params: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.system.location(self.node, parents)

    def noise(self, params: dict[str, torch.Tensor]) -> GaussianNoise:
        return GaussianNoise(params["noise_scale"].unsqueeze(-1))

    def num_parameters(self, num_parents: int) -> int:
        return 1


def nonlinear_bench(seed: int, rows: int) -> Benchmark:
    """The nonlinear variant of the bench system of ``bench_attribution.py``: graph, target and faults as there."""
    linear = build_system(64, 16, rows, 3, seed)
    graph, rng = linear.system.graph, np.random.default_rng([seed, 2])
    terms = {node: [(i, float(rng.uniform(0.5, 2.0)), int(rng.integers(len(SHAPES))))
                    for i, _ in enumerate(parents_of(graph, node))] for node in topological_order(graph)}
    scale: dict[Hashable, float] = {}
    system = NonlinearSystem(graph, terms, scale)
    generator = torch.Generator().manual_seed(seed + 1)
    values: dict[Hashable, torch.Tensor] = {}
    for node in topological_order(graph):  # s_i from a large sample, in topological order
        parents = [values[p] for p in parents_of(graph, node)]
        stacked = torch.stack(parents, -1) if parents else torch.zeros(SCALE_ROWS, 0, dtype=torch.float64)
        values[node] = system.location(node, stacked) + torch.randn(SCALE_ROWS, generator=generator,
                                                                    dtype=torch.float64)
        scale[node] = float(values[node].std())
    # the faults of the linear bench at the same nodes, all stretched by one factor until the target is beyond its
    # population's OUTLIER_QUANTILE: many of the 16 ancestors add variance, so 3-5 noise sds of one or three of
    # them move it little (the linear bench's unnormalised coefficient products amplify them instead)
    threshold = float(torch.quantile(values[linear.target], OUTLIER_QUANTILE))
    for factor in np.arange(1.0, 20.0, 0.25):
        injected = {node: float(factor * value) for node, value in linear.injected.items()}
        outlier = system.outlier(injected)
        if float(outlier[linear.target].iloc[0]) >= threshold:
            break
    return replace(linear, system=system, train=system.sample(rows, seed), injected=injected, outlier=outlier)


def run_bayes_rca(args: argparse.Namespace) -> dict[str, Any]:
    bench = nonlinear_bench(args.seed, args.rows)
    graph = bench.system.graph
    family = {"fourier": "fourier_gaussian", "extrapolating": "extrapolating_fourier"}.get(args.assignment)
    mechanisms = None if family is None else {n: family for n in graph if parents_of(graph, n)}
    return bayes_rca_result(bench, args, mechanisms)


def run_truth(args: argparse.Namespace) -> dict[str, Any]:
    bench = nonlinear_bench(args.seed, args.rows)
    return truth_result(bench.system.oracle_model(), bench, args)


def run_dowhy(args: argparse.Namespace) -> dict[str, Any]:
    return dowhy_result(nonlinear_bench(args.seed, args.rows), args.seed)


RUNNERS = {"bayes_rca": run_bayes_rca, "truth": run_truth, "dowhy": run_dowhy}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = bench_parser(__doc__.splitlines()[0], RUNNERS, 500, 10, 32000, 100)
    parser.add_argument("--assignment", choices=["fourier", "extrapolating", "auto"], default="fourier")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    title = (f"Nonlinear bench system: 64 nodes, 17 players, {args.rows} rows; bayes_rca {args.assignment} "
             f"mechanisms, {args.draws} draws, {args.samples} samples, {args.permutations} permutations")
    run_bench(__file__, argv, args, RUNNERS, title, required_ratio=1.0)


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
