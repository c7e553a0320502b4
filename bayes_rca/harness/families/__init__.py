"""Benchmark families of the harness, one file each, and the registry that names them.

Every module of this package is imported with it, and a :class:`BenchmarkFamily` subclass that sets ``name``
registers itself (:mod:`bayes_rca.registry`), so a config's ``benchmark.family`` knows it: the synthetic families
(:mod:`.synthetic`), the PetShop data set (:mod:`.petshop`) and ``distribution_change``
(:mod:`.distribution_change`).
"""

from __future__ import annotations

from bayes_rca.harness.families.base import (
    BENCHMARK_FAMILIES,
    DEFAULT_FAMILY,
    BenchmarkFamily,
    BenchmarkOptions,
    OutlierFamily,
    family_class,
    make_family,
    options_model,
)
from bayes_rca.registry import import_submodules

import_submodules(__name__, __path__)  # a family written in a new file here is registered

__all__ = [
    "BENCHMARK_FAMILIES",
    "DEFAULT_FAMILY",
    "BenchmarkFamily",
    "BenchmarkOptions",
    "OutlierFamily",
    "family_class",
    "make_family",
    "options_model",
]
