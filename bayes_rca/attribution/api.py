"""``attribute_outliers``: posterior Shapley contributions of every node to outliers at a target."""

from __future__ import annotations

import dataclasses
import math
import warnings
from collections.abc import Hashable
from typing import Any, Literal, get_args

import numpy as np
import pandas as pd
import torch

from bayes_rca.attribution.abduction import Players
from bayes_rca.attribution.extrapolation_game import ExtrapolationGame, extrapolates
from bayes_rca.attribution.latent import abduct_sampled_noise
from bayes_rca.attribution.linear_game import CappedGame, LinearGaussianGame
from bayes_rca.attribution.monte_carlo_game import MonteCarloGame
from bayes_rca.attribution.options import (
    MonteCarloOptions,
    ShapleyOptions,
    check_attribution_options,
    resolve_options,
)
from bayes_rca.attribution.results import NOT_AN_OUTLIER_NATS, AttributionResult
from bayes_rca.attribution.scale_mixture_game import (
    ScaleMixtureGame,
    supports_scale_mixture_game,
)
from bayes_rca.attribution.scores import FeatureMap, get_feature_map
from bayes_rca.attribution.shapley import (
    CounterfactualGame,
    ShapleyEstimate,
    exact_shapley,
    permutation_shapley,
)
from bayes_rca.attribution.verification import verify_attribution
from bayes_rca.data.checks import row_label, validate_outliers
from bayes_rca.errors import BayesRCAError, BayesRCAWarning, DataError, check_choice
from bayes_rca.graph.dag import blameable_nodes, topological_order
from bayes_rca.model.node import FittedNode
from bayes_rca.model.scm import BayesianSCM
from bayes_rca.validation import check_seed

Estimator = Literal["auto", "analytic", "scale_mixture", "monte_carlo"]
ESTIMATOR_CHOICES: tuple[str, ...] = get_args(Estimator)
EXACT_BUDGET = 200 * 2**17  # draws x coalitions per outlier row enumerated by default: 0.4-0.6 s on 2 CPU cores
MIN_EXACT_PLAYERS = 12  # the default enumerates at least this many players (the Monte Carlo game exactly this many)


def resolve_device(device: str | torch.device) -> torch.device:
    """The torch device, with a clear error for an unknown or unusable device or a CUDA device that is not here."""
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError):
        raise BayesRCAError(f"unknown device {device!r}; use 'cpu' or 'cuda' (or 'cuda:N')") from None
    if resolved.type not in ("cpu", "cuda"):
        raise BayesRCAError(f"device {str(device)!r} cannot run the attribution; use 'cpu' or 'cuda' (or 'cuda:N')")
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise BayesRCAError(f"device {str(device)!r} requested, but torch finds no CUDA device here; use 'cpu'")
    if resolved.type == "cuda" and resolved.index is not None and resolved.index >= torch.cuda.device_count():
        raise BayesRCAError(f"device {str(device)!r} requested, but torch finds only {torch.cuda.device_count()} "
                            "CUDA device(s) here")
    return resolved


def _warn_if_alone(players: list[Hashable], target: Hashable) -> None:
    """Warn when the target has no ancestors: it is the only node that can be blamed."""
    if players == [target]:
        warnings.warn(f"target {target!r} has no ancestors in the causal graph: only itself can be blamed, and it "
                      "gets the whole outlier score", BayesRCAWarning, stacklevel=3)


def not_an_outlier_notice(result: AttributionResult) -> str | None:
    """The notice for rows whose IT score is below :data:`~bayes_rca.attribution.results.NOT_AN_OUTLIER_NATS`, or None."""
    low = result.not_outliers()
    if not len(low):
        return None
    rows = ", ".join(f"{row_label(label)} ({score:.3g} nats)" for label, score in low.items())
    return (f"not an outlier at {result.target!r}: row(s) {rows} have an IT score (posterior median) below "
            f"{NOT_AN_OUTLIER_NATS:g} nat, so more than a third of normal operation is at least as extreme there; "
            "their contributions rank ordinary variation, not a root cause")


def default_max_exact_players(analytic: bool, num_draws: int) -> int:
    """The largest number of players whose ``2^K`` coalitions are all enumerated when the caller does not say.

    The analytic game enumerates while ``num_draws * 2^K`` is within :data:`EXACT_BUDGET` (17 players at 200
    draws, 14 at 1000, 12 at 200 draws x 20 latent samples); the Monte Carlo game, whose coalitions each cost
    ``num_samples`` simulations, up to :data:`MIN_EXACT_PLAYERS`.
    """
    if not analytic:
        return MIN_EXACT_PLAYERS
    return max(MIN_EXACT_PLAYERS, math.floor(math.log2(EXACT_BUDGET / num_draws)))


