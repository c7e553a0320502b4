"""The paper pipeline: studies as harness configs (``configs/paper/``), logged MLflow runs -> LaTeX tables and
figures (``bayes-rca paper run`` / ``bayes-rca paper build``; see ``paper/README.md``)."""

from bayes_rca.paper.build import DEFAULT_EXPERIMENTS, BuildReport, build_paper

__all__ = ["DEFAULT_EXPERIMENTS", "BuildReport", "build_paper"]
