"""AttributionResult: the InferenceData layout, summaries recomputed independently, plot and netCDF files."""

from __future__ import annotations

import arviz as az
import numpy as np
import pandas as pd
import pytest

from bayes_rca import BayesianSCM, DataError, attribute_outliers
from tests.conftest import PLAYERS, TARGET


@pytest.fixture(scope="module")
def result(fitted, outliers):
    return attribute_outliers(fitted, TARGET, outliers)


@pytest.fixture(scope="module")
def two_chain_result(system, training_data, outliers):
    model = BayesianSCM(system.graph, num_draws=60, num_chains=2, seed=1, progress=False).fit(training_data)
    return attribute_outliers(model, TARGET, outliers)


def shortest_interval(draws: np.ndarray, prob: float) -> tuple[float, float]:
    """The narrowest interval holding ceil(prob * n) of the sorted draws (independent of arviz)."""
    ordered = np.sort(draws)
    n = len(ordered)
    keep = int(np.floor(prob * n))
    widths = ordered[keep:] - ordered[:n - keep]
    start = int(np.argmin(widths))
    return ordered[start], ordered[start + keep]


def test_inference_data_dims_and_values(result):
    idata = result.to_inference_data()
    contribution = idata.posterior["contribution"]
    assert contribution.dims == ("chain", "draw", "outlier", "node")
    assert contribution.shape == (1, 100, 3, 6)
    assert list(contribution["node"].values) == result.nodes == ["A", "B", "C", "D", "E", "F"]
    assert list(contribution["outlier"].values) == ["0", "1", "2"]
    np.testing.assert_array_equal(contribution.values[0], result.contributions)
    assert idata.posterior["it_score"].dims == ("chain", "draw", "outlier")
    assert idata.posterior["noise"].dims == ("chain", "draw", "outlier", "player")
    assert list(idata.posterior["noise"]["player"].values) == PLAYERS
    assert idata.sample_stats["contribution_mcse"].dims == ("chain", "draw", "outlier", "node")
    assert idata.attrs["target"] == TARGET and idata.attrs["estimator"] == "analytic"
    # efficiency holds in the stored data too
    np.testing.assert_allclose(contribution.sum("node").values, idata.posterior["it_score"].values, rtol=1e-9)


def test_chains_are_laid_out_chain_by_chain(two_chain_result):
    idata = two_chain_result.to_inference_data()
    contribution = idata.posterior["contribution"].values
    assert contribution.shape == (2, 30, 3, 6)
    np.testing.assert_array_equal(contribution.reshape(60, 3, 6), two_chain_result.contributions)
    np.testing.assert_array_equal(contribution[1, 0], two_chain_result.contributions[30])


def test_summary_recomputed_independently(result):
    summary = result.summary()
    assert list(summary.columns) == ["mean", "median", "hdi_5%", "hdi_95%", "p_top_cause", "mcse"]
    assert summary.index.names == ["outlier", "node"]
    for row in range(3):
        part = summary.loc[row]
        assert sorted(part.index) == sorted(PLAYERS)  # players only by default
        assert part["mean"].is_monotonic_decreasing
        draws = result.contributions[:, row]
        winners = np.argmax(draws[:, [result.nodes.index(p) for p in PLAYERS]], axis=1)
        for k, player in enumerate(PLAYERS):
            values = draws[:, result.nodes.index(player)]
            assert part.loc[player, "mean"] == pytest.approx(values.mean(), rel=1e-12)
            assert part.loc[player, "median"] == pytest.approx(np.median(values), rel=1e-12)
            low, high = part.loc[player, ["hdi_5%", "hdi_95%"]]
            assert low <= part.loc[player, "median"] <= high
            assert np.mean((values >= low) & (values <= high)) >= 0.9
            expected_low, expected_high = shortest_interval(values, 0.9)
            assert (low, high) == pytest.approx((expected_low, expected_high), rel=1e-12, abs=1e-12)
            assert part.loc[player, "p_top_cause"] == pytest.approx(np.mean(winners == k))
        assert part["p_top_cause"].sum() == pytest.approx(1.0)
        assert (part["mcse"] == 0.0).all()


