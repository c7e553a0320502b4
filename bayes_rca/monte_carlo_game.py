"""The general Monte Carlo game for any mechanisms: ``g(S)`` by importance-sampled simulation of the redrawn
noise, the target's own noise integrated exactly, with batch standard errors (linearised where batches have no
hits). Used where a player is neither linear-Gaussian (:class:`~bayes_rca.counterfactual.LinearGaussianGame`) nor
linear with Gaussian or Student-t noise (:class:`~bayes_rca.scale_mixture_game.ScaleMixtureGame`).
"""

from __future__ import annotations

import math

import torch

from bayes_rca.counterfactual import NUM_BATCHES, Players, _full_and_empty
from bayes_rca.noise import GaussianNoise, per_draw, sample_noise
from bayes_rca.scores import (
    FeatureMap,
    MixtureMarginal,
    gaussian_log_tail,
    it_score,
    log_two_tails,
)
from bayes_rca.special import log1mexp, normal_log_interval

_MAX_ELEMENTS = 1 << 24  # per chunked tensor of the Monte Carlo game: draws x coalitions x samples
_LINE_RANGES = 4  # the line's shift is uniform on one of this many nested ranges, geometrically spaced


def _log_interval(noise, low: torch.Tensor, high: torch.Tensor) -> torch.Tensor:
    """``log P(low <= N <= high)``, from the tail on the side away from zero for accuracy far out."""
    if isinstance(noise, GaussianNoise):
        return normal_log_interval(low / noise.scale, high / noise.scale)
    upper = low > 0
    log_far = torch.where(upper, noise.log_sf(low), noise.log_cdf(high))
    log_near = torch.where(upper, noise.log_sf(high), noise.log_cdf(low))
    return log_far + log1mexp((log_near - log_far).clamp_max(0.0))


def _log_outside(noise, low: torch.Tensor, high: torch.Tensor) -> torch.Tensor:
    """``log P(N <= low or N >= high)`` for values ``(D, ...)`` (noise parameters ``(D, 1)``)."""
    if isinstance(noise, GaussianNoise):
        scale = noise.scale.reshape(-1, *[1] * (low.dim() - 1))
        return gaussian_log_tail(torch.zeros_like(scale), scale, low, high)
    return log_two_tails(per_draw(noise.log_cdf, low), per_draw(noise.log_sf, high))


