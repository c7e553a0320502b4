"""The interface every benchmark family of the harness implements (one small class per file), and its registry.

A family names the ``benchmark.family`` of a config. It declares its config keys as a pydantic model
(:class:`BenchmarkOptions` subclass, ``options``; unknown keys and wrong types are refused when the config loads)
and runs a cell: an :class:`OutlierFamily` builds a :class:`~bayes_rca.harness.benchmarks.Benchmark` (a causal
graph, normal data, outliers with their ground truth) that :func:`bayes_rca.harness.cell.run_cell` scores; a
family with another kind of case (``distribution_change``) writes ``run_cell`` itself.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import BaseModel, ConfigDict

from bayes_rca.errors import BayesRCAError
from bayes_rca.registry import register

if TYPE_CHECKING:
    from bayes_rca.harness.benchmarks import Benchmark
    from bayes_rca.harness.cell import CellResult

DEFAULT_FAMILY = "icml2022"
BENCHMARK_FAMILIES: dict[str, type[BenchmarkFamily]] = {}  # benchmark.family -> its class
PRE_REGISTRY_FAMILIES = ("distribution_change", "petshop", "icml2022")
"""The families whose keys made the one flat ``benchmark`` schema before the registry (issue 17); see
:attr:`BenchmarkFamily.keeps_pre_registry_keys`."""


class BenchmarkOptions(BaseModel):
    """The keys of a ``benchmark`` section: ``family`` and, in a subclass per family, its own keys (no others)."""

    model_config = ConfigDict(extra="forbid", strict=True)

    family: str = DEFAULT_FAMILY


class UnknownFamilyOptions(BenchmarkOptions):
    """The section of a family that is not registered: it loads (``bayes-rca check`` then reports every problem
    of the config at once) and its cells fail with the known families listed."""

    model_config = ConfigDict(extra="allow", strict=True)


class BenchmarkFamily(ABC):
    """A benchmark family: its config keys (``options``) and how one cell of it runs."""

    name: ClassVar[str]
    options: ClassVar[type[BenchmarkOptions]] = BenchmarkOptions
    """The pydantic model of the family's ``benchmark`` keys (defaults filled in when a config is resolved)."""
    real: ClassVar[bool] = False
    """Whether the family reads data from disk (real data) rather than generating it."""
    keeps_pre_registry_keys: ClassVar[bool] = False
    """Whether a resolved section also carries, at their defaults, the keys of the families of
    :data:`PRE_REGISTRY_FAMILIES` that are not its own: the shipped families set it, so that their cells resolve
    to the mapping of the flat schema they had before the registry, and keep their hashes (resume, the paper's
    one run per ``cell_hash``) and logged params. A new family leaves it False."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        """Register a subclass that sets its own ``name`` in :data:`BENCHMARK_FAMILIES`."""
        super().__init_subclass__(**kwargs)
        name = cls.__dict__.get("name")
        if name is not None:
            register(BENCHMARK_FAMILIES, name, cls, cls, "benchmark family")

    def read_options(self, bench: Mapping[str, Any]) -> BenchmarkOptions:
        """The typed options of a resolved ``benchmark`` section (keys that are not the family's are left out:
        a resolved section may carry the pre-registry keys)."""
        fields = self.options.model_fields
        return self.options.model_validate({key: value for key, value in bench.items() if key in fields})

    def resolve(self, options: BenchmarkOptions) -> dict[str, Any]:
        """The resolved ``benchmark`` section of a cell: every key of the family at its value."""
        padded: dict[str, Any] = {}
        if self.keeps_pre_registry_keys:
            for name in PRE_REGISTRY_FAMILIES:
                padded.update(BENCHMARK_FAMILIES[name].options().model_dump())
        return {**padded, **options.model_dump()}

    def problem(self, options: BenchmarkOptions) -> str | None:
        """Why the benchmark cannot be built (cheap: nothing is fitted), or None."""
        return None

    def label(self, options: BenchmarkOptions) -> str:
        """The benchmark as ``bayes-rca check`` names it."""
        return options.family

    def short_label(self, options: BenchmarkOptions) -> str:
        """The benchmark as the sweep's progress lines name it."""
        return options.family

    @abstractmethod
    def method_factory(self) -> Callable[..., Any]:
        """``make_method``-like: builds the cell's method from its registered name and options."""

    @abstractmethod
    def headline(self, metrics: Mapping[str, float]) -> str:
        """A finished cell's headline metrics, for the sweep's progress lines."""

    @abstractmethod
    def run_cell(self, cell: dict[str, Any]) -> CellResult:
        """Run one resolved cell; failures are captured in ``CellResult.error`` (a pure function of ``cell``)."""


class OutlierFamily(BenchmarkFamily):
    """A family of outliers with ground truth: ``load`` builds the benchmark, :mod:`bayes_rca.harness.cell` fits
    the method and scores its answers (:data:`bayes_rca.harness.metrics.OUTLIER_METRICS`)."""

    @abstractmethod
    def load(self, options: Any, seed: int) -> Benchmark:
        """The benchmark of ``options`` (an instance of ``options``) and ``seed``."""

    def method_factory(self) -> Callable[..., Any]:
        from bayes_rca.harness.methods import make_method

        return make_method

    def headline(self, metrics: Mapping[str, float]) -> str:
        nan = float("nan")
        return f"ndcg@1 {metrics.get('ndcg_at_1', nan):.3f}, top-1 recall {metrics.get('top1_recall', nan):.3f}"

    def run_cell(self, cell: dict[str, Any]) -> CellResult:
        from bayes_rca.harness.cell import run_outlier_cell

        return run_outlier_cell(cell, self)


def family_class(name: Any) -> type[BenchmarkFamily]:
    """The registered class of ``benchmark.family`` ``name``.

    Raises
    ------
    BayesRCAError
        ``name`` is not registered (the known names are listed).
    """
    try:
        return BENCHMARK_FAMILIES[name]
    except (KeyError, TypeError):
        raise BayesRCAError(f"unknown benchmark family {name!r}; known: {', '.join(BENCHMARK_FAMILIES)}") from None


def make_family(name: Any) -> BenchmarkFamily:
    """The family registered as ``name`` (see :func:`family_class`)."""
    return family_class(name)()


def options_model(name: Any) -> type[BenchmarkOptions]:
    """The options model of ``benchmark.family`` ``name``; :class:`UnknownFamilyOptions` if it is not registered."""
    cls = BENCHMARK_FAMILIES.get(name) if isinstance(name, str) else None
    return UnknownFamilyOptions if cls is None else cls.options
