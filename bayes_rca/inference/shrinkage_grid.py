"""Posterior draws of a Gaussian regression with a shrunk block of coefficients, on a grid of its two scales.

The model (:class:`~bayes_rca.model.mechanisms.FourierGaussian`, standardised units)::

    y = A_0 beta_0 + tau A_1 z + eps,   beta_0, z ~ Normal(0, I),   tau, sigma ~ HalfNormal(1),
    eps ~ Normal(0, sigma^2 I)

is linear-Gaussian in ``beta = (beta_0, z)`` given the two scales ``(tau, sigma)``: the marginal likelihood
``p(y | tau, sigma)`` and the Gaussian ``p(beta | y, tau, sigma)`` are closed forms of the Gram matrix of
``A = [A_0, A_1]``, computed once, and of one eigen-decomposition per ``tau`` (every ``sigma`` is then free).
The two scales are integrated on a grid in ``(log tau, log sigma)``: a coarse grid over a wide box, then fine
grids, each over the box where the one before has mass. A draw picks a fine cell with its posterior mass, a point
uniformly within it, and ``beta`` from its exact Gaussian at that point. No optimisation and no convergence to
wait for; the only approximation is the flat density of the two scales within a fine cell (``FINE_CELLS`` per
axis over a box a few posterior sds wide), and the diagnostics say whether the box held the posterior.
"""

from __future__ import annotations

import math

import torch

from bayes_rca.errors import MechanismError

COARSE_CELLS = 48
"""Grid points per axis of the coarse pass over the wide box."""
FINE_CELLS = 64
"""Grid points per axis of each fine pass (the last one is where the draws come from)."""
FINE_PASSES = 2
"""Fine passes, each over the box where the one before has mass (the first spans a few coarse cells, the second
a few posterior sds)."""
_LOG_BOX = ((-12.0, 4.0), (-14.0, 3.0))  # (log tau, log sigma) of the coarse pass, standardised units
MIN_NOISE_SD = math.exp(_LOG_BOX[1][0])
"""Smallest noise sd (standardised units) the grid can hold: a node closer to an exact function is flagged."""
_KEEP_NATS = 30.0  # the fine box spans the coarse points within this many nats of the best, plus one coarse cell


