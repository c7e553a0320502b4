"""Step 2, the data: training data and outlier rows checked against the graph (:mod:`bayes_rca.data.checks`, whose
public names are re-exported here), monitoring exports (:mod:`bayes_rca.data.tables`), real data sets
(:mod:`bayes_rca.data.datasets`) and synthetic systems with known parameters (:mod:`bayes_rca.data.synthetic`).
"""

from bayes_rca.data.checks import (
    MAX_MAGNITUDE,
    NEAR_CONSTANT_SD,
    magnitude_problem,
    near_constant_columns,
    near_constant_message,
    near_misses,
    row_label,
    validate_complete,
    validate_outliers,
    validate_training_data,
)

__all__ = [
    "MAX_MAGNITUDE",
    "NEAR_CONSTANT_SD",
    "magnitude_problem",
    "near_constant_columns",
    "near_constant_message",
    "near_misses",
    "row_label",
    "validate_complete",
    "validate_outliers",
    "validate_training_data",
]
