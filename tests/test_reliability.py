"""Reliability: the bad-input catalogue through the API and the CLI, warnings instead of silent results, scores far
in the tail, determinism across processes, property-based Shapley axioms and safe loading.

The catalogue and the measured figures are documented in docs/reliability.md. Bad-input cases that
tests/test_errors.py already covers through the API are exercised here through the CLI.
"""

from __future__ import annotations

import math
import re
import subprocess
import sys
import warnings
from collections.abc import Callable
from pathlib import Path

import networkx as nx
import numpy as np
import pandas as pd
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from bayes_rca import BayesianSCM, InferenceOptions, attribute_outliers
from bayes_rca.app.cli import main
from bayes_rca.inference.diagnostics import convergence_problems
from bayes_rca.errors import BayesRCAWarning, ConfigError
from bayes_rca.graph.dag import blameable_nodes
from bayes_rca.model.mechanisms import LinearStudentT
from bayes_rca.harness.config import load_config
from bayes_rca.data.synthetic import LinearGaussianSystem, random_dag, random_linear_system
from tests.conftest import TARGET, linear_algebra

REPO = Path(__file__).resolve().parents[1]
MULTIPLES = (10.0, 20.0, 40.0)


# ---------------------------------------------------------------------------------------------------------------
# helpers


def conjugate_families(graph: nx.DiGraph) -> dict:
    """Exact conjugate mechanisms for every node, so that a fit skips the automatic assignment."""
    return {node: "linear_gaussian" if graph.in_degree(node) else "gaussian_root" for node in graph}


def fit(graph: nx.DiGraph, data: pd.DataFrame, **kwargs) -> BayesianSCM:
    return BayesianSCM(graph, num_draws=20, progress=False, **kwargs).fit(data)


def write_adjacency(graph: nx.DiGraph, path: Path) -> None:
    nodes = list(graph.nodes)
    matrix = pd.DataFrame(0, index=nodes, columns=nodes)
    for cause, effect in graph.edges:
        matrix.loc[cause, effect] = 1
    matrix.to_csv(path)


def edit_csv(path: Path, change: Callable[[pd.DataFrame], pd.DataFrame]) -> None:
    change(pd.read_csv(path)).to_csv(path, index=False)


@pytest.fixture()
def files(system, tmp_path, monkeypatch) -> Path:
    """graph.csv (adjacency: F is isolated), normal.csv (80 rows), incident.csv (B shifted), in a work folder."""
    monkeypatch.chdir(tmp_path)
    write_adjacency(system.graph, tmp_path / "graph.csv")
    system.sample(80, seed=1).to_csv(tmp_path / "normal.csv", index=False)
    system.outlier({"B": 4.0}).to_csv(tmp_path / "incident.csv", index=False)
    return tmp_path


def attribute(*extra: str, target: str = TARGET) -> int:
    return main(["attribute", "--graph", "graph.csv", "--data", "normal.csv", "--outliers", "incident.csv",
                 "--target", target, "--draws", "20", "--no-track", "--output", "out", *extra])


def last_error_line(capsys) -> str:
    err = capsys.readouterr().err
    assert "Traceback" not in err
    last = err.strip().splitlines()[-1]
    assert last.startswith("bayes-rca: error: "), err
    return last


# ---------------------------------------------------------------------------------------------------------------
# 1. the bad-input catalogue through the CLI: one line naming the culprit, exit status 2


