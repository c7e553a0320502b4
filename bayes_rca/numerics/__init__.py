"""Numerical helpers: special functions in log space (:mod:`~bayes_rca.numerics.special`) and small linear
algebra on one thread (:mod:`~bayes_rca.numerics.threads`).
"""
