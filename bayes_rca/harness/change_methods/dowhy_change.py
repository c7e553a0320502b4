"""DoWhy's distribution-change attribution (``gcm.distribution_change``), one point estimate."""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import Any, ClassVar

import networkx as nx
import numpy as np
import pandas as pd

from bayes_rca.errors import BayesRCAError
from bayes_rca.graph.dag import topological_order
from bayes_rca.harness.change_methods.base import ChangeAttribution, ChangeMethod
from bayes_rca.harness.methods._common import seeded_global_rng
from bayes_rca.harness.methods.dowhy_point import check_quality, contributions_series, import_gcm


def difference_estimator(functional: str) -> Callable[[np.ndarray, np.ndarray], float]:
    """DoWhy's ``difference_estimation_func(old_samples, new_samples)`` for one of our functionals.

    ``"kl"`` is DoWhy's own sample estimator (``auto_estimate_kl_divergence``, k-nearest neighbours for one
    variable) of ``KL(P_new || P_old)``: the direction of :data:`bayes_rca.change.api.FUNCTIONALS`
    ``["kl"]`` and of the truth (DoWhy's default, ``auto_estimate_kl_divergence(old, new)``, is the other
    direction). A difference functional (``"mean"``, ``"variance"``, ``"std"``, ``"quantile(q)"``) is the
    difference of its sample statistic, ``statistic(new) - statistic(old)``, as a float (DoWhy's summary cannot
    add numpy scalars to the integer 0 it gives unchanged mechanisms).

    Raises
    ------
    BayesRCAError
        For an unknown functional (the known ones are listed).
    """
    import torch

    from bayes_rca.change.api import get_functional

    spec = get_functional(functional)
    if spec.name == "kl":
        from dowhy.gcm.divergence import auto_estimate_kl_divergence

        return lambda old, new: float(auto_estimate_kl_divergence(np.asarray(new), np.asarray(old)))
    statistic = spec.sample_statistic
    if statistic is None:  # pragma: no cover - every built-in functional but kl has one
        raise BayesRCAError(f"the DoWhy change methods cannot estimate the functional {functional!r} from samples")

    def difference(old: np.ndarray, new: np.ndarray) -> float:
        values = [statistic(torch.tensor(np.asarray(x, dtype=float).reshape(-1))) for x in (new, old)]
        return float(values[0] - values[1])

    return difference


def first_values(result: dict[Any, Any]) -> dict[Any, float]:
    """DoWhy's ``{node: array([value]) or 0}`` as ``{node: float}``."""
    return {node: float(np.asarray(value).reshape(-1)[0]) for node, value in result.items()}


class DoWhyChange(ChangeMethod):
    """DoWhy's ``gcm.distribution_change`` on a ``ProbabilisticCausalModel`` auto-assigned on the old period.

    DoWhy fits the mechanisms in both periods, tests each for a change (kernel-based tests, FDR control at
    0.05: its rejections are what it names) and attributes the change of the functional, estimated from
    ``num_samples`` samples of the target (``difference_estimator``), to the changed mechanisms by Shapley
    values (mechanisms that did not test as changed get 0). ``scores`` are the absolute contributions. DoWhy
    draws from numpy's global generator: it is seeded with ``seed`` and restored afterwards.

    Parameters
    ----------
    num_samples : int
        Samples of the target per coalition.
    quality : {"good", "better", "best"}
        ``gcm.auto.AssignmentQuality`` of the mechanism assignment.
    seed : int
        Seed of the global numpy/``random`` state.
    n_jobs : int
        DoWhy's parallel jobs (1: every harness cell runs on one core).

    References
    ----------
    Budhathoki, Janzing, Blöbaum, Ng. "Why did the distribution change?" AISTATS 2021.
    """

    name: ClassVar[str] = "dowhy_change"

    def __init__(self, num_samples: int = 2000, quality: str = "good", seed: int = 0, n_jobs: int = 1) -> None:
        self.num_samples, self.quality, self.seed, self.n_jobs = num_samples, check_quality(quality), seed, n_jobs

    def _model(self, gcm: Any, graph: nx.DiGraph, old: pd.DataFrame) -> Any:
        model = gcm.ProbabilisticCausalModel(nx.DiGraph(graph))
        gcm.auto.assign_causal_mechanisms(model, old, quality=getattr(gcm.auto.AssignmentQuality,
                                                                      self.quality.upper()))
        return model

    def _call(self, gcm: Any, model: Any, target: Hashable, old: pd.DataFrame, new: pd.DataFrame,
              functional: str) -> tuple[dict[Any, float], dict[Any, bool]]:
        contributions, changed, _, _ = gcm.distribution_change(
            model, old, new, target, num_samples=self.num_samples, return_additional_info=True,
            difference_estimation_func=difference_estimator(functional))
        return first_values(contributions), {node: bool(flag) for node, flag in changed.items()}

    def attribute_change(self, graph: nx.DiGraph, target: Hashable, old: pd.DataFrame, new: pd.DataFrame,
                         functional: str) -> ChangeAttribution:
        gcm = import_gcm(self.n_jobs)
        nodes = topological_order(graph)
        with seeded_global_rng(self.seed):
            contributions, changed = self._call(gcm, self._model(gcm, graph, old), target, old, new, functional)
        point = contributions_series(contributions, nodes)
        return ChangeAttribution(point.abs(), point, None, [node for node in nodes if changed.get(node)])
