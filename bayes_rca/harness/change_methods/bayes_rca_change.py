"""Ours: posterior Shapley contributions to the change (:func:`bayes_rca.change.api.distribution_change`)."""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from typing import ClassVar

import networkx as nx
import pandas as pd

from bayes_rca.change.results import DEFAULT_ALPHA
from bayes_rca.harness.change_methods.base import ChangeAttribution, ChangeMethod


class BayesRCAChange(ChangeMethod):
    """One Bayesian fit per period, Shapley values of the functional's change per posterior draw pair.

    Every node is linear-Gaussian unless ``mechanisms`` says otherwise (then the Monte Carlo game); the two
    fits use independent seeds derived from ``seed``. ``contributions`` are the posterior means, ``scores``
    their absolute values, ``draws`` the ``(num_draws, nodes)`` draw pairs; named are the mechanisms with
    ``P(|phi_j| > delta) > 1 - alpha`` (``delta``: the functional's default threshold when None).

    Parameters
    ----------
    num_draws : int
        Posterior draws per period.
    seed : int
        Seed of both fits and of any permutations.
    alpha, delta : float
        The decision rule (see :meth:`~bayes_rca.change.results.DistributionChangeResult.changed`).
    mechanisms : mapping or "auto", optional
        Per-node mechanism families, as for :func:`~bayes_rca.change.api.distribution_change`.
    estimator : {"auto", "analytic", "monte_carlo"}
        The game's estimator.
    num_samples : int, optional
        Monte Carlo samples per draw pair and coalition (the estimator's default when None).
    """

    name: ClassVar[str] = "bayes_rca_change"

    def __init__(self, num_draws: int = 200, seed: int = 0, alpha: float = DEFAULT_ALPHA,
                 delta: float | None = None, mechanisms: Mapping[Hashable, str] | str | None = None,
                 estimator: str = "auto", num_samples: int | None = None) -> None:
        self.num_draws, self.seed, self.alpha, self.delta = num_draws, seed, alpha, delta
        self.mechanisms, self.estimator, self.num_samples = mechanisms, estimator, num_samples

    def attribute_change(self, graph: nx.DiGraph, target: Hashable, old: pd.DataFrame, new: pd.DataFrame,
                         functional: str) -> ChangeAttribution:
        from bayes_rca.change.api import distribution_change

        options = {} if self.num_samples is None else {"num_samples": self.num_samples}
        result = distribution_change(old, new, graph, target, functional, mechanisms=self.mechanisms,
                                     num_draws=self.num_draws, seed=self.seed, estimator=self.estimator, **options)
        draws = pd.DataFrame(result.contributions, columns=result.nodes)
        point = draws.mean()
        return ChangeAttribution(point.abs(), point, draws, list(result.changed(self.delta, self.alpha)))
