"""Experiment configurations: YAML files validated against a typed schema, overrides, sweep grids.

A config names the benchmark, the methods (each with its options), a sweep grid over any dotted key, how to
execute the cells and where to track them. A wrong key or type is a :class:`ConfigError` naming the file and
the key. Every cell of the grid resolves to a plain dict whose hash identifies it for resuming.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import itertools
import json
import sys
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from bayes_rca.errors import ConfigError


CHANGE_KINDS = ("coefficient", "noise_scale", "root_shift")
"""The mechanism changes the ``distribution_change`` family injects (``benchmark.change_kinds``)."""


@dataclass
class BenchmarkConfig:
    """Which systems to generate (:mod:`bayes_rca.harness.benchmarks`) or which real data to read.

    ``num_nodes`` to ``min_ancestors`` shape the synthetic families; ``data_root`` to ``specificity`` select the
    cases of the real ``petshop`` family (see :func:`bayes_rca.harness.real_data.petshop_benchmark`);
    ``data_root`` is relative to the working directory. The ``distribution_change`` family (two periods with
    injected mechanism changes, :mod:`bayes_rca.harness.change_benchmark`) reads ``num_nodes``, ``num_rows``
    (rows per period), ``min_ancestors`` and ``specificity`` (also a no-change case) and its own keys:
    ``functional`` (the change attributed), ``max_changes`` (1..max_changes mechanisms change) and
    ``change_kinds`` (of ``coefficient``, ``noise_scale``, ``root_shift``).
    """

    family: str = "icml2022"
    num_nodes: int | None = None
    num_rows: int = 2000
    num_outliers: int = 5
    min_ancestors: int = 10
    data_root: str = "../shared/data/petshop"
    scenario: str = "low_traffic"
    split: str = "train"
    metric: str = "latency"
    statistic: str = "Average"
    min_observed: int = 10
    specificity: bool = True
    functional: str = "mean"
    max_changes: int = 3
    change_kinds: list[str] = field(default_factory=lambda: list(CHANGE_KINDS))


EXECUTORS = ("sequential", "processes", "ray")
LOCAL_RAY_ADDRESSES = (None, "", "local")  # ray.init starts a new local instance for these


@dataclass
class ExecutionConfig:
    """How cells run: ``sequential`` (in process), ``processes`` (local pool) or ``ray`` (the Ray cluster at
    ``ray_address``; see :func:`local_ray_problem`); ``workers`` (at least 1) processes."""

    executor: str = "sequential"
    workers: int = 2
    ray_address: str | None = None


def local_ray_problem(execution: ExecutionConfig) -> str | None:
    """Why ``execution`` is refused: executor ``ray`` without a cluster address would start a local Ray instance,
    and Ray's GCS, raylet, worker and driver servers listen on every network interface whatever node address it is
    given. None when it can run: another executor, an address, or Ray already started in this process."""
    if execution.executor != "ray" or execution.ray_address not in LOCAL_RAY_ADDRESSES:
        return None
    ray = sys.modules.get("ray")  # not imported: certainly not started
    if ray is not None and ray.is_initialized():
        return None
    return ("executor 'ray' without execution.ray_address would start a local Ray instance, whose GCS, raylet, "
            "worker and driver servers listen on every network interface (Ray cannot bind them to 127.0.0.1 only); "
            "on one machine use executor: processes, or give ray_address of a Ray cluster you have secured")


@dataclass
class TrackingConfig:
    """Where runs are logged; ``uri`` null means ``MLFLOW_TRACKING_URI`` or ``sqlite:///mlflow.db`` here."""

    uri: str | None = None
    experiment: str | None = None


@dataclass
class ExperimentConfig:
    """A whole experiment: every combination of ``sweep`` values, times every method, is one cell."""

    name: str
    seed: int = 0
    methods: dict[str, dict[str, Any]] = field(default_factory=lambda: {"bayes_rca": {}})
    benchmark: BenchmarkConfig = field(default_factory=BenchmarkConfig)
    sweep: dict[str, list[Any]] = field(default_factory=dict)
    execution: ExecutionConfig = field(default_factory=ExecutionConfig)
    tracking: TrackingConfig = field(default_factory=TrackingConfig)


