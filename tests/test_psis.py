"""The vectorised PSIS-LOO against arviz's own (the estimator it replaces on the fitting path)."""

from __future__ import annotations

import numpy as np
import pytest

from bayes_rca.inference.psis import _arviz_loo, psis_loo_pointwise


@pytest.mark.parametrize("kind", ["gaussian", "heavy", "outlying", "tied"])
def test_matches_arviz_loo_pointwise(kind):
    rng = np.random.default_rng({"gaussian": 0, "heavy": 1, "outlying": 2, "tied": 3}[kind])
    draws, rows = 100, 400
    if kind == "gaussian":
        log_lik = rng.normal(-1.0, 0.2, (draws, rows))
    elif kind == "heavy":
        log_lik = -np.abs(rng.standard_t(1.5, (draws, rows))) * rng.uniform(0.1, 5.0, rows)
    elif kind == "outlying":
        log_lik = np.where(rng.random((draws, rows)) < 0.05, -30.0, rng.normal(-1.0, 1.0, (draws, rows)))
    else:  # ties in the tail go to arviz itself
        log_lik = np.round(rng.normal(-1.0, 0.5, (draws, rows)), 1)
    elpd, k = psis_loo_pointwise(log_lik)
    reference, reference_k = _arviz_loo(log_lik)
    np.testing.assert_allclose(elpd, reference, rtol=0, atol=1e-10)
    finite = np.isfinite(reference_k)
    np.testing.assert_allclose(k[finite], reference_k[finite], rtol=0, atol=1e-10)
    assert (np.isfinite(k) == finite).all()