CONTROL_PERMUTATIONS = 20_000  # permutations of a control variate too large to enumerate (one draw: cheap)
CONTROL_TOLERANCE = 0.005  # ... drawn in rounds until its Shapley values are this close (nats)


def _control(game):
    """The game's control variate (an exact game, one draw), or None."""
    return game.control_variate() if hasattr(game, "control_variate") else None


def _control_shapley(control, num_players: int, generator: torch.Generator, device: torch.device) -> ShapleyEstimate:
    """Shapley values of the control variate: exact over ``2^K`` coalitions where that fits
    :data:`EXACT_BUDGET`, else permutations in rounds until within :data:`CONTROL_TOLERANCE`."""
    if 1 << num_players <= EXACT_BUDGET:
        return exact_shapley(control, num_players, control.chunk_size, device)
    return permutation_shapley(control, num_players, 2000, generator, control.chunk_size, device,
                               CONTROL_TOLERANCE, CONTROL_PERMUTATIONS)


def _shapley(game, num_players: int, options: ShapleyOptions, generator: torch.Generator,
             device: torch.device) -> ShapleyEstimate:
    """Exact Shapley values up to ``options.max_exact_players`` (resolved: not None); above, permutations, around a
    control variate where the game has one (the control's Shapley values plus permutations of the difference)."""
    if num_players <= options.max_exact_players:
        return exact_shapley(game, num_players, game.chunk_size, device)
    control = _control(game)
    if control is not None:
        base = _control_shapley(control, num_players, generator, device)
        game = game.difference(control)
    sampled = permutation_shapley(game, num_players, options.num_permutations, generator, game.chunk_size, device,
                                  options.tolerance, options.max_permutations)
    if control is None:
        return sampled
    return ShapleyEstimate(base.values + sampled.values,
                           torch.sqrt(base.standard_error**2 + sampled.standard_error**2))


def _shapley_name(num_players: int, max_exact_players: int, game) -> str:
    if num_players <= max_exact_players:
        return "exact"
    return "permutation_control_variate" if getattr(game, "has_control_variate", False) else "permutation"


def _check_possible_values(fitted: list[FittedNode], frame: pd.DataFrame) -> None:
    """Outlier values that a player's mechanism cannot produce (a 0.5 at a 0/1 node, a count of -1) are errors."""
    for k, node in enumerate(fitted):
        column = frame.iloc[:, k].dropna()
        problem = node.mechanism.value_problem(torch.tensor(column.to_numpy(), dtype=torch.float64))
        if problem:
            index, reason = problem
            raise DataError(f"outlier row {row_label(column.index[index])}, column {node.name!r}: value "
                            f"{float(column.iloc[index])!r} {reason}, which its {node.mechanism.name} mechanism "
                            "cannot produce")


def _abduct(fitted: list[FittedNode], frame: pd.DataFrame, num_latent_samples: int, generator: torch.Generator,
            device: torch.device) -> tuple[Players, bool]:
    """Every player's noise per posterior draw and row; sampled (draws x samples) where the row does not
    identify it (missing values, non-invertible mechanisms). Also says whether it was sampled."""
    values = torch.tensor(frame.to_numpy(), dtype=torch.float64, device=device)
    sampled = bool(frame.isna().to_numpy().any()) or not all(node.mechanism.invertible for node in fitted)
    if sampled:
        return abduct_sampled_noise(fitted, values, num_latent_samples, generator, list(frame.index)), True
    return Players.abduct(fitted, values), False


def choose_estimator(fitted: list[FittedNode], estimator: Estimator = "auto", tail_df: float | None = None) -> str:
    """The game that ``estimator`` asks for, checked against the players' mechanisms: ``"analytic"``,
    ``"scale_mixture"`` or ``"monte_carlo"`` (``"auto"``: the first of these that the mechanisms allow).

    Raises
    ------
    BayesRCAError
        An estimator the mechanisms do not allow, naming the nodes at fault.
    """
    analytic = all(node.mechanism.linear_gaussian for node in fitted)
    if estimator == "analytic" and not analytic:
        families = {node.name: node.mechanism.name for node in fitted if not node.mechanism.linear_gaussian}
        raise BayesRCAError(f"the analytic estimator needs linear-Gaussian mechanisms; not so for {families}")
    use_analytic = analytic and estimator not in ("monte_carlo", "scale_mixture")
    scale_mixture = not use_analytic and estimator != "monte_carlo" and supports_scale_mixture_game(fitted)
    if estimator == "scale_mixture" and not scale_mixture:
        families = {node.name: node.mechanism.name for node in fitted
                    if not supports_scale_mixture_game([node])}
        raise BayesRCAError("the scale_mixture estimator needs players linear in their parents with Gaussian or "
                            f"Student-t noise; not so for {families}")
    if extrapolates(fitted) and scale_mixture:  # extrapolating players: the analytic or the Monte Carlo game
        scale_mixture = False
        if estimator == "scale_mixture":
            extrapolating = sorted(str(node.name) for node in fitted if node.mechanism.extrapolates)
            raise BayesRCAError(f"players {extrapolating} extrapolate beyond their parents' training range, which "
                                "the scale_mixture estimator does not model (the analytic and monte_carlo ones do)")
    return "analytic" if use_analytic else "scale_mixture" if scale_mixture else "monte_carlo"


