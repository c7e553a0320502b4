"""Root-cause methods compared by the harness, one file each, and the registry that names them.

``make_method("circa", threshold=2.0)`` builds a method from its registered name and options (the ``methods``
section of an experiment config). DoWhy is imported only when a DoWhy method is fitted.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from bayes_rca.errors import BayesRCAError
from bayes_rca.harness.methods.base import METHOD_REGISTRY, Attribution, RCAMethod
from bayes_rca.harness.methods.bayes_rca_method import BayesRCA
from bayes_rca.harness.methods.circa import CIRCA
from bayes_rca.harness.methods.dowhy_bootstrap import DoWhyBootstrap
from bayes_rca.harness.methods.dowhy_point import DoWhyPoint
from bayes_rca.harness.methods.mad_traversal import MADTraversal
from bayes_rca.harness.methods.naive import Naive
from bayes_rca.harness.methods.random_ranking import RandomRanking
from bayes_rca.harness.methods.score_ordering import ScoreOrdering
from bayes_rca.harness.methods.smooth_traversal import SmoothTraversal
from bayes_rca.harness.methods.traversal import Traversal
from bayes_rca.registry import import_submodules

import_submodules(__name__, __path__)  # a method written in a new file here is registered
METHODS: dict[str, Callable[..., RCAMethod]] = METHOD_REGISTRY  # every RCAMethod subclass that sets ``name``


def make_method(name: str, **kwargs: Any) -> RCAMethod:
    """The method registered as ``name``, built with ``kwargs`` (on top of the variant's preset options).

    Raises
    ------
    BayesRCAError
        If ``name`` is not registered (the known names are listed) or an option is not accepted.
    """
    try:
        factory = METHODS[name]
    except (KeyError, TypeError):
        from bayes_rca.harness.change_methods import CHANGE_METHODS

        what = " (a distribution-change method: benchmark.family distribution_change)" \
            if isinstance(name, str) and name in CHANGE_METHODS else ""
        raise BayesRCAError(f"unknown method {name!r}{what}; known methods: {', '.join(sorted(METHODS))}") from None
    try:
        return factory(**kwargs)
    except TypeError as error:
        if "argument" not in str(error):
            raise
        raise BayesRCAError(f"bad options {kwargs!r} for method {name!r}: {error}") from None


__all__ = [
    "CIRCA",
    "METHODS",
    "Attribution",
    "BayesRCA",
    "DoWhyBootstrap",
    "DoWhyPoint",
    "MADTraversal",
    "Naive",
    "RCAMethod",
    "RandomRanking",
    "ScoreOrdering",
    "SmoothTraversal",
    "Traversal",
    "make_method",
]
