"""Automatic choice of a mechanism family per node, like DoWhy's ``auto.assign_causal_mechanisms``.

Cheap closed-form screens propose candidates (heavy-tailed residuals propose Student-t noise; a held-out gain
of polynomial ridge regression over linear regression proposes ``polynomial_gaussian``, and one of
random-feature ridge regression over the better of those two ``extrapolating_fourier``: the Fourier regression,
whose noise widens beyond the parents' training range). Every proposed
family is then fitted and the one with the best PSIS-LOO expected log predictive density (arviz) is chosen,
but a more complex family must beat the linear-Gaussian baseline by two standard errors of the difference.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.stats
import torch

from bayes_rca.inference.psis import psis_loo_pointwise
from bayes_rca.model.mechanisms import FourierGaussian, Mechanism, PolynomialGaussian

KURTOSIS_P_VALUE = 1e-3
POINT_MASS_SHARE = 0.1  # no Student-t candidate when this share of the residuals tie: its likelihood grows
# without bound as its scale shrinks onto the tied value (a fit with scale 1e-93 and df 2.002 on a PetShop latency
# at one value in 75% of the rows), so LOO would prefer a degenerate model
KURTOSIS_MIN_EXCESS = 1.0
NONLINEAR_MIN_GAIN = 0.05
NONLINEAR_MIN_T = 3.0
LOO_SE_MULTIPLE = 2.0


@dataclass(frozen=True)
class Candidate:
    """A proposed family for a node and why it was proposed."""

    family: str
    reason: str


def baseline_family(num_parents: int) -> str:
    """The default family: Gaussian root or linear-Gaussian."""
    return "linear_gaussian" if num_parents else "gaussian_root"


def _penalty(design: np.ndarray, linear_columns: int, ridge: float) -> np.ndarray:
    """Ridge penalty on the columns after the first ``linear_columns`` only (a jitter on those).

    Penalising the linear part would bias it; where a node is almost a deterministic function of its parents
    (residual variance 1e-7 of its total in deep linear graphs) that bias alone would make any extra features
    look like a held-out gain.
    """
    weights = np.full(design.shape[1], ridge)
    weights[:linear_columns] = 1e-10 * len(design)
    return np.diag(weights)


def _ridge_residuals(design: np.ndarray, value: np.ndarray) -> np.ndarray:
    gram = design.T @ design + _penalty(design, design.shape[1], 0.0)
    return value - design @ np.linalg.solve(gram, design.T @ value)


def _cross_validated_errors(design: np.ndarray, value: np.ndarray, linear_columns: int, folds: int = 5,
                            ridge: float = 1.0) -> np.ndarray:
    """Squared held-out errors of ridge regression, one per row, by ``folds``-fold cross-validation."""
    errors = np.empty_like(value)
    penalty = _penalty(design, linear_columns, ridge)
    for fold in np.array_split(np.arange(len(value)), folds):
        train = np.setdiff1d(np.arange(len(value)), fold)
        coef = np.linalg.solve(design[train].T @ design[train] + penalty, design[train].T @ value[train])
        errors[fold] = (value[fold] - design[fold] @ coef) ** 2
    return errors


def point_mass_share(residuals: np.ndarray) -> float:
    """The share of the rows at the most frequent residual value (1/n for continuous data).

    >>> point_mass_share(np.array([0.0, 0.0, 1.0, 2.0]))
    0.5
    """
    return float(np.unique(residuals, return_counts=True)[1].max() / len(residuals))


def propose_candidates(parents: torch.Tensor, value: torch.Tensor, constant: bool, seed: int) -> list[Candidate]:
    """Families worth fitting for a node, the baseline first.

    Parameters
    ----------
    parents, value : torch.Tensor
        Standardised parents ``(n, p)`` and values ``(n,)``.
    constant : bool
        Whether the node is constant in the training data (then only the baseline is proposed).
    seed : int
        Seed of the random features used by the nonlinearity screen.
    """
    n, p = parents.shape
    candidates = [Candidate(baseline_family(p), "baseline")]
    if constant:
        return [Candidate(baseline_family(p), "constant in training data")]
    x, y = parents.cpu().numpy(), value.cpu().numpy()
    linear = np.column_stack([np.ones(n), x])
    residuals = _ridge_residuals(linear, y)
    if n >= 20 and point_mass_share(residuals) < POINT_MASS_SHARE:
        excess = float(scipy.stats.kurtosis(residuals))
        if excess > KURTOSIS_MIN_EXCESS and scipy.stats.kurtosistest(residuals).pvalue < KURTOSIS_P_VALUE:
            family = "linear_student_t" if p else "student_t_root"
            candidates.append(Candidate(family, f"residual excess kurtosis {excess:.2f}"))
    candidates += _nonlinear_candidates(parents, linear, y, seed)
    return candidates


def _credible_gain(errors_before: np.ndarray, errors_after: np.ndarray) -> float | None:
    """The share by which the held-out squared error falls, where it falls credibly (by
    :data:`NONLINEAR_MIN_GAIN` and a t statistic of :data:`NONLINEAR_MIN_T`), else None."""
    gain = 1.0 - errors_after.mean() / errors_before.mean()
    diff = errors_before - errors_after
    t_stat = diff.mean() / (diff.std(ddof=1) / np.sqrt(len(diff)) + 1e-300)
    return gain if gain > NONLINEAR_MIN_GAIN and t_stat > NONLINEAR_MIN_T else None


def _nonlinear_candidates(parents: torch.Tensor, linear: np.ndarray, y: np.ndarray, seed: int) -> list[Candidate]:
    """Nonlinear families whose closed-form screen beats the best simpler design by held-out squared error:
    ``polynomial_gaussian`` (exact posterior) against linear regression, then ``extrapolating_fourier`` (the
    shrinkage grid) against the better of the two. The Fourier family is the extrapolating one: within the
    training range it is ``fourier_gaussian`` (the same fit and LOO), and beyond it its noise widens instead of
    repeating the periodic features' wiggles."""
    n, p = parents.shape
    if not p:
        return []
    columns, candidates = linear.shape[1], []
    best = _cross_validated_errors(linear, y, columns)
    polynomial = PolynomialGaussian()
    if n >= 2 * polynomial.num_parameters(p):
        design = np.column_stack([np.ones(n), polynomial.regressors(parents.cpu()).numpy()])
        errors = _cross_validated_errors(design, y, columns)
        gain = _credible_gain(best, errors)
        if gain is not None:
            candidates.append(Candidate("polynomial_gaussian", f"held-out squared error {100 * gain:.0f}% below "
                                        "linear"))
            best = errors
    fourier = FourierGaussian()
    if n >= 2 * fourier.num_parameters(p):
        fourier.setup(p, seed)
        design = np.column_stack([linear, fourier.features(parents.cpu()).numpy()])
        gain = _credible_gain(best, _cross_validated_errors(design, y, columns))
        if gain is not None:
            simpler = "the polynomial" if candidates else "linear"
            candidates.append(Candidate("extrapolating_fourier", f"held-out squared error {100 * gain:.0f}% below "
                                        f"{simpler}"))
    return candidates


def pointwise_elpd(mechanism: Mechanism, parents: torch.Tensor, value: torch.Tensor,
                   params: dict[str, torch.Tensor]) -> np.ndarray:
    """PSIS-LOO pointwise expected log predictive densities ``(n,)`` (:func:`bayes_rca.inference.psis.psis_loo_pointwise`:
    arviz's estimator, vectorised over the observations)."""
    log_lik = mechanism.log_likelihood(parents, value, params).detach().cpu().numpy()
    return psis_loo_pointwise(log_lik)[0]


def choose_family(elpd: dict[str, np.ndarray], baseline: str) -> tuple[str, str]:
    """Pick the family with the best LOO, unless it beats the baseline by fewer than two standard errors."""
    best = max(elpd, key=lambda family: elpd[family].sum())
    if best == baseline:
        return baseline, "best LOO" if len(elpd) > 1 else "baseline"
    diff = elpd[best] - elpd[baseline]
    gain, se = diff.sum(), np.sqrt(len(diff)) * diff.std(ddof=1)
    if gain > LOO_SE_MULTIPLE * se:
        return best, f"LOO gain {gain:.1f} +- {se:.1f} over {baseline}"
    return baseline, f"{best} LOO gain {gain:.1f} +- {se:.1f} not credible"
