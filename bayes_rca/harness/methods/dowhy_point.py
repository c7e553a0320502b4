"""DoWhy's point estimate of the outlier contributions (``gcm.attribute_anomalies``)."""

from __future__ import annotations

from collections.abc import Hashable
from typing import Any, ClassVar

import networkx as nx
import numpy as np
import pandas as pd

from bayes_rca.errors import BayesRCAError, check_choice
from bayes_rca.graph.dag import topological_order
from bayes_rca.harness.methods._common import (
    check_fitted,
    fit_inputs,
    outlier_row,
    seeded_global_rng,
)
from bayes_rca.harness.methods.base import Attribution, RCAMethod

QUALITIES = ("good", "better", "best")
ANOMALY_SCORERS = ("it", "mean_deviation")


def import_gcm(n_jobs: int = 1) -> Any:
    """``dowhy.gcm`` with its progress bars off and ``n_jobs`` parallel jobs, or a clear error without DoWhy."""
    try:
        from dowhy import gcm
    except ImportError as error:  # pragma: no cover - dowhy is an optional dependency
        raise BayesRCAError("the DoWhy baselines need dowhy; install bayes_rca[baselines]") from error
    gcm.config.disable_progress_bars()
    gcm.config.set_default_n_jobs(n_jobs)
    return gcm


def check_quality(quality: str) -> str:
    check_choice("assignment quality", quality.lower(), QUALITIES)
    return quality.lower()


def check_anomaly_scorer(anomaly_scorer: str) -> str:
    check_choice("anomaly scorer", anomaly_scorer, ANOMALY_SCORERS)
    return anomaly_scorer


def contributions_series(result: dict[Any, np.ndarray], nodes: list[Hashable]) -> pd.Series:
    """DoWhy's ``{node: array([contribution])}`` over all ``nodes``; 0 for nodes DoWhy did not attribute."""
    values = {node: float(np.asarray(value).reshape(-1)[0]) for node, value in result.items()}
    return pd.Series(values, dtype=float).reindex(nodes).fillna(0.0)


