"""Distribution-change attributions with uncertainty: summaries, the decision rule and an arviz InferenceData."""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass, field
from pathlib import Path

import arviz as az
import numpy as np
import pandas as pd

from bayes_rca.attribution.results import HDI_PROB, forest_plot
from bayes_rca.errors import BayesRCAError

DEFAULT_ALPHA = 0.05


def _hdi_columns(hdi_prob: float) -> tuple[str, str]:
    return f"hdi_{100 * (1 - hdi_prob) / 2:g}%", f"hdi_{100 * (1 + hdi_prob) / 2:g}%"


@dataclass
class DistributionChangeResult:
    """Posterior Shapley contributions of the mechanisms to the change of ``target``'s distribution.

    Attributes
    ----------
    target : hashable
        The node whose distribution changed.
    nodes : list
        All graph nodes (topological order); the last axis of ``contributions``.
    players : list
        The mechanisms that can be blamed: the target's ancestors and the target (last).
    functional : str
        Name of the change functional (``"mean"``, ``"variance"``, ``"kl"``, ...).
    contributions : numpy.ndarray
        ``(D, N)``: one Shapley vector per posterior draw pair (draw ``d`` of the old model with draw ``d`` of the
        new one); exactly 0 for non-players.
    total : numpy.ndarray
        ``(D,)``: the total change ``v(all players)``; each row of ``contributions`` sums to it.
    standard_errors : numpy.ndarray
        ``(D, N)``: Monte Carlo error of the permutation estimate (0 where all coalitions were enumerated).
    old_value, new_value : numpy.ndarray
        ``(D,)``: the target's mean and variance under the old and the new model, ``(D, 2)`` each.
    default_delta : float or None
        The threshold ``delta`` of :meth:`changed` when none is given (in the functional's units), or None for a
        custom functional, which then needs an explicit ``delta``.
    num_chains : int
        Chains of the draw pairs (``D = chains * draws``).
    settings : dict
        How the result was computed.
    total_standard_error : numpy.ndarray or None
        ``(D,)``: Monte Carlo standard error of ``total`` per draw pair (Monte Carlo estimator), None where it is
        exact. The contributions' Monte Carlo errors are in ``standard_errors``.
    """

    target: Hashable
    nodes: list[Hashable]
    players: list[Hashable]
    functional: str
    contributions: np.ndarray
    total: np.ndarray
    standard_errors: np.ndarray
    old_moments: np.ndarray
    new_moments: np.ndarray
    default_delta: float | None
    num_chains: int = 1
    settings: dict = field(default_factory=dict)
    total_standard_error: np.ndarray | None = None

    def _delta(self, delta: float | None) -> float:
        if delta is None:
            delta = self.default_delta
        if delta is None:
            raise BayesRCAError(f"the functional {self.functional!r} has no default threshold: give delta (the "
                                "smallest contribution, in the functional's units, that counts as a change)")
        if not delta >= 0:
            raise BayesRCAError(f"delta must be a non-negative number, got {delta!r}")
        return float(delta)

    def threshold(self, delta: float | None = None) -> float | None:
        """The ``delta`` of the decision rule: ``delta`` itself (checked), else :attr:`default_delta` (None for
        a custom functional without one)."""
        if delta is None and self.default_delta is None:
            return None
        return self._delta(delta)

    def _by_chain(self, array: np.ndarray) -> np.ndarray:
        return array.reshape(self.num_chains, -1, *array.shape[1:])

    def change_probability(self, delta: float | None = None) -> pd.Series:
        """``P(|phi_j| > delta)`` per player: the posterior probability that mechanism ``j`` changed by more
        than ``delta`` (functional units; :attr:`default_delta` when None)."""
        delta = self._delta(delta)
        keep = [self.nodes.index(n) for n in self.players]
        probability = (np.abs(self.contributions[:, keep]) > delta).mean(0)
        return pd.Series(probability, index=pd.Index(self.players, name="node"), name="p_changed")

    def changed(self, delta: float | None = None, alpha: float = DEFAULT_ALPHA) -> list[Hashable]:
        """The mechanisms named as changed: ``P(|phi_j| > delta) > 1 - alpha``, largest posterior mean first.

        Parameters
        ----------
        delta : float, optional
            The smallest contribution that counts, in the functional's units (:attr:`default_delta` when None:
            a tenth of the old target's sd for the mean, quantile and sd functionals, a tenth of its variance
            for the variance, 0.005 nats, the KL divergence of a 0.1 sd shift, for ``"kl"``).
        alpha : float
            The error level: a mechanism is named when the posterior probability of a change above ``delta``
            exceeds ``1 - alpha``.
        """
        if not 0 < alpha < 1:
            raise BayesRCAError(f"alpha must lie strictly between 0 and 1, got {alpha!r}")
        probability = self.change_probability(delta)
        named = probability[probability > 1 - alpha].index
        means = pd.Series(self.contributions.mean(0), index=self.nodes)
        return sorted(named, key=lambda node: -abs(means[node]))

    def summary(self, hdi_prob: float = HDI_PROB, delta: float | None = None, all_nodes: bool = False) -> pd.DataFrame:
        """Per mechanism: posterior mean, median, HDI (arviz) of the contribution and ``P(changed)``.

        Sorted by absolute posterior mean; only the players are listed unless ``all_nodes``. ``p_changed`` is
        left out for a custom functional without a default threshold, unless ``delta`` is given.
        """
        labels = list(self.nodes if all_nodes else self.players)
        draws = self.contributions[:, [self.nodes.index(n) for n in labels]]
        hdi = az.hdi(draws[None], hdi_prob=hdi_prob)
        low, high = _hdi_columns(hdi_prob)
        frame = pd.DataFrame({"mean": draws.mean(0), "median": np.median(draws, 0), low: hdi[:, 0],
                              high: hdi[:, 1]}, index=pd.Index(labels, name="node"))
        if delta is not None or self.default_delta is not None:
            threshold = self._delta(delta)
            frame["p_changed"] = (np.abs(draws) > threshold).mean(0)
        frame["mcse"] = self.standard_errors[:, [self.nodes.index(n) for n in labels]].max(0)
        return frame.reindex(frame["mean"].abs().sort_values(ascending=False, kind="stable").index)

    def total_summary(self, hdi_prob: float = HDI_PROB) -> pd.Series:
        """Posterior mean, median and HDI of the total change ``v(all)`` of the functional."""
        hdi = az.hdi(self.total[None, :, None], hdi_prob=hdi_prob)[0]
        low, high = _hdi_columns(hdi_prob)
        return pd.Series({"mean": self.total.mean(), "median": float(np.median(self.total)), low: hdi[0],
                          high: hdi[1]}, name=f"{self.functional} change")

    def to_inference_data(self) -> az.InferenceData:
        """``posterior``: ``contribution (chain, draw, node)``, ``total_change (chain, draw)`` and the target's
        ``old_moments`` / ``new_moments (chain, draw, moment)`` (mean, variance); ``sample_stats``: the Monte
        Carlo errors of the contributions (and of the total change, Monte Carlo estimator)."""
        coords = {"node": [str(n) for n in self.nodes], "moment": ["mean", "variance"]}
        sample_stats = {"contribution_mcse": self._by_chain(self.standard_errors)}
        if self.total_standard_error is not None:
            sample_stats["total_change_mcse"] = self._by_chain(self.total_standard_error)
        return az.from_dict(
            posterior={"contribution": self._by_chain(self.contributions),
                       "total_change": self._by_chain(self.total),
                       "old_moments": self._by_chain(self.old_moments),
                       "new_moments": self._by_chain(self.new_moments)},
            sample_stats=sample_stats,
            coords=coords,
            dims={"contribution": ["node"], "old_moments": ["moment"], "new_moments": ["moment"],
                  "contribution_mcse": ["node"]},
            attrs={"target": str(self.target), "functional": self.functional,
                   **{k: str(v) for k, v in self.settings.items()}},
        )

    def plot(self, hdi_prob: float = HDI_PROB, path: str | Path | None = None):
        """Forest plot of the players' contributions; returns the figure, written to ``path`` when given."""
        order = self.summary(hdi_prob).index.tolist()
        return forest_plot(self.to_inference_data(), order, {},
                           f"Contributions to the change of {self.functional} at {self.target!r} "
                           f"({100 * hdi_prob:g}% HDI)", f"contribution to the {self.functional} change", hdi_prob, path)
