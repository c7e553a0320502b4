"""Real data sets, loaded from files on disk (nothing is downloaded)."""

from bayes_rca.data.datasets.petshop import (
    PetShopIssue,
    PetShopScenario,
    load_scenario,
    scenario_names,
)

__all__ = ["PetShopIssue", "PetShopScenario", "load_scenario", "scenario_names"]