def _linearised(estimate: torch.Tensor, log_batch_estimates: torch.Tensor,
                hit: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``g = -log p_hat`` with the second-order bias of the ``log`` removed, and per-batch linearisations.

    ``estimate (...)`` is ``log p_hat`` over all samples and ``log_batch_estimates (..., B)`` that of each
    batch. The batch values are ``g - (p_b / p_hat - 1)``, the delta-method image of each batch's estimate, so
    that their spread is the standard error of ``g`` (the ``log`` of batch estimates themselves explodes when a
    batch has few or no hits). Where no sample hit (``hit`` False) the estimate is the floored one, and the
    batches are those of a single hit (one batch ``B``, the others ``0``): a standard error of about one nat.
    """
    batches = log_batch_estimates.shape[-1]
    ratio = torch.exp(log_batch_estimates - estimate.unsqueeze(-1))
    single = torch.zeros_like(ratio)
    single[..., 0] = batches
    ratio = torch.where(hit.unsqueeze(-1), ratio, single)
    relative_var = torch.where(hit, ratio.var(-1) / batches, 0.0)
    value = -(estimate - 0.5 * relative_var)  # E[log p_hat] = log p - Var(p_hat) / (2 p^2)
    return value, value.unsqueeze(-1) - (ratio - 1.0)


class MonteCarloGame:
    """Monte Carlo counterfactual game for any players (one outlier row at a time).

    Parameters
    ----------
    players : Players
        Fitted players and one observed row (``R = 1``).
    feature_map : FeatureMap
        Defines the outlier event.
    num_samples : int
        Monte Carlo samples per draw and coalition, split into ``num_batches`` batches for the error estimate.
    generator : torch.Generator
        Source of every random number (on the players' device).
    proposal_threshold : float
        Abducted noises beyond this many standard deviations are also drawn near their observed value.

    Notes
    -----
    The fresh noise comes from the defensive mixture ``q = (q_node + q_line) / 2``. ``q_node`` is a product over
    nodes: ``p`` itself, or for an unusual abducted noise ``n`` the mixture of ``p`` and ``p`` smeared over
    ``[-|n|, |n|]``. ``q_line`` draws ``z ~ p`` and moves it along a direction ``v`` by ``u``, uniform on one of
    a few nested ranges ``[-L_i, L_i]``. ``v`` is the direction (in whitened Gaussian-noise coordinates) in which
    the ancestors raise the target fastest; restricted to any coalition it is still that coalition's fastest
    direction, and the ranges stretch from the distance at which all ancestors together would reach the
    observed value to the (longer) one a coalition with a small share of them needs. This is where the outlier
    event is most likely when the target's own noise is randomised too, a region plain sampling never visits
    far out in the tail. A coalition's weight ``p_S / q_S`` uses the proposal's marginal on the coalition's
    noises, in closed form for both components, so every weight is at most 2.
    """

    def __init__(self, players: Players, feature_map: FeatureMap, num_samples: int, generator: torch.Generator,
                 num_batches: int = NUM_BATCHES, proposal_threshold: float = 2.0) -> None:
        if players.values.shape[0] != 1:
            raise ValueError("MonteCarloGame takes one outlier row at a time")
        self.players, self.num_batches = players, num_batches
        self.num_samples = max(num_batches, num_samples // num_batches * num_batches)
        self.parent_index = players.parent_index
        noises = [node.noise() for node in players.nodes]
        self.abducted = players.noise[:, 0, :]  # (D, K)
        self.observed = players.values[:, -1]
        self.target = players.nodes[-1]
        self.target_noise, self.target_scale = noises[-1], self.target.standardizer.scale
        sd = torch.stack([torch.sqrt(noise.variance.squeeze(-1)) for noise in noises], -1)  # (D, K)
        self._line(noises, sd)
        self._proposal(noises, sd, generator, proposal_threshold)
        # the target's marginal from the same draws (all noise redrawn): the feature map and the IT score
        everyone = torch.ones(1, len(noises), dtype=torch.bool, device=self.fresh.device)
        marginal = MixtureMarginal(self._target_location(self.fresh.unsqueeze(1))[:, 0], self.target,
                                   self._log_weight(everyone)[:, 0])
        self.lo, self.hi = feature_map.thresholds(marginal, self.observed.expand(self.abducted.shape[0], -1))
        self.score = it_score(marginal, self.lo, self.hi)  # (D, 1)

    def _line(self, noises: list, sd: torch.Tensor) -> None:
        """Direction ``v (D, K)`` and half-lengths ``L (D, M)`` of the line component of the proposal.

        ``v_j = sigma_j^2 g_j / |sigma g|`` over the Gaussian-noise ancestors (zero elsewhere), with ``g`` the
        gradient of the target's location at zero noise, so that ``u`` is a distance in whitened units. The
        shortest range reaches past the observed value with all ancestors moving; the longest is longer by the
        ratio of the ancestors' variance share to the target's own (a coalition holding a small share of the
        ancestors must move them further before the target's noise takes over).
        """
        draws, players = self.abducted.shape
        gaussian = torch.tensor([isinstance(noise, GaussianNoise) for noise in noises[:-1]] + [False],
                                device=self.abducted.device)
        with torch.enable_grad():
            zero = torch.zeros(draws, 1, 1, players, dtype=self.abducted.dtype, device=self.abducted.device,
                               requires_grad=True)
            location = self._target_location(zero)
            # through thresholds and counts the location is flat in the noise: no gradient there
            gradient = (torch.autograd.grad(location.sum(), zero, allow_unused=True)[0]
                        if location.requires_grad else None)
            if gradient is None:
                gradient = torch.zeros_like(zero)
        whitened = torch.where(gaussian, sd * gradient[:, 0, 0, :], torch.zeros_like(sd))  # sigma_j g_j
        norm = whitened.norm(dim=-1, keepdim=True)  # (D, 1)
        has_line = norm > 1e-12
        unit = torch.where(has_line, whitened / norm.clamp_min(1e-12), torch.zeros_like(whitened))
        self.line_direction = unit * sd  # v (D, K), in noise units
        self.line_precision = torch.where(gaussian, 1.0 / sd**2, torch.zeros_like(sd))  # 1 / sigma_j^2
        norm = norm.squeeze(-1)
        distance = (self.observed - location.detach()[:, 0, 0]).abs() / norm.clamp_min(1e-12)
        shortest = torch.where(has_line.squeeze(-1), 1.25 * distance + 3.0, torch.ones_like(distance))
        target_sd = self.target_scale * sd[:, -1]
        stretch = (norm**2 / target_sd**2).clamp(1.0, 1e4)
        steps = torch.linspace(0.0, 1.0, _LINE_RANGES, dtype=sd.dtype, device=sd.device)
        self.line_half_length = shortest.unsqueeze(-1) * stretch.unsqueeze(-1) ** steps  # (D, M)

    def _proposal(self, noises: list, sd: torch.Tensor, generator: torch.Generator, threshold: float) -> None:
        """Draw the fresh noise ``(D, S, K)`` from ``q`` and keep the per-node log densities of ``p`` and ``q_node``.

        ``q_node``: for a node whose abducted noise ``n`` is beyond ``threshold`` standard deviations, half the
        draws come from ``p`` and half from ``p`` smeared uniformly over ``[-|n|, |n|]``, so that every point
        between the observed noise, its mirror image and zero is sampled; other nodes draw from ``p``.
        ``q_line``: ``z ~ p`` moved by ``u v``, ``u ~ U(-L, L)``. The target's own noise is integrated exactly.
        """
        base = torch.stack([sample_noise(noise, self.num_samples, generator) for noise in noises], -1)
        reach = self.abducted.abs().unsqueeze(1)  # (D, 1, K)
        unusual = reach > threshold * sd.unsqueeze(1)
        unusual[..., -1] = False
        smear = torch.rand(base.shape, generator=generator, dtype=base.dtype, device=base.device) * 2.0 - 1.0
        smeared = torch.rand(base.shape, generator=generator, dtype=base.dtype, device=base.device) < 0.5
        node_sample = torch.where(unusual & smeared, base + smear * reach, base)
        draws, samples = base.shape[:2]
        choice = torch.randint(_LINE_RANGES, (draws, samples), generator=generator, device=base.device)
        half = torch.gather(self.line_half_length, 1, choice).unsqueeze(-1)  # (D, S, 1)
        shift = (torch.rand(draws, samples, 1, generator=generator, dtype=base.dtype, device=base.device)
                 * 2.0 - 1.0) * half
        on_line = torch.rand(base.shape[:2] + (1,), generator=generator, dtype=base.dtype, device=base.device) < 0.5
        self.fresh = torch.where(on_line, base + shift * self.line_direction.unsqueeze(1), node_sample)
        self.log_p = torch.stack([noise.log_prob(self.fresh[..., k]) for k, noise in enumerate(noises)], -1)
        log_smear = torch.stack([_log_interval(noise, self.fresh[..., k] - reach[..., k],
                                               self.fresh[..., k] + reach[..., k])
                                 for k, noise in enumerate(noises)], -1) - torch.log(2.0 * reach)
        log_q_node = torch.logaddexp(self.log_p, log_smear) - math.log(2.0)
        self.log_q_node = torch.where(unusual, log_q_node, self.log_p)

    def _log_weight(self, masks: torch.Tensor) -> torch.Tensor:
        """``log p_S(n_S) - log q_S(n_S)`` for ``masks (C, K)``: ``(D, C, S)``, the target's own noise excluded.

        With ``a = sum_S v_j n_j / sigma_j^2`` and ``b = sum_S v_j^2 / sigma_j^2``, the line component's marginal
        is ``q_line,S(n) = p_S(n) mean_i [ int_{-L_i}^{L_i} exp(a u - b u^2 / 2) du / (2 L_i) ]``, Gaussian
        integrals.
        """
        chosen = masks.clone()
        chosen[:, -1] = False
        chosen = chosen.to(self.log_p.dtype)
        log_p = torch.einsum("dsk,ck->dcs", self.log_p, chosen)
        log_q_node = torch.einsum("dsk,ck->dcs", self.log_q_node, chosen)
        a = torch.einsum("dsk,ck->dcs", self.fresh * (self.line_direction * self.line_precision).unsqueeze(1),
                         chosen)
        a = a.unsqueeze(-1)
        b = torch.einsum("dk,ck->dc", self.line_direction**2 * self.line_precision, chosen)[:, :, None, None]
        half = self.line_half_length[:, None, None, :]  # (D, 1, 1, M)
        flat = b < 1e-10  # no line coordinate in the coalition: the line component is p itself
        safe_b = torch.where(flat, torch.ones_like(b), b)
        centre = a / safe_b
        root = torch.sqrt(safe_b)
        log_integral = (0.5 * a * centre + 0.5 * torch.log(2 * math.pi / safe_b)
                        + normal_log_interval(root * (-half - centre), root * (half - centre)))
        log_ratio = torch.where(flat, torch.zeros_like(log_integral), log_integral - torch.log(2.0 * half))
        log_ratio = torch.logsumexp(log_ratio, -1) - math.log(_LINE_RANGES)
        log_q = torch.logaddexp(log_q_node, log_p + log_ratio) - math.log(2.0)
        return log_p - log_q

    def _target_location(self, noise: torch.Tensor) -> torch.Tensor:
        """Location of ``X_t`` given its parents, simulating ancestors; ``noise (D, C, S, K)`` -> ``(D, C, S)``."""
        values: list[torch.Tensor] = []
        nodes = self.players.nodes
        draws, coalitions, samples, _ = noise.shape
        for k, (node, parents) in enumerate(zip(nodes, self.parent_index)):
            if parents:
                stacked = torch.stack([values[p] for p in parents], -1).reshape(draws, -1, len(parents))
            else:
                stacked = noise.new_zeros(draws, coalitions * samples, 0)
            location = node.location(stacked).reshape(draws, coalitions, samples)
            if k == len(nodes) - 1:
                return location
            values.append(node.value_at(location, noise[..., k]))
        raise AssertionError("unreachable: the target is the last player")

    def __call__(self, masks: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``g(S)`` for ``masks (C, K)``: the estimate ``(D, 1, C)`` and per-batch estimates ``(B, D, 1, C)``."""
        draws, samples, _ = self.fresh.shape
        chosen = masks.unsqueeze(0).unsqueeze(2)  # (1, C, 1, K)
        noise = torch.where(chosen, self.fresh.unsqueeze(1), self.abducted[:, None, None, :])  # (D, C, S, K)
        location = self._target_location(noise)  # (D, C, S)
        lo, hi = self.lo[:, :, None], self.hi[:, :, None]  # (D, 1, 1)
        z_lo = self.target.noise_at_most(location, lo.expand_as(location))
        z_hi = self.target.noise_at_least(location, hi.expand_as(location))
        integrated = _log_outside(self.target_noise, z_lo, z_hi)
        target_value = self.target.value_at(location, self.abducted[:, None, None, -1])
        hit = (target_value <= lo) | (target_value >= hi)
        indicator = torch.zeros_like(location).masked_fill(~hit, -math.inf)
        log_terms = torch.where(masks[None, :, None, -1], integrated, indicator)
        log_terms = log_terms + self._log_weight(masks)
        batched = log_terms.reshape(draws, masks.shape[0], self.num_batches, -1)
        per_batch = samples // self.num_batches
        log_batch_sums = torch.logsumexp(batched, dim=-1)  # (D, C, B)
        log_sum = torch.logsumexp(log_batch_sums, dim=-1)
        hit = torch.isfinite(log_sum)
        estimate = self._floored(log_sum - math.log(samples), samples)
        value, batch_values = _linearised(estimate, log_batch_sums - math.log(per_batch), hit)
        full, empty = _full_and_empty(masks)
        # the full coalition is the IT score itself (its estimate from the same samples, without the bias term)
        offset = torch.where(full, self.score - value, 0.0)
        value, batch_values = value + offset, batch_values + offset.unsqueeze(-1)
        value = torch.where(empty, 0.0, value.clamp_min(0.0))
        batch_values = torch.where(empty.unsqueeze(-1), 0.0, batch_values)
        return value.unsqueeze(1), batch_values.permute(2, 0, 1).unsqueeze(2)

    @staticmethod
    def _floored(log_estimate: torch.Tensor, samples: int) -> torch.Tensor:
        """Replace ``log 0`` (no sample hit the event) by the zero-count Jeffreys estimate ``log(0.5 / (n + 1))``."""
        return torch.where(torch.isfinite(log_estimate), log_estimate,
                           torch.full_like(log_estimate, math.log(0.5 / (samples + 1))))

    @property
    def chunk_size(self) -> int:
        draws, samples, players = self.fresh.shape
        return max(1, _MAX_ELEMENTS // (draws * samples * players))
