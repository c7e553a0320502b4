"""Convergence diagnostics of posterior draws (via arviz) and the test of whether a node's fit converged."""

from __future__ import annotations

import math
from collections.abc import Mapping

import arviz as az
import numpy as np
import torch

MAX_RHAT = 1.01
"""Largest acceptable split R-hat (Vehtari et al. 2021)."""
MAX_ELBO_PROGRESS = 0.01
"""Largest acceptable share of the SVI loss's whole fall that happens in the last tenth of the steps ..."""
MAX_ELBO_PROGRESS_Z = 2.0
"""... unless that fall is within this many standard errors of the steps' noise."""
MAX_GRID_EDGE_MASS = 0.01
"""Largest acceptable posterior mass on the outermost cells of a shrinkage-grid fit (the box cut the posterior)."""
MAX_GRID_CELL_MASS = 0.2
"""Largest acceptable posterior mass of one cell of a shrinkage-grid fit (the grid too coarse for the posterior)."""


def max_rhat(params: dict[str, torch.Tensor], num_chains: int) -> float:
    """Largest rank-normalised split R-hat over all scalar parameters, draws laid out chain by chain."""
    posterior = {name: value.reshape(num_chains, -1, *value.shape[1:]).cpu().numpy() for name, value in params.items()}
    rhat = az.rhat(az.from_dict(posterior=posterior))
    return float(np.nanmax([float(np.nanmax(rhat[name].values)) for name in rhat.data_vars]))


def min_ess(params: dict[str, torch.Tensor], num_chains: int) -> float:
    """Smallest bulk effective sample size over all scalar parameters, draws laid out chain by chain."""
    posterior = {name: value.reshape(num_chains, -1, *value.shape[1:]).cpu().numpy() for name, value in params.items()}
    ess = az.ess(az.from_dict(posterior=posterior))
    return float(np.nanmin([float(np.nanmin(ess[name].values)) for name in ess.data_vars]))


def rhat_limit(draws_per_chain: float | None) -> float:
    """The largest acceptable R-hat for chains of ``draws_per_chain`` (effective) draws (:data:`MAX_RHAT` when unknown).

    Four chains of 100 independent draws already exceed 1.01 in some of six parameters half of the time (their
    99.9 % quantile is 1.04), so short chains are held to ``1 + 0.4 / sqrt(draws_per_chain)``.
    """
    if draws_per_chain is None:
        return MAX_RHAT
    return max(MAX_RHAT, 1.0 + 0.4 / math.sqrt(draws_per_chain))


def convergence_problems(diagnostics: Mapping[str, float]) -> list[str]:
    """What in a node fit's diagnostics says that it has not converged, with the figures; empty if nothing.

    Parameters
    ----------
    diagnostics : mapping
        :attr:`PosteriorFit.diagnostics`: ``divergences`` and ``max_rhat`` (NUTS; Laplace-proposal MH
        with ``draws_per_chain``), ``final_elbo``,
        ``elbo_progress`` and ``elbo_progress_z`` (SVI), ``grid_edge_mass`` and ``grid_cell_mass`` (shrinkage
        grid); conjugate fits have none.
    """
    problems = []
    divergences = diagnostics.get("divergences", 0.0)
    if divergences > 0:
        problems.append(f"{divergences:g} divergent NUTS transition(s)")
    rhat = diagnostics.get("max_rhat")
    limit = rhat_limit(diagnostics.get("draws_per_chain"))
    if rhat is not None and not rhat <= limit:
        problems.append(f"R-hat {rhat:.3f} > {limit:g}")
    elbo = diagnostics.get("final_elbo")
    if elbo is not None:
        progress, z = diagnostics.get("elbo_progress", math.nan), diagnostics.get("elbo_progress_z", math.nan)
        if not (math.isfinite(elbo) and (progress <= MAX_ELBO_PROGRESS or z <= MAX_ELBO_PROGRESS_Z)):
            problems.append(f"SVI unconverged: final ELBO {elbo:.4g}, and the loss still fell by {progress:.1%} of "
                            f"its whole fall in the last tenth of the steps ({z:.1f} noise standard errors; at most "
                            f"{MAX_ELBO_PROGRESS:.0%} or {MAX_ELBO_PROGRESS_Z:g} expected)")
    edge, cell = diagnostics.get("grid_edge_mass", 0.0), diagnostics.get("grid_cell_mass", 0.0)
    if not edge <= MAX_GRID_EDGE_MASS:
        problems.append(f"{edge:.1%} of the shrinkage grid's posterior mass on its edge (at most "
                        f"{MAX_GRID_EDGE_MASS:.0%} expected)")
    if not cell <= MAX_GRID_CELL_MASS:
        problems.append(f"{cell:.1%} of the shrinkage grid's posterior mass in one cell (at most "
                        f"{MAX_GRID_CELL_MASS:.0%} expected)")
    return problems
