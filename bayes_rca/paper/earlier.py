"""What an earlier ``bayes-rca paper build`` put in the paper for each experiment, read back from its ``main.tex``.

An experiment whose runs are not in the store the paper is built from now (a fresh checkout, another machine:
``mlflow.db`` is not under version control) keeps the tables and figures an earlier build wrote into the same
output folder, rather than dropping out of the paper: they were generated from runs whose ids are in their own
sources, and they are marked as kept.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

_SECTION = re.compile(r"^\\section\{(?P<title>[^}]*)\}")
_EXPERIMENT = re.compile(r"^\\subsection\{Experiment \\texttt\{(?P<name>[^}]*)\}\}")
_INPUT = re.compile(r"^\\input\{(?P<path>[^}]*)\}")


def earlier_sections(main_tex: Path, titles: dict[str, str]) -> dict[str, list[tuple[str, list[str]]]]:
    """For each experiment of an earlier ``main.tex`` (its LaTeX-escaped name), the kinds of section it appeared
    in and the ``\\input`` lines under its heading there, whose files still exist.

    Parameters
    ----------
    main_tex : pathlib.Path
        The earlier build's ``main.tex`` (nothing is read if it does not exist).
    titles : dict
        Section kind -> section title, as the build writes them.
    """
    if not main_tex.exists():
        return {}
    kinds = {title: kind for kind, title in titles.items()}
    found: dict[str, list[tuple[str, list[str]]]] = {}
    kind, lines = None, None
    for line in main_tex.read_text().splitlines():
        section, experiment, include = _SECTION.match(line), _EXPERIMENT.match(line), _INPUT.match(line)
        if section:
            kind, lines = kinds.get(section.group("title")), None
        elif experiment and kind is not None:
            lines = []
            found.setdefault(experiment.group("name"), []).append((kind, lines))
        elif include and lines is not None and (main_tex.parent / include.group("path")).exists():
            lines.append(line)
        elif line.startswith((r"\clearpage", r"\subsection")):
            lines = None
    return {name: [(k, block) for k, block in blocks if block] for name, blocks in found.items()
            if any(block for _, block in blocks)}


_GROUP = re.compile(r"^\\multicolumn\{\d+\}\{l\}\{\\emph\{(?P<label>.*experiment \\texttt\{(?P<name>[^}]*)\})\}\} \\\\$")
_SOURCES = re.compile(r"(?P<name>[^\s(]+) \((?P<ids>[0-9a-f ]+)\)")
_ITEM = re.compile(r"^\\item (?P<name>[^:]+): ")


@dataclass
class EarlierSummary:
    """What an earlier build's summary table said about each calibration study (by LaTeX-escaped name): its group
    label, its rows as written (run-id comments included), its sweeps' parent run ids, and the 90 % coverage items
    of the paragraph above the table."""

    labels: dict[str, str] = field(default_factory=dict)
    rows: dict[str, list[str]] = field(default_factory=dict)
    parents: dict[str, str] = field(default_factory=dict)
    items: dict[str, list[str]] = field(default_factory=dict)


def earlier_summary(table_tex: Path, main_tex: Path) -> EarlierSummary:
    """The groups of an earlier ``calibration_summary.tex`` and the coverage items of the earlier ``main.tex``
    (nothing for a file that does not exist), so that a study without runs now keeps its rows in the summary."""
    summary = EarlierSummary()
    if table_tex.exists():
        lines = table_tex.read_text().splitlines()
        header = lines[0] if lines else ""
        if ": experiments " in header:
            for match in _SOURCES.finditer(header.split(": experiments ", 1)[1]):
                summary.parents[match.group("name").replace("_", r"\_")] = match.group("ids")
        name = None
        for line in lines:
            group = _GROUP.match(line)
            if group:
                name = group.group("name")
                summary.labels[name], summary.rows[name] = group.group("label"), []
            elif line in (r"\midrule", r"\bottomrule"):
                name = None
            elif name is not None:
                summary.rows[name].append(line)
    if main_tex.exists():
        for line in main_tex.read_text().splitlines():
            item = _ITEM.match(line)
            if item:
                summary.items.setdefault(item.group("name"), []).append(line)
    return summary
