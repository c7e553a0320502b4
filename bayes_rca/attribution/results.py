"""Attribution results with uncertainty: an arviz InferenceData and per-node summaries."""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass, field
from pathlib import Path

import arviz as az
import numpy as np
import pandas as pd

HDI_PROB = 0.9
NOT_AN_OUTLIER_NATS = 1.0
"""IT scores (posterior median) below this are not outliers: ``P(tau(X) >= tau(x)) > e^-1 = 0.37``, i.e. more than
a third of normal operation is at least as extreme at the target (a normal row's score is Exp(1), median 0.69)."""


def _summarise(draws: np.ndarray, labels: list[Hashable], hdi_prob: float) -> pd.DataFrame:
    """Per-column summary of ``draws (S, N)``: mean, median, HDI, P(top) over the rows of ``draws``."""
    hdi = az.hdi(draws[None], hdi_prob=hdi_prob)  # (N, 2)
    top = np.bincount(draws.argmax(-1), minlength=draws.shape[-1]) / draws.shape[0]
    low, high = f"hdi_{100 * (1 - hdi_prob) / 2:g}%", f"hdi_{100 * (1 + hdi_prob) / 2:g}%"
    frame = pd.DataFrame({"mean": draws.mean(0), "median": np.median(draws, 0), low: hdi[:, 0], high: hdi[:, 1],
                          "p_top_cause": top}, index=pd.Index(labels, name="node"))
    return frame


