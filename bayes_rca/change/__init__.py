"""Distribution-change attribution: which mechanisms changed between two periods (:mod:`~bayes_rca.change.api`;
change functionals, games, results and reports in :mod:`~bayes_rca.change.functionals`, :mod:`~bayes_rca.change.games`,
:mod:`~bayes_rca.change.results`, :mod:`~bayes_rca.change.report`).
"""
