"""Each node's own anomaly score given its parents (DoWhy's ``gcm.anomaly_scores``), per posterior draw.

The score of node ``j`` in an outlier row is the IT score of its value under its conditional distribution given its
parents' observed values, ``-log P(tau(X_j) >= tau(x_j) | pa_j)`` with the median-CDF quantile map
``tau(x) = |F(x | pa_j) - 1/2|``: ``-log min(1, 2 min(P(X_j <= x_j | pa_j), P(X_j >= x_j | pa_j)))``, the
two-sided tail. For additive noise it is the two-sided tail of the node's abducted noise. It answers "which nodes
are anomalous given their causes" (the traversal baselines' question) without any game; unlike the Shapley
contributions of :func:`~bayes_rca.attribute_outliers` the scores do not add up to the target's score.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from bayes_rca.attribution.results import HDI_PROB, _summarise
from bayes_rca.data.checks import validate_outliers
from bayes_rca.errors import DataError
from bayes_rca.model.node import FittedNode
from bayes_rca.model.scm import BayesianSCM


@dataclass
class NodeAnomalyScores:
    """Posterior anomaly scores of nodes given their parents, for one or more rows.

    Attributes
    ----------
    nodes : list
        The scored nodes; the last axis of ``draws``.
    outliers : list
        Labels of the rows.
    draws : numpy.ndarray
        ``(D, R, K)``: each node's score (nats) in each row under each posterior draw.
    """

    nodes: list[Hashable]
    outliers: list[Hashable]
    draws: np.ndarray

    def mean(self) -> pd.DataFrame:
        """Posterior mean scores, rows x nodes."""
        return pd.DataFrame(self.draws.mean(0), index=pd.Index(self.outliers, name="outlier"),
                            columns=pd.Index(self.nodes, name="node"))

    def summary(self, hdi_prob: float = HDI_PROB) -> pd.DataFrame:
        """Per row and node: posterior mean, median, HDI and P(the node has the largest score), sorted by mean."""
        frames = [_summarise(self.draws[:, row], self.nodes, hdi_prob).sort_values("mean", ascending=False)
                  for row in range(len(self.outliers))]
        return pd.concat(frames, keys=self.outliers, names=["outlier"]).rename(columns={"p_top_cause": "p_top"})


def node_log_tail(node: FittedNode, value: torch.Tensor, parents: torch.Tensor) -> torch.Tensor:
    """``log min(1, 2 min(P(X <= x | pa), P(X >= x | pa)))`` per posterior draw: ``(D, R)`` for ``value (R,)``
    and ``parents (R, p)`` in data units."""
    if node.mechanism.invertible:  # the noise itself (in a widened noise's own units beyond the range)
        at_most = at_least = node.abduct(value, parents)
    else:  # the value bounds the noise to an interval
        location = node.location(parents.unsqueeze(0).expand(node.num_draws, *parents.shape))
        observed = value.unsqueeze(0).expand_as(location)
        at_most, at_least = node.noise_at_most(location, observed), node.noise_at_least(location, observed)
    noise = node.noise()
    smaller = torch.minimum(noise.log_cdf(at_most), noise.log_sf(at_least))
    return (smaller + math.log(2.0)).clamp_max(0.0)


def anomaly_scores(model: BayesianSCM, outliers: pd.DataFrame | pd.Series,
                   nodes: Sequence[Hashable] | None = None) -> NodeAnomalyScores:
    """Each node's anomaly score given its parents' observed values, per posterior draw (no game).

    Parameters
    ----------
    model : BayesianSCM
        A fitted model.
    outliers : pandas.DataFrame or pandas.Series
        Rows (one Series = one row) with columns for the scored nodes and their parents, all observed.
    nodes : sequence, optional
        The nodes to score (default: every node of the graph).

    Returns
    -------
    NodeAnomalyScores
        ``draws (D, R, K)`` in nats; ``0`` at the conditional median, ``-log(2 P(N >= |n|))`` for symmetric
        additive noise ``n`` away from it.

    Raises
    ------
    DataError
        An unknown node, or a missing, non-numeric or non-finite value of a scored node or of one of its parents
        (row and column named).

    Examples
    --------
    >>> import networkx as nx
    >>> from bayes_rca import BayesianSCM
    >>> from bayes_rca.data.synthetic import random_linear_system
    >>> graph = nx.DiGraph([("db", "api"), ("api", "web")])
    >>> system = random_linear_system(graph, seed=0)
    >>> model = BayesianSCM(graph, num_draws=100, progress=False).fit(system.sample(500, seed=1))
    >>> scores = anomaly_scores(model, system.outlier({"api": 6.0}))  # api's noise 6 sd out
    >>> scores.mean().idxmax(axis=1).tolist()  # the node that is anomalous given its causes
    ['api']
    """
    model._check_fitted()
    order = list(model.graph) if nodes is None else list(nodes)
    unknown = [node for node in order if node not in model.graph]
    if unknown:
        raise DataError(f"nodes {unknown!r} are not in the model's graph")
    needed = list(dict.fromkeys([p for node in order for p in model.graph.predecessors(node)] + order))
    frame = validate_outliers(outliers, needed)
    columns = []
    for name in order:
        fitted = model.nodes_[name]
        value = torch.tensor(frame[name].to_numpy(), dtype=torch.float64)
        parents = torch.tensor(frame[list(fitted.parents)].to_numpy(), dtype=torch.float64).reshape(len(frame), -1)
        columns.append(-node_log_tail(fitted, value, parents))
    draws = torch.stack(columns, -1).cpu().numpy()
    return NodeAnomalyScores(order, list(frame.index), draws)
