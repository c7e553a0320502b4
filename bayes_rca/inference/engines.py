"""Posterior inference for one node's mechanism: exact conjugate draws, Metropolis-Hastings from a Laplace fit,
draws on a grid of a shrinkage regression's two scales, SVI (autoguide) or NUTS.

All of them take the same Pyro model (:meth:`Mechanism.model`) and return posterior draws of its parameters as a
dict of tensors with a leading ``chains * draws`` dimension, plus diagnostics.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pyro
import torch
from pyro.infer import MCMC, NUTS, SVI, JitTrace_ELBO
from pyro.infer.autoguide import AutoMultivariateNormal, init_to_median
from pyro.optim import ClippedAdam

from bayes_rca.errors import MechanismError
from bayes_rca.inference.conjugate import sample_conjugate
from bayes_rca.inference.diagnostics import max_rhat
from bayes_rca.inference.laplace_mh import MH_CHAINS, sample_student_t
from bayes_rca.inference.shrinkage_grid import sample_shrinkage_regression
from bayes_rca.model.mechanisms.base import Mechanism, Params

Method = Literal["conjugate", "laplace_mh", "shrinkage_grid", "svi", "nuts"]


@dataclass
class InferenceOptions:
    """Settings of the inference engines.

    Attributes
    ----------
    svi_steps, svi_lr : SVI optimisation steps and learning rate (ClippedAdam, decaying 10x over the run).
    warmup_steps : NUTS warm-up iterations per chain.
    target_accept_prob : NUTS step-size adaptation target.
    """

    svi_steps: int = 1000
    svi_lr: float = 0.05
    warmup_steps: int = 300
    target_accept_prob: float = 0.85


@dataclass
class PosteriorFit:
    """Posterior draws of one node's parameters and how they were obtained."""

    params: Params
    method: Method
    num_chains: int
    diagnostics: dict[str, float] = field(default_factory=dict)


def _stack(draws: list[dict[str, torch.Tensor]]) -> Params:
    return {name: torch.stack([d[name] for d in draws]).detach() for name in draws[0]}


def fit_svi(mechanism: Mechanism, parents: torch.Tensor, value: torch.Tensor, num_draws: int,
            options: InferenceOptions) -> PosteriorFit:
    """Fit a full-rank Gaussian autoguide by SVI and draw from it."""
    pyro.clear_param_store()  # one node at a time per process; nothing from an earlier fit may leak in
    guide = AutoMultivariateNormal(mechanism.model, init_loc_fn=init_to_median(num_samples=15), init_scale=0.05)
    optim = ClippedAdam({"lr": options.svi_lr, "lrd": 0.1 ** (1.0 / options.svi_steps), "clip_norm": 10.0})
    svi = SVI(mechanism.model, guide, optim, JitTrace_ELBO(ignore_jit_warnings=True))
    losses = np.array([svi.step(parents, value) for _ in range(options.svi_steps)])
    with torch.no_grad():
        draws = [guide(parents, value) for _ in range(num_draws)]
    pyro.clear_param_store()
    return PosteriorFit(_stack(draws), "svi", 1, _elbo_trend(losses))