class DoWhyPoint(RCAMethod):
    """DoWhy's ``gcm.attribute_anomalies`` on an auto-assigned invertible SCM (one fit, no uncertainty).

    ``fit`` builds ``gcm.InvertibleStructuralCausalModel(graph)``, runs ``gcm.auto.assign_causal_mechanisms`` and
    ``gcm.fit``; ``attribute`` calls ``gcm.attribute_anomalies(scm, target, anomaly_samples=row)`` with DoWhy's
    defaults (median-CDF-quantile IT score, 3000 distribution samples) unless told otherwise. ``scores`` are the
    contributions, 0 for nodes that are neither the target nor its ancestors. DoWhy draws from numpy's global
    generator; it is seeded with ``seed`` for every call and restored afterwards. A missing value in the outlier
    row is a :class:`~bayes_rca.errors.DataError` naming its column (DoWhy cannot reconstruct the noise of a
    missing value).

    The PetShop benchmark (Hardt et al. 2024) ran DoWhy with ``quality="better"``,
    ``attribute_mean_deviation=True`` and ``anomaly_scorer="mean_deviation"`` (registered as ``dowhy_petshop``):
    the contributions then explain the target's z-score ``|x - E[X]| / sd[X]`` minus its expectation, instead of
    its IT score.

    Parameters
    ----------
    seed : int
        Seed of the global numpy/``random`` state during fit and attribution.
    quality : {"good", "better", "best"}
        ``gcm.auto.AssignmentQuality`` of the mechanism assignment.
    num_distribution_samples : int
        Samples of the target's marginal used for the tail probabilities.
    n_jobs : int
        DoWhy's parallel jobs (``-1``: all cores, DoWhy's default). 1 by default, as every harness cell runs on
        one core; joblib's worker processes would also outlive the cell by their idle timeout.
    attribute_mean_deviation : bool
        Attribute ``g(x) - E[g(X)]`` (feature relevance of the anomaly scorer ``g``) instead of the IT score
        ``-log P(g(X) >= g(x))`` (``attribute_anomalies``'s option of that name).
    anomaly_scorer : {"it", "mean_deviation"}
        The scorer ``g``: DoWhy's default (``"it"``, the median-CDF quantile score), or
        ``gcm.anomaly_scorers.MeanDeviationScorer`` (``"mean_deviation"``, ``|x - E[X]| / sd[X]``).

    References
    ----------
    Budhathoki, Minorics, Blöbaum, Janzing. "Causal structure-based root cause analysis of outliers." ICML 2022.
    Blöbaum et al. "DoWhy-GCM: An extension of DoWhy for causal inference in graphical causal models." JMLR 2024.
    Hardt, Orchard, Blöbaum, Kirschbaum, Kasiviswanathan. "The PetShop Dataset — Finding Causes of Performance
    Issues across Microservices." CLeaR 2024 (``counterfactual_attribution.py`` of
    amazon-science/petshop-root-cause-analysis).
    """

    name: ClassVar[str] = "dowhy"
    variants: ClassVar[dict[str, dict[str, Any]]] = {  # as the PetShop data set's authors ran DoWhy
        "dowhy_petshop": {"quality": "better", "attribute_mean_deviation": True, "anomaly_scorer": "mean_deviation"},
    }

    def __init__(self, seed: int = 0, quality: str = "good", num_distribution_samples: int = 3000,
                 n_jobs: int = 1, attribute_mean_deviation: bool = False, anomaly_scorer: str = "it") -> None:
        self.seed, self.quality, self.n_jobs = seed, check_quality(quality), n_jobs
        self.num_distribution_samples = num_distribution_samples
        self.attribute_mean_deviation = attribute_mean_deviation
        self.anomaly_scorer = check_anomaly_scorer(anomaly_scorer)
        self.graph_: nx.DiGraph | None = None
        self.scm_: Any = None
        self.data_: pd.DataFrame | None = None

    def _new_scm(self, graph: nx.DiGraph, data: pd.DataFrame) -> Any:
        gcm = import_gcm(self.n_jobs)
        scm = gcm.InvertibleStructuralCausalModel(nx.DiGraph(graph))
        quality = getattr(gcm.auto.AssignmentQuality, self.quality.upper())
        gcm.auto.assign_causal_mechanisms(scm, data, quality=quality)
        return scm

    def fit(self, graph: nx.DiGraph, data: pd.DataFrame) -> DoWhyPoint:
        graph, frame = fit_inputs(graph, data)
        gcm = import_gcm(self.n_jobs)
        with seeded_global_rng(self.seed):
            self.scm_ = self._new_scm(graph, frame)
            gcm.fit(self.scm_, frame)
        self.graph_, self.data_ = graph, frame
        return self

    def _row(self, target: Hashable, outlier: pd.DataFrame) -> pd.DataFrame:
        """The checked outlier row as a one-row frame (a NaN or inf value is a DataError naming its column)."""
        return outlier_row(self.graph_, target, outlier).to_frame().T.reset_index(drop=True)

    def _scoring_options(self, gcm: Any) -> dict[str, Any]:
        """The ``attribute_anomalies`` options that differ from DoWhy's defaults."""
        options: dict[str, Any] = {}
        if self.attribute_mean_deviation:
            options["attribute_mean_deviation"] = True
        if self.anomaly_scorer == "mean_deviation":
            options["anomaly_scorer"] = gcm.anomaly_scorers.MeanDeviationScorer()
        return options

    def attribute(self, target: Hashable, outlier: pd.DataFrame) -> Attribution:
        check_fitted(self)
        gcm = import_gcm(self.n_jobs)
        row = self._row(target, outlier)
        with seeded_global_rng(self.seed):
            result = gcm.attribute_anomalies(self.scm_, target, anomaly_samples=row,
                                             num_distribution_samples=self.num_distribution_samples,
                                             **self._scoring_options(gcm))
        scores = contributions_series(result, topological_order(self.graph_))
        return Attribution(scores)
