"""Bayesian mechanism families and their registry."""

from __future__ import annotations

import inspect
import re

import torch

from bayes_rca.errors import MechanismError
from bayes_rca.model.mechanisms.base import REGISTRY, Mechanism, Params
from bayes_rca.model.mechanisms.fourier import ExtrapolatingFourier, FourierGaussian
from bayes_rca.model.mechanisms.interval import (
    CensoredGaussian,
    PoissonCount,
    ProbitThreshold,
)
from bayes_rca.model.mechanisms.linear import (
    GaussianRoot,
    LinearGaussian,
    LinearStudentT,
    PassThroughGaussian,
    RequestShareGaussian,
    StudentTRoot,
)
from bayes_rca.model.mechanisms.polynomial import PolynomialGaussian
from bayes_rca.registry import import_submodules

import_submodules(__name__, __path__)  # a family written in a new file here is registered
FAMILIES: dict[str, type[Mechanism]] = REGISTRY  # one registry: every Mechanism subclass that sets ``name``


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


def is_binary(values: torch.Tensor) -> bool:
    """Whether a node's values are all 0 or 1, both present (the automatic assignment gives it ``probit_threshold``)."""
    return bool(((values == 0) | (values == 1)).all()) and values.unique().numel() == 2


def bind_to_data(mechanism: Mechanism, node: object, values: torch.Tensor, loc: float, scale: float) -> Mechanism:
    """``mechanism`` bound to a node's training ``values`` (data units, standardised by ``loc``, ``scale``).

    Raises
    ------
    MechanismError
        Naming the node, where the mechanism cannot produce a training value (a 0.5 at a 0/1 node) or cannot
        be bound (a censored node whose training values are all equal, without a bound given).
    """
    try:
        mechanism = mechanism.bind(values, loc, scale)
    except MechanismError as error:
        raise MechanismError(f"node {node!r}: {error}") from None
    problem = mechanism.value_problem(values)
    if problem:
        index, reason = problem
        raise MechanismError(f"node {node!r} has a {mechanism.name} mechanism, but its training value "
                             f"{float(values[index])!r} {reason}")
    return mechanism


__all__ = ["FAMILIES", "CensoredGaussian", "ExtrapolatingFourier", "FourierGaussian", "GaussianRoot", "LinearGaussian", "LinearStudentT",
           "Mechanism", "PassThroughGaussian", "Params", "PolynomialGaussian", "RequestShareGaussian", "PoissonCount", "ProbitThreshold", "StudentTRoot", "bind_to_data", "is_binary",
           "make_mechanism"]
