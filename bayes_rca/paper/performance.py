"""The outputs of the benchmark runs (tag ``role = bench``, logged by ``bayes-rca paper bench``): fit and
attribution seconds against the number of the target's ancestors per tool (a table and a figure)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from bayes_rca.paper.cells import _line_style, _metric, _slug
from bayes_rca.paper.latex import Group, Row, Table, escape, number
from bayes_rca.paper.runs import ExperimentRuns


def performance_outputs(runs: ExperimentRuns, folder: Path, save: Callable[..., Path]
                        ) -> tuple[tuple[str, Table] | None, list[tuple[str, Path, str, list[str]]]]:
    """Seconds vs ancestors per tool, from benchmark runs (``bayes-rca paper bench``)."""
    import matplotlib.pyplot as plt

    bench = runs.bench.copy()
    bench["ancestors"] = _metric(bench, "num_ancestors")
    tools = sorted({c.removeprefix("metric.").rsplit(".", 1)[0] for c in bench.columns
                    if c.startswith("metric.") and c.endswith(".attribute_s")})
    group = Group("")
    for _, run in bench.sort_values("ancestors").iterrows():
        cells = [str(int(run["ancestors"])), escape(run.get("param.nodes", "")), escape(run.get("param.rows", ""))]
        for tool in tools:
            cells += [number(run.get(f"metric.{tool}.fit_s"), 2), number(run.get(f"metric.{tool}.attribute_s"), 2)]
        group.rows.append(Row(cells, [run["run_id"]]))
    header = ["ancestors", "nodes", "rows"]
    for tool in tools:
        header += [f"{escape(tool)} fit s", f"{escape(tool)} attr.\\ s"]
    table = (f"{runs.name}_seconds",
             Table(header, [group], "Fit and attribution seconds of one outlier against the number of the target's "
                   f"ancestors (\\texttt{{experiments/bench/bench\\_attribution.py}}, one run each), experiment "
                   f"\\texttt{{{escape(runs.name)}}}.", f"tab:{_slug(runs.name)}_seconds",
                   align="rrr" + "rr" * len(tools), source=f"experiment {runs.name}"))
    figure_, axis = plt.subplots(figsize=(5.5, 3.6))
    for t, tool in enumerate(tools):
        ordered = bench.sort_values("ancestors")
        for metric, marker in (("fit_s", "o"), ("attribute_s", "s")):
            axis.plot(ordered["ancestors"], _metric(ordered, f"{tool}.{metric}"), _line_style(t), marker=marker,
                      color=f"C{t}", label=f"{tool}: {'fit' if metric == 'fit_s' else 'attribution'}")
    axis.set(yscale="log", xlabel="ancestors of the target", ylabel="seconds")
    axis.legend(fontsize=6)
    name = _slug(runs.name)
    figures = [(f"{name}_runtime", save(figure_, folder / f"{name}_runtime"),
                "Runtime scaling: fit and attribution seconds against the number of ancestors of the target, per "
                f"tool, experiment \\texttt{{{escape(runs.name)}}}.", bench["run_id"].tolist())]
    return table, figures
