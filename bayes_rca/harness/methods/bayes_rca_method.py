"""This package's method: posterior Shapley contributions from a Bayesian SCM."""

from __future__ import annotations

import inspect
from collections.abc import Hashable
from typing import Any, ClassVar

import networkx as nx
import numpy as np
import pandas as pd

from bayes_rca.attribution.api import attribute_outliers
from bayes_rca.attribution.mean_deviation import mean_deviation_shares
from bayes_rca.attribution.options import OPTION_FIELDS
from bayes_rca.errors import BayesRCAError, check_choice
from bayes_rca.graph.dag import blameable_nodes
from bayes_rca.harness.methods._common import check_fitted, outlier_row
from bayes_rca.harness.methods.base import Attribution, RCAMethod
from bayes_rca.inference import InferenceOptions
from bayes_rca.model.assignment import baseline_family
from bayes_rca.model.mechanisms import CensoredGaussian, Mechanism
from bayes_rca.model.scm import CONSTANT_NOISE_CHOICES, INFERENCE_CHOICES, BayesianSCM

MECHANISM_CHOICES = ("auto", "linear", "pass_through", "extrapolating", "request_share", "censored")
MISSING_CHOICES = ("impute", "latent")
RANKING_CHOICES = ("it_score", "auto", "mean_deviation")
_PRIOR_FAMILIES = {"pass_through": "pass_through_gaussian", "extrapolating": "extrapolating_gaussian",
                   "request_share": "request_share_gaussian"}
_ATTRIBUTE_OPTIONS = (frozenset(inspect.signature(attribute_outliers).parameters) | frozenset(OPTION_FIELDS)) - {
    "model", "target", "outliers", "feature_map", "device", "seed", "options", "shapley", "monte_carlo"}


