"""The benchmark of a cell, from its resolved ``benchmark`` section, by the registry of benchmark families
(:mod:`bayes_rca.harness.families`): a synthetic family or a real data set."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from bayes_rca.errors import BayesRCAError
from bayes_rca.harness.benchmarks import Benchmark
from bayes_rca.harness.families import (
    BENCHMARK_FAMILIES,
    OutlierFamily,
    family_class,
    make_family,
)


def real_families() -> tuple[str, ...]:
    """The registered families that read data from disk."""
    return tuple(name for name, cls in BENCHMARK_FAMILIES.items() if cls.real)


def load_benchmark(bench: dict[str, Any], seed: int) -> Benchmark:
    """The benchmark described by a resolved ``benchmark`` section (its family's
    :meth:`~bayes_rca.harness.families.OutlierFamily.load`).

    Raises
    ------
    BayesRCAError
        For an unknown family, or one that has no outlier benchmark (``distribution_change``: two periods
        instead of outliers; its cells generate :func:`~bayes_rca.harness.change_benchmark.change_case`).
    """
    family = make_family(bench["family"])
    if not isinstance(family, OutlierFamily):
        raise BayesRCAError(f"the {bench['family']} family has no outlier benchmark; its cells run "
                            f"{type(family).__module__}.{type(family).__qualname__}.run_cell")
    return family.load(family.read_options(bench), seed)


def benchmark_problem(bench: dict[str, Any]) -> str | None:
    """Why the ``benchmark`` section cannot be loaded (unknown family, missing data folder or split), or None.

    Cheap: a real data set's scenario folder is read, nothing is fitted.
    """
    try:
        family = make_family(bench["family"])
    except BayesRCAError as error:
        return str(error)
    return family.problem(family.read_options(bench))


def benchmark_label(bench: dict[str, Any], short: bool = False) -> str:
    """The benchmark as ``bayes-rca check`` names it (``short``: as the sweep's progress lines do)."""
    try:
        family = make_family(bench["family"])
    except BayesRCAError:
        return str(bench["family"])
    options = family.read_options(bench)
    return family.short_label(options) if short else family.label(options)


def method_factory(name: str) -> Callable[..., Any]:
    """The ``make_method`` of benchmark family ``name``'s cells (outlier methods for an unknown one)."""
    try:
        return family_class(name)().method_factory()
    except BayesRCAError:
        from bayes_rca.harness.methods import make_method

        return make_method