CLI_ERRORS = {
    "cycle": (lambda d: (d / "graph.csv").write_text("cause,effect\nA,B\nB,D\nD,A\n"),
              r"the causal graph must be acyclic, but it has the cycle .*D -> A"),
    "graph missing": (lambda d: (d / "graph.csv").unlink(), r"graph file graph.csv does not exist"),
    "edge list row": (lambda d: (d / "graph.csv").write_text("cause,effect\nA,B\nB,C,D\n"),
                      r"graph.csv, line 3: an edge list row needs exactly two node names, got \['B', 'C', 'D'\]"),
    "adjacency cell": (lambda d: (d / "graph.csv").write_text(
        (d / "graph.csv").read_text().replace("B,0,0", "B,0,x", 1)),
        r"graph.csv, line 3: adjacency entry 'x' for column '\w' is not a number"),
    "graph not text": (lambda d: (d / "graph.csv").write_bytes(b"\xff\xfe\x00\x81"),
                       r"cannot read graph file graph.csv: 'utf-8' codec can't decode"),
    "no column": (lambda d: edit_csv(d / "normal.csv", lambda f: f.drop(columns="C")),
                  r"training data has no column for graph node\(s\) 'C'"),
    "non-numeric": (lambda d: edit_csv(d / "normal.csv", lambda f: f.assign(C="slow")),
                    r"training data has non-numeric column\(s\) 'C' \(dtype \w+\); every graph node must be numeric"),
    "all NaN": (lambda d: edit_csv(d / "normal.csv", lambda f: f.assign(E=np.nan)),
                r"training data column\(s\) 'E' contain only missing values"),
    "inf in training": (lambda d: edit_csv(d / "normal.csv", lambda f: f.assign(A=f["A"].where(f.index != 3,
                                                                                                np.inf))),
                        r"training data has infinite values in column\(s\) 'A'"),
    "NaN at the target": (lambda d: edit_csv(d / "incident.csv", lambda f: f.assign(**{TARGET: np.nan})),
                          rf"outlier row 0 has a missing value in column '{TARGET}', the target: the value to "
                          r"explain cannot be inferred \(missing values of its ancestors can\)$"),
    "inf in outlier": (lambda d: edit_csv(d / "incident.csv", lambda f: f.assign(A=-np.inf)),
                       r"outlier row 0 has an infinite value in column 'A'"),
    "no rows": (lambda d: edit_csv(d / "normal.csv", lambda f: f.iloc[:0]),
                r"training data needs at least 2 rows, got 0"),
    "one row": (lambda d: edit_csv(d / "normal.csv", lambda f: f.iloc[:1]),
                r"training data needs at least 2 rows, got 1"),
    "empty file": (lambda d: (d / "normal.csv").write_text(""),
                   r"cannot read CSV file normal.csv: No columns to parse from file"),
    "duplicate column": (lambda d: (d / "normal.csv").write_text(
        (d / "normal.csv").read_text().replace("F\n", "B\n", 1)),
        r"CSV file normal.csv has duplicate column names: 'B'"),
    "outlier columns": (lambda d: edit_csv(d / "incident.csv", lambda f: f.rename(columns={"B": "b"})),
                        r"outlier data has no column for graph node\(s\) 'B'"),
    "outlier rows": (lambda d: edit_csv(d / "incident.csv", lambda f: f.iloc[:0]), r"outlier data has no rows"),
}


@pytest.mark.parametrize("setup, message", CLI_ERRORS.values(), ids=CLI_ERRORS.keys())
def test_attribute_bad_input_exits_2_naming_the_culprit(files, capsys, setup, message):
    setup(files)
    assert attribute() == 2
    assert re.search(message, last_error_line(capsys))


def test_malformed_graphml(files, capsys):
    (files / "graph.graphml").write_text("<graphml><graph edgedefault='directed'><node id='A'>")
    code = main(["attribute", "--graph", "graph.graphml", "--data", "normal.csv", "--outliers", "incident.csv",
                 "--target", TARGET, "--no-track"])
    assert code == 2
    assert "cannot parse GraphML file graph.graphml" in last_error_line(capsys)


def test_target_not_in_graph(files, capsys):
    assert attribute(target="Website") == 2
    assert "target 'Website' is not a node of the causal graph (nodes: A, B, C, D, E, F)" in last_error_line(capsys)


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_cuda_requested_without_cuda_fails_before_fitting(files, capsys):
    assert attribute("--device", "cuda") == 2
    assert "device 'cuda' requested, but torch finds no CUDA device here; use 'cpu'" in last_error_line(capsys)
    assert not (files / "out").exists()


def test_mechanism_with_too_few_rows(files, capsys):
    edit_csv(files / "normal.csv", lambda f: f.iloc[:40])
    assert attribute("--mechanism", "D=fourier_gaussian") == 2
    assert ("node 'D' has 40 usable training rows (node and parents observed), but the fourier_gaussian mechanism "
            "has 53 parameters and needs at least 53 rows") in last_error_line(capsys)