def test_summary_with_other_interval_and_all_nodes(result):
    summary = result.summary(hdi_prob=0.5, all_nodes=True)
    assert {"hdi_25%", "hdi_75%"} <= set(summary.columns)
    for row in range(3):
        part = summary.loc[row]
        assert sorted(part.index) == sorted(result.nodes)
        assert (part.loc[["E", "F"], ["mean", "median", "hdi_25%", "hdi_75%", "p_top_cause"]] == 0.0).all().all()
        assert (part["hdi_25%"] <= part["median"]).all() and (part["median"] <= part["hdi_75%"]).all()
        assert part["p_top_cause"].sum() == pytest.approx(1.0)


def test_score_summary_and_top_cause_probability(result):
    scores = result.score_summary()
    assert list(scores.index) == [0, 1, 2] and scores.index.name == "outlier"
    np.testing.assert_allclose(scores["mean"].to_numpy(), result.scores.mean(0), rtol=1e-12)
    assert (scores["hdi_5%"] <= scores["median"]).all() and (scores["median"] <= scores["hdi_95%"]).all()
    top = result.top_cause_probability()
    assert list(top.columns) == PLAYERS and list(top.index) == [0, 1, 2]
    np.testing.assert_allclose(top.sum(axis=1).to_numpy(), 1.0)
    assert top.loc[0, "B"] > 0.9 and top.loc[2, "D"] > 0.9
    summary = result.summary()
    for row in range(3):
        for player in PLAYERS:
            assert top.loc[row, player] == summary.loc[(row, player), "p_top_cause"]


def test_pooled_summary_shares(result):
    pooled = result.pooled_summary()
    players = [result.nodes.index(p) for p in PLAYERS]
    flat = result.contributions[..., players].reshape(-1, len(players))
    winners = np.bincount(flat.argmax(1), minlength=len(players)) / len(flat)
    for k, player in enumerate(PLAYERS):
        assert pooled.loc[player, "p_top_cause"] == pytest.approx(winners[k])
        assert pooled.loc[player, "mean"] == pytest.approx(flat[:, k].mean(), rel=1e-12)
    assert pooled["mean"].is_monotonic_decreasing


def test_plot_writes_a_png(result, tmp_path):
    import matplotlib.pyplot as plt

    path = tmp_path / "contributions.png"
    figure = result.plot(outlier=1, path=path)
    assert path.stat().st_size > 5_000
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    labels = [label.get_text() for label in figure.axes[0].get_yticklabels()]
    assert sorted(labels) == sorted(PLAYERS)
    plt.close("all")


def test_netcdf_round_trip(result, tmp_path):
    path = tmp_path / "attribution.nc"
    result.to_inference_data().to_netcdf(path)
    loaded = az.from_netcdf(path)
    np.testing.assert_array_equal(loaded.posterior["contribution"].values[0], result.contributions)
    np.testing.assert_array_equal(loaded.posterior["it_score"].values[0], result.scores)
    np.testing.assert_array_equal(loaded.posterior["noise"].values[0], result.noise)
    np.testing.assert_array_equal(loaded.sample_stats["contribution_mcse"].values[0], result.standard_errors)
    assert list(loaded.posterior["node"].values) == result.nodes
    assert loaded.attrs["target"] == TARGET
    assert loaded.attrs["feature_map"] == "median_cdf_quantile"


def test_model_posterior_as_inference_data(fitted):
    idata = fitted.to_inference_data()
    assert idata.posterior["D:weight"].shape == (1, 100, 2)
    np.testing.assert_array_equal(idata.posterior["B:bias"].values[0], fitted.node("B").params["bias"].numpy())


def test_duplicate_outlier_labels_are_rejected_or_handled(oracle, system):
    rows = pd.concat([system.outlier({"B": 4.0}), system.outlier({"C": 4.0})])  # both labelled 0
    try:
        result = attribute_outliers(oracle, TARGET, rows)
    except DataError as error:
        assert "duplicate" in str(error)
        return
    assert result.top_cause_probability().shape == (2, len(PLAYERS))
