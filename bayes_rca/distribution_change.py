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

import math
import re
from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass, replace

import networkx as nx
import numpy as np
import pandas as pd
import torch

from bayes_rca.assignment import baseline_family
from bayes_rca.attribution import resolve_device
from bayes_rca.change_results import DistributionChangeResult
from bayes_rca.errors import BayesRCAError, GraphError, VerificationError
from bayes_rca.graph import blameable_nodes, check_node, parents_of, topological_order
from bayes_rca.mechanisms import Mechanism
from bayes_rca.node import FittedNode
from bayes_rca.noise import GaussianNoise, NoiseFamily, _chi2_sample
from bayes_rca.scm import BayesianSCM
from bayes_rca.shapley import ShapleyEstimate, exact_shapley, permutation_shapley
from bayes_rca.validation import check_num_samples, check_seed

__all__ = ["FUNCTIONALS", "Functional", "LinearGaussianChangeGame", "MonteCarloChangeGame",
           "attribute_distribution_change", "distribution_change", "fit_periods", "get_functional",
           "quantile_functional", "verify_change"]

EFFICIENCY_RTOL = 1e-6
DEFAULT_MAX_EXACT_PLAYERS = 12
_BLOCK_ELEMENTS = 1 << 21  # draws x coalitions x players per evaluation block of the analytic game
_MC_ELEMENTS = 1 << 24  # draws x coalitions x samples x (players + feature width) per block of the Monte Carlo game
DEFAULT_NUM_SAMPLES = 4000  # Monte Carlo samples per draw pair and coalition
NUM_BATCHES = 10  # batches of the Monte Carlo samples, for the standard errors
DELTA_FRACTION = 0.1  # default threshold of the decision rule: a tenth of the old target's natural scale

Tensor = torch.Tensor


@dataclass(frozen=True)
class Functional:
    """A change functional of the target's (Gaussian) distribution.

    Attributes
    ----------
    name : str
        Its name in results.
    change : callable
        ``change(mean, variance, old_mean, old_variance) -> v``: the change of the distribution with the given
        moments from the old one (shapes broadcast; ``old_*`` are ``(D, 1)``). It must be 0 at the old moments.
    default_delta : callable or None
        ``default_delta(old_mean, old_variance) -> (D,)``: the threshold of the decision rule per draw, in the
        functional's units (its posterior mean is used), or None when there is no natural one.
    sample_statistic : callable or None
        For the Monte Carlo estimator: ``sample_statistic(samples (..., S)) -> (...)``, a statistic of samples of
        the target along the last axis, the change being ``statistic(P_S) - statistic(P_old)``. None: the
        functional needs the target's density (``"kl"``) and the Monte Carlo estimator refuses it.
    """

    name: str
    change: Callable[[Tensor, Tensor, Tensor, Tensor], Tensor]
    default_delta: Callable[[Tensor, Tensor], Tensor] | None = None
    sample_statistic: Callable[[Tensor], Tensor] | None = None


def difference_functional(name: str, statistic: Callable[[Tensor, Tensor], Tensor],
                          default_delta: Callable[[Tensor, Tensor], Tensor] | None = None,
                          sample_statistic: Callable[[Tensor], Tensor] | None = None) -> Functional:
    """The functional ``statistic(P_S) - statistic(P_old)`` for a ``statistic(mean, variance)``.

    On samples it is ``sample_statistic``, by default ``statistic`` of the sample mean and (unbiased) variance.
    """
    if sample_statistic is None:
        def sample_statistic(samples: Tensor) -> Tensor:
            return statistic(samples.mean(-1), samples.var(-1))
    return Functional(name, lambda m, v, m0, v0: statistic(m, v) - statistic(m0, v0), default_delta,
                      sample_statistic)