class BayesRCA(RCAMethod):
    """Bayesian root-cause analysis: a :class:`~bayes_rca.model.scm.BayesianSCM` and :func:`~bayes_rca.attribute_outliers`.

    The Shapley contributions of Budhathoki et al. (2022) to the IT outlier score of the target, computed for
    every posterior draw of the mechanisms. ``scores`` are the posterior means (0 for nodes that are not the
    target or its ancestors), ``draws`` the per-draw contributions, ``top_probability`` the share of draws in
    which a node has the largest contribution (0 for non-players), ``posterior`` the arviz InferenceData.

    Decision rule (``reported``): name nothing unless the target's IT score is credibly an outlier,
    ``P(S > score_threshold) > 1 - alpha``; then name each node ``j`` with ``P(phi_j > delta) > 1 - alpha``,
    largest posterior mean first. All probabilities are shares of posterior draws.

    Parameters
    ----------
    inference : {"auto", "conjugate", "svi", "nuts"}
        Posterior inference of the mechanisms (see :class:`~bayes_rca.model.scm.BayesianSCM`).
    mechanisms : {"auto", "linear", "pass_through", "extrapolating", "request_share", "censored"}
        ``"auto"`` assigns a family per node from the data; ``"linear"`` fits every node linear-Gaussian (Gaussian
        root nodes), a deliberately mis-specified model on nonlinear or heavy-tailed benchmarks;
        ``"pass_through"`` the same with a pass-through prior on the weights in data units
        (:class:`~bayes_rca.model.mechanisms.PassThroughGaussian`), for service metrics that add up along calls;
        ``"extrapolating"`` the same within the parents' training range and pass-through with a widening noise
        beyond it (:class:`~bayes_rca.model.mechanisms.extrapolating.ExtrapolatingGaussian`);
        ``"request_share"`` with weights that are shares of requests
        (:class:`~bayes_rca.model.mechanisms.RequestShareGaussian`, success rates); ``"censored"``
        fits every node linear-Gaussian clipped to ``bounds`` (:class:`~bayes_rca.model.mechanisms.CensoredGaussian`, a
        percentage stuck at 100, a latency capped at a timeout), whose noise at a bound is sampled from its
        posterior (Monte Carlo game).
    bounds : (float or None, float or None), optional
        The censoring bounds of ``mechanisms="censored"`` in data units; ``None`` for a side: the training
        data's pile-up there, if any.
    num_draws : int
        Posterior draws (all chains together).
    seed : int
        Seed of the fit and of the attribution's Monte Carlo draws.
    feature_map : {"median_cdf_quantile", "zscore"}
        The feature map of the IT outlier score.
    device : str
        Torch device of the attribution (``"cpu"``, ``"cuda"``).
    num_chains : int
        Chains (NUTS).
    inference_options : dict, optional
        Fields of :class:`~bayes_rca.inference.InferenceOptions` (``svi_steps``, ``warmup_steps``, ...).
    keep_posterior : bool
        Return the attribution's InferenceData as ``Attribution.posterior`` (logged as an artifact).
    delta : float
        Contribution (nats) a node must credibly exceed to be named a root cause.
    alpha : float
        Posterior error probability of the decision rule (a node is named when ``P(phi > delta) > 1 - alpha``).
    score_threshold : float
        IT score (nats) the target must credibly exceed for any root cause to be named; 5 nats is a tail
        probability of ``e^-5 ~ 1/150`` under normal operation.
    constant_noise : {"prior", "pooled"}
        Noise of a node constant in the training data (:class:`~bayes_rca.model.scm.BayesianSCM`).
    missing : {"impute", "latent"}
        Missing values of an outlier row: take the harness's imputed row (``"impute"``), or infer them with
        the noise (``"latent"``, :mod:`bayes_rca.attribution.latent`).
    ranking : {"it_score", "auto", "mean_deviation"}
        What ``scores``, ``draws`` and ``top_probability`` rank by: the IT-score Shapley contributions
        (``"it_score"``), each node's push on the target in data units (``"mean_deviation"``,
        :func:`~bayes_rca.attribution.mean_deviation.mean_deviation_shares`; linear-Gaussian players only), or the first
        unless the row is not an outlier at all (its IT score's posterior median below
        :data:`~bayes_rca.attribution.results.NOT_AN_OUTLIER_NATS`, 1 nat: more than a third of normal operation is as
        extreme, so the IT-score game ranks ordinary variation) and the second then (``"auto"``). The decision
        rule (``reported``) always uses the IT-score game.
    **attribute_options
        Passed to :func:`~bayes_rca.attribute_outliers`: ``estimator``, ``num_samples``, ``max_exact_players``,
        ``num_permutations``, ``verify``.

    References
    ----------
    Budhathoki, Minorics, Blöbaum, Janzing. "Causal structure-based root cause analysis of outliers." ICML 2022.
    """

    name: ClassVar[str] = "bayes_rca"
    variants: ClassVar[dict[str, dict[str, Any]]] = {
        "bayes_rca_svi": {"inference": "svi"},
        "bayes_rca_nuts": {"inference": "nuts"},
        "bayes_rca_linear": {"mechanisms": "linear"},
        "bayes_rca_pass_through": {"mechanisms": "pass_through"},
        "bayes_rca_censored": {"mechanisms": "censored", "inference": "svi"},
    }
    abstains: ClassVar[bool] = True

    def __init__(self, inference: str = "auto", mechanisms: str = "auto", num_draws: int = 200, seed: int = 0,
                 feature_map: str = "median_cdf_quantile", device: str = "cpu", num_chains: int = 1,
                 inference_options: dict[str, Any] | None = None, keep_posterior: bool = True,
                 delta: float = 1.0, alpha: float = 0.05, score_threshold: float = 5.0, missing: str = "impute",
                 bounds: tuple[float | None, float | None] | None = None, constant_noise: str = "prior",
                 ranking: str = "it_score", **attribute_options: Any) -> None:
        check_choice("inference", inference, INFERENCE_CHOICES)
        check_choice("mechanisms", mechanisms, MECHANISM_CHOICES)
        unknown = sorted(set(attribute_options) - _ATTRIBUTE_OPTIONS)
        if unknown:
            raise BayesRCAError(f"unknown option(s) {', '.join(map(repr, unknown))} for {self.name}; "
                                f"attribute options are {', '.join(sorted(_ATTRIBUTE_OPTIONS))}")
        try:
            self.options = InferenceOptions(**(inference_options or {}))
        except TypeError as error:
            raise BayesRCAError(f"bad inference_options {inference_options!r}: {error}") from None
        self.inference, self.num_draws, self.num_chains, self.seed = inference, num_draws, num_chains, seed
        if bounds is not None and (mechanisms != "censored" or len(bounds) != 2):
            raise BayesRCAError(f"bounds={bounds!r} needs mechanisms: censored and two entries [lower, upper]")
        self.mechanisms, self.bounds = mechanisms, tuple(bounds or (None, None))
        self.feature_map, self.device, self.keep_posterior = feature_map, device, keep_posterior
        check_choice("missing", missing, MISSING_CHOICES)
        self.missing, self.uses_missing_values = missing, missing == "latent"
        if not 0 < alpha < 1:
            raise BayesRCAError(f"alpha must lie in (0, 1), got {alpha!r}")
        self.delta, self.alpha, self.score_threshold = delta, alpha, score_threshold
        check_choice("constant_noise", constant_noise, CONSTANT_NOISE_CHOICES)
        self.constant_noise = constant_noise
        check_choice("ranking", ranking, RANKING_CHOICES)
        self.ranking = ranking
        self.attribute_options = attribute_options
        self.model_: BayesianSCM | None = None

    def _families(self, graph: nx.DiGraph) -> dict[Hashable, str | Mechanism] | None:
        if self.mechanisms == "linear":
            return {node: baseline_family(graph.in_degree(node)) for node in graph}
        if self.mechanisms in _PRIOR_FAMILIES:
            family = _PRIOR_FAMILIES[self.mechanisms]
            return {node: family if graph.in_degree(node) else "gaussian_root" for node in graph}
        if self.mechanisms == "censored":
            return {node: CensoredGaussian(*self.bounds) for node in graph}
        return None

    def fit(self, graph: nx.DiGraph, data: pd.DataFrame) -> BayesRCA:
        families = self._families(graph)
        self.model_ = BayesianSCM(graph, mechanisms=families, inference=self.inference, num_draws=self.num_draws,
                                  num_chains=self.num_chains, seed=self.seed, progress=False,
                                  options=self.options, constant_noise=self.constant_noise).fit(data)
        return self

    def attribute(self, target: Hashable, outlier: pd.DataFrame) -> Attribution:
        check_fitted(self, "model_")
        graph = self.model_.graph
        players = blameable_nodes(graph, target)
        row = outlier_row(graph, target, outlier, players, players[:-1] if self.uses_missing_values else ())
        row = row.to_frame().T
        result = attribute_outliers(self.model_, target, row, feature_map=self.feature_map, device=self.device,
                                    seed=self.seed, **self.attribute_options)
        draws = pd.DataFrame(result.contributions[:, 0, :], columns=result.nodes, dtype=float)
        reported = self.decide(result.scores[:, 0], draws)
        scores = draws.mean()
        top = result.top_cause_probability().iloc[0]
        top_probability = top.reindex(result.nodes).fillna(0.0).astype(float)
        posterior = result.to_inference_data() if self.keep_posterior else None
        if self.ranking == "mean_deviation" or (self.ranking == "auto" and len(result.not_outliers())):
            scores, draws, top_probability = self._mean_deviation(target, row.iloc[0], result.nodes)
        return Attribution(scores, draws, top_probability, posterior, reported)

    def _mean_deviation(self, target: Hashable, row: pd.Series,
                        nodes: list[Hashable]) -> tuple[pd.Series, pd.DataFrame, pd.Series]:
        """Scores, draws and top-cause probabilities of the mean-deviation game; non-players rank below every
        player."""
        shares = mean_deviation_shares(self.model_, target, row, seed=self.seed)
        top = shares.idxmax(axis=1).value_counts(normalize=True).reindex(nodes).fillna(0.0).astype(float)
        floor = float(shares.to_numpy().min()) - 1.0
        draws = shares.reindex(columns=nodes).fillna(floor)
        return draws.mean(), draws, top

    def is_outlier(self, score_draws: np.ndarray) -> bool:
        """Whether the target is credibly an outlier: ``P(S > score_threshold) > 1 - alpha``."""
        return bool(np.mean(score_draws > self.score_threshold) > 1 - self.alpha)

    def decide(self, score_draws: np.ndarray, contribution_draws: pd.DataFrame) -> list[Hashable]:
        """The nodes named root causes by the decision rule, from draws of the IT score and contributions."""
        if not self.is_outlier(score_draws):
            return []
        credible = (contribution_draws > self.delta).mean() > 1 - self.alpha
        means = contribution_draws.mean()
        return means[credible].sort_values(ascending=False).index.tolist()
