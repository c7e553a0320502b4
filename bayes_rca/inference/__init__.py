"""Posterior inference engines for mechanisms."""

from bayes_rca.inference.engines import (
    InferenceOptions,
    Method,
    PosteriorFit,
    fit_posterior,
)

__all__ = ["InferenceOptions", "Method", "PosteriorFit", "fit_posterior"]
