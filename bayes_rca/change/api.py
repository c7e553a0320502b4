"""Which mechanisms changed between two periods, and how much of the target's distribution change is each one's.

The distribution-change attribution of Budhathoki et al. (*Why did the distribution change?*, AISTATS 2021;
DoWhy's ``gcm.distribution_change``) with posterior uncertainty. One Bayesian SCM is fitted per period. For a
coalition ``S`` of the target's mechanisms (its ancestors' and its own), ``P_S`` is the target's distribution when
the mechanisms of ``S`` are those of the new period and all others those of the old one; the change
``v(S) = D(P_S, P_empty)`` of a functional (by default the difference of means ``E_S[X_t] - E_old[X_t]``) has
``v(empty) = 0`` and ``v(all) =`` the total change, and its Shapley values over the mechanisms attribute the
change. They are computed for every posterior draw pair (draw ``d`` of the old model with draw ``d`` of the new,
independent posteriors), so each contribution has a credible interval and ``P(|phi_j| > delta)``.

*Analytic* where every player is linear-Gaussian: with ``X = c + B X + s * N`` in data units and the rows of
``(c, B, s)`` of ``S`` taken from the new period, the target is Normal with mean ``[(I - B_S)^-1 c_S]_t`` and
variance ``sum_j [(I - B_S)^-1]_{tj}^2 s_{S,j}^2``, so the mean, variance, sd, quantile and KL functionals are
closed form (no Monte Carlo error). Row ``t`` of ``(I - B_S)^-1`` is one backward substitution over the
topological order, vectorised over draws and coalitions.

*Monte Carlo* otherwise (:class:`MonteCarloChangeGame`: Student-t noise, Fourier features, thresholds, counts,
censoring): the target's distribution under a coalition is simulated ancestrally with common random numbers,
one set of standard noise per draw pair shared by every coalition and by both periods, vectorised over draw
pairs x coalitions x samples; the functional is estimated from the samples (the difference of a statistic of
them) and its Monte Carlo standard error from independent batches of them. The axioms hold exactly per draw
pair for the Monte Carlo game too (it is a game: ``v(empty) = 0`` and the Shapley values sum to ``v(all)``).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Hashable, Mapping

import networkx as nx
import numpy as np
import pandas as pd
import torch

from bayes_rca.attribution.api import resolve_device
from bayes_rca.attribution.shapley import ShapleyEstimate, exact_shapley, permutation_shapley
from bayes_rca.attribution.verification import Wording, verify_shapley_values
from bayes_rca.change.functionals import (
    FUNCTIONALS,
    Functional,
    get_functional,
    quantile_functional,
)
from bayes_rca.change.games import LinearGaussianChangeGame, MonteCarloChangeGame
from bayes_rca.change.results import DistributionChangeResult
from bayes_rca.errors import BayesRCAError, BayesRCAWarning, GraphError
from bayes_rca.graph.dag import blameable_nodes, check_node, parents_of, topological_order
from bayes_rca.model.assignment import baseline_family
from bayes_rca.model.mechanisms import Mechanism
from bayes_rca.model.scm import BayesianSCM
from bayes_rca.validation import check_num_samples, check_seed

__all__ = ["FUNCTIONALS", "Functional", "LinearGaussianChangeGame", "MonteCarloChangeGame",
           "attribute_distribution_change", "distribution_change", "fit_periods", "get_functional",
           "quantile_functional", "verify_change"]

DEFAULT_MAX_EXACT_PLAYERS = 12
DEFAULT_NUM_SAMPLES = 4000  # Monte Carlo samples per draw pair and coalition

Tensor = torch.Tensor


CHANGE_WORDING = Wording("total change", "the total change is", name_largest=True)


def verify_change(contributions: np.ndarray, total: np.ndarray, nodes: list[Hashable],
                  players: list[Hashable]) -> None:
    """Raise :class:`VerificationError` unless, per draw pair, the contributions ``(D, N)`` are finite, sum to the
    total change ``(D,)`` (efficiency), and are exactly 0 for nodes outside ``players`` (null player): the check of
    :func:`~bayes_rca.attribution.verification.verify_shapley_values`, worded for the distribution change."""
    blameable = set(players)
    verify_shapley_values(contributions, total, nodes, lambda index: f"draw {index[0]}", CHANGE_WORDING,
                          null_players=[col for col, node in enumerate(nodes) if node not in blameable])


def _warn_if_coupled(old_model: BayesianSCM, new_model: BayesianSCM) -> None:
    """Warn where both models were fitted with one seed: draw ``d`` of both then comes from the same random numbers,
    so the pairs are not independent and the intervals of the change come out too narrow."""
    def drawn(model: BayesianSCM) -> bool:  # posterior draws that differ (not one point repeated)
        return any(bool((value != value[:1]).any()) for node in model.nodes_.values() for value in node.params.values())

    if old_model.seed == new_model.seed and drawn(old_model) and drawn(new_model):
        warnings.warn(f"the old and new models were both fitted with seed={old_model.seed}: their posterior draws "
                      "are coupled, which makes the intervals of the change too narrow; fit them with different "
                      "seeds (distribution_change does)", BayesRCAWarning, stacklevel=3)


def _check_same_structure(old_model: BayesianSCM, new_model: BayesianSCM, target: Hashable) -> None:
    for model, label in ((old_model, "old"), (new_model, "new")):
        if not isinstance(model, BayesianSCM):
            raise BayesRCAError(f"the {label} model must be a BayesianSCM, got {type(model).__name__}")
        if not model.nodes_:
            raise BayesRCAError(f"the {label} model is not fitted yet; call fit(data) first")
    old_nodes, new_nodes = set(old_model.graph.nodes), set(new_model.graph.nodes)
    if old_nodes != new_nodes:
        only_old, only_new = sorted(old_nodes - new_nodes, key=str), sorted(new_nodes - old_nodes, key=str)
        raise GraphError(f"the old and new models must share the causal graph: node(s) {only_old} only in the old "
                         f"one, {only_new} only in the new one")
    old_edges, new_edges = set(old_model.graph.edges), set(new_model.graph.edges)
    if old_edges != new_edges:
        raise GraphError(f"the old and new models must share the causal graph: edge(s) "
                         f"{sorted(old_edges - new_edges, key=str)} only in the old one, "
                         f"{sorted(new_edges - old_edges, key=str)} only in the new one")
    check_node(old_model.graph, target, "target")
    for model, label in ((old_model, "old"), (new_model, "new")):
        missing = [n for n in blameable_nodes(model.graph, target) if n not in model.nodes_]
        if missing:
            raise BayesRCAError(f"the {label} model has no fitted mechanism for node(s) {missing}")


def attribute_distribution_change(old_model: BayesianSCM, new_model: BayesianSCM, target: Hashable,
                                  functional: str | Functional | Callable[[Tensor, Tensor], Tensor] = "mean",
                                  estimator: str = "auto", num_samples: int = DEFAULT_NUM_SAMPLES,
                                  max_exact_players: int = DEFAULT_MAX_EXACT_PLAYERS, num_permutations: int = 1000,
                                  device: str | torch.device = "cpu", seed: int = 0,
                                  verify: bool = True) -> DistributionChangeResult:
    """Attribute the change of ``target``'s distribution between two fitted models to the changed mechanisms.

    For each posterior draw pair (draw ``d`` of ``old_model`` with draw ``d`` of ``new_model``) and each
    coalition ``S`` of the target's ancestors and itself, ``P_S`` is the target's distribution when the
    mechanisms of ``S`` come from the new model and the others from the old one; the Shapley values of
    ``v(S) = functional(P_S) - functional(P_old)`` are the contributions. They sum to the total change
    ``v(all)`` per draw pair; other nodes get exactly 0.

    Parameters
    ----------
    old_model, new_model : BayesianSCM
        Models of the two periods, fitted on the same causal graph (same nodes and edges). Their posteriors are
        independent (two data sets), so draw ``d`` of one with draw ``d`` of the other is a draw of the pair; a
        model with a single draw (a point model) is paired with every draw of the other.
    target : hashable
        The node whose distribution changed.
    functional : str, Functional or callable
        ``"mean"`` (difference of means), ``"variance"``, ``"std"``, ``"quantile(q)"``, ``"kl"``
        (``KL(P_S || P_old)``, nats) — see :data:`FUNCTIONALS` — a :class:`Functional`, or a callable
        ``statistic(mean, variance)`` on torch tensors (the change is ``statistic(P_S) - statistic(P_old)``; on
        the Monte Carlo path of the sample mean and variance). ``"kl"`` is closed form only.
    estimator : {"auto", "analytic", "monte_carlo"}
        ``"auto"``: the closed form when every player's mechanism is linear-Gaussian in both models, Monte Carlo
        otherwise (:class:`MonteCarloChangeGame`); ``"monte_carlo"`` also for linear-Gaussian players.
    num_samples : int
        Monte Carlo samples of the target per draw pair and coalition (Monte Carlo only; common to all
        coalitions). The cost is about ``draws x 2^players x num_samples x players`` simulated values, and the
        Monte Carlo error (``standard_errors``, ``total_standard_error``) shrinks like ``1 / sqrt(num_samples)``.
    max_exact_players : int
        Enumerate all ``2^K`` coalitions up to this many players (exact); sample antithetic permutations above
        (efficiency still exact per draw; ``standard_errors`` gives their Monte Carlo error).
    num_permutations : int
        Permutations (in antithetic pairs) when sampling.
    device : str or torch.device
        Where the tensors live.
    seed : int
        Seed of the permutations.
    verify : bool
        Check efficiency, null player and finiteness per draw pair (raises
        :class:`~bayes_rca.errors.VerificationError` naming the draw and node).

    Returns
    -------
    DistributionChangeResult
        Contributions ``(D, nodes)``, the total change ``(D,)``, :meth:`~DistributionChangeResult.summary`,
        :meth:`~DistributionChangeResult.changed` (``P(|phi_j| > delta) > 1 - alpha``) and
        :meth:`~DistributionChangeResult.to_inference_data`.

    Raises
    ------
    GraphError
        If the models do not share the graph, or ``target`` is not a node.
    BayesRCAError
        If the analytic estimator is asked for players that are not linear-Gaussian, the Monte Carlo estimator
        for the ``"kl"`` functional, the draw counts differ, or an option is invalid.

    Examples
    --------
    >>> import networkx as nx
    >>> from bayes_rca.data.synthetic import LinearGaussianSystem
    >>> graph = nx.DiGraph([("A", "B"), ("B", "C")])
    >>> before = LinearGaussianSystem(graph, {("A", "B"): 1.0, ("B", "C"): 2.0}, {n: 0.0 for n in graph},
    ...                               {n: 1.0 for n in graph})
    >>> after = LinearGaussianSystem(graph, {("A", "B"): 1.0, ("B", "C"): 2.0}, {"A": 1.0, "B": 0.0, "C": 0.0},
    ...                              {n: 1.0 for n in graph})
    >>> result = attribute_distribution_change(before.oracle_model(), after.oracle_model(), "C")
    >>> result.summary()["mean"].round(6).sort_index().to_dict()
    {'A': 2.0, 'B': 0.0, 'C': 0.0}
    >>> result.changed()
    ['A']
    """
    _check_same_structure(old_model, new_model, target)
    _warn_if_coupled(old_model, new_model)
    rule = get_functional(functional)
    seed = check_seed(seed)
    num_samples = _check_options(estimator, num_samples, max_exact_players, num_permutations)
    device = resolve_device(device)
    nodes = topological_order(old_model.graph)
    players = blameable_nodes(old_model.graph, target)
    old_fitted, new_fitted, parent_index = _paired_players(old_model, new_model, players)
    analytic = all(node.mechanism.linear_gaussian for node in old_fitted + new_fitted)
    use_analytic = estimator == "analytic" or (estimator == "auto" and analytic)
    generator = torch.Generator(device).manual_seed(seed)
    game: LinearGaussianChangeGame | MonteCarloChangeGame
    if use_analytic:
        game = LinearGaussianChangeGame(old_fitted, new_fitted, parent_index, rule, device)
    else:
        game = MonteCarloChangeGame(old_fitted, new_fitted, parent_index, rule, num_samples, generator, device)
    shapley, how = _shapley(game, len(players), max_exact_players, num_permutations, generator, device)
    contributions, errors = _embed(shapley, game.num_draws, nodes, players)
    total = game.total.cpu().numpy()
    if verify:
        verify_change(contributions, total, nodes, players)
    settings = {"estimator": "analytic" if use_analytic else "monte_carlo", "shapley": how,
                "max_exact_players": max_exact_players, "num_permutations": num_permutations,
                "num_samples": None if use_analytic else game.num_samples, "seed": seed, "device": str(device),
                "converged": old_model.converged_ and new_model.converged_}
    return _result(game, rule, old_model, new_model, target, nodes, players, contributions, total, errors,
                   settings)


def _check_options(estimator: str, num_samples: int, max_exact_players: int, num_permutations: int) -> int:
    """Check the estimator options of :func:`attribute_distribution_change`; return ``num_samples`` checked."""
    if estimator not in ("auto", "analytic", "monte_carlo"):
        raise BayesRCAError(f"unknown estimator {estimator!r}; use 'auto', 'analytic' or 'monte_carlo'")
    num_samples = check_num_samples(num_samples)
    if isinstance(max_exact_players, bool) or not isinstance(max_exact_players, int) or max_exact_players < 1:
        raise BayesRCAError(f"max_exact_players must be a positive integer, got {max_exact_players!r}")
    if isinstance(num_permutations, bool) or not isinstance(num_permutations, int) or num_permutations < 2:
        raise BayesRCAError(f"num_permutations must be an integer of at least 2, got {num_permutations!r}")
    return num_samples


def _paired_players(old_model: BayesianSCM, new_model: BayesianSCM, players: list[Hashable]
                    ) -> tuple[list, list, list[list[int]]]:
    """The fitted nodes of ``players`` in each model and each player's parents as positions among ``players``;
    raises :class:`GraphError` when a node's fitted parents differ between the models or from the graph."""
    index = {name: k for k, name in enumerate(players)}
    parent_index = [[index[p] for p in parents_of(old_model.graph, name)] for name in players]
    old_fitted, new_fitted = [], []
    for name in players:
        old_node, new_node = old_model.nodes_[name], new_model.nodes_[name]
        if tuple(old_node.parents) != tuple(new_node.parents):
            raise GraphError(f"node {name!r}: its parents are {list(old_node.parents)} in the old model and "
                             f"{list(new_node.parents)} in the new one")
        old_fitted.append(old_node)
        new_fitted.append(new_node)
    # the parents' order of each fitted node is parents_of(graph), the order used for parent_index
    for name, node in zip(players, old_fitted):
        if list(node.parents) != parents_of(old_model.graph, name):
            raise GraphError(f"node {name!r}: fitted parents {list(node.parents)} do not match the graph's "
                             f"{parents_of(old_model.graph, name)}")
    return old_fitted, new_fitted, parent_index


