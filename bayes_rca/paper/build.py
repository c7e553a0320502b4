"""``bayes-rca paper build``: LaTeX tables, figures and ``main.tex`` from the MLflow runs of named experiments.

What is built depends on what an experiment's runs logged:

* **calibration** (cells with ``player_coverage_*`` metrics, i.e. synthetic benchmarks with known true
  contributions): one table of every pure calibration study side by side (:mod:`bayes_rca.paper.summary`)
  with a paragraph on where bayes_rca's 90 % coverage falls outside 85--95 %; per experiment, coverage of the
  central 50/80/90/95 % intervals and their width, over all players and over true contributions above 3 nats,
  Brier score of P(top cause) against the true top cause (a table each);
  coverage vs nominal level, width vs training size, reliability diagram of P(top cause), runtime vs training
  size, and a forest plot of one attribution (figures).
* **accuracy** (every other harness experiment): NDCG@k, top-k recall, specificity per method, one block per
  setting that varies in the sweep (e.g. PetShop scenario x metric, one table per split; never pooled), NDCG@k
  per method and top-k per setting (figures).
* **performance** (runs tagged ``role = bench``, logged by ``bayes-rca paper bench``): fit and attribution
  seconds vs number of ancestors per tool (table and figure).

Every number in a table is a mean over logged cell runs (± standard error over them where there are several),
with their run ids in a LaTeX comment on the row. A study without runs in the store keeps what an earlier build
wrote for it into the output folder (:mod:`bayes_rca.paper.earlier`; marked as kept), or else is skipped with a
message naming the command that produces it.

The build is :func:`build_paper` (this module); the cell runs are read by :mod:`bayes_rca.paper.runs` and
:mod:`bayes_rca.paper.cells`, the tables and figures written by :mod:`bayes_rca.paper.calibration`,
:mod:`bayes_rca.paper.calibration_figures`, :mod:`bayes_rca.paper.accuracy` and :mod:`bayes_rca.paper.performance`,
and ``main.tex`` and the PDF by :mod:`bayes_rca.paper.document`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from bayes_rca.paper.accuracy import accuracy_figures, accuracy_tables, runtime_table
from bayes_rca.paper.calibration import calibration_tables
from bayes_rca.paper.calibration_figures import Figure, calibration_figures
from bayes_rca.paper.cells import _metric, _slug
from bayes_rca.paper.document import KEPT_NOTE, SECTION_TITLES, build_pdf, config_for, main_tex
from bayes_rca.paper.earlier import EarlierSummary, earlier_sections, earlier_summary
from bayes_rca.paper.latex import Table, escape, figure
from bayes_rca.paper.performance import performance_outputs
from bayes_rca.paper.runs import ExperimentRuns, RunStore
from bayes_rca.paper.summary import calibration_summary_table, coverage_statement

DEFAULT_EXPERIMENTS = ("paper_calibration_lg", "paper_calibration_lg_dowhy", "paper_calibration_student_t",
                       "paper_calibration_student_t_dowhy", "paper_calibration_nonlinear", "icml2022", "petshop",
                       "paper_performance")
"""The experiments ``bayes-rca paper build`` reads by default, in the order of the paper (one list: the CLI's help
and every section follow it; a calibration study among them is in the summary table when it has runs)."""


@dataclass
class BuildReport:
    """What ``build_paper`` wrote, kept and skipped, the coverage values it flagged and the PDF (if built)."""

    out: Path
    tables: list[Path] = field(default_factory=list)
    figures: list[Path] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)  # experiments without runs now, kept from an earlier build
    flags: list[str] = field(default_factory=list)
    pdf: Path | None = None
    pdf_message: str = ""
    widths: dict[str, float] = field(default_factory=dict)  # of each figure, as a share of the text width


def _saver(report: BuildReport) -> Callable[..., Path]:
    import matplotlib.pyplot as plt

    def save(figure_, stem: Path) -> Path:
        from matplotlib.ticker import NullFormatter, ScalarFormatter

        for axis in figure_.axes:  # plain numbers on log axes (0.2, 0.5, 1), not 2 x 10^-1
            for which in (axis.xaxis, axis.yaxis):
                if which.get_scale() == "log":
                    which.set_major_formatter(ScalarFormatter())
                    which.set_minor_formatter(NullFormatter())
        report.widths[stem.name] = min(1.0, figure_.get_size_inches()[0] / 9.0)
        figure_.tight_layout()
        for suffix in (".pdf", ".png"):
            figure_.savefig(stem.with_suffix(suffix), dpi=150)
            report.figures.append(stem.with_suffix(suffix))
        plt.close(figure_)
        return stem.with_suffix(".pdf")

    return save


def _kinds(runs: ExperimentRuns) -> list[str]:
    """``performance`` for benchmark runs; ``calibration`` where cells logged coverage against true contributions;
    ``accuracy`` unless every method of the experiment did (a pure calibration study)."""
    if not runs.bench.empty:
        return ["performance"]
    cells = runs.cells
    calibrated = cells.loc[_metric(cells, "player_coverage_90").notna(), "param.method"].unique()
    kinds = ["calibration"] if len(calibrated) else []
    if set(cells["param.method"]) - set(calibrated):
        kinds.append("accuracy")
    return kinds


class _Paper:
    """The output folder being written: its tables and figure snippets, the lines of each section of ``main.tex``
    (kind -> lines) and the pure calibration studies for the summary table."""

    def __init__(self, out: Path, result: BuildReport, store: RunStore, report: Callable[[str], None]) -> None:
        self.out, self.result, self.store, self.report = out, result, store, report
        self.tables_dir, self.figures_dir = out / "tables", out / "figures"
        self.save = _saver(result)
        self.sections: dict[str, list[str]] = {}
        self.calibrated: list[ExperimentRuns] = []

    def add_table(self, kind: str, stem: str, table: Table) -> None:
        path = self.tables_dir / f"{_slug(stem)}.tex"
        path.write_text(table.render())
        self.result.tables.append(path)
        self.sections.setdefault(kind, []).append(rf"\input{{tables/{path.name}}}")

    def add_figures(self, kind: str, items: list[Figure]) -> None:
        for stem, (pdf_path, caption, ids) in ((item[0], item[1:]) for item in items):
            snippet = self.figures_dir / f"{stem}.tex"
            width = rf"{self.result.widths.get(Path(pdf_path).stem, 1.0):.2f}\linewidth"
            snippet.write_text(figure(f"figures/{Path(pdf_path).name}", caption, f"fig:{stem}", ids, width))
            self.sections.setdefault(kind, []).append(rf"\input{{figures/{snippet.name}}}")

    def heading(self, kind: str, name: str, *lines: str) -> None:
        """Open experiment ``name`` in section ``kind``, on its own pages (its floats stay under its heading)."""
        block = self.sections.setdefault(kind, [])
        block += [r"\clearpage"] if block else []
        block += [rf"\subsection{{Experiment \texttt{{{escape(name)}}}}}", *lines]

    def add_experiment(self, name: str, earlier: dict[str, list[tuple[str, list[str]]]]) -> None:
        """Experiment ``name``'s tables and figures; kept from ``earlier`` or skipped when it has no runs."""
        runs = self.store.experiment(name)
        if runs.empty and escape(name) in earlier:
            for kind, lines in earlier[escape(name)]:
                self.heading(kind, name, KEPT_NOTE, *lines)
            self.result.kept.append(name)
            self.report(f"kept experiment {name} from the earlier build in {self.out}: no finished runs in "
                        f"{self.store.uri}")
            return
        if runs.empty:
            message = f"experiment {name}: no finished runs in {self.store.uri}; produce them with `{config_for(name)}`"
            self.result.skipped.append(message)
            self.report(f"skipped {message}")
            return
        kinds = _kinds(runs)
        for kind in kinds:
            self.heading(kind, name)
        if "calibration" in kinds:
            self.add_calibration(runs, pure=kinds == ["calibration"])
        if "accuracy" in kinds:
            self.add_accuracy(runs)
        if "performance" in kinds:
            table, figures = performance_outputs(runs, self.figures_dir, self.save)
            if table:
                self.add_table("performance", *table)
            self.add_figures("performance", figures)
        self.report(f"experiment {name} ({', '.join(kinds)}): {len(runs.cells) or len(runs.bench)} runs")

    def add_calibration(self, runs: ExperimentRuns, pure: bool) -> None:
        if pure:  # a calibration study (every method has intervals)
            self.calibrated.append(runs)
        for stem, table in calibration_tables(runs, self.result.flags):
            self.add_table("calibration", stem, table)
        self.add_figures("calibration", calibration_figures(runs, self.store, self.figures_dir, self.save,
                                                            self.report))

    def add_accuracy(self, runs: ExperimentRuns) -> None:
        for stem, table in accuracy_tables(runs):
            self.add_table("accuracy", stem, table)
        runtime = runtime_table(runs)
        if runtime:
            self.add_table("accuracy", *runtime)
        figures = accuracy_figures(runs, self.figures_dir, self.save)
        if not figures:
            self.report(f"experiment {runs.name}: no NDCG or top-k figure (no NDCG and no swept setting)")
        self.add_figures("accuracy", figures)

    def add_summary(self, earlier: EarlierSummary, order: Sequence[str]) -> None:
        """Put the table of every calibration study (those kept from an earlier build with the rows it wrote for
        them) and the 90 % coverage paragraph first in the calibration section."""
        kept = [name for name in self.result.kept if escape(name) in earlier.rows]
        table = calibration_summary_table(self.calibrated, self.store, kept, earlier, order)
        if table is None:
            return
        path = self.tables_dir / "calibration_summary.tex"
        path.write_text(table.render())
        self.result.tables.append(path)
        kept_items = [line for name in kept for line in earlier.items.get(escape(name), [])]
        statement = coverage_statement(self.result.flags, [runs.name for runs in self.calibrated],
                                       kept_items=kept_items)
        self.sections["calibration"] = [r"\subsection{All calibration studies}", statement,
                                        rf"\input{{tables/{path.name}}}", r"\clearpage",
                                        *self.sections.get("calibration", [])]


