"""Steps 5-8, attributing an outlier: abduction (:mod:`~bayes_rca.attribution.abduction`, missing values in
:mod:`~bayes_rca.attribution.latent`) -> the counterfactual game (:mod:`~bayes_rca.attribution.linear_game`,
:mod:`~bayes_rca.attribution.scale_mixture_game`, :mod:`~bayes_rca.attribution.monte_carlo_game`; outlier scores in
:mod:`~bayes_rca.attribution.scores`) -> Shapley values (:mod:`~bayes_rca.attribution.shapley`) -> verification
(:mod:`~bayes_rca.attribution.verification`) -> the result (:mod:`~bayes_rca.attribution.results`).

:func:`bayes_rca.attribution.api.attribute_outliers` composes them (options in :mod:`~bayes_rca.attribution.options`).
This file imports nothing, so that a step's module can be imported without the others (no circular imports).
"""
