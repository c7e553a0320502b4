"""Exceptions raised by bayes_rca.

Every error names the node, column, draw or file at fault, so that a user never has to read a stack trace
from deep inside torch or pyro to learn what is wrong with their input.
"""

from __future__ import annotations


class BayesRCAError(ValueError):
    """Base class of all errors raised for bad input or failed checks."""


class GraphError(BayesRCAError):
    """The causal graph is malformed: cyclic, unknown node, unreadable file."""


class DataError(BayesRCAError):
    """A data frame does not fit the graph: missing, non-numeric, all-NaN or duplicate columns."""


class MissingDataError(DataError):
    """Graph nodes lack a column or values (``nodes`` names them): what ``--missing impute|latent`` can handle."""

    def __init__(self, message: str, nodes: tuple = ()) -> None:
        super().__init__(message)
        self.nodes = tuple(nodes)


class MechanismError(BayesRCAError):
    """A mechanism family cannot be used for a node (unknown name, too few rows for its parameters)."""


class VerificationError(BayesRCAError):
    """An attribution result violates a Shapley axiom (efficiency, null player) or is not finite."""


class ConfigError(BayesRCAError):
    """An experiment configuration is malformed: unknown key, wrong type, unreadable file."""


class BayesRCAWarning(UserWarning):
    """Input that is used, but deserves attention: a constant column, an unconverged fit, a lone target."""


def check_choice(what: str, value: object, choices: tuple[str, ...], error: type[BayesRCAError] = BayesRCAError) -> None:
    """Raise ``error`` unless ``value`` is one of ``choices``, naming the option and listing the choices.

    Examples
    --------
    >>> check_choice("estimator", "exact", ("auto", "analytic"))
    Traceback (most recent call last):
    ...
    bayes_rca.errors.BayesRCAError: unknown estimator 'exact'; choose one of auto, analytic
    """
    if value not in choices:
        raise error(f"unknown {what} {value!r}; choose one of {', '.join(choices)}")
