"""One cell of a sweep: load the benchmark, fit the method, attribute every outlier, score the answers.

A case the method fails on is recorded (``failed`` = 1, recall 0, the error in ``cases.csv``) and does not
stop the cell. On a benchmark with specificity checks (real data), a method that can abstain is refitted on
each check's normal rows and scored on whether it names no root cause; one that cannot abstain scores 0. A
method that ``uses_raw_data`` is fitted on, asked about and scored over the data as measured where the
benchmark has them (see :mod:`bayes_rca.harness.real_data`), every other method over the prepared data.

:func:`run_cell` runs the cell's benchmark family (:mod:`bayes_rca.harness.families`): a family of outliers
(:class:`~bayes_rca.harness.families.OutlierFamily`) comes to :func:`run_outlier_cell`, the
``distribution_change`` family's cells (two periods, :mod:`bayes_rca.harness.change_cell`) take another path.
The metrics of a case are :data:`bayes_rca.harness.metrics.OUTLIER_METRICS`. ``run_cell`` is a pure function of
the resolved cell mapping (same mapping, same numbers), so it can run in this process, a worker process or a Ray
task; it returns metrics, a per-case table and artifact bytes, and
never touches the tracking store.
"""

from __future__ import annotations

import inspect
import io
import tempfile
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import networkx as nx
import numpy as np
import pandas as pd
import torch
import yaml

from bayes_rca.graph.dag import blameable_nodes
from bayes_rca.harness import metrics
from bayes_rca.harness.benchmarks import Benchmark, NormalCase, OutlierCase
from bayes_rca.harness.families import OutlierFamily, make_family
from bayes_rca.harness.methods import make_method
from bayes_rca.harness.methods.base import Attribution, RCAMethod
from bayes_rca.harness.metrics import NDCG_KS, OUTLIER_METRICS, OutlierScoring
from bayes_rca.harness.truth import true_attribution, truth_error_metrics


@dataclass
class CellResult:
    """What one cell produced."""

    cell: dict[str, Any]
    metrics: dict[str, float] = field(default_factory=dict)
    cases: pd.DataFrame | None = None
    artifacts: dict[str, bytes] = field(default_factory=dict)
    error: str | None = None


def _method_for(cell: dict[str, Any]) -> RCAMethod:
    options = dict(cell["method_options"])
    probe = make_method(cell["method"], **options)
    if "seed" not in options and "seed" in inspect.signature(type(probe).__init__).parameters:
        return make_method(cell["method"], **options, seed=cell["seed"])
    return probe


def score_case(attribution: Attribution, benchmark: Benchmark, case: OutlierCase,
               graph: nx.DiGraph | None = None, details: list[pd.DataFrame] | None = None) -> dict[str, float]:
    """All metrics of one answer (those that need a relevance ranking or true parameters are NaN without).

    ``graph``: the graph the method was fitted on, whose nodes the answer ranks (default ``benchmark.graph``).
    ``details``: where true parameters are known, :func:`~bayes_rca.harness.metrics.calibration_table` of the
    answer (one row per player) is appended to it.
    """
    nodes = list((benchmark.graph if graph is None else graph).nodes)
    scores = attribution.scores.reindex(nodes)
    draws = None if attribution.draws is None else attribution.draws.reindex(columns=nodes, fill_value=0.0)
    answer = Attribution(scores, draws, attribution.top_probability)
    known = true_attribution(benchmark, case)
    truth = None if known is None else known.contributions
    scoring = OutlierScoring(answer, nodes, case.root_cause, case.relevance, truth)
    row = {name: metric(scoring) for name, metric in OUTLIER_METRICS.items()}
    if truth is not None:  # calibration over the players only (every other node is 0 in truth and draws)
        blameable = blameable_nodes(benchmark.graph, case.target)
        players, errors = truth.reindex(blameable), known.standard_errors.reindex(blameable)
        row.update(metrics.calibration_metrics(answer, players))
        row.update(truth_error_metrics(answer, errors))
        if details is not None:
            details.append(metrics.calibration_table(answer, players).assign(truth_se=errors.to_numpy(dtype=float)))
    return row


def _fit_data(method: RCAMethod, source: Benchmark | NormalCase) -> tuple[nx.DiGraph, pd.DataFrame]:
    """The graph and normal data to fit on: as measured for a method that uses raw data (where there are
    any), else prepared."""
    if method.uses_raw_data and source.raw_graph is not None:
        return source.raw_graph, source.raw_train
    return source.graph, source.train


def _row_for(method: RCAMethod, case: OutlierCase | NormalCase) -> pd.DataFrame:
    """The rows as measured from the analysed row on for a method that uses raw data (where there are any);
    the measured row (missing values NaN) for a method that infers them; else the imputed row."""
    if method.uses_raw_data and case.window is not None:
        return case.raw_rows
    return case.observed_row if method.uses_missing_values and case.observed_row is not None else case.row


def _failed_case() -> dict[str, float]:
    """The row of a case the method could not answer: no credit, other metrics undefined."""
    return {"top1_recall": 0.0, "top3_recall": 0.0, "failed": 1.0}