def _shapley(game: LinearGaussianChangeGame | MonteCarloChangeGame, num_players: int, max_exact_players: int,
             num_permutations: int, generator: torch.Generator, device: torch.device) -> tuple[ShapleyEstimate, str]:
    """The Shapley values of ``game``: every coalition up to ``max_exact_players``, antithetic permutations above."""
    if num_players <= max_exact_players:
        return exact_shapley(game, num_players, game.chunk_size, device), "exact"
    return permutation_shapley(game, num_players, num_permutations, generator, game.chunk_size, device), "permutation"


def _embed(shapley: ShapleyEstimate, draws: int, nodes: list[Hashable], players: list[Hashable]
           ) -> tuple[np.ndarray, np.ndarray]:
    """Contributions and their standard errors ``(draws, nodes)``: the players' Shapley values, exact 0 elsewhere."""
    contributions = np.zeros((draws, len(nodes)))
    errors = np.zeros_like(contributions)
    columns = [nodes.index(p) for p in players]
    contributions[:, columns] = shapley.values[:, 0].cpu().numpy()
    errors[:, columns] = shapley.standard_error[:, 0].cpu().numpy()
    return contributions, errors


def _result(game: LinearGaussianChangeGame | MonteCarloChangeGame, rule: Functional, old_model: BayesianSCM,
            new_model: BayesianSCM, target: Hashable, nodes: list[Hashable], players: list[Hashable],
            contributions: np.ndarray, total: np.ndarray, errors: np.ndarray, settings: dict
            ) -> DistributionChangeResult:
    draws = game.num_draws
    default_delta = None
    if rule.default_delta is not None:
        default_delta = float(rule.default_delta(game.old_mean[:, 0], game.old_variance[:, 0]).mean())
    chains = old_model.num_chains if (old_model.num_chains == new_model.num_chains
                                      and draws % old_model.num_chains == 0) else 1
    old_moments = torch.cat([game.old_mean, game.old_variance], -1).cpu().numpy()
    new_moments = torch.cat([game.new_mean, game.new_variance], -1).cpu().numpy()
    return DistributionChangeResult(
        target=target, nodes=nodes, players=players, functional=rule.name, contributions=contributions,
        total=total, standard_errors=errors, old_moments=old_moments, new_moments=new_moments,
        default_delta=default_delta, num_chains=chains, settings=settings,
        total_standard_error=None if settings["estimator"] == "analytic" else game.total_standard_error.cpu().numpy())