def _elbo_trend(losses: np.ndarray) -> dict[str, float]:
    """The final ELBO and how much the loss still fell between the last two tenths of the steps.

    ``elbo_progress`` is that fall as a share of the whole fall since the first tenth (plus one nat), and
    ``elbo_progress_z`` the fall in standard errors of the steps' noise (infinite for windows of one step).
    """
    window = max(len(losses) // 10, 1)
    start, head, tail = losses[:window], losses[-2 * window:-window], losses[-window:]
    fall = float(head.mean() - tail.mean())
    noise = math.sqrt((head.var() + tail.var()) / window)
    return {"final_elbo": float(-tail.mean()),
            "elbo_relative_change": abs(fall) / (abs(float(tail.mean())) + 1.0),
            "elbo_progress": fall / (max(float(start.mean() - tail.mean()), 0.0) + 1.0),
            "elbo_progress_z": fall / noise if noise > 0 else math.copysign(math.inf, fall)}


def fit_nuts(mechanism: Mechanism, parents: torch.Tensor, value: torch.Tensor, num_draws: int, num_chains: int,
             options: InferenceOptions) -> PosteriorFit:
    """Sample the posterior with NUTS, ``num_draws`` draws in total split over ``num_chains`` sequential chains."""
    per_chain = num_draws // num_chains
    chains, divergences = [], 0
    for _ in range(num_chains):
        kernel = NUTS(mechanism.model, target_accept_prob=options.target_accept_prob, init_strategy=init_to_median)
        mcmc = MCMC(kernel, num_samples=per_chain, warmup_steps=options.warmup_steps, disable_progbar=True)
        mcmc.run(parents, value)
        chains.append(mcmc.get_samples())
        divergences += int(sum(len(v) for v in mcmc.diagnostics()["divergences"].values()))
    params = {name: torch.cat([c[name] for c in chains]).detach() for name in chains[0]}
    diagnostics = {"divergences": float(divergences)}
    if num_chains > 1:
        diagnostics["max_rhat"] = max_rhat(params, num_chains)
    return PosteriorFit(params, "nuts", num_chains, diagnostics)


def fit_posterior(mechanism: Mechanism, parents: torch.Tensor, value: torch.Tensor, method: Method,
                  num_draws: int, num_chains: int = 1, options: InferenceOptions | None = None) -> PosteriorFit:
    """Posterior draws of ``mechanism``'s parameters given standardised ``parents (n, p)`` and ``value (n,)``.

    Parameters
    ----------
    method : {"conjugate", "laplace_mh", "shrinkage_grid", "svi", "nuts"}
        ``"conjugate"`` is exact and needs a conjugate family; ``"laplace_mh"`` is independence
        Metropolis-Hastings from a Laplace fit, for the linear Student-t families
        (:mod:`bayes_rca.inference.laplace_mh`); ``"shrinkage_grid"`` is exact given the two scales of a
        shrinkage regression, which it integrates on a grid (:mod:`bayes_rca.inference.shrinkage_grid`).
    num_draws : int
        Total draws (all chains together); must be divisible by ``num_chains``.
    """
    options = options or InferenceOptions()
    if num_draws % num_chains:
        raise MechanismError(f"num_draws={num_draws} must be divisible by num_chains={num_chains}")
    if method == "conjugate":
        if not mechanism.conjugate:
            raise MechanismError(f"{mechanism!r} has no conjugate posterior; use 'svi' or 'nuts'")
        return PosteriorFit(sample_conjugate(mechanism, parents, value, num_draws), "conjugate", num_chains)
    if method == "laplace_mh":
        if not mechanism.laplace_mh:
            raise MechanismError(f"{mechanism!r} has no Laplace-proposal sampler; use 'svi' or 'nuts'")
        params, diagnostics = sample_student_t(parents, value, num_draws, max(num_chains, MH_CHAINS))
        return PosteriorFit(params, "laplace_mh", num_chains, diagnostics)
    if method == "shrinkage_grid":
        if not mechanism.shrinkage_grid:
            raise MechanismError(f"{mechanism!r} is not a shrinkage regression; use 'svi' or 'nuts'")
        design, shrunk = mechanism.shrinkage_design(parents)
        draws, diagnostics = sample_shrinkage_regression(design, shrunk, value, num_draws)
        return PosteriorFit(mechanism.shrinkage_params(draws, parents.shape[-1]), "shrinkage_grid", num_chains,
                            diagnostics)
    if method == "svi":
        return fit_svi(mechanism, parents, value, num_draws, options)
    if method == "nuts":
        return fit_nuts(mechanism, parents, value, num_draws, num_chains, options)
    raise MechanismError(f"unknown inference method {method!r}; use 'conjugate', 'laplace_mh', 'shrinkage_grid', "
                         "'svi' or 'nuts'")
