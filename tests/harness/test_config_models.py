"""Experiment configs as pydantic models: every shipped config loads, each family's keys are its own, errors
name the file and the key, and cells resolve to the mapping (and hash) of the flat schema before the registry."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from bayes_rca.errors import ConfigError
from bayes_rca.harness.config import (
    ExecutionConfig,
    ExperimentConfig,
    config_hash,
    expand_cells,
    load_config,
)
from bayes_rca.harness.families import BENCHMARK_FAMILIES, make_family
from bayes_rca.harness.families.distribution_change import ChangeOptions
from bayes_rca.harness.families.petshop import PetShopOptions
from bayes_rca.harness.families.synthetic import SyntheticOptions
from bayes_rca.harness.metrics import (
    CELL_METRICS,
    CHANGE_METRICS,
    COMPARED,
    OUTLIER_METRICS,
)

REPO = Path(__file__).resolve().parents[2]
CONFIGS = sorted([*REPO.glob("configs/*.yaml"), *REPO.glob("configs/paper/*.yaml")])
FLAT_BEFORE_REGISTRY = {  # the one flat BenchmarkConfig of every family before issue 17, at its defaults
    "family": "icml2022", "num_nodes": None, "num_rows": 2000, "num_outliers": 5, "min_ancestors": 10,
    "data_root": "../shared/data/petshop", "scenario": "low_traffic", "split": "train", "metric": "latency",
    "statistic": "Average", "min_observed": 10, "specificity": True, "functional": "mean", "max_changes": 3,
    "change_kinds": ["coefficient", "noise_scale", "root_shift"]}


@pytest.mark.parametrize("path", CONFIGS, ids=lambda path: str(path.relative_to(REPO)))
def test_every_shipped_config_loads_with_its_family_options(path):
    config, raw = load_config(path)
    assert isinstance(config, ExperimentConfig)
    family = raw.get("benchmark", {}).get("family", "icml2022")
    assert type(config.benchmark) is BENCHMARK_FAMILIES[family].options
    cells = expand_cells(raw, str(path))
    assert len({config_hash(cell) for cell in cells}) == len(cells)
    assert all(set(cell["benchmark"]) == set(FLAT_BEFORE_REGISTRY) for cell in cells)


@pytest.mark.parametrize("family, options", [("icml2022", SyntheticOptions), ("wide", SyntheticOptions),
                                             ("petshop", PetShopOptions), ("distribution_change", ChangeOptions)])
def test_shipped_families_resolve_to_the_flat_mapping_of_before(family, options):
    """Same resolved mapping, same cell hash: finished cells of earlier sweeps are still found (resume), the
    paper still counts one run per cell_hash."""
    resolved = make_family(family).resolve(options(family=family))
    assert resolved == {**FLAT_BEFORE_REGISTRY, "family": family}
    cell = expand_cells({"name": "x", "methods": {"naive": {}}, "benchmark": {"family": family}})[0]
    assert cell["benchmark"] == resolved
    # the hash of this cell as the flat schema resolved it (computed with the code before issue 17)
    if family == "icml2022":
        assert config_hash(cell) == config_hash({"name": "x", "seed": 0, "benchmark": FLAT_BEFORE_REGISTRY,
                                                 "method": "naive", "method_options": {}})


@pytest.mark.parametrize("benchmark, message", [
    ("{family: icml2022, data_root: x}", ("unknown key 'benchmark.data_root'; known keys here: benchmark.family, "
                                          "benchmark.num_nodes, benchmark.num_rows, benchmark.num_outliers, "
                                          "benchmark.min_ancestors (benchmark family 'icml2022')")),
    ("{family: petshop, num_outliers: 3}", "unknown key 'benchmark.num_outliers'; known keys here: benchmark.family"),
    ("{family: distribution_change, max_changes: many}", "key 'benchmark.max_changes' must be int, got 'many'"),
    ("{family: petshop, specificity: 1}", "key 'benchmark.specificity' must be bool, got 1"),
    ("{family: icml2022, num_nodes: 2.5}", "key 'benchmark.num_nodes' must be int | None, got 2.5"),
    ("[1, 2]", "benchmark must be a mapping, got [1, 2]"),
])
def test_a_key_of_another_family_or_a_wrong_type_names_file_and_key(tmp_path, benchmark, message):
    path = tmp_path / "bad.yaml"
    path.write_text(f"name: x\nbenchmark: {benchmark}\n")
    with pytest.raises(ConfigError) as error:
        load_config(path)
    assert str(error.value).startswith(f"{path}: {message}")


def test_sweep_values_are_checked_against_the_family_they_select(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("name: x\nbenchmark: {num_outliers: 2}\nsweep:\n  benchmark.family: [icml2022, petshop]\n")
    with pytest.raises(ConfigError, match=r"bad.yaml \(sweep benchmark.family='petshop'\): unknown key "
                                          r"'benchmark.num_outliers'.*\(benchmark family 'petshop'\)"):
        load_config(path)
    path.write_text("name: x\nbenchmark: {family: galaxy, anything: 1}\n")  # unknown: loads, check reports it
    _, raw = load_config(path)
    assert expand_cells(raw)[0]["benchmark"] == {"family": "galaxy", "anything": 1}


def test_sections_are_strict_and_forbid_unknown_keys(tmp_path):
    assert ExecutionConfig("processes", 3) == ExecutionConfig(executor="processes", workers=3)
    path = tmp_path / "bad.yaml"
    for text, message in (("name: x\nexecution: {workerz: 2}\n", ("unknown key 'execution.workerz'; known keys "
                                                                    "here: execution.executor, execution.workers")),
                          ("name: x\nseed: true\n", "key 'seed' must be int, got True"),
                          ("name: x\ntracking: {uri: 5}\n", "key 'tracking.uri' must be str | None, got 5"),
                          ("name: x\nmethods: {naive: null}\n", "key 'methods' must be dict[str, dict[str, Any]]"),
                          ("name: x\nsurprise: 1\n", "unknown key 'surprise'; known keys here: name, seed")):
        path.write_text(text)
        with pytest.raises(ConfigError, match=f"^{path}: " + message.replace("[", r"\[").replace("|", r"\|")):
            load_config(path)
    assert yaml.safe_load(yaml.safe_dump(expand_cells({"name": "x"})[0]))["benchmark"] == FLAT_BEFORE_REGISTRY


def test_metric_tables_are_the_one_source_of_the_comparison_columns():
    assert set(COMPARED) == {"ndcg_at_1", "ndcg_at_3", "ndcg_at_10", "top1_recall", "top3_recall",
                             "shapley_top1_agreement", "oracle_ndcg_at_1", "coverage_90", "interval_width_90",
                             "top_cause_brier", "contribution_mae", "named_recall", "false_alarms", "specificity",
                             "failed_cases", "fit_seconds", "attribute_seconds"}
    assert all(metric.of is not None for metric in (*OUTLIER_METRICS.values(), *CHANGE_METRICS.values()))
    assert all(metric.of is None for metric in CELL_METRICS.values())