def _specificity(cell: dict[str, Any], checks: list[NormalCase]) -> tuple[float, pd.DataFrame]:
    """Share of the normal-data checks where a freshly fitted method names no root cause."""
    rows = []
    for check in checks:
        method = _method_for(cell)
        start = time.perf_counter()
        try:
            method.fit(*_fit_data(method, check))
            reported = method.attribute(check.target, _row_for(method, check)).reported
            error = ""
        except Exception as failure:  # a failure is not "no root cause"
            reported, error = None, f"{type(failure).__name__}: {failure}"
        rows.append({"check": check.name, "target": check.target, "rows": len(check.train),
                     "correct": float(reported is not None and len(reported) == 0),
                     "reported": ",".join(map(str, reported or [])), "seconds": time.perf_counter() - start,
                     "error": error})
    table = pd.DataFrame(rows)
    return float(table["correct"].mean()), table


def _netcdf_bytes(posterior: Any) -> bytes:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "posterior.nc"
        posterior.to_netcdf(str(path))
        return path.read_bytes()


def run_cell(cell: dict[str, Any]) -> CellResult:
    """Run one resolved cell as its benchmark family runs it
    (:meth:`~bayes_rca.harness.families.BenchmarkFamily.run_cell`); failures, an unknown family too, are captured
    in ``CellResult.error`` with the traceback."""
    torch.set_num_threads(1)
    try:
        family = make_family(cell["benchmark"]["family"])
    except Exception:  # a failed cell is recorded, not fatal to the sweep
        return CellResult(cell, error=traceback.format_exc())
    return family.run_cell(cell)


def run_outlier_cell(cell: dict[str, Any], family: OutlierFamily) -> CellResult:
    """Run one resolved cell of a family of outliers (``family.load``): fit, attribute every outlier, score."""
    result = CellResult(cell)
    try:
        benchmark = family.load(family.read_options(cell["benchmark"]), cell["seed"])
        method = _method_for(cell)
        start = time.perf_counter()
        graph, train = _fit_data(method, benchmark)
        method.fit(graph, train)
        fit_seconds = time.perf_counter() - start
        rows, contributions = [], []
        for index, case in enumerate(benchmark.cases):
            start = time.perf_counter()
            head = {"case": index, "name": case.name, "target": case.target, "root_cause": case.root_cause,
                    "injected": len(case.injected)}
            try:
                attribution = method.attribute(case.target, _row_for(method, case))
            except Exception as failure:  # recorded as a failed case; the other cases still run
                rows.append({**head, "predicted_top3": "", "reported": "", "error": f"{type(failure).__name__}: "
                             f"{failure}", "attribute_seconds": time.perf_counter() - start, **_failed_case()})
                continue
            seconds = time.perf_counter() - start
            ranked = attribution.scores.sort_values(ascending=False).index[:3].tolist()
            reported = "" if attribution.reported is None else ",".join(map(str, attribution.reported))
            details: list[pd.DataFrame] = []
            rows.append({**head, "predicted_top3": ",".join(map(str, ranked)), "reported": reported, "error": "",
                         "attribute_seconds": seconds, "failed": 0.0,
                         **score_case(attribution, benchmark, case, graph, details)})
            contributions += [table.assign(case=index, target=str(case.target)) for table in details]
            if attribution.posterior is not None:
                result.artifacts[f"posterior_case{index}.nc"] = _netcdf_bytes(attribution.posterior)
        cases = pd.DataFrame(rows)
        numeric = cases.drop(columns=["case", "name", "target", "root_cause", "predicted_top3", "reported", "error"])
        result.metrics = {name: float(value) for name, value in numeric.mean().items() if np.isfinite(value)}
        result.metrics["failed_cases"] = float(cases["failed"].sum())
        result.metrics["fit_seconds"] = fit_seconds
        result.metrics["num_nodes"] = float(graph.number_of_nodes())
        result.metrics["num_cases"] = float(len(cases))
        if benchmark.normal_cases:
            if method.abstains:
                result.metrics["specificity"], checks = _specificity(cell, benchmark.normal_cases)
                result.artifacts["specificity.csv"] = checks.to_csv(index=False).encode()
            else:
                result.metrics["specificity"] = 0.0  # it always names a root cause
        result.cases = cases
        result.artifacts["cases.csv"] = cases.to_csv(index=False).encode()
        if contributions:  # per player: true contribution, intervals, P(top cause) (calibration figures)
            result.artifacts["contributions.csv"] = pd.concat(contributions).to_csv(index=False).encode()
        result.artifacts["resolved_config.yaml"] = yaml.safe_dump(cell, sort_keys=True).encode()
        plot = _ndcg_plot(cases, cell["method"])
        if plot is not None:
            result.artifacts["ndcg.png"] = plot
    except Exception:  # a failed cell is recorded, not fatal to the sweep
        result.error = traceback.format_exc()
    return result


def _ndcg_plot(cases: pd.DataFrame, method: str) -> bytes | None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if f"ndcg_at_{NDCG_KS[0]}" not in cases or cases[f"ndcg_at_{NDCG_KS[0]}"].isna().all():
        return None
    figure, axis = plt.subplots(figsize=(5, 3.2))
    means = [cases[f"ndcg_at_{k}"].mean() for k in NDCG_KS]
    axis.plot(NDCG_KS, means, marker="o")
    axis.set(xlabel="k", ylabel="NDCG@k", ylim=(0, 1.02), title=f"{method}: NDCG@k over {len(cases)} outliers")
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100)
    plt.close(figure)
    return buffer.getvalue()
