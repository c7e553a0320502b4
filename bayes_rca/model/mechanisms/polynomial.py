"""A nonlinear mechanism with an exact posterior: Bayesian polynomial regression on the standardised parents."""

from __future__ import annotations

from itertools import combinations_with_replacement
from typing import ClassVar

import torch

from bayes_rca.errors import MechanismError
from bayes_rca.model.mechanisms.base import Params
from bayes_rca.model.mechanisms.linear import LinearGaussian, _linear_location


def monomial_exponents(num_parents: int, degree: int) -> list[tuple[int, ...]]:
    """The monomials of degree 1 to ``degree`` in ``num_parents`` variables, as tuples of variable indices.

    >>> monomial_exponents(2, 2)
    [(0,), (1,), (0, 0), (0, 1), (1, 1)]
    """
    return [term for order in range(1, degree + 1)
            for term in combinations_with_replacement(range(num_parents), order)]


class PolynomialGaussian(LinearGaussian):
    """``X = b + sum_m w_m prod_{i in m} PA_i + N``, ``N ~ Normal(0, sigma^2)``: every monomial of the
    standardised parents up to ``degree`` (interactions included), under :class:`LinearGaussian`'s conjugate
    Normal-inverse-gamma prior, so its posterior draws are exact (no SVI).

    A polynomial extrapolates as a polynomial: a response such as ``(X1 + X2)^2`` keeps its shape far outside the
    training range, where random Fourier features (:class:`~bayes_rca.model.mechanisms.FourierGaussian`) fall back to
    their linear part. The counterfactual game is the Monte Carlo one (the mechanism is not linear).

    Examples
    --------
    >>> mechanism = PolynomialGaussian(degree=2)
    >>> mechanism.regressors(torch.tensor([[2.0, 3.0]])).tolist()  # x1, x2, x1^2, x1 x2, x2^2
    [[2.0, 3.0, 4.0, 6.0, 9.0]]
    >>> mechanism.num_parameters(2)  # bias, 5 weights, noise variance
    7
    """

    name: ClassVar[str] = "polynomial_gaussian"
    linear_gaussian: ClassVar[bool] = False
    linear_in_parents: ClassVar[bool] = False

    def __init__(self, degree: int = 2, a0: float = 1.0, b0: float = 1e-6, bias_var: float = 10.0,
                 ridge: float = 1e-3) -> None:
        super().__init__(a0=a0, b0=b0, bias_var=bias_var, ridge=ridge)
        self.degree = degree

    def setup(self, num_parents: int, seed: int) -> None:
        if isinstance(self.degree, bool) or not isinstance(self.degree, int) or self.degree < 1:
            raise MechanismError(f"polynomial_gaussian: degree must be a positive integer, got {self.degree!r}")

    def num_regressors(self, num_parents: int) -> int:
        return len(monomial_exponents(num_parents, int(self.degree)))

    def regressors(self, parents: torch.Tensor) -> torch.Tensor:
        """The monomials ``(..., M)`` of standardised parents ``(..., p)``."""
        terms = monomial_exponents(parents.shape[-1], int(self.degree))
        if not terms:
            return parents
        return torch.stack([parents[..., list(term)].prod(-1) for term in terms], dim=-1)

    def prior(self, num_parents: int, dtype: torch.dtype) -> Params:
        return super().prior(self.num_regressors(num_parents), dtype)

    def location(self, parents: torch.Tensor, params: Params) -> torch.Tensor:
        return _linear_location(self.regressors(parents), params)

    def num_parameters(self, num_parents: int) -> int:
        return self.num_regressors(num_parents) + 2

    def __repr__(self) -> str:
        return f"{type(self).__name__}(degree={self.degree})"
