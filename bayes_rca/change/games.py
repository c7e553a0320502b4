"""The games of the distribution-change attribution: ``v(S)``, the change of a functional of the target's
distribution when the mechanisms of ``S`` come from the new period, per posterior draw pair.

:class:`LinearGaussianChangeGame` is closed form (the target is Normal with moments from one backward
substitution of ``(I - B_S)^-1``); :class:`MonteCarloChangeGame` simulates the target ancestrally with common
random numbers shared by every coalition and both periods, with batch standard errors.
"""

from __future__ import annotations

import math
from dataclasses import replace

import torch

from bayes_rca.change.functionals import Functional
from bayes_rca.errors import BayesRCAError
from bayes_rca.model.node import FittedNode
from bayes_rca.model.noise import GaussianNoise, NoiseFamily, _chi2_sample

_BLOCK_ELEMENTS = 1 << 21  # draws x coalitions x players per evaluation block of the analytic game
_MC_ELEMENTS = 1 << 24  # draws x coalitions x samples x (players + feature width) per block of the Monte Carlo game
NUM_BATCHES = 10  # batches of the Monte Carlo samples, for the standard errors

Tensor = torch.Tensor


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
    :mod:`bayes_rca.attribution.shapley` (with one "row"). ``v(empty) = 0`` and ``v(all) = total`` hold exactly.

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
    (:mod:`bayes_rca.attribution.shapley`). Everything is one tensor over draw pairs x coalitions x samples; the only Python
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
                multiplier = node.noise_multiplier(stacked)  # None unless its noise widens beyond the range
                if multiplier is not None:
                    multiplier = multiplier.reshape(location.shape)
                out[:, where] = node.value_at(location, noise.unsqueeze(1), multiplier)
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
