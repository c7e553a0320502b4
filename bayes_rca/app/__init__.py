"""The application around the library: the ``bayes-rca`` command line (:mod:`~bayes_rca.app.cli`, its parser and
input files), static checks, printed and written reports, the demo and MLflow tracking.
"""
