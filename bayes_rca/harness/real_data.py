"""Real-data benchmarks: the PetShop microservice data set as harness cases with their ground truth.

One benchmark is one scenario x metric x statistic of a data root: the reversed call graph, the normal
metrics of that metric, one :class:`~bayes_rca.harness.benchmarks.OutlierCase` per issue of the split whose
target has that metric, and the specificity checks of the data set's authors: the normal period is split at
several points; the rows before a point are the training data and the third row from the point on is asked
about (as an issue's third row is). A method is right there when it names no root cause.

Missing data (a service without traffic in a window) follows :func:`bayes_rca.data.tables.prepare_observed`:
nodes with fewer than ``min_observed`` normal values are marginalised out of the graph, other missing values
(normal and issue rows) take the node's normal median. Every method of a cell sees the same prepared data,
with two exceptions: a method which infers missing values itself (``bayes_rca`` with ``missing: latent``) gets
the issue row as measured; and a method that ``uses_raw_data`` (``mad_traversal``, the authors' own baseline)
gets what the authors' code gets: the reversed call graph with every node, the normal rows as measured, and
each issue's whole window of rows as measured from the third row on (``OutlierCase.raw_rows``), in which it
may search the later rows; its specificity windows are all the normal rows from the split point on, as in
the authors' ``evaluate_specificity``. (The other methods' issue row is the first at or after the target's
timestamp; in the published splits that is the third row too.)
"""

from __future__ import annotations

from pathlib import Path

import networkx as nx
import pandas as pd

from bayes_rca.data.datasets.petshop import PetShopScenario, load_scenario
from bayes_rca.data.tables import prepare_observed, select_metric
from bayes_rca.errors import DataError
from bayes_rca.harness.benchmarks import Benchmark, NormalCase, OutlierCase

ANALYSED_ROW = 2  # the authors analyse the third row of an issue's window, and of each specificity split


def specificity_points(num_rows: int) -> list[int]:
    """Where the normal period is split: from half of it on, every tenth of it, leaving 3 rows after."""
    return list(range(num_rows // 2, num_rows - 3, max(1, int(num_rows * 0.1))))


def _normal_case(graph: nx.DiGraph, normal: pd.DataFrame, target: str, point: int,
                 min_observed: int) -> NormalCase:
    raw_train, window = normal.iloc[:point], normal.iloc[point:]
    measured = window.iloc[ANALYSED_ROW:ANALYSED_ROW + 1]
    case_graph, train, row, _, _ = prepare_observed(graph, raw_train, measured, min_observed)
    return NormalCase(case_graph, train, target, row, f"normal_split_{point}",
                      measured.reindex(columns=list(case_graph.nodes)), raw_graph=graph, raw_train=raw_train,
                      window=window, start=ANALYSED_ROW)


def petshop_benchmark(data_root: str | Path, scenario: str, split: str, metric: str, statistic: str = "Average",
                      min_observed: int = 10, specificity: bool = True) -> Benchmark:
    """The PetShop cases of one scenario, split, metric and statistic.

    Parameters
    ----------
    data_root : str or Path
        The folder holding the scenario folders (``low_traffic``, ...), e.g. ``../shared/data/petshop``.
    scenario, split : str
        A scenario folder and a split folder in it (``train``, ``test``, ...).
    metric, statistic : str
        The metric (``latency``, ``availability``) and statistic (``Average``) of the issues to take.
    min_observed : int
        Nodes with fewer normal values are marginalised out of the graph (of the prepared data; the raw data
        of a method that ``uses_raw_data`` keep every node).
    specificity : bool
        Add the specificity checks on normal data (one per split point of :func:`specificity_points`).

    Raises
    ------
    DataError
        No issue of that metric in the split, or a malformed scenario folder.
    """
    loaded: PetShopScenario = load_scenario(Path(data_root) / scenario)
    issues = loaded.select(split, metric, statistic)
    if not issues:
        raise DataError(f"{scenario}/{split} has no issue with target metric {metric!r} and statistic "
                        f"{statistic!r}")
    causal = loaded.causal_graph
    normal = select_metric(loaded.normal, metric, statistic)
    rows, windows = [], {}
    for issue in issues:
        frame = select_metric(issue.metrics, metric, statistic)
        windows[issue.name] = frame
        row = frame.iloc[[issue.row_position]]
        rows.append(row.set_axis([issue.name]))
    measured = pd.concat(rows)
    graph, train, outliers, _, _ = prepare_observed(causal, normal, measured, min_observed)
    measured = measured.reindex(columns=list(graph.nodes))
    cases = []
    for issue in issues:
        if issue.target not in graph:
            raise DataError(f"{scenario}/{split}/{issue.name}: target {issue.target!r} has fewer than "
                            f"{min_observed} normal values of {metric} {statistic}")
        cases.append(OutlierCase(issue.target, outliers.loc[[issue.name]], issue.root_cause, name=issue.name,
                                 observed_row=measured.loc[[issue.name]], window=windows[issue.name],
                                 start=ANALYSED_ROW))
    targets = sorted({issue.target for issue in issues})
    normal_cases = [_normal_case(causal, normal, target, point, min_observed)
                    for target in targets for point in specificity_points(len(normal))] if specificity else []
    return Benchmark(f"petshop/{scenario}/{metric}", graph, train, cases, normal_cases=normal_cases,
                     raw_graph=causal, raw_train=normal)
