"""Static checks of a graph, its data and mechanism choices (or of an experiment config) before any fitting.

Problems become :class:`Finding` objects instead of exceptions, so one run reports all of them: what would make
a fit fail (errors), what would make its results doubtful (warnings), and which nodes can be blamed at all for
each target (the target and its ancestors; every other node always gets a contribution of zero).
"""

from __future__ import annotations

import json
import math
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import networkx as nx
import numpy as np
import pandas as pd
import torch

from bayes_rca.data.checks import magnitude_problem, near_constant_columns, near_constant_message, near_misses
from bayes_rca.errors import BayesRCAError, ConfigError, GraphError, MechanismError
from bayes_rca.graph.dag import (
    blameable_nodes,
    parents_of,
    topological_order,
    validate_graph,
)
from bayes_rca.harness.config import expand_cells, load_config
from bayes_rca.harness.loading import benchmark_label, benchmark_problem, method_factory
from bayes_rca.model.assignment import baseline_family
from bayes_rca.model.mechanisms import Mechanism, bind_to_data, is_binary, make_mechanism

Level = Literal["error", "warning", "info"]
LEVELS: tuple[Level, ...] = ("error", "warning", "info")
ROWS_PER_PARAMETER = 5
BLAME_COLUMNS = ["target", "blameable", "never_blamed"]
MECHANISM_COLUMNS = ["node", "parents", "mechanism", "assigned", "parameters", "rows_needed", "rows_available"]


@dataclass(frozen=True)
class Finding:
    """One result of a check: its severity, what it is about (a node, column, target, file) and what is wrong."""

    level: Level
    subject: str
    message: str


@dataclass
class CheckReport:
    """All findings of a check, with the per-target blame table and the per-node mechanism table.

    Attributes
    ----------
    findings : list of Finding
        In the order the checks ran.
    blame : pandas.DataFrame
        One row per known target: ``blameable`` (its ancestors and itself, topological order) and
        ``never_blamed`` (every other node), both lists.
    mechanisms : pandas.DataFrame
        One row per node: number of parents, family, ``"given"`` or ``"auto"`` (then the family is the baseline
        that is always fitted), parameter count, rows a fit needs and rows available (``<NA>`` without data).
    """

    findings: list[Finding] = field(default_factory=list)
    blame: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=BLAME_COLUMNS))
    mechanisms: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=MECHANISM_COLUMNS))

    def count(self, level: Level) -> int:
        """Number of findings of ``level``."""
        return sum(finding.level == level for finding in self.findings)

    @property
    def ok(self) -> bool:
        """Whether there is no error (warnings allowed)."""
        return self.count("error") == 0


def check_model_inputs(graph: nx.DiGraph, data: pd.DataFrame | None = None, targets: Sequence[Hashable] | None = None,
                       mechanisms: Mapping[Hashable, str | Mechanism] | None = None) -> CheckReport:
    """Check a causal graph, its training data and mechanism overrides without fitting anything.

    Parameters
    ----------
    graph : networkx.DiGraph
        The causal graph (``u -> v``: ``u`` causes ``v``). A cycle is an error that stops the other checks.
    data : pandas.DataFrame, optional
        Rows of normal operation, one column per node; without it only the graph is checked.
    targets : sequence, optional
        Nodes where outliers will be observed; default: the sink nodes (no children).
    mechanisms : mapping, optional
        Per-node family overrides, as for :class:`~bayes_rca.model.scm.BayesianSCM`; other nodes are ``"auto"``.

    Returns
    -------
    CheckReport
        Never raises for a problem it can report.
    """
    try:
        validate_graph(graph)
    except GraphError as error:
        return CheckReport([Finding("error", "graph", str(error))])
    nodes = topological_order(graph)
    targets = [node for node in nodes if graph.out_degree(node) == 0] if targets is None else list(targets)
    findings, blame = _blame(graph, targets)
    findings += [Finding("warning", str(node), f"node {node!r} is isolated (no parents, no children): it can only "
                                               "be blamed for outliers at itself")
                 for node in nodes if graph.degree(node) == 0]
    usable: list[Hashable] = nodes
    if data is not None:
        data_findings, usable = _data_findings(nodes, data)
        findings += data_findings
    overrides = dict(mechanisms or {})
    findings += [Finding("error", str(node), f"mechanism override for {node!r}, which is not a node of the graph")
                 for node in overrides if node not in graph]
    mechanism_findings, table = _mechanisms(graph, overrides, data, set(usable))
    return CheckReport(findings + mechanism_findings, blame, table)


