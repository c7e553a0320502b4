"""What an earlier ``bayes-rca paper build`` put in the paper for each experiment, read back from its ``main.tex``.

An experiment whose runs are not in the store the paper is built from now (a fresh checkout, another machine:
``mlflow.db`` is not under version control) keeps the tables and figures an earlier build wrote into the same
output folder, rather than dropping out of the paper: they were generated from runs whose ids are in their own
sources, and they are marked as kept.
"""

from __future__ import annotations

import re
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