def sample_quantile(samples: Tensor, q: float) -> Tensor:
    """The ``q``-quantile along the last axis (linear interpolation, numpy's default), for any size of input
    (``torch.quantile`` refuses more than 2^24 elements)."""
    ordered = samples.sort(-1).values
    position = q * (samples.shape[-1] - 1)
    low = int(math.floor(position))
    high = min(low + 1, samples.shape[-1] - 1)
    return ordered[..., low] + (position - low) * (ordered[..., high] - ordered[..., low])


def _gaussian_kl(m: Tensor, v: Tensor, m0: Tensor, v0: Tensor) -> Tensor:
    """``KL(Normal(m, v) || Normal(m0, v0))``."""
    return 0.5 * (torch.log(v0 / v) + (v + (m - m0) ** 2) / v0 - 1.0)


def _sd_delta(m0: Tensor, v0: Tensor) -> Tensor:
    return DELTA_FRACTION * torch.sqrt(v0)


def quantile_functional(q: float) -> Functional:
    """The change of the target's ``q``-quantile, ``m + sqrt(v) Phi^-1(q)`` for a Gaussian target."""
    if not 0 < q < 1:
        raise BayesRCAError(f"a quantile functional needs 0 < q < 1, got {q!r}")
    z = math.sqrt(2.0) * torch.erfinv(torch.tensor(2.0 * q - 1.0, dtype=torch.float64)).item()
    return difference_functional(f"quantile({q:g})", lambda m, v: m + z * torch.sqrt(v), _sd_delta,
                                 lambda samples: sample_quantile(samples, q))


FUNCTIONALS: dict[str, Functional] = {
    "mean": difference_functional("mean", lambda m, v: m, _sd_delta),
    "variance": difference_functional("variance", lambda m, v: v, lambda m0, v0: DELTA_FRACTION * v0),
    "std": difference_functional("std", lambda m, v: torch.sqrt(v), _sd_delta),
    # 0.005 nats: the KL divergence of a shift of the mean by a tenth of an sd; closed form only (no samples)
    "kl": Functional("kl", _gaussian_kl, lambda m0, v0: torch.full_like(m0, 0.5 * DELTA_FRACTION**2)),
}
"""The built-in functionals; ``"quantile(q)"`` also names :func:`quantile_functional`."""

_QUANTILE = re.compile(r"^\s*quantile\s*\(\s*([0-9.eE+-]+)\s*\)\s*$")


def get_functional(spec: str | Functional | Callable[[Tensor, Tensor], Tensor]) -> Functional:
    """A :class:`Functional` from a registry name (:data:`FUNCTIONALS`, ``"quantile(0.9)"``), an instance, or a
    callable ``statistic(mean, variance)`` on torch tensors, which gives ``statistic(P_S) - statistic(P_old)``
    (no default threshold: give ``delta`` to the decision rule)."""
    if isinstance(spec, Functional):
        return spec
    if isinstance(spec, str):
        if spec in FUNCTIONALS:
            return FUNCTIONALS[spec]
        match = _QUANTILE.match(spec)
        if match:
            try:
                q = float(match.group(1))
            except ValueError:
                q = None
            if q is not None:
                return quantile_functional(q)
        raise BayesRCAError(f"unknown functional {spec!r}; use one of {', '.join(FUNCTIONALS)}, 'quantile(q)', a "
                            "Functional or a callable statistic(mean, variance)")
    if callable(spec):
        return difference_functional(getattr(spec, "__name__", "custom"), spec)
    raise BayesRCAError(f"functional must be a name, a Functional or a callable, got {type(spec).__name__}")


