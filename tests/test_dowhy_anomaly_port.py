"""DoWhy's anomaly-attribution tests (``tests/gcm/test_anomaly_attribution.py``, dowhy 0.14), ported to our API and
run with our **automatic** assignment and default settings, on several seeds.

Every claim of DoWhy's about which node is (or is not) to blame is kept with its threshold. DoWhy's efficiency
claims compare the sum of the contributions with its own Monte Carlo IT score, ``-log`` of a relative frequency
among ``n`` training rows, which saturates at ``log(n + 1)`` (8.5 nats at 5000 rows) where our score is exact;
they are replaced by the exact statements: the contributions of every posterior draw sum to that draw's IT score
(efficiency, to rounding), and the posterior of the IT score covers the IT score of the true system, computed in
closed form.
"""

from __future__ import annotations

import networkx as nx
import numpy as np
import pandas as pd
import pytest
import scipy.stats

from bayes_rca import BayesianSCM, attribute_outliers

CHAIN = nx.DiGraph([("X0", "X1"), ("X1", "X2"), ("X2", "X3")])
# 1. X1 is the root cause (+10 to its noise); 2. X0 is (+10); 3. X0 and X3 both are (+10 each)
CHAIN_OUTLIERS = pd.DataFrame({"X0": [0, 10, 10], "X1": [10, 10, 10], "X2": [10, 10, 10], "X3": [10, 10, 20]})


def _chain_data(seed: int, rows: int = 5000) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x0 = rng.normal(0, 1, rows)
    x1 = x0 + rng.normal(0, 1, rows)
    x2 = x1 + rng.normal(0, 1, rows)
    x3 = x2 + rng.normal(0, 1, rows)
    return pd.DataFrame({"X0": x0, "X1": x1, "X2": x2, "X3": x3})


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_chain_with_linear_relationships_it_score(seed: int):
    """``test_given_simple_causal_chain_with_linear_relationships_when_attribute_anomaly_scores_with_it_score``."""
    model = BayesianSCM(CHAIN, num_draws=200, seed=seed, progress=False).fit(_chain_data(seed))
    assert set(model.fit_report_["family"]) == {"gaussian_root", "linear_gaussian"}  # the automatic assignment
    result = attribute_outliers(model, "X3", CHAIN_OUTLIERS, seed=seed)
    scores = pd.DataFrame(result.contributions.mean(0), columns=result.nodes)  # posterior means, rows x nodes

    assert scores["X0"][0] < 0.5  # not anomalous
    assert scores["X0"][1] > 8  # anomalous, the only root cause
    assert scores["X0"][2] > 4  # anomalous together with X3
    assert scores["X1"][0] > 8  # anomalous, the only root cause
    assert scores["X1"][1] < 0.5  # not anomalous given upstream nodes
    assert scores["X1"][2] < 0.5
    assert np.all(scores["X2"] < 0.5)
    assert np.all(scores["X3"][:2] < 0.5)
    assert scores["X3"][2] > 4  # anomalous together with X0

    # DoWhy's sums against its capped empirical score, as exact statements (see the module docstring)
    np.testing.assert_allclose(result.contributions.sum(-1), result.scores, rtol=1e-9, atol=1e-9)
    median = 0.0  # the true X3 ~ Normal(0, 4): the median-CDF quantile event is |X3| >= |x3|
    true_scores = -scipy.stats.norm.logsf(np.abs(CHAIN_OUTLIERS["X3"].to_numpy() - median) / 2.0) - np.log(2.0)
    low, high = np.quantile(result.scores, [0.005, 0.995], axis=0)
    assert np.all((low <= true_scores) & (true_scores <= high)), (low, true_scores, high)
