"""Experiment configurations: YAML files validated against pydantic models, overrides, sweep grids.

A config names the benchmark, the methods (each with its options), a sweep grid over any dotted key (or keys
joined by ``+`` that move together), how to execute the cells and where to track them. The sections are
pydantic v2 models (:class:`ExperimentConfig`; unknown keys forbidden, strict types); the ``benchmark`` section
is validated against the options model of its family (:mod:`bayes_rca.harness.families`). A wrong key or type is a :class:`ConfigError` naming the file and
the key. Every cell of the grid resolves to a plain dict whose hash identifies it for resuming.
"""

from __future__ import annotations

import copy
import hashlib
import itertools
import json
import sys
import typing
from functools import cache
from pathlib import Path
from typing import Any, Generic, Literal, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from bayes_rca.errors import ConfigError
from bayes_rca.harness.change_benchmark import CHANGE_KINDS
from bayes_rca.harness.families import (
    DEFAULT_FAMILY,
    BenchmarkOptions,
    make_family,
    options_model,
)
from bayes_rca.harness.families.base import UnknownFamilyOptions

__all__ = ["CHANGE_KINDS", "EXECUTORS", "ExecutionConfig", "ExperimentConfig", "TrackingConfig", "config_hash",
           "expand_cells", "load_config", "load_raw", "local_ray_problem", "parse_overrides", "validate"]

Executor = Literal["sequential", "processes", "ray"]
EXECUTORS: tuple[str, ...] = typing.get_args(Executor)
LOCAL_RAY_ADDRESSES = (None, "", "local")  # ray.init starts a new local instance for these


class _Section(BaseModel):
    """A section of a config: unknown keys forbidden, strict types; also built with its fields by position."""

    model_config = ConfigDict(extra="forbid", strict=True)

    def __init__(self, *values: Any, **fields: Any) -> None:
        super().__init__(**dict(zip(type(self).model_fields, values)), **fields)


class ExecutionConfig(_Section):
    """How cells run: ``sequential`` (in process), ``processes`` (local pool) or ``ray`` (the Ray cluster at
    ``ray_address``; see :func:`local_ray_problem`); ``workers`` (at least 1) processes."""

    executor: Executor = "sequential"
    workers: int = Field(2, ge=1)
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


class TrackingConfig(_Section):
    """Where runs are logged; ``uri`` null means ``MLFLOW_TRACKING_URI`` or ``sqlite:///mlflow.db`` here."""

    uri: str | None = None
    experiment: str | None = None


Options = TypeVar("Options", bound=BenchmarkOptions)


class ExperimentConfig(_Section, Generic[Options]):
    """A whole experiment: every combination of ``sweep`` values, times every method, is one cell.

    ``benchmark`` is the options model of its family (``ExperimentConfig[SyntheticOptions]``, ...).
    """

    name: str
    seed: int = 0
    methods: dict[str, dict[str, Any]] = Field(default_factory=lambda: {"bayes_rca": {}})
    benchmark: Options = Field(default_factory=dict, validate_default=True)
    sweep: dict[str, list[Any]] = Field(default_factory=dict)
    execution: ExecutionConfig = Field(default_factory=ExecutionConfig)
    tracking: TrackingConfig = Field(default_factory=TrackingConfig)


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


def _describe(hint: Any) -> str:
    return str(hint).replace("typing.", "").replace("<class '", "").replace("'>", "")


def _family_of(data: dict[str, Any]) -> Any:
    bench = data.get("benchmark", {})
    return bench.get("family", DEFAULT_FAMILY) if isinstance(bench, dict) else DEFAULT_FAMILY


@cache
def _model(options: type[BenchmarkOptions]) -> type[ExperimentConfig]:
    return ExperimentConfig[options]