@pytest.mark.parametrize("text, message", [
    ("name: x\nbenchmark:\n  num_rowz: 10\n", r"bad.yaml: unknown key 'benchmark.num_rowz'; known keys here: "),
    ("name: x\nseed: [1\n",
     r"bad.yaml: malformed YAML: line 3, column 1: while parsing a flow sequence, expected ',' or '\]'"),
    ("name: x\nseed: one\n", r"bad.yaml: key 'seed' must be int, got 'one'"),
])
def test_experiment_config_errors_name_file_and_key(tmp_path, capsys, text, message):
    (tmp_path / "bad.yaml").write_text(text)
    assert main(["experiment", "run", str(tmp_path / "bad.yaml")]) == 2
    assert re.search(message, last_error_line(capsys))


# ---------------------------------------------------------------------------------------------------------------
# used, but never silently: a lone target, constant and unused columns, unconverged fits


def test_target_without_ancestors_is_a_warning(oracle, system):
    row = system.outlier({"A": 5.0})
    with pytest.warns(BayesRCAWarning, match="target 'A' has no ancestors in the causal graph: only itself can be "
                                             "blamed"):
        result = attribute_outliers(oracle, "A", row)
    assert result.players == ["A"]
    assert result.contributions[0, 0, result.nodes.index("A")] == result.scores[0, 0]


def test_constant_and_unused_columns_are_warnings(system):
    data = system.sample(60, seed=2).assign(F=7.0, host=1.0)
    with pytest.warns(BayesRCAWarning) as record:
        model = fit(system.graph, data, mechanisms=conjugate_families(system.graph))
    messages = [str(w.message) for w in record]
    assert ("training data column(s) 'F' are constant: modelled with a small noise scale from the prior, so any "
            "other value there gets a large contribution (constant_noise='finest' gives them the smallest scale of the "
            "varying columns)") in messages
    assert "training data column(s) 'host' are not graph nodes: ignored" in messages
    result = attribute_outliers(model, "F", system.outlier({}).assign(F=7.5))
    assert np.isfinite(result.scores).all() and (result.scores > 10).all()


def test_cli_prints_warnings_as_one_line_each_and_exits_0(files, capsys):
    edit_csv(files / "normal.csv", lambda f: f.assign(F=7.0, host=1.0))
    assert attribute(target="A") == 0
    err = capsys.readouterr().err
    assert "Traceback" not in err and "warnings.warn" not in err
    lines = err.strip().splitlines()
    for expected in ("bayes-rca: warning: training data column(s) 'F' are constant",
                     "bayes-rca: warning: training data column(s) 'host' are not graph nodes: ignored",
                     "bayes-rca: warning: target 'A' has no ancestors in the causal graph: only itself can be blamed"):
        assert any(line.startswith(expected) for line in lines), err


def test_converged_fit_has_no_warning_and_a_true_flag(system, outliers):
    with warnings.catch_warnings():
        warnings.simplefilter("error", BayesRCAWarning)
        model = fit(system.graph, system.sample(100, seed=3), mechanisms=conjugate_families(system.graph))
        result = attribute_outliers(model, TARGET, outliers.iloc[[0]])
    assert model.converged_ and model.fit_report_["converged"].all() and result.settings["converged"] is True


class StudentTBySVI(LinearStudentT):
    """The linear Student-t family without its Laplace-proposal sampler, so that ``inference="auto"`` uses SVI."""

    laplace_mh = False


def test_unconverged_svi_warns_with_the_elbo_and_flags_model_and_result(system):
    data = system.sample(100, seed=4)
    message = (r"node 'C' \(linear_student_t, svi\) may not have converged: SVI unconverged: final ELBO -?\d[\d.e+]*, "
               r"and the loss still fell by \d+\.\d% of its whole fall in the last tenth of the steps \(\d+\.\d noise")
    with pytest.warns(BayesRCAWarning, match=message):
        model = fit(system.graph, data, mechanisms={**conjugate_families(system.graph), "C": StudentTBySVI()},
                    options=InferenceOptions(svi_steps=30))
    assert not model.converged_
    assert model.fit_report_["converged"].to_dict() == {"A": True, "B": True, "C": False, "D": True, "E": True,
                                                        "F": True}
    result = attribute_outliers(model, TARGET, system.outlier({"C": 3.0}), num_samples=200)
    assert result.settings["converged"] is False


def test_nuts_divergences_and_rhat_are_reported_with_their_figures():
    assert convergence_problems({"divergences": 3.0, "max_rhat": 1.234}) == [
        "3 divergent NUTS transition(s)", "R-hat 1.234 > 1.01"]
    assert convergence_problems({"divergences": 0.0, "max_rhat": 1.004}) == []
    assert convergence_problems({"final_elbo": float("nan"), "elbo_relative_change": float("nan")})
    assert convergence_problems({}) == []


