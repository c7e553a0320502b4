"""The general Monte Carlo game for any mechanisms: ``g(S)`` by importance-sampled simulation of the redrawn
noise, the target's own noise integrated exactly, with linearised batch standard errors that include the error of
the outlier thresholds (estimated from the same samples) and a ``log`` whose second-order bias is removed. Used
where a player is neither linear-Gaussian (:class:`~bayes_rca.attribution.linear_game.LinearGaussianGame`) nor linear with
Gaussian or Student-t noise (:class:`~bayes_rca.attribution.scale_mixture_game.ScaleMixtureGame`). Checked coalition by
coalition against an independent brute force in ``tests/test_monte_carlo_accuracy.py``.
"""

from __future__ import annotations

import math

import torch

from bayes_rca.attribution.abduction import Players
from bayes_rca.attribution.common_scale import sample_common_scale
from bayes_rca.attribution.linear_game import NUM_BATCHES, _full_and_empty
from bayes_rca.attribution.monte_carlo_thresholds import ThresholdError, per_noise_unit
from bayes_rca.attribution.scores import FeatureMap, MixtureMarginal, noise_log_outside
from bayes_rca.model.noise import GaussianNoise, noise_log_interval, sample_noise
from bayes_rca.numerics.special import normal_log_interval

_MAX_ELEMENTS = 1 << 24  # per chunked tensor of the Monte Carlo game: draws x coalitions x samples
_LINE_RANGES = 4  # the line's shift is uniform on one of this many nested ranges, geometrically spaced
_MAX_TAIL_REACH = 1e3  # the smear of a heavy-tailed noise reaches at most this many of its sds (shortest range)
_TAIL_RANGES, _TAIL_STRETCH = 3, 4.0  # ... over this many nested ranges, each this much longer than the last


