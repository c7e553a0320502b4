"""The runnable examples in the package's docstrings run and print what they say (doctest)."""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

import bayes_rca

MODULES = sorted(info.name for info in pkgutil.walk_packages(bayes_rca.__path__, "bayes_rca."))


def examples(name: str) -> list[doctest.DocTest]:
    module = importlib.import_module(name)
    return [test for test in doctest.DocTestFinder().find(module) if test.examples]


@pytest.mark.parametrize("name", [name for name in MODULES if examples(name)])
def test_docstring_examples_run(name: str) -> None:
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    for test in examples(name):
        runner.run(test)
    assert runner.failures == 0, f"{runner.failures} docstring example(s) of {name} failed (output above)"


PUBLIC_WITH_EXAMPLES = ["attribute_outliers", "attribute_distribution_change", "BayesianSCM", "AttributionResult",
                        "ShapleyOptions", "MonteCarloOptions", "causal_graph_from_dependencies", "validate_graph",
                        "blameable_nodes", "ancestors_of"]


@pytest.mark.parametrize("name", PUBLIC_WITH_EXAMPLES)
def test_public_api_has_runnable_example(name: str) -> None:
    docstring = getattr(bayes_rca, name).__doc__ or ""
    runnable = [line for line in docstring.splitlines() if line.strip().startswith(">>>") and "+SKIP" not in line]
    assert runnable, f"bayes_rca.{name} has no runnable example in its docstring"
