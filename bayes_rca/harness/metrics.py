"""Metrics of root-cause rankings and of their uncertainty, as the literature uses them.

Every function takes a method's :class:`~bayes_rca.harness.methods.base.Attribution` and the ground truth of
one outlier, and returns a number; the harness averages them over outliers and seeds.
"""

from __future__ import annotations

from collections.abc import Hashable

import numpy as np
import pandas as pd

from bayes_rca.harness.methods.base import Attribution


def _tie_share(scores: pd.Series, node: Hashable, k: int) -> float:
    """Credit for ``node`` being in the top ``k`` of ``scores``; a tie of m nodes at the cut-off shares it."""
    value = scores[node]
    if not np.isfinite(value) and value < 0:
        return 0.0
    better = int((scores > value).sum())
    tied = int((scores == value).sum())
    return float(np.clip((k - better) / tied, 0.0, 1.0))


def recall_at_k(attribution: Attribution, root_cause: Hashable, k: int) -> float:
    """Top-``k`` recall of the true root cause, tied scores sharing credit."""
    return _tie_share(attribution.scores, root_cause, k)


def ndcg_at_k(attribution: Attribution, relevance: pd.Series, k: int) -> float:
    """Normalised discounted cumulative gain of the method's ranking at ``k``.

    Parameters
    ----------
    relevance : pandas.Series
        Non-negative ground-truth relevance per node (e.g. |path coefficient x injected noise|).
    """
    scores = attribution.scores.reindex(relevance.index)
    # Ties are broken against the method: among equal scores, the least relevant node ranks first.
    order = pd.DataFrame({"score": scores, "relevance": relevance}).sort_values(
        ["score", "relevance"], ascending=[False, True]).index
    discounts = 1.0 / np.log2(np.arange(2, k + 2))
    gains = relevance.reindex(order).to_numpy()[:k]
    ideal = np.sort(relevance.to_numpy())[::-1][:k]
    best = float((ideal * discounts[:len(ideal)]).sum())
    return float((gains * discounts[:len(gains)]).sum() / best) if best > 0 else 0.0


def interval_coverage(attribution: Attribution, truth: pd.Series, probability: float = 0.9) -> float:
    """Share of nodes whose true contribution lies inside the method's central ``probability`` interval."""
    interval = attribution.interval(probability)
    if interval is None:
        return float("nan")
    low, high = (side.reindex(truth.index) for side in interval)
    return float(((truth >= low) & (truth <= high)).mean())


def interval_width(attribution: Attribution, nodes: list[Hashable], probability: float = 0.9) -> float:
    """Mean width of the central ``probability`` intervals over ``nodes``."""
    interval = attribution.interval(probability)
    if interval is None:
        return float("nan")
    low, high = interval
    return float((high - low).reindex(nodes).mean())


def top_cause_brier(attribution: Attribution, root_cause: Hashable) -> float:
    """Brier score of ``P(node is the top root cause)`` against the true top root cause."""
    if attribution.top_probability is None:
        return float("nan")
    outcome = pd.Series(0.0, index=attribution.top_probability.index)
    outcome[root_cause] = 1.0
    return float(((attribution.top_probability - outcome) ** 2).sum())
