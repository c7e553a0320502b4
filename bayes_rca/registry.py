"""Self-registering kinds (mechanism families, RCA methods): one registration rule and one module discovery."""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable, Iterable


def register(registry: dict[str, Callable], key: str, factory: Callable, cls: type, kind: str) -> None:
    """Put ``factory`` (``cls`` or a ``functools.partial`` of it) under ``key``; re-registering the same class
    (a module imported again) is allowed, another class under a taken key is a :class:`TypeError`.

    Examples
    --------
    >>> registry = {}
    >>> register(registry, "a", int, int, "kind")
    >>> register(registry, "a", float, float, "kind")
    Traceback (most recent call last):
    ...
    TypeError: kind name 'a' of float is taken by builtins.int
    """
    taken = registry.get(key)
    owner = getattr(taken, "func", taken)
    if owner is not None and (owner.__module__, owner.__qualname__) != (cls.__module__, cls.__qualname__):
        raise TypeError(f"{kind} name {key!r} of {cls.__qualname__} is taken by {owner.__module__}.{owner.__qualname__}")
    registry[key] = factory


def import_submodules(package: str, path: Iterable[str]) -> None:
    """Import every module of ``package`` (its ``__path__``), so that a class written in a new file registers."""
    for module in pkgutil.iter_modules(path):
        importlib.import_module(f"{package}.{module.name}")