def build_game(players: Players, estimator: str, tau: FeatureMap, num_samples: int, generator: torch.Generator,
               tail_df: float | None = None, max_nats: float | None = None) -> CounterfactualGame:
    """The counterfactual game ``g(S)`` of abducted ``players`` for a chosen estimator (see
    :func:`choose_estimator`), capped at ``max_nats`` if given."""
    if estimator == "analytic":
        game = (ExtrapolationGame if extrapolates(players.nodes) else LinearGaussianGame)(players, tau, tail_df)
    elif estimator == "scale_mixture":
        game = ScaleMixtureGame(players, tau, num_samples, generator, tail_df=tail_df)
    else:
        game = MonteCarloGame(players, tau, num_samples, generator, tail_df=tail_df)
    return game if max_nats is None else CappedGame(game, max_nats)


def embed_players(values: np.ndarray, players: list[Hashable], nodes: list[Hashable]) -> np.ndarray:
    """``(..., K)`` per-player values as ``(..., N)`` over all graph ``nodes``, zero for non-players (nodes that
    are neither the target nor its ancestors: the null players, whose noise cannot reach the target)."""
    full = np.zeros(values.shape[:-1] + (len(nodes),))
    full[..., [nodes.index(p) for p in players]] = values
    return full


def _game_rows(abducted: Players, estimator: str) -> list[Players]:
    """The abducted players per game: one exact game for every row at once; a Monte Carlo game per row (its
    samples and permutations are per row)."""
    if estimator == "analytic":
        return [abducted]
    return [Players(abducted.nodes, abducted.values[r:r + 1], abducted.noise[:, r:r + 1])
            for r in range(abducted.values.shape[0])]


def _settings(tau: FeatureMap, estimator: str, shapley: ShapleyOptions, monte_carlo: MonteCarloOptions,
              game: CounterfactualGame, num_players: int, model: BayesianSCM, frame: pd.DataFrame,
              sampled_noise: bool, **given: Any) -> dict[str, Any]:
    """The ``settings`` of the result: what was asked for and what was chosen."""
    missing = {label: frame.columns[frame.loc[label].isna()].tolist() for label in frame.index
               if frame.loc[label].isna().any()}
    return {"feature_map": tau.name, "estimator": estimator,
            "shapley": _shapley_name(num_players, shapley.max_exact_players, game),
            "max_exact_players": shapley.max_exact_players, "num_samples": monte_carlo.num_samples,
            "num_permutations": shapley.num_permutations, "tolerance": shapley.tolerance, "seed": given["seed"],
            "device": given["device"], "converged": model.converged_, "max_nats": given["max_nats"],
            "tail_df": given["tail_df"], "missing": missing,
            "latent_samples": monte_carlo.num_latent_samples if sampled_noise else 0}


