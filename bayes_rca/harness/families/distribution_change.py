"""The ``distribution_change`` family: two periods with injected mechanism changes
(:mod:`bayes_rca.harness.change_benchmark`), its cells :mod:`bayes_rca.harness.change_cell`, its methods
:mod:`bayes_rca.harness.change_methods`."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, ClassVar

from pydantic import Field

from bayes_rca.harness.change_benchmark import (
    CHANGE_FAMILY,
    CHANGE_KINDS,
    change_benchmark_problem,
)
from bayes_rca.harness.families.base import BenchmarkFamily, BenchmarkOptions


class ChangeOptions(BenchmarkOptions):
    """``num_nodes`` (null: 8), ``num_rows`` rows per period, a target with at least ``min_ancestors``
    ancestors, ``specificity`` (also a no-change case), ``functional`` (the change attributed), ``max_changes``
    (1..max_changes mechanisms change) and ``change_kinds`` (of ``coefficient``, ``noise_scale``,
    ``root_shift``; checked with the functional by :func:`~bayes_rca.harness.change_benchmark.check_change_settings`)."""

    num_nodes: int | None = None
    num_rows: int = 2000
    min_ancestors: int = 10
    specificity: bool = True
    functional: str = "mean"
    max_changes: int = 3
    change_kinds: list[str] = Field(default_factory=lambda: list(CHANGE_KINDS))


class DistributionChange(BenchmarkFamily):
    """Which mechanisms changed between two periods, scored against the exact contributions."""

    name: ClassVar[str] = CHANGE_FAMILY
    options: ClassVar[type[BenchmarkOptions]] = ChangeOptions
    keeps_pre_registry_keys: ClassVar[bool] = True

    def problem(self, options: ChangeOptions) -> str | None:
        return change_benchmark_problem(options.model_dump())

    def label(self, options: ChangeOptions) -> str:
        return f"{options.family} {options.functional}"

    short_label = label

    def method_factory(self) -> Callable[..., Any]:
        from bayes_rca.harness.change_methods import make_change_method

        return make_change_method

    def headline(self, metrics: Mapping[str, float]) -> str:
        """Top-1 recall of the changed mechanisms, 90% coverage, specificity and seconds."""
        nan = float("nan")
        return (f"top-1 {metrics.get('top1_recall', nan):.3f}, coverage {metrics.get('coverage_90', nan):.3f}, "
                f"specificity {metrics.get('specificity', nan):.0f}, {metrics.get('attribute_seconds', nan):.1f} s")

    def run_cell(self, cell: dict[str, Any]):
        from bayes_rca.harness.change_cell import (
            run_change_cell,  # it imports bayes_rca.harness.cell
        )

        return run_change_cell(cell)
