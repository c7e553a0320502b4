"""Exact posterior draws for linear-Gaussian mechanisms under their Normal-inverse-gamma prior."""

from __future__ import annotations

import torch

from bayes_rca.model.mechanisms.base import Params
from bayes_rca.model.mechanisms.linear import LinearGaussian


def sample_conjugate(mechanism: LinearGaussian, parents: torch.Tensor, value: torch.Tensor,
                     num_draws: int) -> Params:
    """Draw ``num_draws`` exact posterior samples of a :class:`LinearGaussian` mechanism.

    Parameters
    ----------
    mechanism : LinearGaussian
        Supplies the prior hyperparameters.
    parents : torch.Tensor
        Standardised parents ``(n, p)`` (the weights multiply ``mechanism.regressors(parents)``).
    value : torch.Tensor
        Standardised node values ``(n,)``.
    num_draws : int
        Number of posterior draws; uses torch's global generator (seeded by the caller).

    Returns
    -------
    dict
        ``noise_var (D,)``, ``bias (D,)`` and, with parents, ``weight (D, p)``.
    """
    regressors = mechanism.regressors(parents)
    n, p = regressors.shape
    design = torch.cat([torch.ones(n, 1, dtype=value.dtype), regressors], dim=1)
    prior_mean, prior_precision = mechanism.coefficient_prior(p, value.dtype)
    precision = torch.diag(prior_precision) + design.T @ design
    chol = torch.linalg.cholesky(precision)
    pulled = prior_precision * prior_mean
    mean = torch.cholesky_solve((design.T @ value + pulled).unsqueeze(-1), chol).squeeze(-1)
    shape = mechanism.a0 + 0.5 * n
    residual = (value @ value + prior_mean @ pulled - mean @ (precision @ mean)).clamp_min(0.0)
    rate = mechanism.b0 + 0.5 * residual
    noise_var = rate / torch.distributions.Gamma(shape, torch.ones((), dtype=value.dtype)).sample((num_draws,))
    # beta | sigma^2 ~ Normal(mean, sigma^2 precision^{-1}); with precision = L L^T, beta = mean + sigma L^{-T} z.
    standard = torch.randn(num_draws, p + 1, dtype=value.dtype)
    offsets = torch.linalg.solve_triangular(chol.T, standard.T, upper=True).T
    coefs = mean + torch.sqrt(noise_var).unsqueeze(-1) * offsets
    params = {"noise_var": noise_var, "bias": coefs[:, 0]}
    if p:
        params["weight"] = coefs[:, 1:]
    return params
