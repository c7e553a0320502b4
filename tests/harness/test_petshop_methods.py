"""The PetShop baselines: the MAD traversal checked by hand on tiny graphs, and DoWhy run as the PetShop authors ran it.

Most MAD-traversal tests use ``mad_scale=1.0`` (the raw MAD) and training columns ``0, 1, ..., 10``: median 5 and
raw MAD 3 (the deviations 5,4,3,2,1,0,1,2,3,4,5 have median 3), so a value ``5 + 3 s`` scores exactly ``s``.
"""

from __future__ import annotations

import math

import networkx as nx
import numpy as np
import pandas as pd
import pytest

from bayes_rca.data.synthetic import random_linear_system
from bayes_rca.errors import BayesRCAError, DataError
from bayes_rca.harness.methods import METHODS, make_method
from bayes_rca.harness.methods.dowhy_bootstrap import DoWhyBootstrap
from bayes_rca.harness.methods.dowhy_point import DoWhyPoint
from bayes_rca.harness.methods.mad_traversal import MADTraversal

RAMP = np.arange(11.0)  # median 5, raw MAD 3


def value(score: float) -> float:
    """The value that scores ``score`` under a RAMP column's raw-MAD detector."""
    return 5.0 + 3.0 * score


def ramp_data(graph: nx.DiGraph, **columns: np.ndarray) -> pd.DataFrame:
    """11 training rows: every node a RAMP column unless given."""
    return pd.DataFrame({node: columns.get(node, RAMP) for node in graph})


def fitted(edges: list[tuple[str, str]], min_points: int = 10, **columns: np.ndarray) -> MADTraversal:
    graph = nx.DiGraph(edges)
    return MADTraversal(mad_scale=1.0, min_points=min_points).fit(graph, ramp_data(graph, **columns))


def row(**values: float) -> pd.DataFrame:
    return pd.DataFrame({node: [val] for node, val in values.items()})


def test_detectors_by_hand():
    method = fitted([("A", "B"), ("B", "C")])
    detector = method.detectors_["A"]
    assert (detector.center, detector.scale, detector.threshold) == (5.0, 3.0, 5.0)
    scores, anomalous = method.anomaly_scores(row(A=value(5.0), B=value(5.1), C=value(-5.5)).iloc[0])
    assert scores.to_dict() == pytest.approx({"A": 5.0, "B": 5.1, "C": 5.5})
    # Strictly above the threshold: a score of exactly 5 is normal.
    assert anomalous.to_dict() == {"A": False, "B": True, "C": True}


def test_default_scale_is_dowhys_median_deviation_scorer():
    """DoWhy's MedianDeviationScorer divides by statsmodels' MAD, normalised to the Gaussian sd (MAD / 0.6745)."""
    from dowhy.gcm.anomaly_scorers import MedianDeviationScorer

    graph = nx.DiGraph([("A", "B")])
    data = pd.DataFrame(np.random.default_rng(0).standard_normal((40, 2)), columns=["A", "B"])
    method = MADTraversal().fit(graph, data)
    reference = MedianDeviationScorer()
    reference.fit(data["A"].to_numpy())
    for x in (-3.0, 0.2, 4.0):
        assert method.detectors_["A"].score(x) == pytest.approx(float(reference.score(np.array([x]))[0]))
    raw = MADTraversal(mad_scale=1.0).fit(graph, data).detectors_["A"].scale
    assert method.detectors_["A"].scale == pytest.approx(raw / 0.6744897501960817)


def test_constant_column_flags_any_deviation():
    """std 0: score |x - mean| with threshold 0, so the exact constant is normal and any deviation anomalous.

    (A column whose np.std is a rounding residue, e.g. eleven 0.3s, takes the MAD route as in the PetShop code:
    see test_mad_traversal_faithful.py.)
    """
    method = fitted([("K", "T")], K=np.full(11, 0.5))
    detector = method.detectors_["K"]
    assert (detector.center, detector.threshold) == (0.5, 0.0)
    _, anomalous = method.anomaly_scores(row(K=0.5, T=5.0).iloc[0])
    assert not anomalous["K"]
    answer = method.attribute("T", row(K=0.501, T=value(7.0)))
    # K is the only candidate (T has an anomalous parent): score |0.501 - 0.5| + 7 along K -> T.
    assert answer.reported == ["K"]
    assert answer.scores["K"] == pytest.approx(0.001 + 7.0)
    assert answer.scores["T"] == -np.inf


def test_zero_mad_with_positive_std():
    """MAD 0 but std > 0: no deviation scores 0/0 := 0 (normal), any deviation scores inf (anomalous)."""
    method = fitted([("M", "T"), ("N", "T")], M=np.array([1.0] * 10 + [2.0]))
    assert method.detectors_["M"].scale == 0.0 and method.detectors_["M"].threshold == 5.0
    scores, anomalous = method.anomaly_scores(row(M=1.0, N=5.0, T=5.0).iloc[0])
    assert scores["M"] == 0.0 and not anomalous["M"]
    # Two candidates: M (score inf) ranks above N (finite), inf included.
    answer = method.attribute("T", row(M=1.5, N=value(9.0), T=value(6.0)))
    assert answer.scores["M"] == np.inf
    assert answer.scores["N"] == pytest.approx(15.0)
    assert answer.scores["T"] == -np.inf
    assert answer.reported == ["M", "N"]