def _problem(error: ValidationError, model: type[BaseModel], data: Any) -> str:
    """The first problem of a validation error as one line naming the dotted key (the messages of the
    hand-written validator this replaced: unknown key and the known ones, missing key, expected type)."""
    detail = error.errors()[0]
    loc = [part for part in detail["loc"] if isinstance(part, str)]
    keys: list[str] = []
    for part in loc:  # walk the models down to the field the error is about
        fields = model.model_fields if isinstance(model, type) and issubclass(model, BaseModel) else {}
        if part not in fields:
            break
        keys.append(part)
        data = data.get(part) if isinstance(data, dict) else None
        hint = fields[part].annotation
        if isinstance(hint, type) and issubclass(hint, BaseModel):
            model = hint
            continue
        key = ".".join(keys)
        if detail["type"] == "missing":
            return f"missing required key {key!r}"
        if typing.get_origin(hint) is Literal:
            return f"key {key!r} must be one of {', '.join(map(str, typing.get_args(hint)))}, got {_short(data)}"
        if detail["type"] == "greater_than_equal":
            return f"key {key!r} must be at least {detail['ctx']['ge']}, got {_short(data)}"
        return f"key {key!r} must be {_describe(hint)}, got {_short(data)}"
    prefix = "".join(f"{key}." for key in keys)
    where = prefix.rstrip(".") or "the config"
    if detail["type"] == "extra_forbidden":
        unknown = loc[len(keys)] if len(loc) > len(keys) else detail["loc"][-1]
        known = ", ".join(prefix + name for name in model.model_fields)
        family = f" (benchmark family {data.get('family', DEFAULT_FAMILY)!r})" if keys == ["benchmark"] else ""
        return f"unknown key {prefix + str(unknown)!r}; known keys here: {known}{family}"
    if detail["type"] == "missing":
        return f"missing required key {prefix + str(loc[len(keys)])!r}"
    return f"{where} must be a mapping, got {_short(data)}"


def _build(data: Any, source: str) -> ExperimentConfig:
    """The typed config of a raw mapping, its ``benchmark`` section against its family's options."""
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: the config must be a mapping, got {_short(data)}")
    model = _model(options_model(_family_of(data)))
    try:
        return model.model_validate(data)
    except ValidationError as error:
        raise ConfigError(f"{source}: {_problem(error, model, data)}") from None


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


def set_sweep_value(data: dict, key: str, value: Any, source: str) -> None:
    """Set one sweep value: ``key`` is a dotted key, or several joined by ``+`` that move together (a zipped
    sweep: ``benchmark.metric+methods.bayes_rca.mechanisms: [[latency, extrapolating], [availability,
    pass_through]]``), whose value then lists one entry per key."""
    keys = key.split("+")
    if len(keys) == 1:
        _set_dotted(data, key, value, source)
        return
    if not isinstance(value, list | tuple) or len(value) != len(keys):
        raise ConfigError(f"{source}: the zipped sweep key {key!r} needs values of {len(keys)} entries, one per key, "
                          f"got {_short(value)}")
    for one, entry in zip(keys, value):
        _set_dotted(data, one.strip(), entry, source)


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
    config = _build(data, source)
    problem = local_ray_problem(config.execution)
    if problem:
        raise ConfigError(f"{source}: {problem}")
    for key, values in config.sweep.items():
        if not values:
            raise ConfigError(f"{source}: sweep key {key!r} has no values")
        for value in values:
            trial = copy.deepcopy(data)
            trial["sweep"] = {}
            set_sweep_value(trial, key, value, f"{source} (sweep {key})")
            _build(trial, f"{source} (sweep {key}={_short(value)})")
    return config


def resolve(config: ExperimentConfig) -> dict[str, Any]:
    """The resolved mapping of a typed config (defaults filled in; the ``benchmark`` section as its family
    resolves it, :meth:`~bayes_rca.harness.families.BenchmarkFamily.resolve`)."""
    resolved = config.model_dump()
    if isinstance(config.benchmark, UnknownFamilyOptions):  # not registered: the section as given
        return resolved
    resolved["benchmark"] = make_family(config.benchmark.family).resolve(config.benchmark)
    return resolved


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
            set_sweep_value(base, key, value, source)
        built = _build(base, source)  # a sweep may set method options too
        resolved = resolve(built)
        for key in ("sweep", "execution", "tracking", "methods"):
            resolved.pop(key)
        for method, options in built.methods.items():
            cells.append({**copy.deepcopy(resolved), "method": method, "method_options": dict(options or {})})
    return cells


def config_hash(mapping: dict[str, Any]) -> str:
    """A stable 16-hex-digit hash of a mapping (sorted JSON)."""
    return hashlib.sha256(json.dumps(mapping, sort_keys=True, default=str).encode()).hexdigest()[:16]
