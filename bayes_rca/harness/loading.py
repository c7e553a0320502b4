"""The benchmark of a cell, from its ``benchmark`` section: a synthetic family or a real data set."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bayes_rca.datasets.petshop import load_scenario
from bayes_rca.errors import BayesRCAError
from bayes_rca.harness.benchmarks import FAMILY_NODES, Benchmark, make_benchmark
from bayes_rca.harness.change_benchmark import CHANGE_FAMILY, change_benchmark_problem
from bayes_rca.harness.real_data import petshop_benchmark

REAL_FAMILIES = ("petshop",)
FAMILIES = (*FAMILY_NODES, CHANGE_FAMILY, *REAL_FAMILIES)


def load_benchmark(bench: dict[str, Any], seed: int) -> Benchmark:
    """The benchmark described by a resolved ``benchmark`` section (see :class:`~bayes_rca.harness.config.BenchmarkConfig`).

    Raises
    ------
    BayesRCAError
        For the ``distribution_change`` family, which has two periods instead of outliers (its cells generate
        :func:`~bayes_rca.harness.change_benchmark.change_case`).
    """
    if bench["family"] == CHANGE_FAMILY:
        raise BayesRCAError(f"the {CHANGE_FAMILY} family has no outlier benchmark; its cells run "
                            "bayes_rca.harness.change_cell.run_change_cell")
    if bench["family"] == "petshop":
        return petshop_benchmark(bench["data_root"], bench["scenario"], bench["split"], bench["metric"],
                                 bench["statistic"], bench["min_observed"], bench["specificity"])
    return make_benchmark(bench["family"], seed, bench["num_rows"], bench["num_outliers"], bench["num_nodes"],
                          bench["min_ancestors"])


def benchmark_problem(bench: dict[str, Any]) -> str | None:
    """Why the ``benchmark`` section cannot be loaded (unknown family, missing data folder or split), or None.

    Cheap: a real data set's scenario folder is read, nothing is fitted.
    """
    family = bench["family"]
    if family not in FAMILIES:
        return f"unknown benchmark family {family!r}; known: {', '.join(FAMILIES)}"
    if family == CHANGE_FAMILY:
        return change_benchmark_problem(bench)
    if family in REAL_FAMILIES:
        folder = Path(bench["data_root"]) / bench["scenario"]
        try:
            scenario = load_scenario(folder)
            scenario.select(bench["split"])
        except BayesRCAError as error:
            return f"{error} (benchmark.data_root is read from the working directory {Path.cwd()})"
    return None
