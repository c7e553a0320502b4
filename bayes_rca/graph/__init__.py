"""Step 1, the causal graph: checks and queries of the DAG (:mod:`bayes_rca.graph.dag`, whose public names
are re-exported here) and reading graph files (:mod:`bayes_rca.graph.io`).
"""

from bayes_rca.graph.dag import (
    ancestors_of,
    blameable_nodes,
    causal_graph_from_dependencies,
    check_node,
    parents_of,
    topological_order,
    validate_graph,
)

__all__ = [
    "ancestors_of",
    "blameable_nodes",
    "causal_graph_from_dependencies",
    "check_node",
    "parents_of",
    "topological_order",
    "validate_graph",
]
