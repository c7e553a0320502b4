"""Convergence diagnostics of posterior draws (via arviz)."""

from __future__ import annotations

import arviz as az
import numpy as np
import torch


def max_rhat(params: dict[str, torch.Tensor], num_chains: int) -> float:
    """Largest rank-normalised split R-hat over all scalar parameters, draws laid out chain by chain."""
    posterior = {name: value.reshape(num_chains, -1, *value.shape[1:]).cpu().numpy() for name, value in params.items()}
    rhat = az.rhat(az.from_dict(posterior=posterior))
    return float(np.nanmax([float(np.nanmax(rhat[name].values)) for name in rhat.data_vars]))
