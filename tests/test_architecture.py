"""Issue 17's architecture acceptance: no module of ``bayes_rca/`` over 400 lines, no function or method over 60.

A function's length runs from its ``def`` line to its last line, without its docstring (documentation, not code:
a numpydoc docstring of a public function is often longer than its body). Decorators are not counted.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "bayes_rca"
MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 60


def _modules() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def _docstring_lines(node: ast.FunctionDef | ast.AsyncFunctionDef) -> int:
    first = node.body[0]
    if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) and isinstance(first.value.value, str):
        return first.end_lineno - first.lineno + 1
    return 0


def function_lengths(source: str) -> list[tuple[str, int, int]]:
    """``(qualified name, def line, length)`` of every function and method in ``source``."""
    found = []

    def visit(node: ast.AST, prefix: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                length = child.end_lineno - child.lineno + 1 - _docstring_lines(child)
                found.append((f"{prefix}{child.name}", child.lineno, length))
                visit(child, f"{prefix}{child.name}.")
            elif isinstance(child, ast.ClassDef):
                visit(child, f"{prefix}{child.name}.")
            else:
                visit(child, prefix)

    visit(ast.parse(source), "")
    return found


def test_the_package_is_found():
    assert len(_modules()) > 30 and (PACKAGE / "app" / "cli.py").exists()


def test_no_module_over_400_lines():
    long = {str(path.relative_to(PACKAGE.parent)): lines for path in _modules()
            if (lines := len(path.read_text().splitlines())) > MAX_MODULE_LINES}
    assert not long, f"modules over {MAX_MODULE_LINES} lines: {long}"


def test_no_function_over_60_lines():
    long = [f"{path.relative_to(PACKAGE.parent)}:{line} {name} ({length} lines)" for path in _modules()
            for name, line, length in function_lengths(path.read_text()) if length > MAX_FUNCTION_LINES]
    assert not long, f"functions over {MAX_FUNCTION_LINES} lines (without docstrings): {long}"


def test_the_count_can_fail():
    body = "\n".join(f"    x{i} = {i}" for i in range(60))
    source = f'def long():\n    """One line of docs."""\n{body}\n\n\nclass A:\n    def short(self):\n        return 1\n'
    assert function_lengths(source) == [("long", 1, 61), ("A.short", 66, 2)]