def _blame(graph: nx.DiGraph, targets: list[Hashable]) -> tuple[list[Finding], pd.DataFrame]:
    findings, rows = [], []
    for target in targets:
        try:
            blameable = blameable_nodes(graph, target)
        except GraphError as error:
            findings.append(Finding("error", str(target), str(error)))
            continue
        if len(blameable) == 1 and graph.degree(target):  # an isolated target has its own warning
            findings.append(Finding("warning", str(target), f"target {target!r} has no ancestors: only itself can "
                                                            "be blamed"))
        blamed = set(blameable)
        never = [node for node in topological_order(graph) if node not in blamed]
        rows.append({"target": target, "blameable": blameable, "never_blamed": never})
    if rows:
        someone = set().union(*(row["blameable"] for row in rows))
        never_any = [node for node in topological_order(graph) if node not in someone]
        if never_any:
            findings.append(Finding("info", "targets", "never blamed for any target: "
                                                       + ", ".join(map(repr, never_any))))
    return findings, pd.DataFrame(rows, columns=BLAME_COLUMNS)


def _data_findings(nodes: list[Hashable], data: pd.DataFrame) -> tuple[list[Finding], list[Hashable]]:
    """Findings about the data's columns, and the nodes whose column is present, unique and numeric."""
    findings = []
    if len(data) < 2:
        findings.append(Finding("error", "data", f"training data needs at least 2 rows, got {len(data)}"))
    findings += [Finding("warning", str(column), f"column {column!r} is not a graph node: unused")
                 for column in data.columns.unique() if column not in nodes]
    usable = []
    for node in nodes:
        problem = _column_problem(node, data)
        if problem:
            findings.append(Finding("error", str(node), problem))
        else:
            usable.append(node)
            findings += _value_findings(node, data[node].astype(np.float64))
    return findings, usable


def _column_problem(node: Hashable, data: pd.DataFrame) -> str | None:
    if node not in data.columns:
        return f"graph node {node!r} has no data column{near_misses(data, [node])}"
    copies = int((data.columns == node).sum())
    if copies > 1:
        return f"column {node!r} appears {copies} times"
    column = data[node]
    if not pd.api.types.is_numeric_dtype(column) or pd.api.types.is_bool_dtype(column):
        return f"column {node!r} is not numeric (dtype {column.dtype})"
    return None


def _value_findings(node: Hashable, values: pd.Series) -> list[Finding]:
    subject, missing, infinite = str(node), int(values.isna().sum()), int(np.isinf(values).sum())
    if len(values) and missing == len(values):
        return [Finding("error", subject, f"column {node!r} contains only missing values")]
    findings = []
    if infinite:
        findings.append(Finding("error", subject, f"column {node!r} has {infinite} infinite value(s)"))
    huge = magnitude_problem(values.to_frame(node), "training data")
    if huge:
        findings.append(Finding("error", subject, huge))
    if missing:
        findings.append(Finding("warning", subject, f"column {node!r} has {missing} missing value(s) "
                                                    f"({100 * missing / len(values):.1f}% of rows)"))
    if values[np.isfinite(values)].nunique() == 1:
        findings.append(Finding("warning", subject, f"column {node!r} is constant: modelled with a prior on the "
                                                    "noise scale, contributions may be large"))
    nearly = near_constant_columns(values[np.isfinite(values)].to_frame(node))
    if nearly:
        findings.append(Finding("warning", subject, near_constant_message(nearly)))
    return findings