def _linear_gaussian_system(nodes: list[FittedNode], parent_index: list[list[int]],
                            period: str) -> tuple[Tensor, Tensor, Tensor]:
    """``c (D, K)``, ``B (D, K, K)`` (``B[:, child, parent]``) and noise variances ``s^2 (D, K)``, data units."""
    for node in nodes:
        if not node.mechanism.linear_gaussian:
            raise BayesRCAError(
                f"node {node.name!r} of the {period} model has a {node.mechanism.name} mechanism: distribution-change "
                "attribution in closed form (estimator='analytic') needs linear-Gaussian mechanisms; use "
                "estimator='auto' or 'monte_carlo' for other families")
    draws = nodes[0].num_draws
    K = len(nodes)
    intercept = torch.zeros(draws, K, dtype=torch.float64)
    coupling = torch.zeros(draws, K, K, dtype=torch.float64)
    variance = torch.zeros(draws, K, dtype=torch.float64)
    for k, (node, parents) in enumerate(zip(nodes, parent_index)):
        if node.num_draws != draws:
            raise BayesRCAError(f"node {node.name!r} of the {period} model has {node.num_draws} draws, node "
                                f"{nodes[0].name!r} has {draws}")
        bias, weight, noise_sd = node.linear_gaussian()
        intercept[:, k] = bias.to(torch.float64)
        if parents:
            coupling[:, k, parents] = weight.to(torch.float64)
        variance[:, k] = (noise_sd.to(torch.float64) * node.standardizer.scale) ** 2
    return intercept, coupling, variance


