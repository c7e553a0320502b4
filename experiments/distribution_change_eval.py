"""Distribution-change attribution against DoWhy on injected mechanism changes with known truth (issue 18).

    python experiments/distribution_change_eval.py configs/distribution_change.yaml [key=value ...] [--workers 2]

A standalone evaluation: the experiments harness (``bayes-rca experiment run``) is built around one task, the
attribution of an outlier row after fitting on one normal period (``RCAMethod.fit/attribute``, ``OutlierCase``,
``score_case``), and a two-period task does not fit its interfaces without reworking them. It follows the harness's
conventions instead: a YAML config, ``key=value`` overrides, every (method, functional, seed) cell logged as an MLflow
child run of one parent run per sweep in the local ``sqlite:///mlflow.db`` store (``tracking.uri`` or
``MLFLOW_TRACKING_URI`` for another one), and a printed table (mean ± standard error over seeds).

The benchmark (one case per seed): a random DAG (the ``icml2022`` family's heavy-tailed generator) with
linear-Gaussian mechanisms, the target a node with at least ``min_ancestors`` ancestors; the new period changes
``1..max_changes`` of the target's mechanisms (itself and its ancestors), each by one of the ``kinds``: a
``coefficient`` (one parent's weight times U(1.3, 2)), the ``noise_scale`` (times U(1.5, 2.5)), or a
``root_shift`` (a root's mean moved by U(0.5, 1.5) of its noise sd, either sign). The truth is the exact
Shapley value of each mechanism at the true parameters (closed form, :func:`bayes_rca.attribute_distribution_change`
on the two oracle models). A mechanism is *relevant* for a functional when it changed and its exact contribution
is at least the default threshold (a tenth of the old target's sd for the mean, 0.005 nats for the KL
divergence): a changed noise scale does not move the mean.

Metrics per case (then averaged over seeds): ``top1`` (the method's largest |contribution| is a relevant
mechanism; cases without one are left out), ``recall_at_r`` (share of the r relevant mechanisms among the method's
top r), ``mae`` (mean absolute error of the point estimates over the players, in the functional's units),
``coverage_90`` and ``width_90`` (central 90% intervals of posterior draws or bootstrap replicates against the
exact values, over the players), ``named_recall`` (share of the relevant mechanisms the method's decision rule
names), ``false_alarms`` (named mechanisms that did not change), ``specificity`` (two samples of the old period:
the decision rule names nothing), and ``seconds`` (per call, the change case).

Methods: ``bayes_rca`` (:func:`bayes_rca.distribution_change.distribution_change`, linear-Gaussian mechanisms,
closed form; rule ``P(|phi| > delta) > 0.95``), ``dowhy`` (DoWhy's ``gcm.distribution_change`` on an
auto-assigned ``ProbabilisticCausalModel``, its defaults: the KL divergence estimated from samples, or the
difference of sample means; kernel mechanism-change tests with FDR control, whose rejections are its named
mechanisms), ``dowhy_bootstrap`` (``gcm.confidence_intervals`` over DoWhy calls on random subsets of both
periods, the ``fit_and_compute`` default 75%; named: DoWhy's test rejects in most replicates; a 90% interval
that excludes 0 is no rule for it, as DoWhy's sampled KL estimates of an unchanged mechanism are biased and
noisy), and ``ks_residual`` (naive: per player, a Kolmogorov-Smirnov test of the residuals of an ordinary
least-squares fit on the old period, in both periods; Benjamini-Hochberg over the players; scores the KS
statistics; no contributions).
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import sys
import tempfile
import time
import warnings
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import networkx as nx
import numpy as np
import pandas as pd
import yaml

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bayes_rca.distribution_change import attribute_distribution_change, distribution_change  # noqa: E402
from bayes_rca.graph import blameable_nodes, parents_of, topological_order  # noqa: E402
from bayes_rca.harness.benchmarks import heavy_tailed_dag  # noqa: E402
from bayes_rca.harness.methods._common import seeded_global_rng  # noqa: E402
from bayes_rca.synthetic import LinearGaussianSystem  # noqa: E402

DEFAULTS: dict[str, Any] = {
    "name": "distribution_change",
    "seeds": list(range(10)),
    "functionals": ["mean", "kl"],
    "benchmark": {"num_nodes": 8, "min_ancestors": 4, "num_rows": 1000, "max_changes": 3,
                  "kinds": ["coefficient", "noise_scale", "root_shift"], "specificity": True},
    "methods": {"bayes_rca": {"num_draws": 200}, "dowhy": {}, "dowhy_bootstrap": {"num_bootstrap_resamples": 10},
                "ks_residual": {}},
    "tracking": {"uri": None, "experiment": None},
}
KINDS = ("coefficient", "noise_scale", "root_shift")
METRICS = ("top1", "recall_at_r", "mae", "coverage_90", "width_90", "named_recall", "false_alarms", "specificity",
           "seconds")
THRESHOLDS = {"mean": lambda sd: 0.1 * sd, "kl": lambda sd: 0.005}  # the default delta of each functional


# ------------------------------------------------------------------------------------------------------ config
def _merge(base: dict, extra: dict, where: str = "") -> dict:
    """``extra`` over ``base``; a key ``base`` does not know is an error (except under ``methods``)."""
    merged = copy.deepcopy(base)
    for key, value in extra.items():
        if key not in base and where != "methods" and not where.startswith("methods."):
            raise SystemExit(f"config: unknown key {where + '.' if where else ''}{key}; known: {', '.join(base)}")
        if isinstance(value, dict) and isinstance(base.get(key), dict) and key != "methods":
            merged[key] = _merge(base[key], value, f"{where}.{key}" if where else key)
        else:
            merged[key] = value
    return merged


def _set_dotted(config: dict, key: str, value: Any) -> None:
    parts = key.strip().split(".")
    node = config
    for depth, part in enumerate(parts[:-1]):
        if part not in node and not (depth == 1 and parts[0] == "methods"):
            raise SystemExit(f"override {key}: unknown key {'.'.join(parts[:depth + 1])}")
        node = node.setdefault(part, {}) if node.get(part) is not None else node.setdefault(part, {})
        if node is None or not isinstance(node, dict):
            raise SystemExit(f"override {key}: {part} is not a mapping")
    if parts[-1] not in node and not (len(parts) >= 2 and parts[0] == "methods"):
        raise SystemExit(f"override {key}: unknown key {key}")
    node[parts[-1]] = value


def load_config(path: str | None, overrides: list[str]) -> dict[str, Any]:
    """The config at ``path`` over :data:`DEFAULTS` (its ``methods`` replace the default ones), with ``a.b=value``
    overrides (values parsed as YAML; ``methods.NAME.option=value`` sets a method's option)."""
    config = copy.deepcopy(DEFAULTS)
    if path is not None:
        config = _merge(DEFAULTS, yaml.safe_load(Path(path).read_text()) or {})
    for item in overrides:
        key, sep, text = item.partition("=")
        if not sep:
            raise SystemExit(f"override {item!r} must look like key=value")
        _set_dotted(config, key, yaml.safe_load(text))
    for name in list(config["methods"]):
        config["methods"][name] = dict(config["methods"][name] or {})
    unknown = [kind for kind in config["benchmark"]["kinds"] if kind not in KINDS]
    if unknown:
        raise SystemExit(f"config: unknown change kind(s) {unknown}; known: {', '.join(KINDS)}")
    unknown = [name for name in config["methods"] if name not in METHODS]
    if unknown:
        raise SystemExit(f"config: unknown method(s) {unknown}; known: {', '.join(METHODS)}")
    return config


# --------------------------------------------------------------------------------------------------- benchmark
@dataclass
class Case:
    """One seed's pair of periods, the old period's second sample, and the truth per functional."""

    graph: nx.DiGraph
    target: str
    old: LinearGaussianSystem
    new: LinearGaussianSystem
    old_data: pd.DataFrame
    new_data: pd.DataFrame
    same_data: pd.DataFrame
    changes: dict[str, str]  # node -> kind

    @property
    def players(self) -> list[str]:
        return blameable_nodes(self.graph, self.target)

    def truth(self, functional: str) -> pd.Series:
        """Exact Shapley values at the true parameters (closed form), over all nodes."""
        exact = attribute_distribution_change(self.old.oracle_model(), self.new.oracle_model(), self.target,
                                              functional)
        return pd.Series(exact.contributions[0], index=exact.nodes)

    def relevant(self, functional: str) -> list[str]:
        """Changed mechanisms whose exact contribution is at least the functional's default threshold."""
        sd = math.sqrt(attribute_distribution_change(self.old.oracle_model(), self.old.oracle_model(), self.target,
                                                     "mean").old_moments[0, 1])
        truth = self.truth(functional)
        return [node for node in self.changes if abs(truth[node]) >= THRESHOLDS[functional](sd)]


def make_case(seed: int, num_nodes: int, min_ancestors: int, num_rows: int, max_changes: int,
              kinds: list[str], **_: Any) -> Case:
    """The case of ``seed`` (everything drawn from it)."""
    rng = np.random.default_rng(seed)
    for _ in range(100):
        graph = heavy_tailed_dag(num_nodes, int(rng.integers(1, 3)), rng)
        counts = {node: len(nx.ancestors(graph, node)) for node in graph}
        targets = sorted(node for node, count in counts.items() if count >= min_ancestors)
        if targets:
            break
    else:
        targets = [max(counts, key=counts.get)]
    target = targets[int(rng.integers(len(targets)))]
    coefficients = {edge: float(rng.uniform(0.5, 2.0) * rng.choice([-1.0, 1.0])) for edge in sorted(graph.edges)}
    intercepts = {node: float(rng.uniform(-3.0, 3.0) if graph.in_degree(node) == 0 else rng.uniform(-1.0, 1.0))
                  for node in graph}
    noise_sd = {node: float(rng.uniform(0.5, 1.5)) for node in graph}
    old = LinearGaussianSystem(graph, coefficients, intercepts, noise_sd)
    players = blameable_nodes(graph, target)
    count = int(rng.integers(1, min(max_changes, len(players)) + 1))
    chosen = [players[int(i)] for i in rng.choice(len(players), size=count, replace=False)]
    new_coefficients, new_intercepts, new_sd = dict(coefficients), dict(intercepts), dict(noise_sd)
    changes = {}
    for node in chosen:
        parents = parents_of(graph, node)
        possible = [kind for kind in kinds if (kind != "coefficient" or parents) and (kind != "root_shift"
                                                                                       or not parents)]
        kind = possible[int(rng.integers(len(possible)))] if possible else "noise_scale"
        if kind == "coefficient":
            parent = parents[int(rng.integers(len(parents)))]
            new_coefficients[parent, node] *= float(rng.uniform(1.3, 2.0))
        elif kind == "noise_scale":
            new_sd[node] *= float(rng.uniform(1.5, 2.5))
        else:
            new_intercepts[node] += float(rng.uniform(0.5, 1.5) * rng.choice([-1.0, 1.0]) * noise_sd[node])
        changes[node] = kind
    new = LinearGaussianSystem(graph, new_coefficients, new_intercepts, new_sd)
    seeds = np.random.SeedSequence(seed).generate_state(3)
    return Case(graph, target, old, new, old.sample(num_rows, seed=int(seeds[0])),
                new.sample(num_rows, seed=int(seeds[1])), old.sample(num_rows, seed=int(seeds[2])), changes)


# ----------------------------------------------------------------------------------------------------- methods
@dataclass
class Answer:
    """A method's answer: point contributions (or scores) per node, draws, named mechanisms, seconds."""

    point: pd.Series | None  # contributions in the functional's units (None: scores only)
    scores: pd.Series  # ranking (higher: more to blame)
    draws: pd.DataFrame | None
    named: list[str]
    seconds: float


def run_bayes_rca(case: Case, old: pd.DataFrame, new: pd.DataFrame, functional: str, seed: int,
                  num_draws: int = 200, **options: Any) -> Answer:
    start = time.perf_counter()
    result = distribution_change(old, new, case.graph, case.target, functional, num_draws=num_draws, seed=seed,
                                 **options)
    seconds = time.perf_counter() - start
    draws = pd.DataFrame(result.contributions, columns=result.nodes)
    point = draws.mean()
    return Answer(point, point.abs(), draws, [str(n) for n in result.changed()], seconds)


def _dowhy(n_jobs: int = 1):
    from dowhy import gcm

    gcm.config.disable_progress_bars()
    gcm.config.set_default_n_jobs(n_jobs)
    return gcm


def _dowhy_options(functional: str, num_samples: int) -> dict[str, Any]:
    options: dict[str, Any] = {"num_samples": num_samples, "return_additional_info": True}
    if functional == "mean":
        options["difference_estimation_func"] = lambda old, new: float(np.mean(new) - np.mean(old))
    elif functional == "kl":  # DoWhy's default, auto_estimate_kl_divergence, its value as a float
        from dowhy.gcm.divergence import auto_estimate_kl_divergence

        options["difference_estimation_func"] = lambda old, new: float(auto_estimate_kl_divergence(old, new))
    else:
        raise ValueError(f"the DoWhy methods run the mean and kl functionals, not {functional!r}")
    return options


def _dowhy_model(gcm, graph: nx.DiGraph, old: pd.DataFrame, quality: str):
    model = gcm.ProbabilisticCausalModel(nx.DiGraph(graph))
    gcm.auto.assign_causal_mechanisms(model, old, quality=getattr(gcm.auto.AssignmentQuality, quality.upper()))
    return model


def _series(values: dict, nodes: list[str]) -> pd.Series:
    return pd.Series({node: float(np.asarray(value).reshape(-1)[0]) for node, value in values.items()},
                     dtype=float).reindex(nodes).fillna(0.0)


def run_dowhy(case: Case, old: pd.DataFrame, new: pd.DataFrame, functional: str, seed: int,
              num_samples: int = 2000, quality: str = "good") -> Answer:
    gcm = _dowhy()
    nodes = topological_order(case.graph)
    start = time.perf_counter()
    with seeded_global_rng(seed):
        model = _dowhy_model(gcm, case.graph, old, quality)
        contributions, changed, _, _ = gcm.distribution_change(model, old, new, case.target,
                                                               **_dowhy_options(functional, num_samples))
    seconds = time.perf_counter() - start
    point = _series(contributions, nodes)
    return Answer(point, point.abs(), None, [str(n) for n, flag in changed.items() if flag], seconds)


def run_dowhy_bootstrap(case: Case, old: pd.DataFrame, new: pd.DataFrame, functional: str, seed: int,
                        num_bootstrap_resamples: int = 10, subset_fraction: float = 0.75, num_samples: int = 2000,
                        quality: str = "good") -> Answer:
    gcm = _dowhy()
    nodes = topological_order(case.graph)
    replicates: list[pd.Series] = []
    flagged: list[pd.Series] = []
    start = time.perf_counter()
    with seeded_global_rng(seed):
        model = _dowhy_model(gcm, case.graph, old, quality)
        rng = np.random.default_rng(seed)

        def replicate() -> dict:
            old_subset = old.sample(frac=subset_fraction, random_state=int(rng.integers(2**31)))
            new_subset = new.sample(frac=subset_fraction, random_state=int(rng.integers(2**31)))
            contributions, changed, _, _ = gcm.distribution_change(model, old_subset, new_subset, case.target,
                                                                   **_dowhy_options(functional, num_samples))
            replicates.append(_series(contributions, nodes))
            flagged.append(pd.Series({node: float(flag) for node, flag in changed.items()}).reindex(nodes).fillna(0))
            # as floats: DoWhy sets some contributions to the int 0, and its summary then fails to add floats to them
            return {node: float(np.asarray(value).reshape(-1)[0]) for node, value in contributions.items()}

        gcm.confidence_intervals(replicate, confidence_level=0.9, num_bootstrap_resamples=num_bootstrap_resamples,
                                 bootstrap_results_summary_func=lambda results: np.median(results, axis=0))
    seconds = time.perf_counter() - start
    draws = pd.DataFrame(replicates)
    point = draws.median()
    majority = pd.DataFrame(flagged).mean() > 0.5  # DoWhy's mechanism-change test, in most replicates
    return Answer(point, point.abs(), draws, [node for node in nodes if majority[node]], seconds)


def run_ks_residual(case: Case, old: pd.DataFrame, new: pd.DataFrame, functional: str, seed: int,
                    alpha: float = 0.05) -> Answer:
    from scipy.stats import false_discovery_control, ks_2samp

    nodes = topological_order(case.graph)
    players = case.players
    start = time.perf_counter()
    statistics, p_values = {}, {}
    for node in players:
        parents = parents_of(case.graph, node)
        design = np.column_stack([np.ones(len(old)), old[parents].to_numpy()]) if parents else np.ones((len(old), 1))
        beta, *_ = np.linalg.lstsq(design, old[node].to_numpy(), rcond=None)

        def residual(frame: pd.DataFrame) -> np.ndarray:
            x = np.column_stack([np.ones(len(frame)), frame[parents].to_numpy()]) if parents else \
                np.ones((len(frame), 1))
            return frame[node].to_numpy() - x @ beta

        test = ks_2samp(residual(old), residual(new))
        statistics[node], p_values[node] = float(test.statistic), float(test.pvalue)
    adjusted = dict(zip(players, false_discovery_control([p_values[n] for n in players], method="bh")))
    seconds = time.perf_counter() - start
    scores = pd.Series(statistics, dtype=float).reindex(nodes).fillna(-np.inf)
    return Answer(None, scores, None, [n for n in players if adjusted[n] < alpha], seconds)


METHODS = {"bayes_rca": run_bayes_rca, "dowhy": run_dowhy, "dowhy_bootstrap": run_dowhy_bootstrap,
           "ks_residual": run_ks_residual}


# ----------------------------------------------------------------------------------------------------- scoring
def score(answer: Answer, case: Case, functional: str) -> dict[str, float]:
    """The metrics of one answer on the change case (see the module docstring)."""
    players = case.players
    truth = case.truth(functional)
    relevant = case.relevant(functional)
    nan = float("nan")
    ranking = answer.scores.reindex(topological_order(case.graph)).sort_values(ascending=False, kind="stable")
    row: dict[str, float] = {"relevant": float(len(relevant)), "seconds": answer.seconds}
    row["top1"] = float(ranking.index[0] in relevant) if relevant else nan
    row["recall_at_r"] = len(set(ranking.index[:len(relevant)]) & set(relevant)) / len(relevant) if relevant else nan
    row["mae"] = float((answer.point[players] - truth[players]).abs().mean()) if answer.point is not None else nan
    if answer.draws is not None:
        low, high = answer.draws[players].quantile(0.05), answer.draws[players].quantile(0.95)
        row["coverage_90"] = float(((truth[players] >= low) & (truth[players] <= high)).mean())
        row["width_90"] = float((high - low).mean())
    else:
        row["coverage_90"] = row["width_90"] = nan
    row["named_recall"] = len(set(answer.named) & set(relevant)) / len(relevant) if relevant else nan
    row["false_alarms"] = float(len(set(answer.named) - set(case.changes)))
    return row


def run_cell(cell: dict[str, Any]) -> dict[str, Any]:
    """One (method, functional, seed): the change case and, if asked, the specificity case."""
    import torch

    torch.set_num_threads(1)
    warnings.filterwarnings("ignore")
    bench = cell["benchmark"]
    case = make_case(cell["seed"], **bench)
    run = METHODS[cell["method"]]
    options = dict(cell["options"])
    record: dict[str, Any] = {"method": cell["method"], "functional": cell["functional"], "seed": cell["seed"],
                              "target": case.target, "players": len(case.players),
                              "changes": json.dumps(case.changes)}
    try:
        answer = run(case, case.old_data, case.new_data, cell["functional"], cell["seed"], **options)
        record.update(score(answer, case, cell["functional"]))
        record["named"] = ",".join(answer.named)
        record["top3"] = ",".join(answer.scores.sort_values(ascending=False).index[:3].astype(str))
        if bench["specificity"]:
            same = run(case, case.old_data, case.same_data, cell["functional"], cell["seed"], **options)
            record["specificity"] = float(len(same.named) == 0)
            record["specificity_named"] = ",".join(same.named)
        record["error"] = ""
    except Exception as error:  # recorded, the sweep goes on
        record["error"] = f"{type(error).__name__}: {error}"
    return record


# ------------------------------------------------------------------------------------------------------ output
def summarise(records: pd.DataFrame) -> pd.DataFrame:
    """Mean and standard error over seeds, per method and functional."""
    ok = records[records["error"] == ""]
    grouped = ok.groupby(["functional", "method"], sort=False)
    columns = [metric for metric in METRICS if metric in ok.columns]
    table = pd.concat({"mean": grouped[columns].mean(), "se": grouped[columns].sem()}, axis=1)
    table.columns = [f"{metric}_{stat}" for stat, metric in table.columns]
    table["cases"] = grouped.size()
    return table


def to_markdown(table: pd.DataFrame) -> str:
    lines = ["| functional | method | " + " | ".join(METRICS) + " | cases |", "|" + "---|" * (len(METRICS) + 3)]
    for (functional, method), row in table.iterrows():
        cells = []
        for metric in METRICS:
            mean, se = row.get(f"{metric}_mean", np.nan), row.get(f"{metric}_se", np.nan)
            digits = 2 if metric == "seconds" else 3
            text = "" if pd.isna(mean) else f"{mean:.{digits}f}"
            cells.append(text + ("" if pd.isna(se) or not text else f" ± {se:.{digits}f}"))
        lines.append(f"| {functional} | {method} | " + " | ".join(cells) + f" | {int(row['cases'])} |")
    return "\n".join(lines) + "\n"


def log_to_mlflow(config: dict[str, Any], records: pd.DataFrame, table: pd.DataFrame, markdown: str) -> str:
    """A parent run for the sweep (config, cases, table) and a child run per cell; returns the parent run id."""
    from mlflow.entities import Metric, Param

    from bayes_rca.harness.tracking import provenance_tags
    from bayes_rca.tracking import default_tracking_uri, experiment_id, tracking_client

    uri = config["tracking"]["uri"] or default_tracking_uri(ROOT)
    client = tracking_client(uri)
    experiment = experiment_id(client, config["tracking"]["experiment"] or config["name"], uri)
    parent = client.create_run(experiment, run_name=config["name"], tags={"role": "sweep", **provenance_tags()})
    parent_id = parent.info.run_id
    now = int(time.time() * 1000)
    for record in records.to_dict("records"):
        child = client.create_run(experiment, run_name=f"{record['method']} {record['functional']} "
                                                       f"seed={record['seed']}",
                                  tags={"mlflow.parentRunId": parent_id, "role": "cell"})
        params = {"method": record["method"], "functional": record["functional"], "seed": record["seed"],
                  "target": record["target"], "changes": record["changes"],
                  "method_options": json.dumps(config["methods"][record["method"]] or {}),
                  **{f"benchmark.{k}": v for k, v in config["benchmark"].items()}}
        client.log_batch(child.info.run_id, params=[Param(k, str(v)[:6000]) for k, v in params.items()],
                         metrics=[Metric(k, float(record[k]), now, 0) for k in (*METRICS, "relevant")
                                  if k in record and pd.notna(record[k])])
        if record["error"]:
            client.set_tag(child.info.run_id, "failure", record["error"][:5000])
        client.set_terminated(child.info.run_id, status="FAILED" if record["error"] else "FINISHED")
    with tempfile.TemporaryDirectory() as folder:
        for name, text in (("config.yaml", yaml.safe_dump(config, sort_keys=True)),
                           ("cases.csv", records.to_csv(index=False)), ("comparison.csv", table.to_csv()),
                           ("comparison.md", markdown)):
            (Path(folder) / name).write_text(text)
            client.log_artifact(parent_id, str(Path(folder) / name))
    client.set_terminated(parent_id, status="FINISHED")
    return parent_id


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("config", nargs="?", default=None, help="YAML config (configs/distribution_change.yaml)")
    parser.add_argument("overrides", nargs="*", help="key=value overrides, e.g. 'seeds=[0,1]' benchmark.num_rows=500")
    parser.add_argument("--workers", type=int, default=1, help="processes running cells in parallel")
    parser.add_argument("--output", default=str(ROOT / "outputs"), help="folder for the comparison table")
    parser.add_argument("--no-track", action="store_true", help="do not log to MLflow")
    args = parser.parse_args(argv)
    if args.config is not None and "=" in args.config and not Path(args.config).exists():
        args.config, args.overrides = None, [args.config, *args.overrides]  # overrides of the defaults only
    config = load_config(args.config, args.overrides)
    cells = [{"method": method, "options": options or {}, "functional": functional, "seed": seed,
              "benchmark": config["benchmark"]}
             for functional in config["functionals"] for seed in config["seeds"]
             for method, options in config["methods"].items()]
    print(f"{config['name']}: {len(cells)} cells ({len(config['methods'])} methods x {len(config['functionals'])} "
          f"functionals x {len(config['seeds'])} seeds)", flush=True)
    start = time.perf_counter()
    records = []
    folder = Path(args.output) / config["name"]
    folder.mkdir(parents=True, exist_ok=True)
    partial = folder / "cases.partial.csv"  # the cells done so far, should the sweep be stopped

    def done(number: int, record: dict[str, Any]) -> None:
        records.append(record)
        _report(number, len(cells), record)
        pd.DataFrame(records).to_csv(partial, index=False)

    if args.workers > 1:
        with ProcessPoolExecutor(args.workers) as pool:
            for number, record in enumerate(pool.map(run_cell, cells), start=1):
                done(number, record)
    else:
        for number, cell in enumerate(cells, start=1):
            done(number, run_cell(cell))
    frame = pd.DataFrame(records)
    table = summarise(frame)
    markdown = to_markdown(table)
    frame.to_csv(folder / "cases.csv", index=False)
    partial.unlink(missing_ok=True)
    table.to_csv(folder / "comparison.csv")
    (folder / "comparison.md").write_text(markdown)
    print(markdown)
    print(f"{time.perf_counter() - start:.0f} s; written {folder}/comparison.md and cases.csv")
    if not args.no_track:
        parent = log_to_mlflow(config, frame, table, markdown)
        print(f"logged MLflow parent run {parent}")
    return 0 if (frame["error"] == "").any() else 1


def _report(number: int, total: int, record: dict[str, Any]) -> None:
    what = record["error"] or (f"top1 {record.get('top1', float('nan')):.0f} mae {record.get('mae', float('nan')):.3g} "
                               f"cov {record.get('coverage_90', float('nan')):.2f} "
                               f"spec {record.get('specificity', float('nan')):.0f} {record['seconds']:.1f} s")
    print(f"[{number}/{total}] {record['method']} {record['functional']} seed={record['seed']}: {what}", flush=True)


if __name__ == "__main__":
    sys.exit(main())
