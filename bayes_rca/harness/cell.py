"""One cell of a sweep: generate the benchmark, fit the method, attribute every outlier, score the answers.

``run_cell`` is a pure function of the resolved cell mapping (same mapping, same numbers), so it can run in
this process, a worker process or a Ray task; it returns metrics, a per-case table and artifact bytes, and
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

import numpy as np
import pandas as pd
import torch
import yaml

from bayes_rca.attribution import attribute_outliers
from bayes_rca.harness import metrics
from bayes_rca.harness.benchmarks import Benchmark, OutlierCase, make_benchmark
from bayes_rca.harness.methods import make_method
from bayes_rca.harness.methods.base import Attribution, RCAMethod

NDCG_KS = tuple(range(1, 11))


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


def true_contributions(benchmark: Benchmark, case: OutlierCase) -> pd.Series | None:
    """Contributions from the true parameters, where the system is linear-Gaussian; else None.

    Exact coalition values; permutation sampling (above 12 players) runs until every standard error is 0.01.
    """
    if benchmark.system.linear is None:
        return None
    oracle = attribute_outliers(benchmark.system.linear.oracle_model(), case.target, case.row, tolerance=0.01)
    return pd.Series(oracle.contributions[0, 0], index=oracle.nodes)


def score_case(attribution: Attribution, benchmark: Benchmark, case: OutlierCase) -> dict[str, float]:
    """All metrics of one answer."""
    nodes = list(benchmark.system.graph.nodes)
    scores = attribution.scores.reindex(nodes)
    draws = None if attribution.draws is None else attribution.draws.reindex(columns=nodes, fill_value=0.0)
    answer = Attribution(scores, draws, attribution.top_probability)
    row = {f"ndcg_at_{k}": metrics.ndcg_at_k(answer, case.relevance, k) for k in NDCG_KS}
    row["top1_recall"] = metrics.recall_at_k(answer, case.root_cause, 1)
    row["top3_recall"] = metrics.recall_at_k(answer, case.root_cause, 3)
    truth = true_contributions(benchmark, case)
    blameable = [n for n in scores.index if n in case.relevance.index]
    row["coverage_90"] = metrics.interval_coverage(answer, truth) if truth is not None else float("nan")
    # the relevance ranking is a heuristic; the true-parameter Shapley values are what a method estimates
    row["shapley_top1_agreement"] = metrics.recall_at_k(answer, truth.idxmax(), 1) if truth is not None \
        else float("nan")
    row["oracle_ndcg_at_1"] = metrics.ndcg_at_k(Attribution(truth), case.relevance, 1) if truth is not None \
        else float("nan")
    row["interval_width_90"] = metrics.interval_width(answer, blameable)
    row["top_cause_brier"] = metrics.top_cause_brier(answer, case.root_cause)
    return row


def _netcdf_bytes(posterior: Any) -> bytes:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "posterior.nc"
        posterior.to_netcdf(str(path))
        return path.read_bytes()


def run_cell(cell: dict[str, Any]) -> CellResult:
    """Run one resolved cell; failures are captured in ``CellResult.error`` with the traceback."""
    torch.set_num_threads(1)
    result = CellResult(cell)
    try:
        bench = cell["benchmark"]
        benchmark = make_benchmark(bench["family"], cell["seed"], bench["num_rows"], bench["num_outliers"],
                                   bench["num_nodes"], bench["min_ancestors"])
        method = _method_for(cell)
        start = time.perf_counter()
        method.fit(benchmark.system.graph, benchmark.train)
        fit_seconds = time.perf_counter() - start
        rows = []
        for index, case in enumerate(benchmark.cases):
            start = time.perf_counter()
            attribution = method.attribute(case.target, case.row)
            seconds = time.perf_counter() - start
            ranked = attribution.scores.sort_values(ascending=False).index[:3].tolist()
            rows.append({"case": index, "target": case.target, "root_cause": case.root_cause,
                         "injected": len(case.injected), "predicted_top3": ",".join(map(str, ranked)),
                         "attribute_seconds": seconds, **score_case(attribution, benchmark, case)})
            if attribution.posterior is not None:
                result.artifacts[f"posterior_case{index}.nc"] = _netcdf_bytes(attribution.posterior)
        cases = pd.DataFrame(rows)
        numeric = cases.drop(columns=["case", "target", "root_cause", "predicted_top3"])
        result.metrics = {name: float(value) for name, value in numeric.mean().items() if np.isfinite(value)}
        result.metrics["fit_seconds"] = fit_seconds
        result.metrics["num_nodes"] = float(benchmark.system.graph.number_of_nodes())
        result.cases = cases
        result.artifacts["cases.csv"] = cases.to_csv(index=False).encode()
        result.artifacts["resolved_config.yaml"] = yaml.safe_dump(cell, sort_keys=True).encode()
        result.artifacts["ndcg.png"] = _ndcg_plot(cases, cell["method"])
    except Exception:  # a failed cell is recorded, not fatal to the sweep
        result.error = traceback.format_exc()
    return result


def _ndcg_plot(cases: pd.DataFrame, method: str) -> bytes:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(5, 3.2))
    means = [cases[f"ndcg_at_{k}"].mean() for k in NDCG_KS]
    axis.plot(NDCG_KS, means, marker="o")
    axis.set(xlabel="k", ylabel="NDCG@k", ylim=(0, 1.02), title=f"{method}: NDCG@k over {len(cases)} outliers")
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100)
    plt.close(figure)
    return buffer.getvalue()