def _linear_gaussian_mechanisms(graph: nx.DiGraph,
                                mechanisms: Mapping[Hashable, str | Mechanism] | None) -> dict:
    chosen = {node: baseline_family(len(parents_of(graph, node))) for node in graph}
    chosen.update(mechanisms or {})
    return chosen


def distribution_change(old_data: pd.DataFrame, new_data: pd.DataFrame, graph: nx.DiGraph, target: Hashable,
                        functional: str | Functional | Callable[[Tensor, Tensor], Tensor] = "mean",
                        mechanisms: Mapping[Hashable, str | Mechanism] | str | None = None, num_draws: int = 200,
                        inference: str = "auto", seed: int = 0, progress: bool = False,
                        **options) -> DistributionChangeResult:
    """Fit one :class:`~bayes_rca.model.scm.BayesianSCM` per period and attribute the target's distribution change.

    A convenience around :func:`attribute_distribution_change`. Every node gets a linear-Gaussian mechanism
    (``gaussian_root`` at roots; the closed form) unless ``mechanisms`` says otherwise: per-node overrides
    (another family makes the game Monte Carlo), or ``"auto"`` for the automatic assignment of
    :class:`~bayes_rca.model.scm.BayesianSCM` in each period (the two periods may then get different families). The two
    fits use independent seeds derived from ``seed`` (a shared seed would couple the two posteriors' draws and
    make the intervals too narrow).

    Parameters
    ----------
    old_data, new_data : pandas.DataFrame
        Rows of the old and the new period, one column per graph node.
    graph : networkx.DiGraph
        The causal graph.
    target : hashable
        The node whose distribution changed.
    functional : str, Functional or callable
        See :func:`attribute_distribution_change`.
    mechanisms : mapping or "auto", optional
        Per-node family overrides, as for :class:`~bayes_rca.model.scm.BayesianSCM` (other nodes linear-Gaussian), or
        ``"auto"``: the automatic assignment for every node without an override.
    num_draws : int
        Posterior draws per period (paired by index).
    inference : str
        Inference of each fit (``"auto"``: exact conjugate draws for linear-Gaussian nodes).
    seed : int
        Seed of both fits and of the permutations.
    progress : bool
        Show the fits' progress bars.
    **options
        Passed on to :func:`attribute_distribution_change` (``estimator``, ``num_samples``,
        ``max_exact_players``, ``num_permutations``, ``device``, ``verify``).

    Examples
    --------
    >>> import networkx as nx
    >>> from bayes_rca.data.synthetic import LinearGaussianSystem
    >>> graph = nx.DiGraph([("A", "B")])
    >>> before = LinearGaussianSystem(graph, {("A", "B"): 1.0}, {"A": 0.0, "B": 0.0}, {"A": 1.0, "B": 1.0})
    >>> after = LinearGaussianSystem(graph, {("A", "B"): 3.0}, {"A": 1.0, "B": 0.0}, {"A": 1.0, "B": 1.0})
    >>> result = distribution_change(before.sample(2000, seed=0), after.sample(2000, seed=1), graph, "B")
    >>> result.changed()
    ['A', 'B']
    """
    seed = check_seed(seed)
    old_model, new_model = fit_periods(old_data, new_data, graph, mechanisms, num_draws=num_draws,
                                       inference=inference, seed=seed, progress=progress)
    return attribute_distribution_change(old_model, new_model, target, functional, seed=seed, **options)


