"""The ``petshop`` family: the PetShop microservice data set (:mod:`bayes_rca.harness.real_data`), one benchmark
per scenario x split x metric x statistic of a data root, with the authors' specificity checks."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from bayes_rca.data.datasets.petshop import load_scenario
from bayes_rca.errors import BayesRCAError
from bayes_rca.harness.benchmarks import Benchmark
from bayes_rca.harness.families.base import BenchmarkOptions, OutlierFamily
from bayes_rca.harness.real_data import petshop_benchmark


class PetShopOptions(BenchmarkOptions):
    """The cases of :func:`~bayes_rca.harness.real_data.petshop_benchmark`; ``data_root`` is relative to the
    working directory."""

    data_root: str = "../shared/data/petshop"
    scenario: str = "low_traffic"
    split: str = "train"
    metric: str = "latency"
    statistic: str = "Average"
    min_observed: int = 10
    specificity: bool = True


class PetShop(OutlierFamily):
    """The PetShop data set (real data)."""

    name: ClassVar[str] = "petshop"
    options: ClassVar[type[BenchmarkOptions]] = PetShopOptions
    real: ClassVar[bool] = True
    keeps_pre_registry_keys: ClassVar[bool] = True

    def load(self, options: PetShopOptions, seed: int) -> Benchmark:
        return petshop_benchmark(options.data_root, options.scenario, options.split, options.metric,
                                 options.statistic, options.min_observed, options.specificity)

    def problem(self, options: PetShopOptions) -> str | None:
        """A missing data folder or split (the scenario folder is read, nothing is fitted)."""
        try:
            load_scenario(Path(options.data_root) / options.scenario).select(options.split)
        except BayesRCAError as error:
            return f"{error} (benchmark.data_root is read from the working directory {Path.cwd()})"
        return None

    def label(self, options: PetShopOptions) -> str:
        return f"{options.family} {options.scenario}/{options.split} {options.metric} {options.statistic}"
