"""Reading the cell runs of an experiment (one row per run, ``param.*`` and ``metric.*`` columns) for the paper:
a metric's values, their mean and standard error, the settings a sweep varies, and the orders of methods and
settings that every table and figure uses."""

from __future__ import annotations

import math
import re

import numpy as np
import pandas as pd

from bayes_rca.paper.latex import escape

LEVELS = (50, 80, 90, 95)
TARGET_LEVEL, TARGET_RANGE = 90, (0.85, 0.95)  # coverage at 90 % outside this range is flagged
METHOD_ORDER = ("bayes_rca", "bayes_rca_linear", "bayes_rca_svi", "bayes_rca_nuts", "bayes_rca_censored", "dowhy",
                "dowhy_bootstrap", "dowhy_petshop")
CONTEXT_NAMES = {"param.benchmark.scenario": "scenario", "param.benchmark.metric": "metric",
                 "param.benchmark.split": "split", "param.benchmark.family": "family",
                 "param.benchmark.num_rows": "rows", "param.benchmark.num_nodes": "nodes"}


def _metric(frame: pd.DataFrame, name: str) -> pd.Series:
    column = f"metric.{name}"
    return frame[column].astype(float) if column in frame else pd.Series(np.nan, index=frame.index)


def _has(frame: pd.DataFrame, name: str) -> bool:
    return f"metric.{name}" in frame and frame[f"metric.{name}"].notna().any()


def _stats(values: pd.Series) -> tuple[float, float, int]:
    values = values.dropna()
    if values.empty:
        return float("nan"), float("nan"), 0
    se = float(values.std(ddof=1) / math.sqrt(len(values))) if len(values) > 1 else float("nan")
    return float(values.mean()), se, len(values)


def _method_key(method: str) -> tuple[int, str]:
    return (METHOD_ORDER.index(method) if method in METHOD_ORDER else len(METHOD_ORDER), method)


def _as_number(text: object) -> float:
    try:
        return float(text)
    except (TypeError, ValueError):
        return float("nan")


def _varying(cells: pd.DataFrame, exclude: tuple[str, ...]) -> list[str]:
    """The swept params (other than seed, method and method options, and ``exclude``) that take several values."""
    params = [c for c in cells.columns if c.startswith("param.") and c not in ("param.seed", "param.method", *exclude)
              and not c.startswith("param.method_options")]
    return [c for c in params if cells[c].nunique(dropna=False) > 1]


def _context_label(keys: list[str], values: tuple) -> str:
    return ", ".join(f"{CONTEXT_NAMES.get(k, k.removeprefix('param.'))} {escape(v)}" for k, v in zip(keys, values))


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "_", text).strip("_")


def _sorted_groups(cells: pd.DataFrame, keys: list[str]) -> list[tuple[tuple, pd.DataFrame]]:
    if not keys:
        return [((), cells)]
    groups = [(key if isinstance(key, tuple) else (key,), frame) for key, frame in cells.groupby(keys, dropna=False)]

    def order(item: tuple[tuple, pd.DataFrame]) -> tuple:
        return tuple((_as_number(v), str(v)) for v in item[0])

    return sorted(groups, key=order)


def _count(frame: pd.DataFrame, per_case: str) -> int:
    """Total count over the cells of a per-outlier mean metric (e.g. players scored)."""
    cases = _metric(frame, "num_cases").fillna(0) - _metric(frame, "failed_cases").fillna(0)
    return int(round(float((_metric(frame, per_case).fillna(0) * cases).sum())))


def _line_style(index: int) -> str:
    return ("-", "--", ":", "-.")[index % 4]