def test_too_few_training_points_means_no_detector():
    """9 observed values (NaN dropped) < min_points = 10: never anomalous, however far off."""
    sparse = np.array([*np.arange(9.0), np.nan, np.nan])
    method = fitted([("S", "T")], S=sparse)
    assert "S" not in method.detectors_ and "T" in method.detectors_
    answer = method.attribute("T", row(S=1e9, T=value(6.0)))
    assert answer.reported == ["T"] and answer.scores["S"] == -np.inf
    assert "S" in fitted([("S", "T")], min_points=9, S=sparse).detectors_


def test_target_not_anomalous_reports_nothing():
    method = fitted([("A", "B"), ("B", "C")])
    answer = method.attribute("C", row(A=value(50.0), B=value(40.0), C=value(4.9)))
    assert answer.reported == []
    assert list(answer.scores.index) == ["A", "B", "C"] and (answer.scores == -np.inf).all()
    assert MADTraversal.abstains


def test_path_sum_takes_the_best_all_anomalous_path():
    """A -> B -> D, A -> C -> D, E -> D, target D, all anomalous: A and E are the candidates."""
    method = fitted([("A", "B"), ("A", "C"), ("B", "D"), ("C", "D"), ("E", "D")])
    answer = method.attribute("D", row(A=value(10.0), B=value(6.0), C=value(8.0), D=value(7.0), E=value(20.0)))
    # A: 10 + max(6, 8) + 7 = 25 (through C); E: 20 + 7 = 27.
    assert answer.scores["A"] == pytest.approx(25.0)
    assert answer.scores["E"] == pytest.approx(27.0)
    assert answer.scores[["B", "C", "D"]].eq(-np.inf).all()
    assert answer.reported == ["E", "A"]


def test_candidate_without_an_all_anomalous_path_is_dropped():
    """A -> B -> C with B normal: A is a candidate but its only path to C crosses B; C is its own root cause,
    scored 0 as in the PetShop code (the edgeless path [C] has no nodes on its edges)."""
    method = fitted([("A", "B"), ("B", "C")])
    answer = method.attribute("C", row(A=value(30.0), B=value(1.0), C=value(8.0)))
    assert answer.reported == ["C"]
    assert answer.scores["C"] == 0.0
    assert answer.scores["A"] == -np.inf and answer.scores["B"] == -np.inf


def test_anomalous_parent_outside_the_paths_disqualifies():
    """An anomalous node with an anomalous parent is no candidate even off the path: F -> A -> T, all anomalous."""
    method = fitted([("F", "A"), ("A", "T")])
    answer = method.attribute("T", row(F=value(6.0), A=value(7.0), T=value(8.0)))
    assert answer.reported == ["F"] and answer.scores["F"] == pytest.approx(21.0)


def test_missing_values_in_the_row():
    """A NaN scores 0 (normal): with B missing, A has no all-anomalous path to C; a NaN target is not anomalous,
    so there is no root cause (as in the PetShop code). A missing column of a node with a detector is an error."""
    method = fitted([("A", "B"), ("B", "C")])
    answer = method.attribute("C", row(A=value(30.0), B=math.nan, C=value(8.0)))
    assert answer.reported == ["C"] and answer.scores["A"] == -np.inf
    assert method.attribute("C", row(A=value(30.0), B=5.0, C=math.nan)).reported == []
    with pytest.raises(DataError, match="'B'"):
        method.attribute("C", row(A=value(30.0), C=value(8.0)))
    with pytest.raises(DataError, match="no rows"):
        method.attribute("C", row(A=1.0, B=1.0, C=1.0).iloc[:0])
    with pytest.raises(RuntimeError, match="not fitted"):
        MADTraversal().attribute("C", row(A=1.0, B=1.0, C=1.0))


def test_registry_builds_the_petshop_methods():
    assert isinstance(make_method("mad_traversal"), MADTraversal)
    assert make_method("mad_traversal", threshold=3.0).threshold == 3.0
    petshop = make_method("dowhy_petshop")
    assert isinstance(petshop, DoWhyPoint) and {"dowhy_petshop", "mad_traversal"} <= set(METHODS)
    assert (petshop.quality, petshop.attribute_mean_deviation, petshop.anomaly_scorer) == (
        "better", True, "mean_deviation")
    with pytest.raises(BayesRCAError, match="it, mean_deviation"):
        DoWhyPoint(anomaly_scorer="zscore")
    with pytest.raises(BayesRCAError, match="mad_scale"):
        MADTraversal(mad_scale="robust")


# DoWhy: a 3-node linear system, 300 rows (as the DoWhy tests of test_methods.py).
@pytest.fixture(scope="module")
def small():
    system = random_linear_system(nx.DiGraph([("X0", "X1"), ("X1", "X2")]), seed=0)
    return system, system.sample(300, seed=0)


def test_dowhy_mean_deviation_attribution(small):
    system, data = small
    method = DoWhyPoint(attribute_mean_deviation=True, anomaly_scorer="mean_deviation",
                        num_distribution_samples=500).fit(system.graph, data)
    answer = method.attribute("X2", system.outlier({"X0": 6.0}))
    assert np.isfinite(answer.scores.to_numpy()).all()
    assert answer.scores.idxmax() == "X0"
    nan_row = system.outlier({"X0": 6.0}).assign(X1=np.nan)
    with pytest.raises(DataError, match="column 'X1'"):
        method.attribute("X2", nan_row)
    bootstrap = DoWhyBootstrap(num_bootstrap_resamples=2, num_distribution_samples=200).fit(system.graph, data)
    with pytest.raises(DataError, match="column 'X1'"):
        bootstrap.attribute("X2", nan_row)
