"""Metrics of root-cause rankings and of their uncertainty, as the literature uses them, and the harness's
metric tables.

Every function takes a method's :class:`~bayes_rca.harness.methods.base.Attribution` and the ground truth of
one outlier, and returns a number; the harness averages them over outliers and seeds. What a cell logs is one
source of truth, the ``{name: Metric}`` tables at the end: :data:`OUTLIER_METRICS` (per outlier case,
:func:`bayes_rca.harness.cell.score_case`), :data:`CHANGE_METRICS` (per distribution-change case,
:func:`bayes_rca.harness.change_cell.score_change`) and :data:`CELL_METRICS` (measured by the cell itself);
those marked ``compared`` are the columns of :mod:`bayes_rca.harness.compare`'s table (:data:`COMPARED`).
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Any

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


def set_recall_at_k(scores: pd.Series, relevant: list[Hashable], k: int) -> float:
    """Share of the ``relevant`` nodes among the top ``k`` of ``scores``, out of at most ``k``.

    ``E|relevant ∩ top k| / min(k, len(relevant))``, tied scores sharing credit (as in :func:`recall_at_k`):
    1 when the top ``k`` hold as many relevant nodes as they can; at ``k = 1``, whether the top node is one of
    them. NaN without relevant nodes. A relevant node without a score gets no credit.
    """
    if not relevant:
        return float("nan")
    hits = sum(_tie_share(scores, node, k) for node in relevant if node in scores.index)
    return float(hits / min(k, len(relevant)))


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


CALIBRATION_LEVELS = (0.5, 0.8, 0.9, 0.95)
"""Nominal levels of the central intervals whose coverage :func:`calibration_metrics` reports."""
LARGE_CONTRIBUTION_NATS = 3.0
"""True contributions above this many nats are also scored on their own (where Monte Carlo tails saturate)."""


def calibration_metrics(attribution: Attribution, truth: pd.Series, levels: tuple[float, ...] = CALIBRATION_LEVELS,
                        large: float = LARGE_CONTRIBUTION_NATS) -> dict[str, float]:
    """Coverage and width of the central intervals at each of ``levels``, over the players, against ``truth``.

    ``truth`` holds the true contributions of the players only (the target and its ancestors): a node that
    cannot be blamed is exactly 0 in the truth and in every draw, so it would count as covered whatever the
    method does. ``player_coverage_<p>`` / ``player_width_<p>``: share of the players whose true contribution
    lies inside the central ``p`` % interval, and the intervals' mean width; ``large_coverage_<p>`` /
    ``large_width_<p>``: the same over the players whose true contribution exceeds ``large`` nats (NaN where
    there is none); ``player_abs_error``: mean absolute error of the scores; ``top_cause_brier_true``: Brier
    score of P(top cause) against the node with the largest true contribution; ``calib_players`` and
    ``calib_large``: how many contributions were scored. Coverage and width are NaN for a method without draws,
    the Brier score for one without P(top cause).
    """
    nan = float("nan")
    nodes = list(truth.index)
    big = truth[truth > large]
    row = {"calib_players": float(len(truth)), "calib_large": float(len(big)),
           "player_abs_error": float((attribution.scores.reindex(nodes) - truth).abs().mean())}
    for probability in levels:
        percent = round(100 * probability)
        row[f"player_coverage_{percent}"] = interval_coverage(attribution, truth, probability)
        row[f"player_width_{percent}"] = interval_width(attribution, nodes, probability)
        row[f"large_coverage_{percent}"] = interval_coverage(attribution, big, probability) if len(big) else nan
        row[f"large_width_{percent}"] = interval_width(attribution, list(big.index), probability) if len(big) \
            else nan
    row["top_cause_brier_true"] = top_cause_brier(attribution, truth.idxmax())
    return row


def calibration_table(attribution: Attribution, truth: pd.Series,
                      levels: tuple[float, ...] = CALIBRATION_LEVELS) -> pd.DataFrame:
    """One row per player of ``truth`` (as in :func:`calibration_metrics`): its true contribution, the method's
    score, the central interval bounds at each level (``low_<p>``, ``high_<p>``; NaN without draws), P(top
    cause) (NaN without) and whether it has the largest true contribution (``true_top``)."""
    nodes = list(truth.index)
    table = pd.DataFrame({"node": [str(node) for node in nodes], "truth": truth.to_numpy(dtype=float),
                          "score": attribution.scores.reindex(nodes).to_numpy(dtype=float)})
    for probability in levels:
        interval = attribution.interval(probability)
        low, high = (None, None) if interval is None else (side.reindex(nodes).to_numpy() for side in interval)
        table[f"low_{round(100 * probability)}"] = np.nan if low is None else low
        table[f"high_{round(100 * probability)}"] = np.nan if high is None else high
    top = attribution.top_probability
    table["top_probability"] = np.nan if top is None else top.reindex(nodes).to_numpy(dtype=float)
    table["true_top"] = (truth.index == truth.idxmax()).astype(float)
    return table


@dataclass(frozen=True)
class Metric:
    """A metric a cell logs: ``of(scoring)`` computes it from one case's scoring (None: the cell measures it,
    e.g. seconds); ``compared``: a column of the comparison table. Called like its function."""

    of: Callable[[Any], float] | None = None
    compared: bool = False

    def __call__(self, scoring: Any) -> float:
        return self.of(scoring)


@dataclass(frozen=True)
class OutlierScoring:
    """One answer about one outlier and its ground truth, as :data:`OUTLIER_METRICS` read them.

    ``answer``: the method's attribution over ``nodes`` (the nodes of the graph it was fitted on);
    ``relevance``: the ground-truth relevance (None where unknown: real data); ``truth``: the contributions at
    the true parameters (None where unknown).
    """

    answer: Attribution
    nodes: list[Hashable]
    root_cause: Hashable
    relevance: pd.Series | None
    truth: pd.Series | None

    @property
    def root_known(self) -> bool:
        """Whether the root cause is a node of the fitted graph (else the answer cannot name it)."""
        return self.root_cause in self.nodes


NDCG_KS = tuple(range(1, 11))
_NAN = float("nan")


def _ndcg(k: int) -> Metric:
    return Metric(lambda s: ndcg_at_k(s.answer, s.relevance, k) if s.relevance is not None else _NAN,
                  compared=k in (1, 3, 10))


OUTLIER_METRICS: dict[str, Metric] = {
    **{f"ndcg_at_{k}": _ndcg(k) for k in NDCG_KS},
    "top1_recall": Metric(lambda s: recall_at_k(s.answer, s.root_cause, 1) if s.root_known else 0.0, True),
    "top3_recall": Metric(lambda s: recall_at_k(s.answer, s.root_cause, 3) if s.root_known else 0.0, True),
    "coverage_90": Metric(lambda s: interval_coverage(s.answer, s.truth) if s.truth is not None else _NAN, True),
    # the relevance ranking is a heuristic; the true-parameter Shapley values are what a method estimates
    "shapley_top1_agreement": Metric(
        lambda s: recall_at_k(s.answer, s.truth.idxmax(), 1) if s.truth is not None else _NAN, True),
    "oracle_ndcg_at_1": Metric(lambda s: ndcg_at_k(Attribution(s.truth), s.relevance, 1)
                               if s.truth is not None and s.relevance is not None else _NAN, True),
    "interval_width_90": Metric(lambda s: interval_width(s.answer, s.nodes), True),
    "top_cause_brier": Metric(lambda s: top_cause_brier(s.answer, s.root_cause) if s.root_known else _NAN, True),
}
"""Per outlier case, averaged over the cell's cases (a case the method fails on scores top-k recall 0). Where
the true parameters are known the cell adds :func:`calibration_metrics` and
:func:`~bayes_rca.harness.truth.truth_error_metrics` over the players."""


@dataclass(frozen=True)
class ChangeScoring:
    """One answer about a distribution-change case, as :data:`CHANGE_METRICS` read them (see
    :func:`bayes_rca.harness.change_cell.score_change`)."""

    scores: pd.Series
    contributions: pd.Series | None
    attribution: Attribution
    named: set
    players: list[Hashable]
    truth: pd.Series
    relevant: list[Hashable]
    changed: list[Hashable]


CHANGE_METRICS: dict[str, Metric] = {
    "top1_recall": Metric(lambda s: set_recall_at_k(s.scores, s.relevant, 1), True),
    "top3_recall": Metric(lambda s: set_recall_at_k(s.scores, s.relevant, 3), True),
    "named_recall": Metric(lambda s: len(s.named & set(s.relevant)) / len(s.relevant) if s.relevant else _NAN,
                           True),
    "false_alarms": Metric(lambda s: float(len(s.named - set(s.changed))), True),
    "relevant_changes": Metric(lambda s: float(len(s.relevant))),
    "injected_changes": Metric(lambda s: float(len(s.changed))),
    "num_players": Metric(lambda s: float(len(s.players))),
    "contribution_mae": Metric(lambda s: _NAN if s.contributions is None else float(
        (s.contributions.reindex(s.players).fillna(0.0) - s.truth).abs().mean()), True),
    "coverage_90": Metric(lambda s: interval_coverage(s.attribution, s.truth), True),
    "interval_width_90": Metric(lambda s: interval_width(s.attribution, s.players), True),
}
"""Per distribution-change case (the change case; the no-change case is scored for specificity)."""

CELL_METRICS: dict[str, Metric] = {
    "specificity": Metric(compared=True),  # share of the normal-data checks where nothing is named
    "failed_cases": Metric(compared=True),
    "fit_seconds": Metric(compared=True),
    "attribute_seconds": Metric(compared=True),
    "specificity_seconds": Metric(),
    "num_nodes": Metric(),
    "num_cases": Metric(),
}
"""Measured by the cell itself: specificity, failures, seconds and sizes."""

COMPARED: tuple[str, ...] = tuple(dict.fromkeys(
    name for table in (OUTLIER_METRICS, CHANGE_METRICS, CELL_METRICS) for name, metric in table.items()
    if metric.compared))
"""The metrics of the comparison table (:func:`bayes_rca.harness.compare.comparison_table`)."""
