"""The common variance factor of the robust game, sampled for Monte Carlo games.

The robust game (``tail_df``) redraws a coalition's noise as ``sqrt(lambda)`` times fresh noise, one
``lambda ~ InvGamma(tail_df / 2, tail_df / 2)`` shared by the coalition (a multivariate-t noise vector:
:class:`~bayes_rca.attribution.linear_game.LinearGaussianGame` has it in closed form). A far outlier is reached
mostly through large factors, which the prior itself rarely draws, so the factor is importance-sampled.
"""

from __future__ import annotations

import math

import torch

from bayes_rca.model.noise import _chi2_sample


def sample_common_scale(tail_df: float, reach: torch.Tensor, num_samples: int, generator: torch.Generator,
                        from_prior: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """``log lambda (D, S)`` and its weight ``log p(lambda) - log q(lambda) (D, S)``, per posterior draw.

    The samples where ``from_prior (S,)`` is True (default: the even ones; give half of each batch of the
    caller's standard error) draw ``lambda`` from its prior ``InvGamma(a, a)``, ``a = tail_df / 2``; the others draw
    ``u = log lambda`` uniform on ``[0, U]`` or, beyond ``U``, exponential with rate ``a / 2`` (a tail heavier
    than the prior's, so that the weight stays bounded however large the factor a coalition with a small share
    of the variance needs), ``U = log (4 reach^2)`` (at least ``log 4``) for ``reach (D,)`` the largest abducted
    noise in its sds. The weight is the balance heuristic of both, at most 2.

    Examples
    --------
    >>> import math, torch
    >>> reach = torch.tensor([30.0], dtype=torch.float64)  # one posterior draw
    >>> log_lambda, log_weight = sample_common_scale(2.0, reach, 100_000, torch.Generator().manual_seed(0))
    >>> log_lambda.shape, bool((log_weight <= math.log(2.0) + 1e-12).all())
    (torch.Size([1, 100000]), True)
    >>> round(float(log_weight.exp().mean()), 2)  # the weights average to one
    1.0
    """
    draws, dtype, device = reach.shape[0], reach.dtype, reach.device
    a = 0.5 * tail_df
    rate = 0.5 * a
    top = torch.log((2.0 * reach) ** 2).clamp_min(math.log(4.0)).unsqueeze(-1)  # U (D, 1)
    tail_share = 1.0 / (1.0 + rate * top)  # mass of the exponential tail in the stretched component
    shape = (draws, num_samples)
    prior = _chi2_sample(torch.full(shape, tail_df, dtype=dtype, device=device), generator)
    prior_draw = math.log(tail_df) - torch.log(prior)  # lambda = tail_df / chi2(tail_df)
    coin = torch.rand(shape, generator=generator, dtype=dtype, device=device)
    uniform = torch.rand(shape, generator=generator, dtype=dtype, device=device) * top
    beyond = top - torch.log(torch.rand(shape, generator=generator, dtype=dtype, device=device)) / rate
    stretched = torch.where(coin < tail_share, beyond, uniform)
    if from_prior is None:
        from_prior = torch.arange(num_samples, device=device) % 2 == 0
    log_lambda = torch.where(from_prior.unsqueeze(0), prior_draw, stretched)
    log_prior = a * math.log(a) - math.lgamma(a) - a * log_lambda - a * torch.exp(-log_lambda)  # density of u
    log_stretched = torch.where(log_lambda < 0, -math.inf,
                                torch.log(rate * tail_share) - rate * (log_lambda - top).clamp_min(0.0))
    return log_lambda, log_prior - (torch.logaddexp(log_prior, log_stretched) - math.log(2.0))