def _linearised(estimate: torch.Tensor, log_batch_estimates: torch.Tensor, hit: torch.Tensor,
                threshold_terms: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """``g = -log p_hat`` with the second-order bias of the ``log`` removed, and per-batch linearisations.

    ``estimate (...)`` is ``log p_hat`` over all samples and ``log_batch_estimates (..., B)`` that of each
    batch. The batch values are ``g - (p_b / p_hat - 1 + t_b)``, the delta-method image of each batch's estimate
    (``t_b``, ``threshold_terms``: the first-order change of ``log p_hat`` when the outlier thresholds, estimated
    from the same samples, move by that batch's share of their error), so that their spread is the standard
    error of ``g`` with the thresholds' error included (the ``log`` of batch estimates themselves explodes when
    a batch has few or no hits). The bias term is half the relative variance of that whole linearised estimate.
    Where no sample hit (``hit`` False) the estimate is the floored one, and the batches are those of a single
    hit (one batch ``B``, the others ``0``): a standard error of about one nat.
    """
    batches = log_batch_estimates.shape[-1]
    ratio = torch.exp(log_batch_estimates - estimate.unsqueeze(-1))
    single = torch.zeros_like(ratio)
    single[..., 0] = batches
    ratio = torch.where(hit.unsqueeze(-1), ratio, single)
    relative_var = torch.where(hit, ratio.var(-1) / batches, 0.0)
    value = -(estimate - 0.5 * relative_var)  # E[log p_hat] = log p - Var(p_hat) / (2 p^2)
    deviation = ratio - 1.0
    if threshold_terms is not None:
        deviation = deviation + torch.where(hit.unsqueeze(-1), threshold_terms, 0.0)
    return value, value.unsqueeze(-1) - deviation


class MonteCarloGame(ThresholdError):
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
    tail_df : float, optional
        The robust game (as in :class:`~bayes_rca.attribution.linear_game.LinearGaussianGame`): a coalition's
        redrawn noise, the target's own included, is multiplied by ``sqrt(lambda)``, one factor per sample,
        ``lambda ~ InvGamma(tail_df / 2, tail_df / 2)``; the thresholds stay those of the marginal without it.

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
    far out in the tail. A heavy-tailed (not Gaussian) ancestor can carry the target out on its own along a
    power-law route the line does not follow: its ``q_node`` smears ``p`` over ``[-|n|, |n|]`` and over nested
    ranges of 1, 4 and 16 times twice the noise it would need alone to reach the observed value (from the
    gradient at zero noise). A coalition's weight ``p_S / q_S`` uses the proposal's marginal on the coalition's
    noises, in closed form for both components.

    With ``tail_df`` the factor ``lambda`` is importance-sampled
    (:func:`~bayes_rca.attribution.common_scale.sample_common_scale`), so that the large factors through which a
    far outlier is reached are drawn; its weight multiplies every coalition's. Given a large factor the event is
    reached by ordinary noise, so half the samples then draw the noise from ``p`` itself (the noise proposal is
    the defensive mixture ``(p + q) / 2``).

    The standard error of ``g(S)`` comes from per-batch linearised values: each batch's relative deviation of the
    coalition's estimate plus the change of the estimate when the thresholds move by that batch's first-order
    share of their own error (:class:`~bayes_rca.attribution.monte_carlo_thresholds.ThresholdError`). The IT
    score is ``g(all)`` from the same estimator, so the Shapley values still sum to it.

    A player whose noise scale depends on its parents (an extrapolating family, ``noise_multiplier``) is
    simulated as ``X = f(PA) + multiplier(PA) * scale * N``; the target's multiplier divides its noise bounds.
    """

    def __init__(self, players: Players, feature_map: FeatureMap, num_samples: int, generator: torch.Generator,
                 num_batches: int = NUM_BATCHES, proposal_threshold: float = 2.0,
                 tail_df: float | None = None) -> None:
        if players.values.shape[0] != 1:
            raise ValueError("MonteCarloGame takes one outlier row at a time")
        self.players, self.num_batches, self.tail_df = players, num_batches, tail_df
        self.num_samples = max(num_batches, num_samples // num_batches * num_batches)
        self.parent_index = players.parent_index
        self._lineage = self._lineages(self.parent_index, players.noise.device)
        self._lineage_bits = [torch.arange(len(index), device=index.device) for index in self._lineage]
        noises = [node.noise() for node in players.nodes]
        self.abducted = players.noise[:, 0, :]  # (D, K)
        self.observed = players.values[:, -1]
        self.target = players.nodes[-1]
        self.target_noise, self.target_scale = noises[-1], self.target.standardizer.scale
        sd = torch.stack([torch.sqrt(noise.variance.squeeze(-1)) for noise in noises], -1)  # (D, K)
        self._line(noises, sd)
        self._proposal(noises, sd, generator, proposal_threshold)
        self._common_scale(sd, generator)
        # the target's marginal from the same draws (all noise redrawn): the feature map and the IT score
        everyone = torch.ones(1, len(noises), dtype=torch.bool, device=self.fresh.device)
        location, multiplier = self._simulate(self.fresh.unsqueeze(1))
        marginal = MixtureMarginal(location[:, 0], self.target, self._log_weight(everyone)[:, 0],
                                   None if multiplier is None else multiplier[:, 0])
        observed = self.observed.expand(self.abducted.shape[0], -1)
        self.lo, self.hi = feature_map.thresholds(marginal, observed)
        self.threshold_shifts = self._threshold_shifts(feature_map, marginal, observed)  # (2, D, B)
        self.score = None
        self.score = self(everyone)[0][:, 0, 0].unsqueeze(-1)  # (D, 1): g(all), from the same estimator

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
            location = self._simulate(zero)[0]
            # through thresholds and counts the location is flat in the noise: no gradient there
            gradient = (torch.autograd.grad(location.sum(), zero, allow_unused=True)[0]
                        if location.requires_grad else None)
            if gradient is None:
                gradient = torch.zeros_like(zero)
        # a kink at the point of zero noise (sqrt|x| at 0) has no finite gradient: no line along that noise
        gradient = torch.nan_to_num(gradient, nan=0.0, posinf=0.0, neginf=0.0)
        whitened = torch.where(gaussian, sd * gradient[:, 0, 0, :], torch.zeros_like(sd))  # sigma_j g_j
        norm = whitened.norm(dim=-1, keepdim=True)  # (D, 1)
        has_line = norm > 1e-12
        unit = torch.where(has_line, whitened / norm.clamp_min(1e-12), torch.zeros_like(whitened))
        self.line_direction = unit * sd  # v (D, K), in noise units
        self.line_precision = torch.where(gaussian, 1.0 / sd**2, torch.zeros_like(sd))  # 1 / sigma_j^2
        norm = norm.squeeze(-1)
        gap = (self.observed - location.detach()[:, 0, 0]).abs()  # (D,)
        # a heavy-tailed ancestor can carry the target out on its own (a power-law route the line, which is
        # Gaussian, does not follow): twice the noise it needs alone to reach the observed value
        slope = gradient[:, 0, 0, :].abs()
        heavy = ~gaussian
        heavy[-1] = False
        alone = 2.0 * gap.unsqueeze(-1) / slope.clamp_min(1e-12)
        self.tail_reach = torch.where(heavy & (slope > 1e-12), alone.clamp_max(_MAX_TAIL_REACH * sd),
                                      torch.zeros_like(sd))  # (D, K)
        distance = gap / norm.clamp_min(1e-12)
        shortest = torch.where(has_line.squeeze(-1), 1.25 * distance + 3.0, torch.ones_like(distance))
        target_sd = self.target_scale * sd[:, -1]
        stretch = (norm**2 / target_sd**2).clamp(1.0, 1e4)
        steps = torch.linspace(0.0, 1.0, _LINE_RANGES, dtype=sd.dtype, device=sd.device)
        self.line_half_length = shortest.unsqueeze(-1) * stretch.unsqueeze(-1) ** steps  # (D, M)

    def _proposal(self, noises: list, sd: torch.Tensor, generator: torch.Generator, threshold: float) -> None:
        """Draw the fresh noise ``(D, S, K)`` from ``q`` and keep the per-node log densities of ``p`` and ``q_node``.

        ``q_node``: for a node whose abducted noise ``n`` is beyond ``threshold`` standard deviations, half the
        draws come from ``p`` and half from ``p`` smeared uniformly over ``[-|n|, |n|]``, so that every point
        between the observed noise, its mirror image and zero is sampled (a heavy-tailed node: over that range or
        one of the nested ones of :attr:`tail_reach`, each with equal probability, also when ``n`` is small);
        other nodes draw from ``p``.
        ``q_line``: ``z ~ p`` moved by ``u v``, ``u ~ U(-L, L)``. The target's own noise is integrated exactly.
        """
        base = torch.stack([sample_noise(noise, self.num_samples, generator) for noise in noises], -1)
        observed = self.abducted.abs().unsqueeze(1)  # (D, 1, K)
        reach = torch.maximum(observed, self.tail_reach.unsqueeze(1))
        unusual = reach > threshold * sd.unsqueeze(1)
        unusual[..., -1] = False
        smear = torch.rand(base.shape, generator=generator, dtype=base.dtype, device=base.device) * 2.0 - 1.0
        smeared = torch.rand(base.shape, generator=generator, dtype=base.dtype, device=base.device) < 0.5
        # a heavy-tailed noise is smeared over nested ranges: its observed value, and the push it needs alone
        # (from the gradient at zero noise, which can understate it where a censored or saturating path flattens
        # out) times 1, 4 and 16; every other unusual noise over its observed value
        heavy = (self.tail_reach > 0).unsqueeze(1) & unusual  # (D, 1, K)
        near = torch.where(observed > threshold * sd.unsqueeze(1), observed, reach)
        ranges = [torch.where(heavy, near, observed)]
        ranges += [torch.where(heavy, reach * _TAIL_STRETCH**i, observed) for i in range(_TAIL_RANGES)]
        if bool(heavy.any()):
            pick = torch.randint(len(ranges), base.shape, generator=generator, device=base.device)
            half_width = torch.gather(torch.stack(ranges, -1).expand(*base.shape, -1), -1, pick.unsqueeze(-1))[..., 0]
        else:
            half_width, ranges = observed, ranges[:1]
        node_sample = torch.where(unusual & smeared, base + smear * half_width, base)
        draws, samples = base.shape[:2]
        choice = torch.randint(_LINE_RANGES, (draws, samples), generator=generator, device=base.device)
        half = torch.gather(self.line_half_length, 1, choice).unsqueeze(-1)  # (D, S, 1)
        shift = (torch.rand(draws, samples, 1, generator=generator, dtype=base.dtype, device=base.device)
                 * 2.0 - 1.0) * half
        on_line = torch.rand(base.shape[:2] + (1,), generator=generator, dtype=base.dtype, device=base.device) < 0.5
        self.fresh = torch.where(on_line, base + shift * self.line_direction.unsqueeze(1), node_sample)
        # the robust game: samples 1, 2 (mod 4), half of each component of its factor, draw the noise from p
        index = torch.arange(samples, device=base.device)
        self.plain = None if self.tail_df is None else ((index % 4 == 1) | (index % 4 == 2))
        if self.plain is not None:
            self.fresh = torch.where(self.plain.view(1, -1, 1), base, self.fresh)
        self.log_p = torch.stack([noise.log_prob(self.fresh[..., k]) for k, noise in enumerate(noises)], -1)
        log_smear = torch.stack([
            torch.stack([noise_log_interval(noise, self.fresh[..., k] - r[..., k], self.fresh[..., k] + r[..., k])
                         for k, noise in enumerate(noises)], -1) - torch.log(2.0 * r)
            for r in ranges]).logsumexp(0) - math.log(len(ranges))
        log_q_node = torch.logaddexp(self.log_p, log_smear) - math.log(2.0)
        self.log_q_node = torch.where(unusual, log_q_node, self.log_p)

    @staticmethod
    def _lineages(parent_index: list[list[int]], device: torch.device) -> list[torch.Tensor]:
        """Per player, the indices of itself and its ancestors among the players (what its value depends on)."""
        lineage: list[set[int]] = []
        for k, parents in enumerate(parent_index):
            lineage.append({k}.union(*(lineage[p] for p in parents)))
        return [torch.tensor(sorted(members), device=device) for members in lineage]

    def _common_scale(self, sd: torch.Tensor, generator: torch.Generator) -> None:
        """The robust game's factor ``sqrt(lambda) (D, S)`` per sample and its log weight
        (:func:`~bayes_rca.attribution.common_scale.sample_common_scale`); None for both without ``tail_df``."""
        samples = self.fresh.shape[1]
        if self.tail_df is None:
            self.noise_factor = self.log_scale_weight = None
            self.scaled_fresh = self.fresh
            return
        reach = (self.abducted.abs() / sd).amax(-1)  # (D,): the furthest abducted noise, in its sds
        log_lambda, self.log_scale_weight = sample_common_scale(self.tail_df, reach, samples, generator)
        self.noise_factor = torch.exp(0.5 * log_lambda)
        self.scaled_fresh = self.fresh * self.noise_factor.unsqueeze(-1)

    def _target_log_outside(self, low: torch.Tensor, high: torch.Tensor) -> torch.Tensor:
        """``log P(sqrt(lambda) N_t <= low or >= high)`` of the redrawn target noise, ``(D, C, S)`` bounds."""
        if self.noise_factor is None:
            return noise_log_outside(self.target_noise, low, high)
        factor = self.noise_factor.unsqueeze(1)
        return noise_log_outside(self.target_noise, low / factor, high / factor)

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
        if self.tail_df is not None:  # the defensive mixture with p itself: q' = (p + q) / 2
            log_q = torch.logaddexp(log_p, log_q) - math.log(2.0)
        return log_p - log_q

    def _simulate(self, noise: torch.Tensor, masks: torch.Tensor | None = None) -> tuple[torch.Tensor,
                                                                                       torch.Tensor | None]:
        """Location of ``X_t`` given its parents and its noise multiplier (None: 1), simulating the ancestors
        (each ``X_k = f_k + multiplier_k * scale_k * N_k``); ``noise (D, C, S, K)`` -> ``(D, C, S)`` each.

        With the coalitions' ``masks (C, K)`` a node is evaluated once per distinct pattern of its own and its
        ancestors' membership, which is all its value depends on (a node with few ancestors takes a few
        patterns over all the coalitions of a permutation), and its values are gathered back per coalition.
        """
        values: list[torch.Tensor] = []
        nodes = self.players.nodes
        draws, coalitions, samples, _ = noise.shape
        for k, (node, parents) in enumerate(zip(nodes, self.parent_index)):
            last = k == len(nodes) - 1
            rows, inverse = None, None
            if masks is not None and not last and coalitions > 1:
                patterns = (masks[:, self._lineage[k]].long() << self._lineage_bits[k]).sum(-1)
                distinct, inverse = torch.unique(patterns, return_inverse=True)
                if len(distinct) < coalitions:  # one representative coalition per pattern
                    first = torch.full((len(distinct),), coalitions, dtype=torch.long, device=masks.device)
                    rows = first.scatter_reduce(0, inverse, torch.arange(coalitions, device=masks.device), "amin")
            kept = coalitions if rows is None else len(rows)
            if parents:
                parent_values = [values[p] if rows is None else values[p][:, rows] for p in parents]
                stacked = torch.stack(parent_values, -1).reshape(draws, -1, len(parents))
            else:
                stacked = noise.new_zeros(draws, kept * samples, 0)
            location = node.location(stacked).reshape(draws, kept, samples)
            multiplier = node.noise_multiplier(stacked)  # None unless its noise widens beyond the range
            if multiplier is not None:
                multiplier = multiplier.reshape(location.shape)
            if last:
                return location, multiplier
            own = noise[..., k] if rows is None else noise[:, rows, :, k]
            value = node.value_at(location, own, multiplier)
            values.append(value if rows is None else value[:, inverse])
        raise AssertionError("unreachable: the target is the last player")

    def __call__(self, masks: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``g(S)`` for ``masks (C, K)``: the estimate ``(D, 1, C)`` and per-batch estimates ``(B, D, 1, C)``."""
        draws, samples, _ = self.fresh.shape
        chosen = masks.unsqueeze(0).unsqueeze(2)  # (1, C, 1, K)
        noise = torch.where(chosen, self.scaled_fresh.unsqueeze(1), self.abducted[:, None, None, :])  # (D, C, S, K)
        location, multiplier = self._simulate(noise, masks)  # (D, C, S); the multiplier None unless it widens
        lo, hi = self.lo[:, :, None], self.hi[:, :, None]  # (D, 1, 1)
        z_lo = per_noise_unit(self.target.noise_at_most(location, lo.expand_as(location)), multiplier)
        z_hi = per_noise_unit(self.target.noise_at_least(location, hi.expand_as(location)), multiplier)
        integrated = self._target_log_outside(z_lo, z_hi)
        target_value = self.target.value_at(location, self.abducted[:, None, None, -1], multiplier)
        hit = (target_value <= lo) | (target_value >= hi)
        indicator = torch.zeros_like(location).masked_fill(~hit, -math.inf)
        redrawn = masks[None, :, None, -1]
        log_weight = self._log_weight(masks)
        if self.log_scale_weight is not None:
            log_weight = log_weight + self.log_scale_weight.unsqueeze(1)
        log_terms = torch.where(redrawn, integrated, indicator) + log_weight
        batched = log_terms.reshape(draws, masks.shape[0], self.num_batches, -1)
        per_batch = samples // self.num_batches
        log_batch_sums = torch.logsumexp(batched, dim=-1)  # (D, C, B)
        log_sum = torch.logsumexp(log_batch_sums, dim=-1)
        hit = torch.isfinite(log_sum)
        estimate = self._floored(log_sum - math.log(samples), samples)
        terms = self._threshold_terms(location, multiplier, target_value, z_lo, z_hi, redrawn, log_weight, log_sum,
                                      hit)
        value, batch_values = _linearised(estimate, log_batch_sums - math.log(per_batch), hit, terms)
        full, empty = _full_and_empty(masks)
        if self.score is not None:  # g(all) is the IT score itself (the same estimate, computed once)
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
