"""``run_experiment``: every cell of a config's grid, skipping finished ones, logged to MLflow as it finishes."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd

from bayes_rca.errors import BayesRCAError
from bayes_rca.harness.cell import CellResult
from bayes_rca.harness.compare import compare, write_comparison
from bayes_rca.harness.config import config_hash, expand_cells, load_config
from bayes_rca.harness.executors import execute
from bayes_rca.harness.families import make_family
from bayes_rca.harness.loading import benchmark_label
from bayes_rca.harness.tracking import SweepTracker


class SweepFailed(BayesRCAError):
    """Every cell a sweep ran failed; ``parent_id`` and ``table`` are those :func:`run_experiment` returns."""

    def __init__(self, message: str, parent_id: str, table: pd.DataFrame) -> None:
        super().__init__(message)
        self.parent_id, self.table = parent_id, table


def run_experiment(path: str | Path, overrides: list[str] | None = None, output: str | Path = "outputs",
                   report: Callable[[str], None] = print) -> tuple[str, pd.DataFrame]:
    """Run (or resume) the sweep of the config at ``path``; return the parent run id and the comparison table.

    Finished cells (same resolved config hash, status FINISHED under the same sweep) are skipped; a cell left
    RUNNING by a killed sweep is marked FAILED and redone.

    Raises
    ------
    SweepFailed
        Every cell that ran failed (after logging them and closing the parent run as FAILED).
    """
    config, raw = load_config(path, overrides)
    cells = expand_cells(raw, str(path))
    sweep_config = {k: v for k, v in raw.items() if k not in ("execution", "tracking")}
    tracker = SweepTracker(config.tracking.experiment or config.name, sweep_config, config.tracking.uri)
    done = tracker.finished_hashes()
    todo = [cell for cell in cells if config_hash(cell) not in done]
    report(f"sweep {config.name!r}: {len(cells)} cells, {len(cells) - len(todo)} already finished, "
           f"{len(todo)} to run ({config.execution.executor}); parent run {tracker.parent_id}")
    running: dict[str, str] = {}

    def started(cell: dict[str, Any]) -> None:
        running[config_hash(cell)] = tracker.start_cell(cell)

    failures, first_error = 0, ""
    try:
        for number, result in enumerate(execute(todo, config.execution.executor, config.execution.workers,
                                                config.execution.ray_address, started), start=1):
            cell_key = config_hash(result.cell)
            run_id = running.pop(cell_key, None) or tracker.start_cell(result.cell)
            tracker.finish_cell(run_id, result)
            failures += result.error is not None
            if result.error and not first_error:
                first_error = result.error.strip().splitlines()[-1]
            status = "FAILED: " + result.error.strip().splitlines()[-1] if result.error else _status(result)
            report(f"[{number}/{len(todo)}] {result.cell['method']} seed={result.cell['seed']} "
                   f"{benchmark_label(result.cell['benchmark'], short=True)}: {status}")
    except BaseException:  # the executor itself failed (or was interrupted): close the parent run as FAILED
        tracker.finish_sweep(None, complete=False)
        raise
    table = compare(tracker.parent_id, config.tracking.uri)
    tracker.finish_sweep(table, complete=failures == 0)
    if len(table):
        write_comparison(table, Path(output) / config.name)
    if todo and failures == len(todo):
        raise SweepFailed(f"sweep {config.name!r}: all {len(todo)} cell(s) run FAILED (parent run "
                          f"{tracker.parent_id}); first error: {first_error}", tracker.parent_id, table)
    return tracker.parent_id, table


def _status(result: CellResult) -> str:
    """A finished cell's headline metrics, as its benchmark family gives them
    (:meth:`~bayes_rca.harness.families.BenchmarkFamily.headline`)."""
    return make_family(result.cell["benchmark"]["family"]).headline(result.metrics)
