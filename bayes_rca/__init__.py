"""bayes_rca: Bayesian root-cause analysis of outliers.

Fit a Bayesian structural causal model to normal data, then attribute an outlier at a target node to its
ancestors with Shapley contributions that come with credible intervals::

    model = BayesianSCM(graph).fit(normal_data)
    result = attribute_outliers(model, target="Website", outliers=anomalous_rows)
    result.summary()
"""

from bayes_rca.attribution.api import attribute_outliers
from bayes_rca.attribution.node_scores import NodeAnomalyScores, anomaly_scores
from bayes_rca.attribution.options import MonteCarloOptions, ShapleyOptions
from bayes_rca.attribution.results import AttributionResult
from bayes_rca.attribution.scores import MedianCDFQuantile, ZScore
from bayes_rca.change.api import attribute_distribution_change
from bayes_rca.errors import (
    BayesRCAError,
    DataError,
    GraphError,
    MechanismError,
    VerificationError,
)
from bayes_rca.graph.dag import (
    ancestors_of,
    blameable_nodes,
    causal_graph_from_dependencies,
    validate_graph,
)
from bayes_rca.inference import InferenceOptions
from bayes_rca.model.mechanisms import FAMILIES, Mechanism
from bayes_rca.model.scm import BayesianSCM

__version__ = "0.1.0"

__all__ = [
    "FAMILIES", "AttributionResult", "BayesRCAError", "BayesianSCM", "DataError", "GraphError", "InferenceOptions",
    "Mechanism", "MechanismError", "MedianCDFQuantile", "MonteCarloOptions", "NodeAnomalyScores", "ShapleyOptions",
    "VerificationError", "ZScore", "ancestors_of", "anomaly_scores", "attribute_distribution_change",
    "attribute_outliers", "blameable_nodes", "causal_graph_from_dependencies", "validate_graph",
]
