"""``bayes-rca paper run``: the paper's studies, each a harness config, run (or resumed) one after the other."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from bayes_rca.harness.runner import SweepFailed, run_experiment

PAPER_CONFIGS = Path("configs/paper")
ACCURACY_CONFIGS = ("configs/icml2022.yaml", "configs/petshop.yaml")


def paper_configs(folder: str | Path = PAPER_CONFIGS) -> list[Path]:
    """The study configs under ``folder`` (sorted)."""
    return sorted(Path(folder).glob("*.yaml"))


def run_studies(configs: list[str | Path] | None = None, overrides: list[str] | None = None,
                output: str | Path = "outputs", report: Callable[[str], None] = print) -> dict[str, str]:
    """Run every config in ``configs`` (default: :func:`paper_configs`) with the harness; finished cells of an
    earlier, interrupted run are skipped. Return the sweep (parent) run id of each config."""
    parents = {}
    for config in configs or paper_configs():
        report(f"study {config}")
        try:
            parents[str(config)], _ = run_experiment(config, overrides, output=output, report=report)
        except SweepFailed as failure:  # recorded in MLflow; the other studies still run
            report(f"study {config}: {failure}")
            parents[str(config)] = failure.parent_id
    return parents