def attribute_outliers(model: BayesianSCM, target: Hashable, outliers: pd.DataFrame | pd.Series,
                       feature_map: str | FeatureMap = "median_cdf_quantile", estimator: Estimator = "auto", *,
                       shapley: ShapleyOptions | None = None, monte_carlo: MonteCarloOptions | None = None,
                       max_nats: float | None = None, tail_df: float | None = None,
                       device: str | torch.device = "cpu", seed: int = 0, verify: bool = True,
                       **options: Any) -> AttributionResult:
    """Attribute outliers at ``target`` to its ancestors and itself, with a posterior over contributions.

    For each posterior draw of the mechanisms, every node's noise is abducted from the outlier row (a missing
    value is a latent variable, inferred with the noise), and the Shapley values of
    ``g(S) = -log P(tau(X_t) >= tau(x_t) | noise of S redrawn)`` are computed. They sum to the IT outlier score
    of the draw; nodes that are not ancestors of the target get exactly zero. The steps: abduction
    (``_abduct``) -> :func:`choose_estimator` -> :func:`build_game` -> Shapley values -> verification
    (:func:`~bayes_rca.attribution.verification.verify_attribution`) -> :func:`embed_players`.

    Parameters
    ----------
    model : BayesianSCM
        A fitted model.
    target : hashable
        The node where the outliers are observed.
    outliers : pandas.DataFrame or pandas.Series
        The outlier rows (one Series = one row), with columns for the target and its ancestors.
    feature_map : {"median_cdf_quantile", "zscore"} or FeatureMap
        The feature map ``tau`` of the IT score (DoWhy's default is the median-CDF quantile score).
    estimator : {"auto", "analytic", "scale_mixture", "monte_carlo"}
        The game (:func:`choose_estimator`; ``"auto"``: exact where every player is linear-Gaussian).
    shapley, monte_carlo : ShapleyOptions, MonteCarloOptions, optional
        How Shapley values are computed and the Monte Carlo sample sizes
        (:mod:`bayes_rca.attribution.options`); their fields may also be given by name in ``options``.
    max_nats : float, optional
        Cap every ``g(S)`` and the IT score at this many nats (:class:`~bayes_rca.attribution.linear_game.CappedGame`).
    tail_df : float, optional
        Degrees of freedom of the robust game (analytic estimator only): the noise of a redrawn coalition
        shares one variance factor, so the target under a coalition is Student-t
        (:class:`~bayes_rca.attribution.linear_game.LinearGaussianGame`).
    device : str or torch.device
        Where the tensors live (``"cpu"``, ``"cuda"``).
    seed : int
        Seed of all Monte Carlo and permutation draws; the same seed gives the same numbers.
    verify : bool
        Check efficiency and finiteness on the game's own values (raises
        :class:`~bayes_rca.errors.VerificationError`).

    Returns
    -------
    AttributionResult
        A row whose IT score's posterior median is below 1 nat is announced as not an outlier with a
        :class:`~bayes_rca.errors.BayesRCAWarning`.

    Examples
    --------
    >>> import networkx as nx
    >>> from bayes_rca import BayesianSCM
    >>> from bayes_rca.data.synthetic import random_linear_system
    >>> graph = nx.DiGraph([("db", "api"), ("api", "web")])
    >>> system = random_linear_system(graph, seed=0)
    >>> model = BayesianSCM(graph, num_draws=100, progress=False).fit(system.sample(500, seed=1))
    >>> result = attribute_outliers(model, "web", system.outlier({"db": 6.0}))  # db's noise 6 sd out
    >>> result.contributions.shape  # (posterior draws, outlier rows, nodes)
    (100, 1, 3)
    >>> result.summary().loc[0, "p_top_cause"].idxmax()
    'db'
    >>> bool(np.allclose(result.contributions.sum(-1), result.scores))  # efficiency, in every draw
    True
    """
    if not model.nodes_:
        raise RuntimeError("the model is not fitted yet; call model.fit(data) first")
    check_choice("estimator", estimator, ESTIMATOR_CHOICES)
    shapley, monte_carlo = resolve_options(shapley, monte_carlo, options)
    monte_carlo = check_attribution_options(monte_carlo, max_nats, tail_df)
    seed = check_seed(seed)
    players = blameable_nodes(model.graph, target)
    _warn_if_alone(players, target)
    frame = validate_outliers(outliers, players, missing_allowed=players[:-1], target=target)
    device = resolve_device(device)
    tau = get_feature_map(feature_map)
    generator = torch.Generator(device).manual_seed(seed)
    fitted = [model.nodes_[name].to(device) for name in players]
    _check_possible_values(fitted, frame)
    abducted, sampled_noise = _abduct(fitted, frame, monte_carlo.num_latent_samples, generator, device)
    chosen = choose_estimator(abducted.nodes, estimator, tail_df)
    if shapley.max_exact_players is None:
        draws = abducted.noise.shape[0]
        shapley = dataclasses.replace(shapley, max_exact_players=default_max_exact_players(chosen == "analytic",
                                                                                           draws))
    games = [build_game(one, chosen, tau, monte_carlo.num_samples, generator, tail_df, max_nats)
             for one in _game_rows(abducted, chosen)]
    estimates = [_shapley(game, len(players), shapley, generator, device) for game in games]
    contributions = torch.cat([e.values for e in estimates], 1).cpu().numpy()
    errors = torch.cat([e.standard_error for e in estimates], 1).cpu().numpy()
    scores = torch.cat([game.score for game in games], 1).cpu().numpy()
    if verify:  # on the game's own values, before non-players are filled in
        verify_attribution(contributions, scores, players, list(frame.index))
    nodes = topological_order(model.graph)
    result = AttributionResult(
        target=target, nodes=nodes, players=players, outliers=list(frame.index),
        contributions=embed_players(contributions, players, nodes),
        standard_errors=embed_players(errors, players, nodes), scores=scores,
        noise=abducted.noise.cpu().numpy(), num_chains=model.num_chains,
        settings=_settings(tau, chosen, shapley, monte_carlo, games[-1], len(players), model, frame, sampled_noise,
                           seed=seed, device=str(device), max_nats=max_nats, tail_df=tail_df))
    notice = not_an_outlier_notice(result)
    if notice:
        warnings.warn(notice, BayesRCAWarning, stacklevel=2)
    return result
