"""Executors: run cells in this process, in a local process pool, or on a Ray cluster.

Each yields results as cells finish, so that the driver logs every finished cell at once (one writer to the
tracking store) and a crash loses no finished result.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor, as_completed
from typing import Any

from bayes_rca.errors import ConfigError
from bayes_rca.harness.cell import CellResult, run_cell
from bayes_rca.harness.config import EXECUTORS, ExecutionConfig, local_ray_problem


def run_sequential(cells: list[dict[str, Any]], started: Callable[[dict], None]) -> Iterator[CellResult]:
    """One cell after the other in this process; ``started`` is called before each."""
    for cell in cells:
        started(cell)
        yield run_cell(cell)


def run_processes(cells: list[dict[str, Any]], workers: int) -> Iterator[CellResult]:
    """Cells in a pool of ``workers`` fresh processes (spawned: no state shared with the driver)."""
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(workers, mp_context=context) as pool:
        futures = [pool.submit(run_cell, cell) for cell in cells]
        for future in as_completed(futures):
            yield future.result()


def run_ray(cells: list[dict[str, Any]], address: str | None, workers: int) -> Iterator[CellResult]:
    """Cells as Ray tasks on the cluster at ``address``, or on the Ray this process has already started.

    No local instance is started (:func:`~bayes_rca.harness.config.local_ray_problem` says why).
    """
    problem = local_ray_problem(ExecutionConfig("ray", workers, address))
    if problem:
        raise ConfigError(problem)
    try:
        import ray
    except ImportError:
        raise ConfigError("execution.executor 'ray' needs the ray package (pip install 'bayes_rca[ray]')") from None
    if not ray.is_initialized():
        ray.init(address=address, log_to_driver=False)
    remote = ray.remote(num_cpus=1)(run_cell)
    pending = [remote.remote(cell) for cell in cells]
    while pending:
        done, pending = ray.wait(pending, num_returns=1)
        yield ray.get(done[0])


def execute(cells: list[dict[str, Any]], executor: str, workers: int, ray_address: str | None,
            started: Callable[[dict], None]) -> Iterator[CellResult]:
    """Run ``cells`` with the named executor, yielding results as they finish."""
    if executor == "sequential":
        return run_sequential(cells, started)
    if executor == "processes":
        return run_processes(cells, workers)
    if executor == "ray":
        return run_ray(cells, ray_address, workers)
    raise ConfigError(f"unknown execution.executor {executor!r}; use one of {', '.join(EXECUTORS)}")