def _mechanisms(graph: nx.DiGraph, overrides: dict[Hashable, str | Mechanism], data: pd.DataFrame | None,
                usable: set[Hashable]) -> tuple[list[Finding], pd.DataFrame]:
    findings, rows = [], []
    for node in topological_order(graph):
        parents = parents_of(graph, node)
        values = None
        if data is not None and node in usable:
            column = data[node].to_numpy(dtype=np.float64)
            values = torch.tensor(column[np.isfinite(column)])
        binary = node not in overrides and values is not None and is_binary(values)
        spec = overrides.get(node, "probit_threshold" if binary else baseline_family(len(parents)))
        try:
            mechanism = make_mechanism(spec, node)
            if values is not None and len(values):
                bind_to_data(mechanism, node, values, float(values.mean()), 1.0)
        except MechanismError as error:
            findings.append(Finding("error", str(node), str(error)))
            continue
        columns = [*parents, node]
        available = None
        if data is not None and usable.issuperset(columns):
            available = int(np.isfinite(data[columns].to_numpy(dtype=np.float64)).all(axis=1).sum())
        findings += _mechanism_findings(node, parents, mechanism, available)
        rows.append({"node": node, "parents": len(parents), "mechanism": mechanism.name,
                     "assigned": "given" if node in overrides else "auto",
                     "parameters": mechanism.num_parameters(len(parents)),
                     "rows_needed": mechanism.min_rows(len(parents)), "rows_available": available})
    return findings, pd.DataFrame(rows, columns=MECHANISM_COLUMNS).astype({"rows_available": "Int64"})


def _mechanism_findings(node: Hashable, parents: list[Hashable], mechanism: Mechanism,
                        available: int | None) -> list[Finding]:
    subject, parameters = str(node), mechanism.num_parameters(len(parents))
    reason = mechanism.unfit_reason(node, parents, available)
    if reason:
        return [Finding("error", subject, reason)]
    if available is not None and available < ROWS_PER_PARAMETER * parameters:
        return [Finding("warning", subject, f"node {node!r} has {available} usable training rows for the "
                                            f"{parameters} parameters of the {mechanism.name} mechanism (fewer than "
                                            f"{ROWS_PER_PARAMETER} per parameter): a wide posterior")]
    return []


def check_config(path: str | Path) -> CheckReport:
    """Check an experiment config: it loads and expands, its methods build, its benchmark family exists.

    Parameters
    ----------
    path : str or Path
        A YAML config (see :mod:`bayes_rca.harness.config`).

    Returns
    -------
    CheckReport
        A malformed config is one error finding; otherwise info findings on cells, methods and benchmarks.
    """
    try:
        config, raw = load_config(path)
        cells = expand_cells(raw, str(path))
    except ConfigError as error:
        return CheckReport([Finding("error", str(path), str(error))])
    points = math.prod(len(values) for values in config.sweep.values())
    findings = [Finding("info", "cells", f"{len(cells)} cells: {points} sweep point(s) x {len(config.methods)} "
                                         "method(s)")]
    families = sorted({cell["benchmark"]["family"] for cell in cells})
    findings += [_method_finding(name, options or {}, families) for name, options in config.methods.items()]
    benchmarks = {json.dumps(cell["benchmark"], sort_keys=True): cell["benchmark"] for cell in cells}
    for bench in benchmarks.values():
        problem = benchmark_problem(bench)
        findings.append(Finding("error", "benchmark", problem) if problem else
                        Finding("info", "benchmark", f"benchmark {benchmark_label(bench)!r}"))
    return CheckReport(findings)


def _method_finding(name: str, options: dict, families: list[str]) -> Finding:
    """Whether the method builds from the registry of each benchmark family it runs on (the change methods for
    the ``distribution_change`` family, the outlier methods for every other one)."""
    try:
        for family in families:
            method_factory(family)(name, **options)
    except BayesRCAError as error:
        return Finding("error", name, str(error))
    return Finding("info", name, f"method {name!r} with options {options!r}")
