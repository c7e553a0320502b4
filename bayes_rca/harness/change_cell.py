"""One cell of the ``distribution_change`` family: generate the two periods, run the change method, score it.

The cell's method (a :mod:`bayes_rca.harness.change_methods` name) is asked about the change case (old vs new
period) and, with ``benchmark.specificity``, about the no-change case (two samples of the old period). Scored
against the exact contributions at the true parameters (:class:`~bayes_rca.harness.change_benchmark.ChangeCase`),
by :data:`bayes_rca.harness.metrics.CHANGE_METRICS`:

* ``top1_recall``, ``top3_recall``: the share of the relevant changed mechanisms among the method's top 1 / 3
  (out of at most 1 / 3, :func:`~bayes_rca.harness.metrics.set_recall_at_k`; left out when no changed
  mechanism is relevant, e.g. a changed noise scale under the mean);
* ``coverage_90``, ``interval_width_90``: central 90% intervals of the draws against the exact values, over the
  players (methods with draws);
* ``contribution_mae``: mean absolute error of the point contributions over the players (methods with
  contributions);
* ``named_recall``: share of the relevant mechanisms the decision rule names; ``false_alarms``: named
  mechanisms that did not change;
* ``specificity``: 1 when nothing is named on the no-change case (0 when the method fails there);
* ``attribute_seconds``: the change case's call (both fits and the attribution), ``specificity_seconds``.

A method that fails on the change case is recorded (``failed_cases`` = 1, no top-k credit, the error in
``cases.csv``) and does not fail the cell, as in :mod:`bayes_rca.harness.cell`. Like
:func:`~bayes_rca.harness.cell.run_cell`, a pure function of the resolved cell mapping.
"""

from __future__ import annotations

import inspect
import json
import time
import traceback
from collections.abc import Hashable
from typing import Any

import numpy as np
import pandas as pd
import yaml

from bayes_rca.harness.cell import CellResult
from bayes_rca.harness.change_benchmark import ChangeCase, change_case
from bayes_rca.harness.change_methods import (
    ChangeAttribution,
    ChangeMethod,
    make_change_method,
)
from bayes_rca.harness.metrics import CHANGE_METRICS, ChangeScoring


def change_method_for(cell: dict[str, Any]) -> ChangeMethod:
    """The cell's change method with its options, seeded with the cell's seed unless an option sets one."""
    options = dict(cell["method_options"])
    probe = make_change_method(cell["method"], **options)
    if "seed" not in options and "seed" in inspect.signature(type(probe).__init__).parameters:
        return make_change_method(cell["method"], **options, seed=cell["seed"])
    return probe


def score_change(answer: ChangeAttribution, players: list[Hashable], truth: pd.Series, relevant: list[Hashable],
                 changed: list[Hashable]) -> dict[str, float]:
    """The metrics of one answer about a change case (see the module docstring).

    Parameters
    ----------
    answer : ChangeAttribution
        The method's answer.
    players : list
        The mechanisms that can be blamed (the target and its ancestors).
    truth : pandas.Series
        The exact contributions, at least over the players.
    relevant : list
        The changed mechanisms whose exact contribution reaches the threshold.
    changed : list
        Every changed mechanism.
    """
    attribution = answer.as_attribution()
    if answer.draws is not None:
        attribution.draws = answer.draws.reindex(columns=players, fill_value=0.0)
    scoring = ChangeScoring(answer.scores.astype(float).fillna(-np.inf), answer.contributions, attribution,
                            set(answer.named), players, truth.reindex(players).astype(float), relevant, changed)
    return {name: metric(scoring) for name, metric in CHANGE_METRICS.items()}


def _contributions_table(answer: ChangeAttribution, case: ChangeCase) -> pd.DataFrame:
    """Per player: the exact contribution, the method's point, score, 90% interval, change kind, named."""
    players = case.players
    interval = answer.as_attribution().interval(0.9)
    low, high = (None, None) if interval is None else (side.reindex(players) for side in interval)
    return pd.DataFrame({
        "node": [str(node) for node in players], "truth": case.truth.reindex(players).to_numpy(),
        "point": np.nan if answer.contributions is None else answer.contributions.reindex(players).to_numpy(),
        "score": answer.scores.reindex(players).to_numpy(dtype=float),
        "low_90": np.nan if low is None else low.to_numpy(), "high_90": np.nan if high is None else high.to_numpy(),
        "change": [case.changes.get(node, "") for node in players],
        "relevant": [float(node in case.relevant) for node in players],
        "named": [float(node in answer.named) for node in players]})


def _ask(method: ChangeMethod, case: ChangeCase, new: pd.DataFrame) -> tuple[ChangeAttribution | None, str, float]:
    """The method's answer about ``case.old_data`` vs ``new`` (None and the error when it fails) and seconds."""
    start = time.perf_counter()
    try:
        answer = method.attribute_change(case.graph, case.target, case.old_data, new, case.functional)
        error = ""
    except Exception as failure:  # recorded as a failed case
        answer, error = None, f"{type(failure).__name__}: {failure}"
    return answer, error, time.perf_counter() - start


def _case_row(name: str, answer: ChangeAttribution | None, error: str, seconds: float) -> dict[str, Any]:
    top = "" if answer is None else ",".join(map(str, answer.scores.sort_values(ascending=False).index[:3]))
    named = "" if answer is None else ",".join(map(str, answer.named))
    return {"case": name, "predicted_top3": top, "named": named, "error": error, "seconds": seconds}


def run_change_cell(cell: dict[str, Any]) -> CellResult:
    """Run one resolved cell of the ``distribution_change`` family; failures are captured in ``error``."""
    result = CellResult(cell)
    try:
        case = change_case(cell["benchmark"], cell["seed"])
        method = change_method_for(cell)
        head = {"target": str(case.target), "functional": case.functional,
                "changes": json.dumps({str(node): kind for node, kind in case.changes.items()})}
        answer, error, seconds = _ask(method, case, case.new_data)
        rows = [{**head, **_case_row("change", answer, error, seconds)}]
        if answer is None:
            scored = {"top1_recall": 0.0 if case.relevant else np.nan, "top3_recall": 0.0 if case.relevant
                      else np.nan, "failed_cases": 1.0}
        else:
            scored = {**score_change(answer, case.players, case.truth, case.relevant, list(case.changes)),
                      "failed_cases": 0.0}
            result.artifacts["contributions.csv"] = _contributions_table(answer, case).to_csv(index=False).encode()
        scored["attribute_seconds"] = seconds
        if cell["benchmark"].get("specificity", True):
            same, error, seconds = _ask(method, case, case.same_data)
            rows.append({**head, **_case_row("no_change", same, error, seconds)})
            scored["specificity"] = float(same is not None and not same.named)
            scored["specificity_seconds"] = seconds
        result.metrics = {name: float(value) for name, value in scored.items() if np.isfinite(value)}
        result.metrics["num_nodes"] = float(case.graph.number_of_nodes())
        result.metrics["num_cases"] = float(len(rows))
        result.cases = pd.DataFrame(rows)
        result.artifacts["cases.csv"] = result.cases.to_csv(index=False).encode()
        result.artifacts["resolved_config.yaml"] = yaml.safe_dump(cell, sort_keys=True).encode()
    except Exception:  # a failed cell is recorded, not fatal to the sweep
        result.error = traceback.format_exc()
    return result