def test_short_nuts_chains_are_flagged(system):
    data = system.sample(50, seed=5)
    graph = nx.DiGraph([("A", "B")])
    with pytest.warns(BayesRCAWarning, match=r"node '\w' \(\w+, nuts\) may not have converged: .*R-hat \d\.\d{3} > "
                                             r"1\.01"):
        model = fit(graph, data[["A", "B"]], inference="nuts", num_chains=2,
                    options=InferenceOptions(warmup_steps=5))
    assert not model.converged_


# ---------------------------------------------------------------------------------------------------------------
# 3. numerics: 10, 20 and 40 sd out


@pytest.fixture(scope="module")
def four_players() -> LinearGaussianSystem:
    """R -> M -> T <- S: four players at T, unequal scales, non-zero intercepts."""
    graph = nx.DiGraph([("R", "M"), ("M", "T"), ("S", "T")])
    return LinearGaussianSystem(graph, {("R", "M"): 0.8, ("M", "T"): 1.3, ("S", "T"): -0.6},
                                {"R": 2.0, "M": -1.0, "S": 0.5, "T": 4.0}, {"R": 1.0, "M": 0.7, "S": 1.5, "T": 0.5})


def far_outlier(system: LinearGaussianSystem, target, cause, multiple: float) -> pd.DataFrame:
    """The row whose only noise is at ``cause``, putting ``target`` ``multiple`` marginal sds above its mean."""
    nodes, _, _, s, total = linear_algebra(system)
    t, c = nodes.index(target), nodes.index(cause)
    sd = math.sqrt(((total[t] * s) ** 2).sum())
    return system.outlier({cause: multiple * sd / (total[t, c] * s[c])})


@pytest.mark.parametrize("estimator", ["analytic", "monte_carlo"])
@pytest.mark.parametrize("cause", ["T", "R"])
def test_far_outliers_have_finite_strictly_increasing_scores(four_players, estimator, cause):
    oracle = four_players.oracle_model()
    scores = []
    for multiple in MULTIPLES:
        result = attribute_outliers(oracle, "T", far_outlier(four_players, "T", cause, multiple),
                                    estimator=estimator, num_samples=4000, seed=0)
        assert result.settings["estimator"] == estimator
        assert np.isfinite(result.scores).all() and np.isfinite(result.contributions).all()
        np.testing.assert_allclose(result.contributions.sum(-1), result.scores, rtol=1e-9)
        scores.append(float(result.scores[0, 0]))
    assert scores[0] < scores[1] < scores[2], scores
    assert scores[0] > 5 * math.log(4000)  # a plain Monte Carlo count saturates at log(4000) = 8.3


# ---------------------------------------------------------------------------------------------------------------
# 5. determinism


DETERMINISM_SCRIPT = """
import sys
import networkx as nx
import numpy as np
from bayes_rca import BayesianSCM, InferenceOptions, attribute_outliers
from bayes_rca.data.synthetic import random_linear_system

system = random_linear_system(nx.DiGraph([("A", "B"), ("A", "C"), ("B", "D"), ("C", "D")]), seed=0)
model = BayesianSCM(system.graph, num_draws=20, seed=7, progress=False, mechanisms={"C": "linear_student_t"},
                    options=InferenceOptions(svi_steps=50)).fit(system.sample(200, seed=8))
result = attribute_outliers(model, "D", system.outlier({"C": 4.0}), num_samples=400, max_exact_players=2,
                            num_permutations=20, seed=9)
np.savez(sys.argv[1], contributions=result.contributions, standard_errors=result.standard_errors,
         scores=result.scores, noise=result.noise)
"""


@pytest.mark.slow  # each process spends about 6 s importing torch, pyro and arviz
def test_same_seed_is_bit_identical_in_two_processes(tmp_path):
    outputs = [tmp_path / f"run{k}.npz" for k in range(2)]
    processes = [subprocess.Popen([sys.executable, "-W", "ignore", "-c", DETERMINISM_SCRIPT, str(out)], cwd=REPO,
                                  stderr=subprocess.PIPE) for out in outputs]
    for process in processes:
        assert process.wait(timeout=120) == 0, process.stderr.read().decode()
    first, second = (np.load(out) for out in outputs)
    assert first["contributions"].shape == (20, 1, 4)
    for name in first.files:
        assert first[name].tobytes() == second[name].tobytes(), name


