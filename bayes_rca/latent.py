"""Missing values in outlier rows as latent variables, inferred jointly with the noise.

For linear-Gaussian players every posterior draw defines a Gaussian joint law of the noise and the node values,
``X = A c + A diag(s) N`` with ``A = (I - B)^-1`` and ``N ~ Normal(0, diag(sigma^2))``. Given the observed
entries of a row, the noise is Gaussian too, and exact samples come from pathwise conditioning (Matheron's
rule): draw ``u ~ Normal(0, I)``, then move it to the nearest point (in whitened coordinates) that reproduces the
observed values, ``u + H_O^+ (y - H_O u)`` with ``H = A diag(s sigma)``. Each posterior draw is repeated once per
noise sample, so that the counterfactual game and the Shapley code see one more batch of draws and every axiom
(efficiency per draw, null player) holds per (parameter draw, noise sample).
"""

from __future__ import annotations

from dataclasses import replace

import torch

from bayes_rca.counterfactual import Players
from bayes_rca.node import FittedNode


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
    total = torch.linalg.inv(torch.eye(size, dtype=dtype, device=device) - coupling)  # unit lower-triangular
    return (total @ bias.unsqueeze(-1)).squeeze(-1), total * (scale * sigma).unsqueeze(1), sigma


def conditional_noise(nodes: list[FittedNode], row: torch.Tensor, num_samples: int,
                      generator: torch.Generator) -> torch.Tensor:
    """Exact samples ``(D * num_samples, K)`` of the standardised noise given the finite entries of ``row (K,)``.

    Every player must be linear-Gaussian. Entries of observed nodes whose parents are observed come out equal
    to their residuals in every sample; the others vary with the missing values.
    """
    mean, whitened, sigma = _linear_system(nodes)
    draws, size = sigma.shape
    observed = torch.isfinite(row)
    h_obs = whitened[:, observed, :]  # (D, O, K)
    target = (row[observed] - mean[:, observed]).unsqueeze(1)  # (D, 1, O)
    prior = torch.randn(draws, num_samples, size, generator=generator, dtype=sigma.dtype, device=sigma.device)
    gap = target - prior @ h_obs.transpose(-1, -2)  # (D, S, O)
    posterior = prior + gap @ torch.linalg.pinv(h_obs).transpose(-1, -2)  # (D, S, K)
    return (posterior * sigma.unsqueeze(1)).reshape(draws * num_samples, size)


def abduct_with_missing(nodes: list[FittedNode], values: torch.Tensor, num_samples: int,
                        generator: torch.Generator) -> Players:
    """Players whose draws are (posterior draw x noise sample) and whose noise respects every observed value.

    Parameters
    ----------
    nodes : list of FittedNode
        Linear-Gaussian players in topological order, the target last.
    values : torch.Tensor
        Outlier rows ``(R, K)``; NaN marks a missing value (the target must be observed).
    num_samples : int
        Noise samples per posterior draw.
    generator : torch.Generator
        Source of the samples.
    """
    complete = torch.isfinite(values).all(-1)
    repeated = [repeat_draws(node, num_samples) for node in nodes]
    direct = Players.abduct(repeated, torch.where(torch.isfinite(values), values, torch.zeros_like(values)))
    rows = [direct.noise[:, r] if bool(complete[r]) else conditional_noise(nodes, values[r], num_samples, generator)
            for r in range(values.shape[0])]
    return Players(repeated, values, torch.stack(rows, 1))