def _spectra(gram: torch.Tensor, cross: torch.Tensor, shrunk: torch.Tensor,
             tau: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per ``tau (T,)``: the eigen-decomposition ``D G D = U diag(lambda) U'`` and ``c = U' D h``.

    With them every ``sigma`` is cheap: ``P = I + D G D / sigma^2 = U diag(1 + lambda / sigma^2) U'``.
    Returns ``lambda (T, m)`` (clamped at 0), ``U (T, m, m)`` and ``c (T, m)``.
    """
    scale = torch.where(shrunk, tau.unsqueeze(-1), torch.ones_like(tau).unsqueeze(-1))  # (T, m): diag(D)
    eigenvalues, vectors = torch.linalg.eigh(scale.unsqueeze(-1) * gram * scale.unsqueeze(-2))
    return eigenvalues.clamp_min(0.0), vectors, (vectors.transpose(-1, -2) @ (scale * cross).unsqueeze(-1))[..., 0]


def _log_posterior(eigenvalues: torch.Tensor, projected: torch.Tensor, square: torch.Tensor, n: int,
                   log_tau: torch.Tensor, log_sigma: torch.Tensor) -> torch.Tensor:
    """Unnormalised ``log p(log tau, log sigma | y)``, broadcasting ``log_tau`` and ``log_sigma`` with the
    leading dimensions of the spectra ``(..., m)`` of :func:`_spectra`.

    ``log p(y | tau, sigma) = -n/2 log(2 pi sigma^2) - 1/2 sum log(1 + lambda / sigma^2)
    - 1/2 (y'y - sum c^2 / (sigma^2 + lambda)) / sigma^2``; the HalfNormal priors in log coordinates add
    ``-t^2 / 2 + log t`` for each scale ``t``.
    """
    var = (2.0 * log_sigma).exp()
    ratio = eigenvalues / var.unsqueeze(-1)
    log_det = torch.log1p(ratio).sum(-1)
    quadratic = (square - (projected**2 / (var.unsqueeze(-1) + eigenvalues)).sum(-1)) / var
    log_lik = -0.5 * n * (math.log(2 * math.pi) + 2.0 * log_sigma) - 0.5 * log_det - 0.5 * quadratic
    tau = log_tau.exp()
    return log_lik - 0.5 * tau**2 + log_tau - 0.5 * var + log_sigma


def _coefficient_posterior(gram: torch.Tensor, cross: torch.Tensor, shrunk: torch.Tensor, tau: torch.Tensor,
                           var: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean ``(T, m)`` and a square root ``R (T, m, m)`` of the covariance (``R R' = P^-1``) of ``beta`` given
    ``y`` and the scales ``tau, sigma^2 = var`` ``(T,)``: ``Normal(P^-1 D h / sigma^2, P^-1)``, diagonal in the
    eigenbasis of ``D G D``: mean ``U c / (sigma^2 + lambda)``, ``R = U diag(1 + lambda / sigma^2)^(-1/2)``."""
    eigenvalues, vectors, projected = _spectra(gram, cross, shrunk, tau)
    mean = (vectors @ (projected / (var.unsqueeze(-1) + eigenvalues)).unsqueeze(-1))[..., 0]
    root = vectors / torch.sqrt(1.0 + eigenvalues / var.unsqueeze(-1)).unsqueeze(-2)
    return mean, root


def _axes(box: tuple[tuple[float, float], tuple[float, float]], cells: int,
          dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor, tuple[float, float]]:
    """Cell centres of ``box`` on each axis, ``log tau (cells,)`` and ``log sigma (cells,)``, and the widths."""
    edges = [torch.linspace(lo, hi, cells + 1, dtype=dtype) for lo, hi in box]
    centres = [0.5 * (e[1:] + e[:-1]) for e in edges]
    return centres[0], centres[1], (float(edges[0][1] - edges[0][0]), float(edges[1][1] - edges[1][0]))


def sample_shrinkage_regression(design: torch.Tensor, shrunk: torch.Tensor, value: torch.Tensor,
                                num_draws: int) -> tuple[dict[str, torch.Tensor], dict[str, float]]:
    """Draw ``(beta_0, z, tau, sigma)`` of the shrunk-block regression (module docstring) given its data.

    Parameters
    ----------
    design : torch.Tensor
        ``A (n, m)``: the columns of ``beta_0`` and of the shrunk block.
    shrunk : torch.Tensor
        Boolean ``(m,)``: which columns are multiplied by ``tau``.
    value : torch.Tensor
        ``y (n,)``.
    num_draws : int
        Number of draws; uses torch's global generator (seeded by the caller).

    Returns
    -------
    draws : dict
        ``coefficients (D, m)`` (``z`` on the shrunk columns, unscaled), ``shrinkage (D,)``, ``noise_scale (D,)``.
    diagnostics : dict
        ``grid_edge_mass``: the posterior mass on the fine grid's outermost cells (near 0 when the box holds the
        posterior), and ``grid_cell_mass``: the largest mass of a single fine cell.

    Examples
    --------
    >>> import torch
    >>> torch.manual_seed(0)  # doctest: +ELLIPSIS
    <torch._C.Generator object at ...>
    >>> x = torch.linspace(-2, 2, 400, dtype=torch.float64)
    >>> design = torch.stack([torch.ones_like(x), x, torch.cos(3 * x)], -1)
    >>> y = 0.5 * x + 0.8 * torch.cos(3 * x) + 0.1 * torch.randn(400, dtype=torch.float64)
    >>> draws, _ = sample_shrinkage_regression(design, torch.tensor([False, False, True]), y, 200)
    >>> round(float(draws["noise_scale"].mean()), 2)
    0.1
    >>> round(float((draws["shrinkage"] * draws["coefficients"][:, 2]).mean()), 1)  # tau z: the cosine's weight
    0.8
    """
    n, dtype = design.shape[0], design.dtype
    gram, cross, square = design.T @ design, design.T @ value, value @ value

    def evaluate(box: tuple, cells: int) -> tuple:
        log_tau, log_sigma, widths = _axes(box, cells, dtype)
        eigenvalues, _, projected = _spectra(gram, cross, shrunk, log_tau.exp())
        log_post = _log_posterior(eigenvalues[:, None], projected[:, None], square, n, log_tau[:, None],
                                  log_sigma[None, :])  # (tau, sigma)
        if not bool(torch.isfinite(log_post).any()):
            raise MechanismError("the shrinkage-regression posterior is not finite anywhere on its grid "
                                 "(non-finite data?)")
        log_tau, log_sigma = torch.meshgrid(log_tau, log_sigma, indexing="ij")
        return log_tau.reshape(-1), log_sigma.reshape(-1), widths, log_post.reshape(-1)

    log_tau, log_sigma, widths, log_post = evaluate(_LOG_BOX, COARSE_CELLS)
    for _ in range(FINE_PASSES):
        kept = log_post >= log_post.max() - _KEEP_NATS
        box = ((float(log_tau[kept].min()) - widths[0], float(log_tau[kept].max()) + widths[0]),
               (float(log_sigma[kept].min()) - widths[1], float(log_sigma[kept].max()) + widths[1]))
        log_tau, log_sigma, widths, log_post = evaluate(box, FINE_CELLS)
    mass = torch.softmax(log_post, 0)
    cell = torch.multinomial(mass, num_draws, replacement=True)
    jitter = torch.rand(num_draws, 2, dtype=dtype) - 0.5
    tau = torch.exp(log_tau[cell] + jitter[:, 0] * widths[0])
    var = torch.exp(2.0 * (log_sigma[cell] + jitter[:, 1] * widths[1]))
    mean, root = _coefficient_posterior(gram, cross, shrunk, tau, var)  # at the draw's own scales
    standard = torch.randn(num_draws, design.shape[1], 1, dtype=dtype)
    coefficients = mean + (root @ standard)[..., 0]
    edge = mass.reshape(FINE_CELLS, FINE_CELLS)
    edge_mass = float(edge.sum() - edge[1:-1, 1:-1].sum())
    draws = {"coefficients": coefficients, "shrinkage": tau, "noise_scale": var.sqrt()}
    return draws, {"grid_edge_mass": edge_mass, "grid_cell_mass": float(mass.max())}
