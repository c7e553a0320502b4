"""The demo: a synthetic microservice latency system with a known injected root cause, end to end."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
from rich.console import Console

from bayes_rca.app.report import prepare_output, print_attribution, write_attribution
from bayes_rca.app.tracking import default_tracking_uri, log_attribution
from bayes_rca.attribution.api import attribute_outliers, resolve_device
from bayes_rca.data.synthetic import microservice_system
from bayes_rca.graph.dag import ancestors_of
from bayes_rca.model.scm import BayesianSCM

TARGET = "Website"


def run_demo(seed: int = 0, num_rows: int = 1000, shift: float = 5.0, num_draws: int = 200,
             inference: str = "auto", device: str = "cpu", output: str | Path = "outputs/demo",
             track: bool = True, console: Console | None = None) -> dict[str, float]:
    """Fit the microservice system on normal data, attribute an outlier with one injected root cause.

    Parameters
    ----------
    seed : int
        Seeds the system, the data, the choice of root cause, fitting and attribution.
    num_rows : int
        Rows of normal operation.
    shift : float
        Injected noise at the root cause, in its noise standard deviations.
    output : str or Path
        Folder for tables, the forest plot and the posterior (netCDF).
    track : bool
        Log the run to MLflow (local store ``mlflow.db`` in the working folder unless ``MLFLOW_TRACKING_URI``).

    Returns
    -------
    dict
        The metrics of the run (also logged).
    """
    resolve_device(device)  # a missing CUDA device fails before the fit, not after it
    prepare_output(output)  # so does an output folder that cannot be written
    console = console or Console()
    system = microservice_system(seed)
    rng = np.random.default_rng(seed)
    root_cause = str(rng.choice(ancestors_of(system.graph, TARGET)))
    train = system.sample(num_rows, seed=seed)
    outlier = system.outlier({root_cause: shift}, seed=seed + 1)
    console.print(f"[bold]bayes_rca demo[/bold]: {system.graph.number_of_nodes()} services, {num_rows} normal rows; "
                  f"injected a {shift:g}-sd latency fault at [bold]{root_cause}[/bold]; "
                  f"{TARGET} latency {outlier[TARGET].iloc[0]:.1f} ms (normal {train[TARGET].mean():.1f} "
                  f"+- {train[TARGET].std():.1f} ms)")
    start = time.perf_counter()
    model = BayesianSCM(system.graph, inference=inference, num_draws=num_draws, seed=seed).fit(train)
    fit_seconds = time.perf_counter() - start
    start = time.perf_counter()
    result = attribute_outliers(model, TARGET, outlier, device=device, seed=seed)
    attribute_seconds = time.perf_counter() - start
    print_attribution(console, result, model)
    folder = write_attribution(result, model, output)
    top = result.summary().loc[result.outliers[0]]
    metrics = {"fit_seconds": fit_seconds, "attribute_seconds": attribute_seconds,
               "top1_correct": float(top.index[0] == root_cause),
               "p_top_true_cause": float(top.loc[root_cause, "p_top_cause"])}
    console.print(f"root cause {root_cause!r} ranked first: {bool(metrics['top1_correct'])}, "
                  f"P(top cause) = {metrics['p_top_true_cause']:.2f}; fit {fit_seconds:.1f} s, "
                  f"attribution {attribute_seconds:.2f} s; results in {folder}/")
    if track:
        run_id = log_attribution(result, model, folder, experiment="bayes_rca-demo", metrics=metrics,
                                 params={"seed": seed, "num_rows": num_rows, "shift": shift,
                                         "true_root_cause": root_cause})
        console.print(f"logged MLflow run {run_id}; browse with: mlflow ui --backend-store-uri "
                      f"{default_tracking_uri()} --host 127.0.0.1", markup=False, soft_wrap=True)
    return metrics
