"""Missing values in outlier rows as latent variables, inferred jointly with the noise.

Linear-Gaussian players: every posterior draw defines a Gaussian joint law of the noise and the node values,
``X = A c + A diag(s) N`` with ``A = (I - B)^-1`` and ``N ~ Normal(0, diag(sigma^2))``. Given the observed
entries of a row, the noise is Gaussian too, and exact samples come from pathwise conditioning (Matheron's
rule): draw ``u ~ Normal(0, I)``, then move it to the nearest point (in whitened coordinates) that reproduces the
observed values, ``u + H_O^+ (y - H_O u)`` with ``H = A diag(s sigma)``.

Any other mechanisms: per draw, the missing nodes' noises are drawn from an adaptive Gaussian proposal, the
missing values simulated from them through their mechanisms, weighted by the noises' prior and the likelihood
of the observed values that depend on them, and ``num_samples`` of them resampled (self-normalised importance
sampling); the noise is then abducted from each completed row (sampled too where a mechanism is not
invertible). Its effective sample size is checked, with a warning where it is too small to trust.

Each posterior draw is repeated once per noise sample, so that the counterfactual game and the Shapley code see
one more batch of draws and every axiom (efficiency per draw, null player) holds per (parameter draw, noise
sample).
"""

from __future__ import annotations

import warnings
from dataclasses import replace

import torch

from bayes_rca.attribution.abduction import Players, abduct_noise
from bayes_rca.attribution.extrapolation_game import extrapolates
from bayes_rca.data.checks import row_label
from bayes_rca.errors import BayesRCAWarning
from bayes_rca.model.node import FittedNode
from bayes_rca.numerics.threads import one_thread

NUM_PARTICLES = 1000  # importance-sampling particles per posterior draw
ADAPTATION_ROUNDS = 2  # moves of the Gaussian proposal to the weighted particles
MIN_EFFECTIVE_SHARE = 0.01  # warn when the median effective sample size is below this share of the particles


def repeat_draws(node: FittedNode, copies: int) -> FittedNode:
    """The node with each posterior draw repeated ``copies`` times in a row (draw-major, chains kept in order)."""
    params = {name: value.repeat_interleave(copies, 0) for name, value in node.params.items()}
    return replace(node, posterior=replace(node.posterior, params=params))