def fit_periods(old_data: pd.DataFrame, new_data: pd.DataFrame, graph: nx.DiGraph,
                mechanisms: Mapping[Hashable, str | Mechanism] | str | None = None, num_draws: int = 200,
                inference: str = "auto", seed: int = 0, progress: bool = False, auto: bool = False,
                labels: tuple[str, str] = ("the old period", "the new period"),
                **model_options) -> tuple[BayesianSCM, BayesianSCM]:
    """The two fitted models of :func:`distribution_change`, with independent seeds derived from ``seed``.

    Nodes without an override in ``mechanisms`` are linear-Gaussian, or assigned automatically by
    :class:`~bayes_rca.model.scm.BayesianSCM` with ``auto`` (``mechanisms="auto"`` is the same as ``auto=True``
    without overrides). ``model_options`` go to :class:`~bayes_rca.model.scm.BayesianSCM` (``num_chains``,
    ``n_jobs``, ...). An error of a fit names its period (``labels``).
    """
    seed = check_seed(seed)
    if isinstance(mechanisms, str):
        if mechanisms != "auto":
            raise BayesRCAError(f"mechanisms must be a mapping node -> family or 'auto', got {mechanisms!r}")
        mechanisms, auto = None, True
    chosen = dict(mechanisms or {}) if auto else _linear_gaussian_mechanisms(graph, mechanisms)
    seeds = [int(s) for s in np.random.SeedSequence(seed).generate_state(2)]
    models = []
    for data, period_seed, label in zip((old_data, new_data), seeds, labels):
        model = BayesianSCM(graph, mechanisms=chosen, inference=inference, num_draws=num_draws, seed=period_seed,
                            progress=progress, **model_options)
        try:
            models.append(model.fit(data))
        except BayesRCAError as error:
            error.args = (f"{label}: {error}", *error.args[1:])
            raise
    return models[0], models[1]