@dataclass
class AttributionResult:
    """Posterior contributions of the nodes to one or more outliers at ``target``.

    Attributes
    ----------
    target : hashable
        The node where the outliers were observed.
    nodes : list
        All graph nodes (topological order); the last axis of ``contributions``.
    players : list
        The nodes that can be blamed: the target's ancestors and the target (last).
    outliers : list
        Labels of the outlier rows.
    contributions : numpy.ndarray
        ``(D, R, N)``: one Shapley vector per posterior draw and outlier; exactly 0 for non-players.
    standard_errors : numpy.ndarray
        ``(D, R, N)``: Monte Carlo standard error of each contribution (0 where computed exactly).
    scores : numpy.ndarray
        ``(D, R)``: IT outlier score of each outlier under each draw.
    noise : numpy.ndarray
        ``(D, R, K)``: abducted noise of the players (standardised units).
    num_chains : int
        Chains of the posterior draws (``D = chains * draws``).
    settings : dict
        How the result was computed.

    Examples
    --------
    >>> import numpy as np
    >>> result = AttributionResult(target="web", nodes=["db", "web"], players=["db", "web"], outliers=[0],
    ...                            contributions=np.array([[[3.0, 1.0]], [[2.0, 2.5]]]),
    ...                            standard_errors=np.zeros((2, 1, 2)), scores=np.array([[4.0], [4.5]]),
    ...                            noise=np.zeros((2, 1, 2)), num_chains=1)
    >>> result.top_cause_probability()  # the share of draws in which each node contributes most
    node      db  web
    outlier
    0        0.5  0.5
    """

    target: Hashable
    nodes: list[Hashable]
    players: list[Hashable]
    outliers: list[Hashable]
    contributions: np.ndarray
    standard_errors: np.ndarray
    scores: np.ndarray
    noise: np.ndarray
    num_chains: int
    settings: dict = field(default_factory=dict)

    def _by_chain(self, array: np.ndarray) -> np.ndarray:
        return array.reshape(self.num_chains, -1, *array.shape[1:])

    def to_inference_data(self) -> az.InferenceData:
        """Contributions, IT scores and abducted noise as an arviz InferenceData.

        ``posterior`` holds ``contribution (chain, draw, outlier, node)``, ``it_score (chain, draw, outlier)`` and
        ``noise (chain, draw, outlier, player)``; ``sample_stats`` holds the Monte Carlo standard errors.
        """
        labels = [str(o) for o in self.outliers]
        coords = {"outlier": labels, "node": [str(n) for n in self.nodes], "player": [str(p) for p in self.players]}
        return az.from_dict(
            posterior={"contribution": self._by_chain(self.contributions), "it_score": self._by_chain(self.scores),
                       "noise": self._by_chain(self.noise)},
            sample_stats={"contribution_mcse": self._by_chain(self.standard_errors)},
            coords=coords,
            dims={"contribution": ["outlier", "node"], "it_score": ["outlier"], "noise": ["outlier", "player"],
                  "contribution_mcse": ["outlier", "node"]},
            attrs={"target": str(self.target), **{k: str(v) for k, v in self.settings.items()}},
        )

    def summary(self, hdi_prob: float = HDI_PROB, all_nodes: bool = False) -> pd.DataFrame:
        """Per outlier and node: posterior mean, median, HDI, P(top root cause) and the largest MC error.

        Rows are sorted by posterior mean within each outlier; only the players are listed unless ``all_nodes``.
        """
        keep = [self.nodes.index(n) for n in (self.nodes if all_nodes else self.players)]
        labels = [self.nodes[i] for i in keep]
        frames = []
        for row, outlier in enumerate(self.outliers):
            frame = _summarise(self.contributions[:, row, keep], labels, hdi_prob)
            frame["mcse"] = self.standard_errors[:, row, keep].max(0)
            frames.append(frame.sort_values("mean", ascending=False))
        return pd.concat(frames, keys=self.outliers, names=["outlier"])

    def score_summary(self, hdi_prob: float = HDI_PROB) -> pd.DataFrame:
        """Per outlier: posterior mean, median and HDI of the IT outlier score."""
        frame = _summarise(self.scores, self.outliers, hdi_prob).drop(columns="p_top_cause")
        frame.index.name = "outlier"
        return frame

    def not_outliers(self, threshold: float = NOT_AN_OUTLIER_NATS) -> pd.Series:
        """The rows whose IT score's posterior median is below ``threshold`` nats, with that median: rows that
        normal operation matches or exceeds often, whose contributions rank ordinary variation, not a cause."""
        medians = pd.Series(np.median(self.scores, axis=0), index=pd.Index(self.outliers, name="outlier"),
                            name="median_it_score")
        return medians[medians < threshold]

    def pooled_summary(self, hdi_prob: float = HDI_PROB) -> pd.DataFrame:
        """Summary over all outliers at once: each draw's contributions averaged over the outlier rows.

        ``p_top_cause`` is the share of (draw, outlier) pairs in which the node has the largest contribution.
        """
        keep = [self.nodes.index(n) for n in self.players]
        frame = _summarise(self.contributions[..., keep].mean(1), self.players, hdi_prob)
        pooled = self.contributions[..., keep].reshape(-1, len(keep))
        frame["p_top_cause"] = np.bincount(pooled.argmax(-1), minlength=len(keep)) / len(pooled)
        return frame.sort_values("mean", ascending=False)

    def top_cause_probability(self) -> pd.DataFrame:
        """``P(node is the top root cause)`` per outlier (rows) and player (columns)."""
        summary = self.summary()["p_top_cause"].unstack("node")
        return summary.reindex(columns=self.players).fillna(0.0)

    def plot(self, outlier: Hashable | None = None, hdi_prob: float = HDI_PROB, path: str | Path | None = None):
        """Forest plot of the contributions of the players to one outlier (the first by default).

        Returns the matplotlib figure; writes it to ``path`` when given.
        """
        outlier = self.outliers[0] if outlier is None else outlier
        order = self.summary(hdi_prob).loc[outlier].index.tolist()
        return forest_plot(self.to_inference_data(), order, {"outlier": [str(outlier)]},
                           f"Contributions to the outlier {outlier!r} at {self.target!r} ({100 * hdi_prob:g}% HDI)",
                           "contribution to the IT outlier score (nats)", hdi_prob, path)


def forest_plot(posterior: az.InferenceData, order: list, coords: dict, title: str, xlabel: str,
                hdi_prob: float = HDI_PROB, path: str | Path | None = None):
    """An arviz forest plot of the ``contribution`` variable for the nodes in ``order`` (largest first).

    Returns the matplotlib figure; writes it to ``path`` when given (and closes it).
    """
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    axes = az.plot_forest(posterior, var_names=["contribution"], combined=True, hdi_prob=hdi_prob,
                          coords={**coords, "node": [str(n) for n in order]}, figsize=(7, 0.45 * len(order) + 1.5))
    axes[0].set_title(title)
    axes[0].set_yticklabels([str(n) for n in reversed(order)])
    axes[0].axvline(0.0, color="0.6", linewidth=0.8, zorder=0)
    axes[0].set_xlabel(xlabel)
    figure = axes[0].get_figure()
    figure.tight_layout()
    if path is not None:
        figure.savefig(path, dpi=120)
        plt.close(figure)
    return figure