def _linear_system(nodes: list[FittedNode]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per draw: ``A c`` ``(D, K)``, ``H = A diag(s sigma)`` ``(D, K, K)``, and ``sigma`` ``(D, K)``."""
    index = {node.name: k for k, node in enumerate(nodes)}
    parts = [node.linear_gaussian() for node in nodes]
    draws, size = parts[0][0].shape[0], len(nodes)
    dtype, device = parts[0][0].dtype, parts[0][0].device
    coupling = torch.zeros(draws, size, size, dtype=dtype, device=device)
    for k, (node, (_, weight, _)) in enumerate(zip(nodes, parts)):
        if node.parents:
            coupling[:, k, [index[p] for p in node.parents]] = weight
    bias = torch.stack([part[0] for part in parts], -1)
    sigma = torch.stack([part[2] for part in parts], -1)
    scale = torch.tensor([node.standardizer.scale for node in nodes], dtype=dtype, device=device)
    with one_thread():
        total = torch.linalg.inv(torch.eye(size, dtype=dtype, device=device) - coupling)  # unit lower-triangular
    return (total @ bias.unsqueeze(-1)).squeeze(-1), total * (scale * sigma).unsqueeze(1), sigma


def _conditional_standard(nodes: list[FittedNode], row: torch.Tensor, num_samples: int,
                          generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Exact samples ``(D, S, K)`` of the whitened noise given the finite entries of ``row (K,)`` (Matheron's rule),
    with the linear system they live in: ``A c`` ``(D, K)``, ``H`` ``(D, K, K)`` and ``sigma`` ``(D, K)``."""
    mean, whitened, sigma = _linear_system(nodes)
    draws, size = sigma.shape
    observed = torch.isfinite(row)
    h_obs = whitened[:, observed, :]  # (D, O, K)
    target = (row[observed] - mean[:, observed]).unsqueeze(1)  # (D, 1, O)
    prior = torch.randn(draws, num_samples, size, generator=generator, dtype=sigma.dtype, device=sigma.device)
    gap = target - prior @ h_obs.transpose(-1, -2)  # (D, S, O)
    with one_thread():
        inverse = torch.linalg.pinv(h_obs)
    return prior + gap @ inverse.transpose(-1, -2), mean, whitened, sigma


def conditional_noise(nodes: list[FittedNode], row: torch.Tensor, num_samples: int,
                      generator: torch.Generator) -> torch.Tensor:
    """Exact samples ``(D * num_samples, K)`` of the standardised noise given the finite entries of ``row (K,)``.

    Every player must be linear-Gaussian. Entries of observed nodes whose parents are observed come out equal
    to their residuals in every sample; the others vary with the missing values.
    """
    posterior, _, _, sigma = _conditional_standard(nodes, row, num_samples, generator)
    return (posterior * sigma.unsqueeze(1)).reshape(-1, sigma.shape[-1])


def conditional_rows(nodes: list[FittedNode], row: torch.Tensor, num_samples: int,
                     generator: torch.Generator) -> torch.Tensor:
    """Rows ``(D * num_samples, K)`` completed by the normal-range linear system from the same exact samples as
    :func:`conditional_noise`, the observed entries of ``row`` kept exactly: for players that extrapolate, whose
    noise is then abducted from the completed rows (their missing values are inferred as if the row were in
    range)."""
    posterior, mean, whitened, _ = _conditional_standard(nodes, row, num_samples, generator)
    values = mean.unsqueeze(1) + posterior @ whitened.transpose(-1, -2)  # (D, S, K)
    return torch.where(torch.isfinite(row), row, values).reshape(-1, values.shape[-1])


def _simulate(nodes: list[FittedNode], row: torch.Tensor, noise: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Rows ``(D, P, K)`` completed with the missing nodes' ``noise (D, P, M)``, and their log-density ``(D, P)``:
    the missing noises' prior times the likelihood of the observed values that depend on them."""
    index = {node.name: k for k, node in enumerate(nodes)}
    draws, particles, _ = noise.shape
    values = row.expand(draws, particles, len(nodes)).clone()
    missing = ~torch.isfinite(row)
    log_density = torch.zeros(draws, particles, dtype=row.dtype, device=row.device)
    position = 0
    for k, node in enumerate(nodes):
        parents = [index[p] for p in node.parents]
        if not (bool(missing[k]) or bool(missing[parents].any())):
            continue  # observed, and so are its parents: the same factor in every particle
        location = node.location(values[:, :, parents])
        multiplier = node.noise_multiplier(values[:, :, parents])  # None unless its noise widens beyond the range
        if bool(missing[k]):
            values[:, :, k] = node.value_at(location, noise[..., position], multiplier)
            log_density = log_density + node.noise().log_prob(noise[..., position])
            position += 1
        else:
            log_density = log_density + node.log_density(location, row[k], multiplier)
    return values, log_density


def sample_missing(nodes: list[FittedNode], row: torch.Tensor, num_samples: int, generator: torch.Generator,
                   num_particles: int = NUM_PARTICLES) -> tuple[torch.Tensor, torch.Tensor]:
    """Completed rows ``(D * num_samples, K)`` drawn from the posterior of the missing entries of ``row (K,)``.

    Adaptive importance sampling per posterior draw, in the space of the missing nodes' noises (continuous for
    every mechanism, thresholds and counts included): a Gaussian proposal, first the noise law widened three
    times, then ``ADAPTATION_ROUNDS`` times moved to the weighted particles' mean and 1.5 times their spread.
    Also returns the effective sample size of each draw's final weights ``(D,)``.
    """
    missing = [k for k in range(len(nodes)) if not bool(torch.isfinite(row[k]))]
    draws = nodes[0].num_draws
    sd = torch.stack([torch.sqrt(nodes[k].noise().variance.squeeze(-1)) for k in missing], -1).unsqueeze(1)
    mean, sd = torch.zeros_like(sd), 3.0 * sd  # (D, 1, M)
    for round_ in range(ADAPTATION_ROUNDS + 1):
        standard = torch.randn(draws, num_particles, len(missing), generator=generator, dtype=row.dtype,
                               device=row.device)
        noise = mean + sd * standard
        values, log_density = _simulate(nodes, row, noise)
        log_proposal = (-0.5 * standard**2 - torch.log(sd)).sum(-1)
        weight = torch.softmax(log_density - log_proposal, dim=-1)  # (D, P)
        if round_ < ADAPTATION_ROUNDS:
            mean = (weight.unsqueeze(-1) * noise).sum(1, keepdim=True)
            spread = (weight.unsqueeze(-1) * (noise - mean) ** 2).sum(1, keepdim=True).sqrt()
            sd = 1.5 * torch.maximum(spread, 1e-3 * sd)
    effective = 1.0 / (weight**2).sum(-1)
    chosen = torch.multinomial(weight, num_samples, replacement=True, generator=generator)  # (D, S)
    completed = torch.gather(values, 1, chosen.unsqueeze(-1).expand(-1, -1, len(nodes)))
    return completed.reshape(draws * num_samples, len(nodes)), effective


def _warn_if_degenerate(effective: torch.Tensor, num_particles: int, label: object) -> None:
    median = float(effective.median())
    if median < MIN_EFFECTIVE_SHARE * num_particles:
        warnings.warn(f"missing values of outlier row {row_label(label)}: importance sampling is degenerate (median "
                      f"effective sample size {median:.1f} of {num_particles} particles per draw); the observed "
                      "values pin the missing ones down more tightly than the mechanisms' noise: treat the "
                      "intervals with care, or impute", BayesRCAWarning, stacklevel=4)


def abduct_sampled_noise(nodes: list[FittedNode], values: torch.Tensor, num_samples: int,
                         generator: torch.Generator, labels: list | None = None) -> Players:
    """Players whose draws are (posterior draw x noise sample) and whose noise respects every observed value.

    Used where the noise is not identified by the rows: missing values, or mechanisms that are not invertible
    (whose noise is sampled in complete rows too).

    Parameters
    ----------
    nodes : list of FittedNode
        Players in topological order, the target last.
    values : torch.Tensor
        Outlier rows ``(R, K)``; NaN marks a missing value (the target must be observed).
    num_samples : int
        Noise samples per posterior draw.
    generator : torch.Generator
        Source of the samples.
    labels : list, optional
        The rows' labels, for warnings.
    """
    complete = torch.isfinite(values).all(-1)
    linear = all(node.mechanism.linear_gaussian for node in nodes)
    repeated = [repeat_draws(node, num_samples) for node in nodes]
    direct = iter(Players.abduct(repeated, values[complete], generator).noise.unbind(1)) if bool(complete.any()) \
        else iter(())
    rows = []
    for r in range(values.shape[0]):
        if bool(complete[r]):
            rows.append(next(direct))
        elif linear and extrapolates(nodes):
            completed = conditional_rows(nodes, values[r], num_samples, generator)
            rows.append(abduct_noise(repeated, completed.unsqueeze(1), generator)[:, 0])
        elif linear:
            rows.append(conditional_noise(nodes, values[r], num_samples, generator))
        else:
            completed, effective = sample_missing(nodes, values[r], num_samples, generator)
            _warn_if_degenerate(effective, NUM_PARTICLES, labels[r] if labels is not None else r)
            rows.append(abduct_noise(repeated, completed.unsqueeze(1), generator)[:, 0])
    return Players(repeated, values, torch.stack(rows, 1))
