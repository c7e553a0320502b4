"""The ``bayes-rca paper`` subcommands: ``run`` (the studies), ``bench`` (benchmark runs), ``build`` (the paper)."""

from __future__ import annotations

import argparse
from typing import Any

from bayes_rca.errors import BayesRCAError

TRACKING_HELP = "MLflow store (default: MLFLOW_TRACKING_URI or sqlite:///mlflow.db here)"


def _run(args: argparse.Namespace, console: Any) -> None:
    from bayes_rca.paper.studies import paper_configs, run_studies

    configs = args.configs or paper_configs()
    if not configs:
        raise BayesRCAError("no study configs: none given and configs/paper/ has no *.yaml (run from the project root)")
    parents = run_studies(configs, args.overrides, output=args.output,
                          report=lambda line: console.print(line, markup=False, soft_wrap=True))
    for config, parent in parents.items():
        console.print(f"{config}: sweep parent run {parent}", markup=False)


def _bench(args: argparse.Namespace, console: Any) -> None:
    from bayes_rca.paper.bench import run_bench

    run_bench(args.ancestors, args.nodes, args.rows, args.skip_dowhy, args.seed, args.tracking_uri,
              report=lambda line: console.print(line, markup=False, soft_wrap=True))


def _build(args: argparse.Namespace, console: Any) -> int:
    from bayes_rca.paper.build import build_paper

    build_paper(args.experiments, args.out, args.tracking_uri, pdf=not args.no_pdf,
                report=lambda line: console.print(line, markup=False, soft_wrap=True))
    return 0


def add_paper_commands(commands: Any) -> None:
    """Add ``paper run|bench|build`` to the ``bayes-rca`` subcommands ``commands``."""
    from bayes_rca.paper.build import DEFAULT_EXPERIMENTS

    paper = commands.add_parser("paper", help="the paper's studies and its LaTeX tables and figures from MLflow runs")
    actions = paper.add_subparsers(dest="action", required=True)
    run = actions.add_parser("run", help="run (or resume) the studies: every config under configs/paper/")
    run.add_argument("configs", nargs="*", help="study configs (default: configs/paper/*.yaml); e.g. also "
                                                "configs/icml2022.yaml configs/petshop.yaml for the accuracy tables")
    run.add_argument("--override", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                     help="a config override for every study, e.g. 'sweep.seed=[0,1]' (repeatable)")
    run.add_argument("--output", default="outputs", help="folder for the comparison tables")
    run.set_defaults(run=_run)
    bench = actions.add_parser("bench", help="experiments/bench/bench_attribution.py per ancestor count, logged "
                                             "to MLflow (experiment paper_performance)")
    bench.add_argument("--ancestors", type=int, nargs="+", default=[4, 8, 12, 16])
    bench.add_argument("--nodes", type=int, default=64)
    bench.add_argument("--rows", type=int, default=2000)
    bench.add_argument("--seed", type=int, default=0)
    bench.add_argument("--skip-dowhy", action="store_true", help="time bayes_rca only")
    bench.add_argument("--tracking-uri", default=None, help=TRACKING_HELP)
    bench.set_defaults(run=_bench)
    build = actions.add_parser("build", help="LaTeX tables, figures (PDF and PNG) and main.tex from the logged runs; "
                                             "the PDF too when latexmk or pdflatex is found")
    build.add_argument("--experiments", nargs="+", default=None,
                       help=f"MLflow experiments to read (default: {' '.join(DEFAULT_EXPERIMENTS)})")
    build.add_argument("--out", default="paper", help="output folder (tables/, figures/, main.tex)")
    build.add_argument("--tracking-uri", default=None, help=TRACKING_HELP)
    build.add_argument("--no-pdf", action="store_true", help="write the sources only")
    build.set_defaults(run=_build)