class LinearGaussianChangeGame:
    """The exact distribution-change game for linear-Gaussian players.

    Called with boolean masks ``(C, K)`` (``True``: the player's mechanism is the new period's), it returns the
    change functional ``v(S)`` as ``(D, 1, C)`` and no Monte Carlo batches, the interface of
    :mod:`bayes_rca.shapley` (with one "row"). ``v(empty) = 0`` and ``v(all) = total`` hold exactly.

    Parameters
    ----------
    old_nodes, new_nodes : list of FittedNode
        The players of each period in topological order, the target last; one of them may have a single draw
        (a point model), which is then paired with every draw of the other.
    parent_index : list of list of int
        Positions of each player's parents among the players.
    functional : Functional
    device : torch.device
    """

    def __init__(self, old_nodes: list[FittedNode], new_nodes: list[FittedNode], parent_index: list[list[int]],
                 functional: Functional, device: torch.device | str = "cpu") -> None:
        old = _linear_gaussian_system(old_nodes, parent_index, "old")
        new = _linear_gaussian_system(new_nodes, parent_index, "new")
        draws = max(old[0].shape[0], new[0].shape[0])
        for system, label in ((old, "old"), (new, "new")):
            if system[0].shape[0] not in (1, draws):
                raise BayesRCAError(f"the old model has {old[0].shape[0]} posterior draws and the new one "
                                    f"{new[0].shape[0]}: draw pairs need equal numbers (or one point model)")

        def expand(t: Tensor) -> Tensor:
            return t.expand(draws, *t.shape[1:]).to(device)

        self.old = tuple(expand(t) for t in old)
        self.new = tuple(expand(t) for t in new)
        self.functional, self.device = functional, device
        self.num_draws, self.num_players = draws, len(old_nodes)
        empty = torch.zeros(1, self.num_players, dtype=torch.bool, device=device)
        self.old_mean, self.old_variance = self.moments(empty)  # (D, 1)
        self.new_mean, self.new_variance = self.moments(~empty)
        self.total = self._change(self.new_mean, self.new_variance)[:, 0]  # (D,)

    def moments(self, masks: Tensor) -> tuple[Tensor, Tensor]:
        """The target's mean and variance ``(D, C)`` under each coalition of ``masks (C, K)``."""
        (c_old, b_old, v_old), (c_new, b_new, v_new) = self.old, self.new
        masks = masks.to(self.device)
        chosen = masks.unsqueeze(0)  # (1, C, K)
        intercept = torch.where(chosen, c_new.unsqueeze(1), c_old.unsqueeze(1))  # (D, C, K)
        variance = torch.where(chosen, v_new.unsqueeze(1), v_old.unsqueeze(1))
        K = self.num_players
        # a = e_t^T (I - B_S)^-1 by backward substitution: a_k is final once its children (later) are done
        effect = torch.zeros_like(intercept)
        effect[..., K - 1] = 1.0
        for k in range(K - 1, 0, -1):
            row = torch.where(masks[:, k].view(1, -1, 1), b_new[:, k].unsqueeze(1), b_old[:, k].unsqueeze(1))
            effect = effect + effect[..., k:k + 1] * row
        return (effect * intercept).sum(-1), (effect.square() * variance).sum(-1)

    def _change(self, mean: Tensor, variance: Tensor) -> Tensor:
        return self.functional.change(mean, variance, self.old_mean, self.old_variance)

    def __call__(self, masks: Tensor) -> tuple[Tensor, None]:
        parts = []
        for start in range(0, masks.shape[0], self.chunk_size):
            block = masks[start:start + self.chunk_size]
            value = self._change(*self.moments(block))
            value[:, ~block.any(-1)] = 0.0  # exactly, whatever the rounding
            value[:, block.all(-1)] = self.total.unsqueeze(-1)
            parts.append(value)
        return torch.cat(parts, -1).unsqueeze(1), None

    @property
    def chunk_size(self) -> int:
        """Coalitions per block: about :data:`_BLOCK_ELEMENTS` values, and a permutation pair at least."""
        return max(2 * (self.num_players + 1), _BLOCK_ELEMENTS // (self.num_draws * self.num_players))


def _noise_from_standard(noise: NoiseFamily, standard: Tensor, generator: torch.Generator,
                         shared: tuple[Tensor, Tensor] | None = None) -> tuple[Tensor, tuple[Tensor, Tensor] | None]:
    """Noise ``(D, S)`` (standardised units) from standard normal draws ``standard (D, S)``.

    The same standard draws give the noise of both periods (common random numbers). A Student-t's chi-square
    mixing variable is drawn for its degrees of freedom; ``shared`` is ``(df, chi2)`` of the other period, reused
    where the degrees of freedom are the same (so that an unchanged mechanism gives identical samples). Returns
    the noise and this noise's ``(df, chi2)`` (None for Gaussian noise).
    """
    if isinstance(noise, GaussianNoise):
        return noise.standard_sample(standard), None
    df = noise.df.expand(standard.shape)
    if shared is not None and torch.equal(shared[0], df):
        chi2 = shared[1]
    else:
        chi2 = _chi2_sample(df, generator)
    return noise.standard_sample(standard, chi2), (df, chi2)


def _with_draws(node: FittedNode, draws: int, device: torch.device | str) -> FittedNode:
    """``node`` on ``device`` with its parameters expanded to ``draws`` draws (a point model's single draw)."""
    node = node.to(device)
    if node.num_draws == draws:
        return node
    params = {name: value.expand(draws, *value.shape[1:]) for name, value in node.params.items()}
    return replace(node, posterior=replace(node.posterior, params=params))


class MonteCarloChangeGame:
    """The distribution-change game for any mechanisms, by ancestral simulation with common random numbers.

    For each draw pair, ``S`` standard normal vectors (one entry per player) are drawn once; every coalition and
    both periods use them (each period's noise family maps them to its noise, so a changed noise scale is the same
    draw scaled), and the target's samples under coalition ``S`` come from simulating the players in topological
    order, each with the mechanism (and noise) of the new period if it is in ``S`` and of the old one otherwise.
    The change is ``stat(samples under S) - stat(samples under empty)`` for the functional's
    :attr:`Functional.sample_statistic`, so ``v(empty) = 0`` exactly and ``v(all)`` is the estimated total.
    The samples are split into ``num_batches`` batches; the batch values give the Monte Carlo standard errors
    (:mod:`bayes_rca.shapley`). Everything is one tensor over draw pairs x coalitions x samples; the only Python
    loop is over the players (and the two periods).

    Parameters
    ----------
    old_nodes, new_nodes : list of FittedNode
        The players of each period in topological order, the target last (any mechanisms, possibly different
        families in the two periods); one side may be a point model with one draw.
    parent_index : list of list of int
        Positions of each player's parents among the players.
    functional : Functional
        Must have a :attr:`~Functional.sample_statistic`.
    num_samples : int
        Samples per draw pair (rounded down to a multiple of ``num_batches``).
    generator : torch.Generator
        Source of every random number (on ``device``).
    device : torch.device
    num_batches : int
    """

    def __init__(self, old_nodes: list[FittedNode], new_nodes: list[FittedNode], parent_index: list[list[int]],
                 functional: Functional, num_samples: int, generator: torch.Generator,
                 device: torch.device | str = "cpu", num_batches: int = NUM_BATCHES) -> None:
        if functional.sample_statistic is None:
            raise BayesRCAError(f"the {functional.name!r} functional needs the target's density, which the Monte "
                                "Carlo estimator does not have; use 'mean', 'variance', 'std' or 'quantile(q)' "
                                "(or linear-Gaussian mechanisms, whose closed form has it)")
        draws = max(old_nodes[0].num_draws, new_nodes[0].num_draws)
        for nodes in (old_nodes, new_nodes):
            for node in nodes:
                if node.num_draws not in (1, draws) or node.num_draws != nodes[0].num_draws:
                    raise BayesRCAError(f"the old model has {old_nodes[0].num_draws} posterior draws and the new "
                                        f"one {new_nodes[0].num_draws} (node {node.name!r}: {node.num_draws}): "
                                        "draw pairs need equal numbers (or one point model)")
        self.old_nodes = [_with_draws(node, draws, device) for node in old_nodes]
        self.new_nodes = [_with_draws(node, draws, device) for node in new_nodes]
        self.parent_index, self.functional, self.device = parent_index, functional, device
        self.num_draws, self.num_players, self.num_batches = draws, len(old_nodes), num_batches
        self.num_samples = max(num_batches, num_samples // num_batches * num_batches)
        K = self.num_players
        standard = torch.randn(draws, self.num_samples, K, generator=generator, dtype=torch.float64, device=device)
        old_noise, new_noise = [], []
        for k, (old, new) in enumerate(zip(self.old_nodes, self.new_nodes)):
            noise, mixing = _noise_from_standard(old.noise(), standard[..., k], generator)
            old_noise.append(noise)
            new_noise.append(_noise_from_standard(new.noise(), standard[..., k], generator, mixing)[0])
        self.old_noise, self.new_noise = torch.stack(old_noise, -1), torch.stack(new_noise, -1)  # (D, S, K)
        # the last player (position) that reads each player's values, to free them early
        self._last_use = [max([k for k, parents in enumerate(parent_index) if j in parents], default=K - 1)
                          for j in range(K)]
        width = max(int(getattr(node.mechanism, "num_features", 1)) for node in self.old_nodes + self.new_nodes)
        self._chunk = max(1, _MC_ELEMENTS // (draws * self.num_samples * (K + width)))
        empty = torch.zeros(1, K, dtype=torch.bool, device=device)
        old_samples, new_samples = self.simulate(empty)[:, 0], self.simulate(~empty)[:, 0]  # (D, S)
        self.old_mean, self.old_variance = old_samples.mean(-1, keepdim=True), old_samples.var(-1, keepdim=True)
        self.new_mean, self.new_variance = new_samples.mean(-1, keepdim=True), new_samples.var(-1, keepdim=True)
        self.reference, self.reference_batches = self._statistics(old_samples.unsqueeze(1))  # (D, 1), (D, 1, B)
        total, total_batches = self._change(new_samples.unsqueeze(1))
        self.total, self.total_batches = total[:, 0], total_batches[:, 0]  # (D,), (D, B)
        self.total_standard_error = self.total_batches.std(-1) / math.sqrt(num_batches)

    def simulate(self, masks: Tensor) -> Tensor:
        """The target's samples ``(D, C, S)`` under each coalition of ``masks (C, K)`` (True: new mechanism)."""
        masks = masks.to(self.device)
        draws, samples, coalitions = self.num_draws, self.num_samples, masks.shape[0]
        values: list[Tensor | None] = [None] * self.num_players
        for k, parents in enumerate(self.parent_index):
            out = torch.empty(draws, coalitions, samples, dtype=torch.float64, device=self.device)
            for chosen, node, noise in ((masks[:, k], self.new_nodes[k], self.new_noise[..., k]),
                                        (~masks[:, k], self.old_nodes[k], self.old_noise[..., k])):
                where = chosen.nonzero().squeeze(-1)
                if where.numel() == 0:
                    continue
                if parents:
                    stacked = torch.stack([values[p][:, where] for p in parents], -1)
                    stacked = stacked.reshape(draws, -1, len(parents))
                else:
                    stacked = out.new_zeros(draws, where.numel() * samples, 0)
                location = node.location(stacked).reshape(draws, where.numel(), samples)
                out[:, where] = node.value_at(location, noise.unsqueeze(1))
            values[k] = out
            for j in range(k):
                if self._last_use[j] == k:
                    values[j] = None
        return values[-1]

    def _statistics(self, samples: Tensor) -> tuple[Tensor, Tensor]:
        """The statistic of all samples ``(D, C)`` and of each batch ``(D, C, B)`` for samples ``(D, C, S)``."""
        statistic = self.functional.sample_statistic
        batched = samples.unflatten(-1, (self.num_batches, -1))
        return statistic(samples), statistic(batched)

    def _change(self, samples: Tensor) -> tuple[Tensor, Tensor]:
        value, batches = self._statistics(samples)
        return value - self.reference, batches - self.reference_batches

    def __call__(self, masks: Tensor) -> tuple[Tensor, Tensor]:
        """``v(S)`` for ``masks (C, K)``: the estimate ``(D, 1, C)`` and per-batch estimates ``(B, D, 1, C)``."""
        values, batches = [], []
        for start in range(0, masks.shape[0], self._chunk):
            block = masks[start:start + self._chunk].to(self.device)
            value, batch = self._change(self.simulate(block))
            empty, full = ~block.any(-1), block.all(-1)
            value[:, empty], batch[:, empty] = 0.0, 0.0
            value[:, full] = self.total.unsqueeze(-1)
            batch[:, full] = self.total_batches.unsqueeze(1)
            values.append(value)
            batches.append(batch)
        value, batch = torch.cat(values, -1), torch.cat(batches, 1)  # (D, C), (D, C, B)
        return value.unsqueeze(1), batch.permute(2, 0, 1).unsqueeze(2)

    @property
    def chunk_size(self) -> int:
        """Coalitions per block of about :data:`_MC_ELEMENTS` simulated values, and a permutation pair at least."""
        return max(2 * (self.num_players + 1), self._chunk)


def verify_change(contributions: np.ndarray, total: np.ndarray, nodes: list[Hashable],
                  players: list[Hashable]) -> None:
    """Raise :class:`VerificationError` unless, per draw pair, the contributions ``(D, N)`` are finite, sum to the
    total change ``(D,)`` (efficiency), and are exactly 0 for nodes outside ``players`` (null player)."""
    for array, what in ((contributions, "contribution"), (total, "total change")):
        bad = np.argwhere(~np.isfinite(array))
        if len(bad):
            node = f", node {nodes[bad[0][1]]!r}" if array.ndim == 2 else ""
            raise VerificationError(f"non-finite {what} at draw {bad[0][0]}{node}")
    blameable = set(players)
    for col, node in enumerate(nodes):
        if node in blameable:
            continue
        nonzero = np.flatnonzero(contributions[:, col] != 0)
        if len(nonzero):
            raise VerificationError(f"null player violated: node {node!r} is not an ancestor of the target but has "
                                    f"contribution {contributions[nonzero[0], col]:.3g} at draw {nonzero[0]}")
    gap = np.abs(contributions.sum(-1) - total)
    violated = np.flatnonzero(gap > EFFICIENCY_RTOL * (1.0 + np.abs(total)))
    if len(violated):
        draw = violated[0]
        raise VerificationError(f"efficiency violated at draw {draw}: contributions sum to "
                                f"{contributions[draw].sum():.6g}, the total change is {total[draw]:.6g} "
                                f"(largest contribution: node {nodes[int(np.abs(contributions[draw]).argmax())]!r})")


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
    >>> from bayes_rca.synthetic import LinearGaussianSystem
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
    rule = get_functional(functional)
    seed = check_seed(seed)
    if estimator not in ("auto", "analytic", "monte_carlo"):
        raise BayesRCAError(f"unknown estimator {estimator!r}; use 'auto', 'analytic' or 'monte_carlo'")
    num_samples = check_num_samples(num_samples)
    if isinstance(max_exact_players, bool) or not isinstance(max_exact_players, int) or max_exact_players < 1:
        raise BayesRCAError(f"max_exact_players must be a positive integer, got {max_exact_players!r}")
    if isinstance(num_permutations, bool) or not isinstance(num_permutations, int) or num_permutations < 2:
        raise BayesRCAError(f"num_permutations must be an integer of at least 2, got {num_permutations!r}")
    device = resolve_device(device)
    nodes = topological_order(old_model.graph)
    players = blameable_nodes(old_model.graph, target)
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
    analytic = all(node.mechanism.linear_gaussian for node in old_fitted + new_fitted)
    use_analytic = estimator == "analytic" or (estimator == "auto" and analytic)
    generator = torch.Generator(device).manual_seed(seed)
    game: LinearGaussianChangeGame | MonteCarloChangeGame
    if use_analytic:
        game = LinearGaussianChangeGame(old_fitted, new_fitted, parent_index, rule, device)
    else:
        game = MonteCarloChangeGame(old_fitted, new_fitted, parent_index, rule, num_samples, generator, device)
    K = len(players)
    if K <= max_exact_players:
        shapley: ShapleyEstimate = exact_shapley(game, K, game.chunk_size, device)
        how = "exact"
    else:
        shapley = permutation_shapley(game, K, num_permutations, generator, game.chunk_size, device)
        how = "permutation"
    draws = game.num_draws
    contributions = np.zeros((draws, len(nodes)))
    errors = np.zeros_like(contributions)
    columns = [nodes.index(p) for p in players]
    contributions[:, columns] = shapley.values[:, 0].cpu().numpy()
    errors[:, columns] = shapley.standard_error[:, 0].cpu().numpy()
    total = game.total.cpu().numpy()
    if verify:
        verify_change(contributions, total, nodes, players)
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
        default_delta=default_delta, num_chains=chains,
        settings={"estimator": "analytic" if use_analytic else "monte_carlo", "shapley": how,
                  "max_exact_players": max_exact_players, "num_permutations": num_permutations,
                  "num_samples": None if use_analytic else game.num_samples, "seed": seed, "device": str(device),
                  "converged": old_model.converged_ and new_model.converged_},
        total_standard_error=None if use_analytic else game.total_standard_error.cpu().numpy())


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
    """Fit one :class:`~bayes_rca.scm.BayesianSCM` per period and attribute the target's distribution change.

    A convenience around :func:`attribute_distribution_change`. Every node gets a linear-Gaussian mechanism
    (``gaussian_root`` at roots; the closed form) unless ``mechanisms`` says otherwise: per-node overrides
    (another family makes the game Monte Carlo), or ``"auto"`` for the automatic assignment of
    :class:`~bayes_rca.scm.BayesianSCM` in each period (the two periods may then get different families). The two
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
        Per-node family overrides, as for :class:`~bayes_rca.scm.BayesianSCM` (other nodes linear-Gaussian), or
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
    >>> from bayes_rca.synthetic import LinearGaussianSystem
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
    :class:`~bayes_rca.scm.BayesianSCM` with ``auto`` (``mechanisms="auto"`` is the same as ``auto=True``
    without overrides). ``model_options`` go to :class:`~bayes_rca.scm.BayesianSCM` (``num_chains``,
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
