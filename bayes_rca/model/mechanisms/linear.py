"""Linear mechanisms (and root nodes, the zero-parent case) with Gaussian or Student-t noise."""

from __future__ import annotations

import copy
from typing import ClassVar

import pyro
import pyro.distributions as dist
import torch

from bayes_rca.model.mechanisms.base import Mechanism, Params
from bayes_rca.model.noise import GaussianNoise, StudentTNoise


def _linear_location(parents: torch.Tensor, params: Params) -> torch.Tensor:
    loc = params["bias"].unsqueeze(-1)
    if parents.shape[-1] == 0:
        return loc.expand(parents.shape[:-1])
    return loc + torch.einsum("dbp,dp->db", parents, params["weight"])


class LinearGaussian(Mechanism):
    """``X = b + w . PA + N``, ``N ~ Normal(0, sigma^2)`` with the conjugate Normal-inverse-gamma prior.

    Prior (standardised units): ``sigma^2 ~ InvGamma(a0, b0)``, ``b | sigma^2 ~ Normal(0, bias_var * sigma^2)``,
    ``w | sigma^2 ~ Normal(0, sigma^2 / ridge)``. The same prior is used by the exact conjugate update and by
    NUTS/SVI, so all three target one posterior.
    """

    name: ClassVar[str] = "linear_gaussian"
    accepts_roots: ClassVar[bool] = False
    conjugate: ClassVar[bool] = True
    linear_gaussian: ClassVar[bool] = True
    linear_in_parents: ClassVar[bool] = True

    def __init__(self, a0: float = 1.0, b0: float = 1e-6, bias_var: float = 10.0, ridge: float = 1e-3) -> None:
        self.a0, self.b0, self.bias_var, self.ridge = a0, b0, bias_var, ridge

    def coefficient_prior(self, num_parents: int, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
        """Prior mean and precision (per unit noise variance) of ``(bias, weight...)``, standardised units.

        ``(bias, w) | sigma^2 ~ Normal(mean, sigma^2 / precision)``, independent; shapes ``(1 + num_parents,)``.
        """
        mean = torch.zeros(1 + num_parents, dtype=dtype)
        precision = torch.tensor([1.0 / self.bias_var] + [self.ridge] * num_parents, dtype=dtype)
        return mean, precision

    def prior(self, num_parents: int, dtype: torch.dtype) -> Params:
        one = torch.ones((), dtype=dtype)
        noise_var = pyro.sample("noise_var", dist.InverseGamma(self.a0 * one, self.b0 * one))
        mean, precision = self.coefficient_prior(num_parents, dtype)
        scale = torch.sqrt(noise_var / precision)
        bias = pyro.sample("bias", dist.Normal(mean[0], scale[0]))
        params = {"noise_var": noise_var, "bias": bias}
        if num_parents:
            params["weight"] = pyro.sample("weight", dist.Normal(mean[1:], scale[1:]).to_event(1))
        return params

    def regressors(self, parents: torch.Tensor) -> torch.Tensor:
        """The columns ``(..., M)`` the weights multiply (the conjugate update's design, after the intercept): the
        standardised parents themselves here, their monomials in
        :class:`~bayes_rca.model.mechanisms.polynomial.PolynomialGaussian`."""
        return parents

    def location(self, parents: torch.Tensor, params: Params) -> torch.Tensor:
        return _linear_location(parents, params)

    def noise(self, params: Params) -> GaussianNoise:
        return GaussianNoise(torch.sqrt(params["noise_var"]).unsqueeze(-1))

    def num_parameters(self, num_parents: int) -> int:
        return num_parents + 2


class PassThroughGaussian(LinearGaussian):
    """``X = b + w . PA + N``, Gaussian noise, with a pass-through prior on the weights in data units.

    A caller's latency is its own time plus the time of the calls it waits for, and its failure rate is its own
    plus that of the calls it depends on: a parent's deviation passes on about one for one, ``w ~ Normal(
    weight_mean, weight_sd^2)`` in child units per parent unit (at a noise variance of the node's variance;
    the prior is conjugate, so it scales with the noise variance). Fitted on normal data in which a parent
    barely varies, a zero-mean vague prior leaves its weight to the noise of a few milliseconds (and to the
    regression dilution of a parent measured with noise), so that a far larger deviation of the parent in an
    incident is not passed on and the caller's own noise takes the blame. Where the parent varied enough, the
    data override the prior. Otherwise as :class:`LinearGaussian` (exact conjugate posterior, analytic game).

    Examples
    --------
    >>> from bayes_rca.model.mechanisms import make_mechanism
    >>> make_mechanism("pass_through_gaussian(weight_sd=0.5)").weight_mean
    1.0
    """

    name: ClassVar[str] = "pass_through_gaussian"

    def __init__(self, weight_mean: float = 1.0, weight_sd: float = 0.5, a0: float = 1.0, b0: float = 1e-6,
                 bias_var: float = 10.0) -> None:
        super().__init__(a0=a0, b0=b0, bias_var=bias_var)
        self.weight_mean, self.weight_sd = weight_mean, weight_sd
        self._ratio: torch.Tensor | None = None

    def bind_parents(self, parent_scale: torch.Tensor, scale: float) -> PassThroughGaussian:
        bound = copy.copy(self)
        bound._ratio = parent_scale.to(torch.float64) / scale  # data-unit weight -> standardised weight
        return bound

    def weight_prior(self, num_parents: int) -> tuple[float, float]:
        """Mean and sd of each weight in data units (child units per parent unit, at the node's variance)."""
        return self.weight_mean, self.weight_sd

    def coefficient_prior(self, num_parents: int, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
        mean, precision = super().coefficient_prior(num_parents, dtype)
        if num_parents:
            if self._ratio is None or len(self._ratio) != num_parents:
                raise RuntimeError("PassThroughGaussian.bind_parents() must run before the mechanism is fitted")
            ratio = self._ratio.to(dtype)
            weight_mean, weight_sd = self.weight_prior(num_parents)
            mean[1:] = weight_mean * ratio
            precision[1:] = 1.0 / (weight_sd * ratio) ** 2
        return mean, precision


class RequestShareGaussian(PassThroughGaussian):
    """``X = b + w . PA + N``, Gaussian noise, the weights being the shares of requests that wait on each parent.

    A caller's success rate falls by the failure rate of a callee times the share of the caller's requests that
    call it (the first-order term of the product of successes). With ``K`` parents, the shares of (own work,
    callee 1, ..., callee K) get the marginal of a flat Dirichlet: ``w ~ Beta(1, K)`` moment-matched by
    ``Normal(1 / (K + 1), K / ((K + 1)^2 (K + 2)))`` in data units, conjugate as in :class:`PassThroughGaussian`.
    Where a parent never moved in the normal data, its share is the prior's; where it did, the data decide.

    Examples
    --------
    >>> import torch
    >>> mechanism = RequestShareGaussian().bind_parents(torch.ones(3), 1.0)
    >>> mean, precision = mechanism.coefficient_prior(3, torch.float64)
    >>> round(float(mean[1]), 4), round(float(precision[1] ** -0.5), 4)
    (0.25, 0.1936)
    """

    name: ClassVar[str] = "request_share_gaussian"

    def __init__(self, a0: float = 1.0, b0: float = 1e-6, bias_var: float = 10.0) -> None:
        super().__init__(a0=a0, b0=b0, bias_var=bias_var)

    def weight_prior(self, num_parents: int) -> tuple[float, float]:
        """Mean and sd of ``Beta(1, K)``, the share of one of ``K`` callees under a flat Dirichlet."""
        k = max(num_parents, 1)
        return 1.0 / (k + 1), (k / ((k + 1) ** 2 * (k + 2))) ** 0.5

    def unseen_weight_prior(self, num_parents: int) -> tuple[float, float]:
        return self.weight_prior(num_parents)


class GaussianRoot(LinearGaussian):
    """A root node ``X = b + N``, ``N ~ Normal(0, sigma^2)`` (the zero-parent linear-Gaussian model)."""

    name: ClassVar[str] = "gaussian_root"
    accepts_parents: ClassVar[bool] = False
    accepts_roots: ClassVar[bool] = True


class LinearStudentT(Mechanism):
    """``X = b + w . PA + N``, ``N ~ StudentT(nu, 0, s)`` with ``nu > 2``, for heavy-tailed noise.

    Prior (standardised units): ``b, w ~ Normal(0, 1)``, ``s ~ HalfNormal(1)``, ``nu - 2 ~ Gamma(2, 0.1)``.
    """

    name: ClassVar[str] = "linear_student_t"
    accepts_roots: ClassVar[bool] = False
    laplace_mh: ClassVar[bool] = True
    linear_in_parents: ClassVar[bool] = True

    def prior(self, num_parents: int, dtype: torch.dtype) -> Params:
        one = torch.ones((), dtype=dtype)
        params = {
            "bias": pyro.sample("bias", dist.Normal(0 * one, one)),
            "noise_scale": pyro.sample("noise_scale", dist.HalfNormal(one)),
            "df_minus_two": pyro.sample("df_minus_two", dist.Gamma(2 * one, 0.1 * one)),
        }
        if num_parents:
            params["weight"] = pyro.sample("weight", dist.Normal(0 * one, one).expand([num_parents]).to_event(1))
        return params

    def location(self, parents: torch.Tensor, params: Params) -> torch.Tensor:
        return _linear_location(parents, params)

    def noise(self, params: Params) -> StudentTNoise:
        return StudentTNoise(2.0 + params["df_minus_two"].unsqueeze(-1), params["noise_scale"].unsqueeze(-1))

    def num_parameters(self, num_parents: int) -> int:
        return num_parents + 3


class StudentTRoot(LinearStudentT):
    """A heavy-tailed root node ``X = b + N``, ``N ~ StudentT(nu, 0, s)``."""

    name: ClassVar[str] = "student_t_root"
    accepts_parents: ClassVar[bool] = False
    accepts_roots: ClassVar[bool] = True
