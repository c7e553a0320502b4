"""DoWhy's outlier contributions with bootstrap intervals (``gcm.confidence_intervals`` of ``gcm.fit_and_compute``)."""

from __future__ import annotations

from collections.abc import Hashable
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from bayes_rca.graph.dag import blameable_nodes, topological_order
from bayes_rca.harness.methods._common import check_fitted, seeded_global_rng
from bayes_rca.harness.methods.base import Attribution
from bayes_rca.harness.methods.dowhy_point import (
    DoWhyPoint,
    contributions_series,
    import_gcm,
)


class DoWhyBootstrap(DoWhyPoint):
    """DoWhy's ``attribute_anomalies`` refitted on bootstrap subsets: the frequentist counterpart of BayesRCA.

    ``fit`` assigns the mechanisms once on all training data (as :class:`DoWhyPoint`); ``attribute`` runs
    ``gcm.confidence_intervals(gcm.fit_and_compute(gcm.attribute_anomalies, scm, bootstrap_training_data=data,
    target_node=target, anomaly_samples=row), num_bootstrap_resamples=N)``: every replicate refits the mechanisms
    on a random 75% subset (without replacement, DoWhy's default) and recomputes the contributions. The replicates
    are recorded on the way. ``scores`` are their per-node medians, ``draws`` the ``(N, nodes)`` replicates (0 for
    non-ancestors), ``top_probability`` the share of replicates in which a node has the largest contribution among
    the target and its ancestors.

    Parameters
    ----------
    num_bootstrap_resamples : int
        Bootstrap replicates ``N``.
    subset_fraction : float
        Fraction of the training rows each replicate is fitted on (``bootstrap_data_subset_size_fraction``).
    seed, quality, num_distribution_samples
        As for :class:`DoWhyPoint`.

    References
    ----------
    Budhathoki, Minorics, Blöbaum, Janzing. "Causal structure-based root cause analysis of outliers." ICML 2022.
    Blöbaum et al. "DoWhy-GCM: An extension of DoWhy for causal inference in graphical causal models." JMLR 2024.
    """

    name: ClassVar[str] = "dowhy_bootstrap"

    def __init__(self, num_bootstrap_resamples: int = 10, seed: int = 0, quality: str = "good",
                 num_distribution_samples: int = 3000, subset_fraction: float = 0.75, n_jobs: int = 1) -> None:
        super().__init__(seed=seed, quality=quality, num_distribution_samples=num_distribution_samples,
                         n_jobs=n_jobs)
        if num_bootstrap_resamples < 1:
            raise ValueError(f"num_bootstrap_resamples must be at least 1, got {num_bootstrap_resamples}")
        self.num_bootstrap_resamples, self.subset_fraction = num_bootstrap_resamples, subset_fraction

    def attribute(self, target: Hashable, outlier: pd.DataFrame) -> Attribution:
        check_fitted(self)
        gcm = import_gcm(self.n_jobs)
        row = self._row(target, outlier)
        nodes = topological_order(self.graph_)
        replicates: list[dict[Any, np.ndarray]] = []

        def recorded(*args: Any, **kwargs: Any) -> dict[Any, np.ndarray]:
            result = gcm.attribute_anomalies(*args, **kwargs)
            replicates.append(result)
            return result

        with seeded_global_rng(self.seed):
            gcm.confidence_intervals(
                gcm.fit_and_compute(recorded, self.scm_, bootstrap_training_data=self.data_,
                                    bootstrap_data_subset_size_fraction=self.subset_fraction,
                                    target_node=target, anomaly_samples=row,
                                    num_distribution_samples=self.num_distribution_samples),
                num_bootstrap_resamples=self.num_bootstrap_resamples,
                bootstrap_results_summary_func=lambda results: np.median(results, axis=0))
        draws = np.stack([contributions_series(result, nodes).to_numpy() for result in replicates])
        scores = pd.Series(np.median(draws, axis=0), index=nodes, dtype=float)
        players = [nodes.index(node) for node in blameable_nodes(self.graph_, target)]
        winners = np.asarray(players)[draws[:, players].argmax(axis=1)]
        top = np.bincount(winners, minlength=len(nodes)) / len(draws)
        return Attribution(scores, pd.DataFrame(draws, columns=nodes), pd.Series(top, index=nodes, dtype=float))