def build_paper(experiments: list[str] | None = None, out: str | Path = "paper", tracking_uri: str | None = None,
                pdf: bool = True, report: Callable[[str], None] = print) -> BuildReport:
    """Write the tables, figures and ``main.tex`` of ``experiments`` (default :data:`DEFAULT_EXPERIMENTS`) into
    ``out``, then build the PDF when ``pdf`` and a LaTeX toolchain is found."""
    import matplotlib

    matplotlib.use("Agg")
    out = Path(out)
    (out / "tables").mkdir(parents=True, exist_ok=True)
    (out / "figures").mkdir(parents=True, exist_ok=True)
    result = BuildReport(out)
    store = RunStore(tracking_uri)
    paper = _Paper(out, result, store, report)
    earlier = earlier_sections(out / "main.tex", SECTION_TITLES)
    summary = earlier_summary(out / "tables" / "calibration_summary.tex", out / "main.tex")
    names = list(experiments or DEFAULT_EXPERIMENTS)
    try:
        for name in names:
            paper.add_experiment(name, earlier)
        paper.add_summary(summary, names)
    finally:
        store.close()
    (out / "main.tex").write_text(main_tex(paper.sections, result.skipped, store.uri))
    report(f"wrote {len(result.tables)} tables, {len(result.figures)} figure files and {out / 'main.tex'}")
    for flag in result.flags:
        report(f"flag: {flag}")
    if pdf:
        result.pdf, result.pdf_message = build_pdf(out)
        report(result.pdf_message)
    return result
