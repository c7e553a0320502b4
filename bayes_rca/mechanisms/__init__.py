"""Bayesian mechanism families and their registry."""

from __future__ import annotations

import inspect
import re

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


_SPEC = re.compile(r"^\s*(\w+)\s*(?:\((.*)\))?\s*$")


def _option(text: str, spec: str) -> tuple[str, int | float | None]:
    key, sep, value = (part.strip() for part in text.partition("="))
    if not sep or not key.isidentifier():
        raise MechanismError(f"mechanism {spec!r}: options are written key=value, got {text.strip()!r}")
    if value.lower() == "none":
        return key, None
    for number in (int, float):
        try:
            return key, number(value)
        except ValueError:
            continue
    raise MechanismError(f"mechanism {spec!r}: option {key} must be a number or None, got {value!r}")


def make_mechanism(spec: str | Mechanism, node: object = None) -> Mechanism:
    """A fresh mechanism for a family name, ``"family(key=value, ...)"`` with numeric options (e.g.
    ``"censored_gaussian(upper=30)"``), or ``spec`` itself if it already is one."""
    if isinstance(spec, Mechanism):
        return spec
    where = f" for node {node!r}" if node is not None else ""
    match = _SPEC.match(spec) if isinstance(spec, str) else None
    if match is None or match.group(1) not in FAMILIES:
        raise MechanismError(f"unknown mechanism family {spec!r}{where}; known: {', '.join(FAMILIES)}")
    family = FAMILIES[match.group(1)]
    arguments = match.group(2)
    options = dict(_option(text, spec) for text in arguments.split(",")) if arguments and arguments.strip() else {}
    accepted = [name for name in inspect.signature(family.__init__).parameters if name != "self"]
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        raise MechanismError(f"mechanism {spec!r}{where}: unknown option(s) {', '.join(unknown)}; "
                             f"{family.name} accepts {', '.join(accepted) or 'none'}")
    return family(**options)


__all__ = ["FAMILIES", "CensoredGaussian", "FourierGaussian", "GaussianRoot", "LinearGaussian", "LinearStudentT",
           "Mechanism", "Params", "PoissonCount", "ProbitThreshold", "StudentTRoot", "make_mechanism"]