def test_monte_carlo_seeds_differ_within_the_reported_error(four_players):
    oracle = four_players.oracle_model()
    row = four_players.outlier({"R": 2.0, "S": -2.0, "T": 1.5})
    one, two = (attribute_outliers(oracle, "T", row, estimator="monte_carlo", num_samples=4000, seed=seed)
                for seed in (0, 1))
    combined = np.hypot(one.standard_errors, two.standard_errors)
    assert (combined[..., :4] > 0).all()
    assert not np.array_equal(one.contributions, two.contributions)
    assert (np.abs(one.contributions - two.contributions) <= 4 * combined).all()


def test_permutation_seeds_differ_within_the_reported_error(four_players):
    oracle = four_players.oracle_model()
    row = four_players.outlier({"R": 2.0, "S": -2.0, "T": 1.5})
    one, two = (attribute_outliers(oracle, "T", row, max_exact_players=2, num_permutations=40, seed=seed)
                for seed in (0, 1))
    assert one.settings["shapley"] == "permutation"
    combined = np.hypot(one.standard_errors, two.standard_errors)
    assert (np.abs(one.contributions - two.contributions) <= 4 * combined).all()


# ---------------------------------------------------------------------------------------------------------------
# 6. property-based: symmetry and invariance under a change of units


@st.composite
def twin_roots(draw) -> tuple[LinearGaussianSystem, str, pd.DataFrame]:
    """A random linear DAG plus two exchangeable roots R1, R2 (same children, coefficients, scale), equally shifted."""
    seed = draw(st.integers(0, 2**20))
    graph = random_dag(draw(st.integers(2, 7)), max_parents=3, seed=seed)
    base = random_linear_system(graph, seed=seed, random_signs=True)
    target = draw(st.sampled_from(sorted(graph.nodes)))
    candidates = blameable_nodes(graph, target)
    children = draw(st.lists(st.sampled_from(candidates), min_size=1, max_size=3, unique=True))
    weights = {child: draw(st.floats(0.3, 2.0)) * draw(st.sampled_from([-1.0, 1.0])) for child in children}
    twins = graph.copy()
    coefficients = dict(base.coefficients)
    for root in ("R1", "R2"):
        twins.add_edges_from((root, child) for child in children)
        coefficients.update({(root, child): weight for child, weight in weights.items()})
    scale = draw(st.floats(0.3, 3.0))
    system = LinearGaussianSystem(twins, coefficients, {n: 0.0 for n in twins},
                                  {n: scale if n in ("R1", "R2") else 1.0 for n in twins})
    shift = draw(st.floats(-6, 6))
    others = draw(st.dictionaries(st.sampled_from(candidates), st.floats(-6, 6), max_size=2))
    return system, target, system.outlier({"R1": shift, "R2": shift, **others})


@settings(max_examples=15, deadline=None, database=None)
@given(twin_roots())
def test_exchangeable_roots_with_equal_shifts_get_equal_contributions(case):
    system, target, row = case
    result = attribute_outliers(system.oracle_model(), target, row)
    contributions = pd.Series(result.contributions[0, 0], index=result.nodes)
    assert contributions["R1"] == pytest.approx(contributions["R2"], rel=1e-9, abs=1e-10)
    assert contributions.sum() == pytest.approx(result.scores[0, 0], rel=1e-9, abs=1e-10)


def rescaled(system: LinearGaussianSystem, node, factor: float) -> LinearGaussianSystem:
    """The same system with ``node`` measured in units ``factor`` times smaller (its values times ``factor``)."""
    coefficients = {}
    for (parent, child), value in system.coefficients.items():
        coefficients[parent, child] = value * (factor if child == node else 1.0) / (factor if parent == node else 1.0)
    return LinearGaussianSystem(system.graph, coefficients,
                                {**system.intercepts, node: system.intercepts[node] * factor},
                                {**system.noise_sd, node: system.noise_sd[node] * factor})


def same_ranking(first: np.ndarray, second: np.ndarray, tolerance: float) -> bool:
    """Every pair of nodes ordered by more than ``tolerance`` in ``first`` is ordered the same way in ``second``."""
    gaps_first, gaps_second = first[:, None] - first[None, :], second[:, None] - second[None, :]
    return bool(np.all(gaps_second[gaps_first > tolerance] > 0))


