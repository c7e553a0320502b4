"""Step 3, the model: mechanism families (:mod:`bayes_rca.model.mechanisms`), noise laws, fitted nodes, the automatic
assignment of families and the Bayesian SCM (:mod:`bayes_rca.model.scm`). Posterior inference is :mod:`bayes_rca.inference`.
"""
