"""Distribution-change methods compared by the harness's ``distribution_change`` family, and their registry.

``make_change_method("dowhy_change_bootstrap", num_bootstrap_resamples=5)`` builds a method from its registered
name and options (the ``methods`` section of a config whose ``benchmark.family`` is ``distribution_change``).
DoWhy is imported only when a DoWhy method runs.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from bayes_rca.errors import BayesRCAError
from bayes_rca.harness.change_methods.base import ChangeAttribution, ChangeMethod
from bayes_rca.harness.change_methods.bayes_rca_change import BayesRCAChange
from bayes_rca.harness.change_methods.dowhy_change import DoWhyChange
from bayes_rca.harness.change_methods.dowhy_change_bootstrap import DoWhyChangeBootstrap
from bayes_rca.harness.change_methods.residual_test import ResidualKS

CHANGE_METHODS: dict[str, Callable[..., ChangeMethod]] = {
    "bayes_rca_change": BayesRCAChange,
    "dowhy_change": DoWhyChange,
    "dowhy_change_bootstrap": DoWhyChangeBootstrap,
    "ks_residual": ResidualKS,
}


def make_change_method(name: str, **kwargs: Any) -> ChangeMethod:
    """The change method registered as ``name``, built with ``kwargs``.

    Raises
    ------
    BayesRCAError
        If ``name`` is not registered (the known names are listed; an outlier method is said to be one) or an
        option is not accepted.
    """
    try:
        factory = CHANGE_METHODS[name]
    except (KeyError, TypeError):
        from bayes_rca.harness.methods import METHODS

        what = " (an outlier-attribution method)" if isinstance(name, str) and name in METHODS else ""
        raise BayesRCAError(f"unknown distribution-change method {name!r}{what}; the distribution_change family "
                            f"takes: {', '.join(sorted(CHANGE_METHODS))}") from None
    try:
        return factory(**kwargs)
    except (TypeError, ValueError) as error:
        if isinstance(error, TypeError) and "argument" not in str(error):
            raise
        raise BayesRCAError(f"bad options {kwargs!r} for method {name!r}: {error}") from None


__all__ = [
    "CHANGE_METHODS",
    "BayesRCAChange",
    "ChangeAttribution",
    "ChangeMethod",
    "DoWhyChange",
    "DoWhyChangeBootstrap",
    "ResidualKS",
    "make_change_method",
]