MAX_CONFIG_VALUES = 100_000  # values (scalars and containers) a config may hold, YAML aliases expanded


def _check_size(data: Any, source: str, root: str = "") -> None:
    """A config (or the value of key ``root``) that contains itself (a recursive YAML alias) or expands past
    :data:`MAX_CONFIG_VALUES` values (aliases of aliases) is a :class:`ConfigError` naming the key; each container
    is counted once, so this is fast however far the aliases would expand."""
    sizes: dict[int, int] = {}
    open_: dict[int, str] = {}  # containers being counted, by id: their keys

    def name(path: str) -> str:
        return f"key {path!r}" if path else "the config"

    def size(value: Any, path: str) -> int:
        if not isinstance(value, (dict, list)):
            return 1
        if id(value) in open_:
            raise ConfigError(f"{source}: {name(path)} refers back to {name(open_[id(value)])} (a recursive YAML "
                              "alias)")
        if id(value) not in sizes:
            open_[id(value)] = path
            items = value.items() if isinstance(value, dict) else enumerate(value)
            sizes[id(value)] = 1 + sum(size(item, f"{path}.{key}" if path else str(key)) for key, item in items)
            del open_[id(value)]
            if sizes[id(value)] > MAX_CONFIG_VALUES:
                raise ConfigError(f"{source}: {name(path)} expands to more than {MAX_CONFIG_VALUES} values (YAML "
                                  "aliases of aliases?)")
        return sizes[id(value)]

    try:
        size(data, root)
    except RecursionError:
        raise ConfigError(f"{source}: {name(root)} is nested too deeply") from None


def _short(value: Any, limit: int = 200) -> str:
    """``repr(value)``, cut to ``limit`` characters."""
    text = repr(value)
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text)} characters)"


def _type_ok(value: Any, hint: Any) -> bool:
    origin = typing.get_origin(hint)
    if hint is Any:
        return True
    if origin in (typing.Union, types.UnionType):
        return any(_type_ok(value, arg) for arg in typing.get_args(hint))
    if hint is type(None):
        return value is None
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if origin is dict:
        key_hint, value_hint = typing.get_args(hint)
        return isinstance(value, dict) and all(_type_ok(k, key_hint) and _type_ok(v, value_hint)
                                               for k, v in value.items())
    if origin is list:
        (item_hint,) = typing.get_args(hint)
        return isinstance(value, list) and all(_type_ok(item, item_hint) for item in value)
    return isinstance(value, hint)


def _build(cls: type, data: Any, source: str, prefix: str = "") -> Any:
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: {prefix.rstrip('.') or 'the config'} must be a mapping, got {_short(data)}")
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    unknown = [key for key in data if key not in names]
    if unknown:
        raise ConfigError(f"{source}: unknown key {prefix + str(unknown[0])!r}; known keys here: "
                          f"{', '.join(prefix + n for n in names)}")
    values = {}
    for f in dataclasses.fields(cls):
        if f.name not in data:
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                raise ConfigError(f"{source}: missing required key {prefix + f.name!r}")
            continue
        value, hint = data[f.name], hints[f.name]
        if dataclasses.is_dataclass(hint):
            values[f.name] = _build(hint, value, source, f"{prefix}{f.name}.")
        elif not _type_ok(value, hint):
            raise ConfigError(f"{source}: key {prefix + f.name!r} must be {_describe(hint)}, got {_short(value)}")
        else:
            values[f.name] = value
    return cls(**values)


def _describe(hint: Any) -> str:
    return str(hint).replace("typing.", "").replace("<class '", "").replace("'>", "")


def _yaml_problem(error: yaml.YAMLError) -> str:
    """A YAML error on one line: where (line, column) and what."""
    if isinstance(error, yaml.MarkedYAMLError) and error.problem_mark is not None:
        what = ", ".join(part for part in (error.context, error.problem) if part)
        return f"line {error.problem_mark.line + 1}, column {error.problem_mark.column + 1}: {what}"
    return " ".join(str(error).split())


