"""DoWhy's distribution-change attribution with bootstrap intervals (``gcm.confidence_intervals``)."""

from __future__ import annotations

from collections.abc import Hashable
from typing import ClassVar

import networkx as nx
import numpy as np
import pandas as pd

from bayes_rca.graph.dag import topological_order
from bayes_rca.harness.change_methods.base import ChangeAttribution
from bayes_rca.harness.change_methods.dowhy_change import DoWhyChange
from bayes_rca.harness.methods._common import seeded_global_rng
from bayes_rca.harness.methods.dowhy_point import contributions_series, import_gcm


class DoWhyChangeBootstrap(DoWhyChange):
    """``gcm.confidence_intervals`` over :class:`DoWhyChange` calls on random subsets of both periods.

    The mechanisms are assigned once on the old period; each of the ``num_bootstrap_resamples`` replicates
    runs ``gcm.distribution_change`` on ``subset_fraction`` of the rows of each period (without replacement,
    the ``fit_and_compute`` default of 75%), refitting and retesting the mechanisms. ``draws`` are the
    replicates, ``contributions`` their medians (DoWhy's summary), ``scores`` the absolute medians; named are
    the mechanisms DoWhy's change test rejects in most replicates (a 90% interval that excludes 0 is no rule
    for it: DoWhy's sampled KL estimates of an unchanged mechanism are biased and noisy).

    Parameters
    ----------
    num_bootstrap_resamples : int
        Replicates.
    subset_fraction : float
        Fraction of each period's rows per replicate.
    num_samples, quality, seed, n_jobs
        As for :class:`DoWhyChange`.
    """

    name: ClassVar[str] = "dowhy_change_bootstrap"

    def __init__(self, num_bootstrap_resamples: int = 10, subset_fraction: float = 0.75, num_samples: int = 2000,
                 quality: str = "good", seed: int = 0, n_jobs: int = 1) -> None:
        super().__init__(num_samples=num_samples, quality=quality, seed=seed, n_jobs=n_jobs)
        if num_bootstrap_resamples < 1:
            raise ValueError(f"num_bootstrap_resamples must be at least 1, got {num_bootstrap_resamples}")
        if not 0 < subset_fraction <= 1:
            raise ValueError(f"subset_fraction must lie in (0, 1], got {subset_fraction}")
        self.num_bootstrap_resamples, self.subset_fraction = num_bootstrap_resamples, subset_fraction

    def attribute_change(self, graph: nx.DiGraph, target: Hashable, old: pd.DataFrame, new: pd.DataFrame,
                         functional: str) -> ChangeAttribution:
        gcm = import_gcm(self.n_jobs)
        nodes = topological_order(graph)
        replicates: list[pd.Series] = []
        flagged: list[pd.Series] = []
        with seeded_global_rng(self.seed):
            model = self._model(gcm, graph, old)
            rng = np.random.default_rng(self.seed)

            def replicate() -> dict:
                old_subset = old.sample(frac=self.subset_fraction, random_state=int(rng.integers(2**31)))
                new_subset = new.sample(frac=self.subset_fraction, random_state=int(rng.integers(2**31)))
                contributions, changed = self._call(gcm, model, target, old_subset, new_subset, functional)
                replicates.append(contributions_series(contributions, nodes))
                flagged.append(pd.Series({node: float(flag) for node, flag in changed.items()}, dtype=float)
                               .reindex(nodes).fillna(0.0))
                return contributions

            gcm.confidence_intervals(replicate, confidence_level=0.9,
                                     num_bootstrap_resamples=self.num_bootstrap_resamples,
                                     bootstrap_results_summary_func=lambda results: np.median(results, axis=0))
        draws = pd.DataFrame(replicates).reset_index(drop=True)
        point = draws.median()
        majority = pd.DataFrame(flagged).mean() > 0.5
        return ChangeAttribution(point.abs(), point, draws, [node for node in nodes if majority[node]])