@st.composite
def unit_changes(draw) -> tuple[LinearGaussianSystem, str, str, float, pd.DataFrame]:
    seed = draw(st.integers(0, 2**20))
    graph = random_dag(draw(st.integers(3, 7)), max_parents=2, seed=seed)
    base = random_linear_system(graph, seed=seed, random_signs=True)
    rng = np.random.default_rng(seed)
    system = LinearGaussianSystem(graph, base.coefficients, {n: float(rng.normal(0, 3)) for n in graph},
                                  {n: float(rng.uniform(0.5, 2.0)) for n in graph})
    target = draw(st.sampled_from(sorted(graph.nodes)))
    node = draw(st.sampled_from(sorted(graph.nodes)))
    factor = 10.0 ** draw(st.floats(-3, 3))
    injected = draw(st.dictionaries(st.sampled_from(blameable_nodes(graph, target)), st.floats(-6, 6), min_size=1,
                                    max_size=3))
    return system, target, node, factor, system.outlier(injected, seed=seed)


@settings(max_examples=15, deadline=None, database=None)
@given(unit_changes())
def test_rankings_do_not_depend_on_a_node_s_units(case):
    system, target, node, factor, row = case
    other = rescaled(system, node, factor)
    other_row = row.assign(**{node: row[node] * factor})
    noise = pd.DataFrame({n: [0.3] for n in system.graph})
    np.testing.assert_allclose(other.propagate(noise), system.propagate(noise).assign(
        **{node: system.propagate(noise)[node] * factor}), rtol=1e-9)
    exact = attribute_outliers(system.oracle_model(), target, row).contributions[0, 0]
    exact_other = attribute_outliers(other.oracle_model(), target, other_row).contributions[0, 0]
    np.testing.assert_allclose(exact_other, exact, rtol=1e-7, atol=1e-9)
    data = system.sample(200, seed=1)
    families = conjugate_families(system.graph)
    model = fit(system.graph, data, mechanisms=families, seed=2)
    model_other = fit(system.graph, data.assign(**{node: data[node] * factor}), mechanisms=families, seed=2)
    mean = attribute_outliers(model, target, row).contributions.mean((0, 1))
    mean_other = attribute_outliers(model_other, target, other_row).contributions.mean((0, 1))
    np.testing.assert_allclose(mean_other, mean, rtol=1e-6, atol=1e-8)
    assert same_ranking(mean, mean_other, 1e-6) and same_ranking(mean_other, mean, 1e-6)


# ---------------------------------------------------------------------------------------------------------------
# 7. security


def test_config_with_a_python_object_tag_is_rejected_and_never_run(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    evil = tmp_path / "evil.yaml"
    evil.write_text("name: !!python/object/apply:os.system ['touch pwned']\n")
    with pytest.raises(ConfigError, match="evil.yaml: malformed YAML: line 1, column 7: could not determine a "
                                          "constructor for the tag 'tag:yaml.org,2002:python/object/apply:os.system'"):
        load_config(evil)
    assert main(["experiment", "run", str(evil)]) == 2
    assert "malformed YAML" in last_error_line(capsys)
    assert main(["check", str(evil)]) == 2
    assert not (tmp_path / "pwned").exists()


def package_sources() -> dict[str, str]:
    return {str(path.relative_to(REPO)): path.read_text() for path in sorted((REPO / "bayes_rca").rglob("*.py"))}


def test_no_unsafe_loading_and_servers_bind_to_localhost():
    sources = package_sources()
    assert len(sources) > 20
    for name, text in sources.items():
        assert not re.search(r"yaml\.(load|unsafe_load|full_load)\(", text), name
        assert not re.search(r"^\s*(import|from) (pickle|dill|cloudpickle)\b", text, re.MULTILINE), name
        for call in re.findall(r"torch\.load\([^)]*\)", text):
            assert "weights_only=True" in call, (name, call)
        for call in re.findall(r"ray\.init\([^)]*\)", text):
            assert "address=address" in call or '_node_ip_address="127.0.0.1"' in call, (name, call)
        assert "0.0.0.0" not in text, name
    assert "--host 127.0.0.1" in sources[str(Path("bayes_rca") / "app" / "demo.py")]