def parse_overrides(overrides: list[str]) -> dict[str, Any]:
    """``["a.b=1", "c=[x, y]"]`` -> ``{"a.b": 1, "c": ["x", "y"]}``, values parsed as YAML."""
    parsed = {}
    for item in overrides:
        key, sep, text = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"override {item!r} must look like key=value (e.g. benchmark.num_rows=500)")
        try:
            parsed[key.strip()] = yaml.safe_load(text)
        except yaml.YAMLError as error:
            raise ConfigError(f"override {item!r}: cannot parse the value: {_yaml_problem(error)}") from None
        except RecursionError:
            raise ConfigError(f"override {item!r}: the value is nested too deeply") from None
        _check_size(parsed[key.strip()], f"override {item!r}", key.strip())
    return parsed


def _set_dotted(data: dict, key: str, value: Any, source: str) -> None:
    parts = key.split(".")
    node = data
    for part in parts[:-1]:
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise ConfigError(f"{source}: cannot set {key!r}: {part!r} is not a mapping")
    node[parts[-1]] = value


def load_raw(path: str | Path) -> dict[str, Any]:
    """The YAML mapping of a config file (safe loader only)."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as error:
        raise ConfigError(f"cannot read config {path}: {error}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise ConfigError(f"{path}: malformed YAML: {_yaml_problem(error)}") from None
    except RecursionError:
        raise ConfigError(f"{path}: the config is nested too deeply") from None
    _check_size(data, str(path))
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: a config must be a YAML mapping")
    data.setdefault("name", path.stem)
    return data


def load_config(path: str | Path, overrides: list[str] | None = None) -> tuple[ExperimentConfig, dict[str, Any]]:
    """Load and validate a config with ``key=value`` overrides; return it and its resolved raw mapping."""
    data = load_raw(path)
    for key, value in parse_overrides(overrides or []).items():
        if key.startswith("sweep."):  # a sweep key is itself dotted: sweep.benchmark.num_rows=[100, 200]
            data.setdefault("sweep", {})[key.removeprefix("sweep.")] = value
        else:
            _set_dotted(data, key, value, f"{path} (override {key}={_short(value)})")
    return validate(data, str(path)), data


def validate(data: dict[str, Any], source: str) -> ExperimentConfig:
    """Validate a raw mapping, including every sweep key and value, and return the typed config."""
    config = _build(ExperimentConfig, data, source)
    if config.execution.executor not in EXECUTORS:
        raise ConfigError(f"{source}: key 'execution.executor' must be one of {', '.join(EXECUTORS)}, got "
                          f"{config.execution.executor!r}")
    if config.execution.workers < 1:
        raise ConfigError(f"{source}: key 'execution.workers' must be at least 1, got {config.execution.workers}")
    problem = local_ray_problem(config.execution)
    if problem:
        raise ConfigError(f"{source}: {problem}")
    for key, values in config.sweep.items():
        if not values:
            raise ConfigError(f"{source}: sweep key {key!r} has no values")
        for value in values:
            trial = copy.deepcopy(data)
            trial["sweep"] = {}
            _set_dotted(trial, key, value, f"{source} (sweep {key})")
            _build(ExperimentConfig, trial, f"{source} (sweep {key}={_short(value)})")
    return config


def expand_cells(data: dict[str, Any], source: str = "config") -> list[dict[str, Any]]:
    """Every cell of the sweep grid times every method, as a resolved mapping with ``method`` keys.

    A cell mapping is the fully resolved config (defaults filled in, sweep values substituted) without the
    ``sweep``, ``execution`` and ``tracking`` sections, and with ``method``/``method_options`` naming one method.
    """
    config = validate(data, source)
    keys = list(config.sweep)
    cells = []
    for values in itertools.product(*(config.sweep[key] for key in keys)):
        base = copy.deepcopy(data)
        base.pop("sweep", None)
        for key, value in zip(keys, values):
            _set_dotted(base, key, value, source)
        resolved = dataclasses.asdict(_build(ExperimentConfig, base, source))
        for key in ("sweep", "execution", "tracking", "methods"):
            resolved.pop(key)
        for method, options in config.methods.items():
            cells.append({**copy.deepcopy(resolved), "method": method, "method_options": dict(options or {})})
    return cells


def config_hash(mapping: dict[str, Any]) -> str:
    """A stable 16-hex-digit hash of a mapping (sorted JSON)."""
    return hashlib.sha256(json.dumps(mapping, sort_keys=True, default=str).encode()).hexdigest()[:16]
