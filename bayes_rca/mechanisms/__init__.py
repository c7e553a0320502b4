"""Bayesian mechanism families and their registry."""

from __future__ import annotations

from bayes_rca.errors import MechanismError
from bayes_rca.mechanisms.base import Mechanism, Params
from bayes_rca.mechanisms.fourier import FourierGaussian
from bayes_rca.mechanisms.interval import (
    CensoredGaussian,
    PoissonCount,
    ProbitThreshold,
)
from bayes_rca.mechanisms.linear import (
    GaussianRoot,
    LinearGaussian,
    LinearStudentT,
    StudentTRoot,
)

FAMILIES: dict[str, type[Mechanism]] = {
    cls.name: cls for cls in (GaussianRoot, StudentTRoot, LinearGaussian, LinearStudentT, FourierGaussian,
                              ProbitThreshold, PoissonCount, CensoredGaussian)
}


def make_mechanism(spec: str | Mechanism, node: object = None) -> Mechanism:
    """Return a fresh mechanism for a family name, or ``spec`` itself if it already is one."""
    if isinstance(spec, Mechanism):
        return spec
    try:
        return FAMILIES[spec]()
    except KeyError:
        where = f" for node {node!r}" if node is not None else ""
        raise MechanismError(f"unknown mechanism family {spec!r}{where}; known: {', '.join(FAMILIES)}") from None


__all__ = ["FAMILIES", "CensoredGaussian", "FourierGaussian", "GaussianRoot", "LinearGaussian", "LinearStudentT",
           "Mechanism", "Params", "PoissonCount", "ProbitThreshold", "StudentTRoot", "make_mechanism"]
