"""The PetShop microservice benchmark (Hardt et al., 2023): a loader for any scenario folder of its layout.

A scenario folder holds ``graph.csv`` (call-graph adjacency: 1 at row *caller*, column *callee*),
``noissue/metrics.csv`` (normal operation) and one folder per split (``train``, ``test``, ...) of
``issue_N/{metrics.csv,target.json}``. Metric files have three header rows (service, metric, statistic) and
the index ``unix_timestamp``. The causal graph of latency and availability is the reversed call graph: a slow
or failing callee makes its caller slow or failing.

The analysed row of an issue is the first row at or after the target's timestamp (for the published train
split this is the third row, the row the dataset's authors analyse).

References
----------
Hardt, Orchard, Blöbaum, Kirschbaum, Kasiviswanathan. "The PetShop Dataset — Finding Causes of Performance
Issues across Microservices." CLeaR 2024 (arXiv:2311.04806). Data licence CC-BY-4.0.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import networkx as nx
import pandas as pd

from bayes_rca.data.tables import read_metrics
from bayes_rca.errors import DataError
from bayes_rca.graph.io import read_graph

NORMAL_FOLDER = "noissue"


@dataclass(frozen=True)
class PetShopIssue:
    """One injected performance issue.

    Attributes
    ----------
    split, name : the split folder (``train``, ``test``, ...) and the issue folder (``issue_3``).
    metrics : the metrics around the issue (:func:`bayes_rca.data.tables.read_metrics` layout).
    target, metric, statistic : the node, metric and statistic where the issue is observed.
    timestamp : when the issue was observed at the target.
    root_cause : the node where the issue was injected.
    """

    split: str
    name: str
    metrics: pd.DataFrame
    target: str
    metric: str
    statistic: str
    timestamp: float
    root_cause: str

    @property
    def row_position(self) -> int:
        """Position of the analysed row: the first row at or after ``timestamp``."""
        later = [i for i, stamp in enumerate(self.metrics.index) if stamp >= self.timestamp]
        if not later:
            raise DataError(f"{self.split}/{self.name}: no metrics row at or after the target timestamp "
                            f"{self.timestamp:g} (last row {self.metrics.index[-1]:g})")
        return later[0]


@dataclass(frozen=True)
class PetShopScenario:
    """A scenario folder: call graph, normal metrics and the issues of every split found on disk."""

    name: str
    call_graph: nx.DiGraph
    normal: pd.DataFrame
    issues: dict[str, list[PetShopIssue]] = field(default_factory=dict)

    @property
    def causal_graph(self) -> nx.DiGraph:
        """The reversed call graph (callee -> caller)."""
        return self.call_graph.reverse(copy=True)

    def select(self, split: str, metric: str | None = None, statistic: str | None = None) -> list[PetShopIssue]:
        """The issues of ``split`` (optionally only those of one target metric and statistic)."""
        if split not in self.issues:
            raise DataError(f"scenario {self.name!r} has no split {split!r}; found: "
                            f"{', '.join(sorted(self.issues)) or 'none'}")
        return [issue for issue in self.issues[split] if (metric is None or issue.metric == metric)
                and (statistic is None or issue.statistic == statistic)]


def _natural_key(name: str) -> list:
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name)]


def _read_issue(folder: Path, split: str) -> PetShopIssue:
    target_file = folder / "target.json"
    try:
        spec = json.loads(target_file.read_text())
        target, root = spec["target"], spec["root_cause"]
        return PetShopIssue(split=split, name=folder.name, metrics=read_metrics(folder / "metrics.csv"),
                            target=str(target["node"]), metric=str(target["metric"]), statistic=str(target["agg"]),
                            timestamp=float(target["timestamp"]), root_cause=str(root["node"]))
    except FileNotFoundError:
        raise DataError(f"{target_file} does not exist") from None
    except (json.JSONDecodeError, KeyError, TypeError) as error:
        raise DataError(f"{target_file}: expected {{'target': {{'node', 'metric', 'agg', 'timestamp'}}, "
                        f"'root_cause': {{'node'}}}}, could not read it ({type(error).__name__}: {error})") from None


def load_scenario(path: str | Path) -> PetShopScenario:
    """Load a scenario folder with every split folder found in it.

    A split folder is any subfolder other than ``noissue`` whose subfolders hold a ``target.json``.

    Raises
    ------
    DataError
        A missing folder or file, or a malformed metrics or target file (the file is named).
    """
    root = Path(path)
    if not root.is_dir():
        raise DataError(f"PetShop scenario folder {root} does not exist")
    call_graph = read_graph(root / "graph.csv", fmt="adjacency")
    normal = read_metrics(root / NORMAL_FOLDER / "metrics.csv")
    issues = {}
    for split in sorted(p for p in root.iterdir() if p.is_dir() and p.name != NORMAL_FOLDER):
        folders = sorted((p for p in split.iterdir() if (p / "target.json").is_file()), key=lambda p: _natural_key(p.name))
        if folders:
            issues[split.name] = [_read_issue(folder, split.name) for folder in folders]
    return PetShopScenario(root.name, call_graph, normal, issues)


def scenario_names(data_root: str | Path) -> list[str]:
    """The scenario folders (those with a ``graph.csv``) under a PetShop data root."""
    root = Path(data_root)
    if not root.is_dir():
        raise DataError(f"PetShop data root {root} does not exist")
    return sorted(p.name for p in root.iterdir() if (p / "graph.csv").is_file())
