"""The Bayesian structural causal model: one Bayesian mechanism per node, fitted independently.

Given the data, the mechanisms of different nodes have independent posteriors (each is a regression of a node
on its parents), so nodes are fitted one by one (or in parallel processes) and their draws are paired by
index: draw ``d`` of the model is draw ``d`` of every node, a draw from the joint posterior.
"""

from __future__ import annotations

import copy
import multiprocessing
import warnings
from collections.abc import Hashable, Mapping
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field, replace

import arviz as az
import networkx as nx
import numpy as np
import pandas as pd
import pyro
import torch
from tqdm.auto import tqdm

from bayes_rca.data.checks import near_constant_columns, near_constant_message, validate_training_data
from bayes_rca.errors import BayesRCAWarning, MechanismError, check_choice
from bayes_rca.graph.dag import check_node, parents_of, topological_order, validate_graph
from bayes_rca.inference import InferenceOptions, PosteriorFit, fit_posterior
from bayes_rca.inference.diagnostics import convergence_problems
from bayes_rca.inference.shrinkage_grid import MIN_NOISE_SD
from bayes_rca.model.assignment import (
    Candidate,
    baseline_family,
    choose_family,
    pointwise_elpd,
    propose_candidates,
)
from bayes_rca.model.mechanisms import Mechanism, bind_to_data, is_binary, make_mechanism
from bayes_rca.model.node import FittedNode, Standardizer
from bayes_rca.numerics.threads import one_thread
from bayes_rca.validation import check_seed

INFERENCE_CHOICES = ("auto", "conjugate", "svi", "nuts")
CONSTANT_NOISE_CHOICES = ("prior", "pooled", "finest")


@dataclass
class _NodeTask:
    name: Hashable
    parents: tuple[Hashable, ...]
    parent_values: np.ndarray
    values: np.ndarray
    spec: str | Mechanism | None
    inference: str
    num_draws: int
    num_chains: int
    options: InferenceOptions
    seed: int
    unseen_weight_prior: tuple[float, float] = (1.0, 0.25)
    constant_noise_scale: float | None = None


@dataclass
class _NodeReport:
    node: Hashable
    family: str
    method: str
    reason: str
    rows: int
    parameters: int
    diagnostics: dict[str, float] = field(default_factory=dict)


def _method_for(inference: str, mechanism: Mechanism, node: Hashable) -> str:
    if inference == "auto":
        if mechanism.conjugate:
            return "conjugate"
        return "laplace_mh" if mechanism.laplace_mh else "shrinkage_grid" if mechanism.shrinkage_grid else "svi"
    if inference == "conjugate" and not mechanism.conjugate:
        raise MechanismError(f"node {node!r}: the {mechanism.name} mechanism has no conjugate posterior; "
                             "use inference='auto', 'svi' or 'nuts'")
    return inference


def _checked_mechanism(spec: str | Mechanism, task: _NodeTask) -> Mechanism:
    mechanism = make_mechanism(spec, task.name)
    reason = mechanism.unfit_reason(task.name, list(task.parents), len(task.values))
    if reason:
        raise MechanismError(reason)
    mechanism.setup(len(task.parents), task.seed)
    return mechanism


def _unseen_parent_weights(posterior: PosteriorFit, unseen: torch.Tensor, standardizer: Standardizer,
                           prior: tuple[float, float], seed: int) -> PosteriorFit:
    """Weights of parents that never moved in the training rows, drawn from their prior in data units.

    The data carry no information on them (the standardised column is 0 in every row), so their posterior is
    their prior: ``weight ~ Normal(mean, sd^2)`` in data units (child units per parent unit), by default a
    pass-through edge, ``Normal(1, 0.25^2)``. A vague zero-mean prior would instead let the counterfactual
    flip the sign of the parent's effect, and the contributions cancel in enormous terms.
    """
    weight = posterior.params["weight"].clone()
    generator = torch.Generator().manual_seed(seed)
    mean, sd = prior
    draws = mean + sd * torch.randn((weight.shape[0], int(unseen.sum())), generator=generator, dtype=weight.dtype)
    scale = standardizer.parent_scale[unseen].to(weight) / standardizer.scale
    weight[:, unseen] = draws * scale
    return replace(posterior, params={**posterior.params, "weight": weight})


def _constant_noise(posterior: PosteriorFit, scale: float, standardizer: Standardizer) -> PosteriorFit:
    """The noise of a node whose training values never varied: ``Normal(0, scale^2)`` in data units.

    Rows that all equal one value carry no information on how far the node moves when it does move (its
    Gaussian posterior would put the noise scale at ``sqrt(b0 / (a0 + n/2))`` in whatever units the column has,
    so that a blip of 0.1 % would be thousands of sds), hence the scale of the other nodes is used.
    """
    noise_var = torch.full_like(posterior.params["noise_var"], (scale / standardizer.scale) ** 2)
    return replace(posterior, params={**posterior.params, "noise_var": noise_var})


def _pooled_noise_scale(values: pd.DataFrame, how: str) -> float | None:
    """The median (``how="pooled"``) or smallest (``"finest"``) standard deviation of the columns that vary."""
    spread = values.std()
    spread = spread[spread > 0]
    if not len(spread):
        return None
    return float(spread.median() if how == "pooled" else spread.min())


def _fit_node(task: _NodeTask) -> tuple[FittedNode, _NodeReport]:
    """Fit one node on one thread, so that the draws are identical in any process (small models fit no slower)."""
    with one_thread():
        return _fit_node_draws(task)


def _fit_node_draws(task: _NodeTask) -> tuple[FittedNode, _NodeReport]:
    """Choose the node's family if not given, then draw from its posterior."""
    pyro.set_rng_seed(task.seed)
    parents = torch.as_tensor(task.parent_values, dtype=torch.float64)
    values = torch.as_tensor(task.values, dtype=torch.float64)
    spec, reason = task.spec, "given"
    if spec is None and is_binary(values):
        spec, reason = "probit_threshold", "values are 0 or 1"
    given = _checked_mechanism(spec, task) if spec is not None else None
    standardizer = Standardizer.fit(parents, values, given is None or given.standardise_value)
    parents_std, values_std = standardizer.parents(parents), standardizer.value(values)

    def fit(mechanism: Mechanism, method: str) -> PosteriorFit:
        return fit_posterior(mechanism, parents_std, values_std, method, task.num_draws, task.num_chains,
                             task.options)

    unseen = torch.zeros(parents.shape[1], dtype=torch.bool)  # parents that never moved in the training rows
    if parents.shape[1] and len(values) > 1:
        unseen = parents.std(0) == 0
    if given is not None:
        mechanism = bind_to_data(given, task.name, values, standardizer.loc, standardizer.scale)
        mechanism = mechanism.bind_parents(standardizer.parent_scale, standardizer.scale)
        if parents.shape[0] and parents.shape[1]:
            mechanism = mechanism.bind_parent_range(parents_std.amin(0), parents_std.amax(0))
        posterior = fit(mechanism, _method_for(task.inference, mechanism, task.name))
    else:
        constant = bool(values.std() == 0)
        candidates = propose_candidates(parents_std, values_std, constant, task.seed)
        if bool(unseen.any()):  # a parent that never moved shows no shape: the linear baseline only
            candidates = [Candidate(candidates[0].family, "a parent is constant in training data")]
        fits = {}
        for candidate in candidates:
            mechanism = _checked_mechanism(candidate.family, task)
            if parents.shape[0] and parents.shape[1]:
                mechanism = mechanism.bind_parent_range(parents_std.amin(0), parents_std.amax(0))
            fits[candidate.family] = (mechanism, fit(mechanism, _method_for("auto", mechanism, task.name)))
        if len(fits) > 1:
            elpd = {family: pointwise_elpd(m, parents_std, values_std, p.params) for family, (m, p) in fits.items()}
            family, choice = choose_family(elpd, baseline_family(len(task.parents)))
            reason = "; ".join(f"{c.family}: {c.reason}" for c in candidates[1:]) + f" -> {choice}"
        else:
            family, reason = candidates[0].family, candidates[0].reason
        mechanism, posterior = fits[family]
        method = _method_for(task.inference, mechanism, task.name)
        if method != posterior.method:
            posterior = fit(mechanism, method)
    if mechanism.linear_in_parents and bool(unseen.any()):
        prior = mechanism.unseen_weight_prior(len(task.parents)) or task.unseen_weight_prior
        posterior = _unseen_parent_weights(posterior, unseen, standardizer, prior, task.seed + 1)
    if (task.constant_noise_scale is not None and mechanism.linear_gaussian and len(values) > 1
            and bool(values.std() == 0)):
        posterior = _constant_noise(posterior, task.constant_noise_scale, standardizer)
    node = FittedNode(task.name, task.parents, mechanism, standardizer, posterior)
    report = _NodeReport(task.name, mechanism.name, posterior.method, reason, len(values),
                         mechanism.num_parameters(len(task.parents)), posterior.diagnostics)
    return node, report


def _warn_about_columns(graph: nx.DiGraph, data: pd.DataFrame, values: pd.DataFrame,
                        constant_noise: str = "prior") -> None:
    """Warn about columns that are used but constant or nearly so, and columns that are not graph nodes
    (ignored)."""
    constant = [node for node in values.columns if values[node].nunique() == 1]
    if constant:
        how = ("with a small noise scale from the prior, so any other value there gets a large contribution "
               "(constant_noise='finest' gives them the smallest scale of the varying columns)"
               if constant_noise == "prior" else f"with the {constant_noise} noise scale of the varying columns")
        warnings.warn(f"training data column(s) {', '.join(map(repr, constant))} are constant: modelled {how}",
                      BayesRCAWarning, stacklevel=3)
    nearly = near_constant_columns(values)
    if nearly:
        warnings.warn(near_constant_message(nearly), BayesRCAWarning, stacklevel=3)
    unused = [column for column in data.columns if column not in graph]
    if unused:
        warnings.warn(f"training data column(s) {', '.join(map(repr, unused))} are not graph nodes: ignored",
                      BayesRCAWarning, stacklevel=3)


def _check_converged(report: _NodeReport) -> bool:
    """Whether a node's fit converged; if not, warn with the diagnostics' figures."""
    problems = convergence_problems(report.diagnostics)
    if problems:
        advice = (f"the node may be a nearly exact function of its parents (its noise sd below the grid's "
                  f"{MIN_NOISE_SD:.1g} standardised units); fit it with inference='nuts' or another family"
                  if report.method == "shrinkage_grid" else
                  "give the fit more steps (InferenceOptions.svi_steps, warmup_steps) or more chains")
        warnings.warn(f"node {report.node!r} ({report.family}, {report.method}) may not have converged: "
                      f"{'; '.join(problems)}. Its contributions are unreliable (fit_report_.converged is False); "
                      f"{advice}", BayesRCAWarning, stacklevel=3)
    return not problems


class BayesianSCM:
    """A structural causal model whose mechanisms are Bayesian models in Pyro.

    Parameters
    ----------
    graph : networkx.DiGraph
        The causal graph (``u -> v``: ``u`` causes ``v``).
    mechanisms : mapping, optional
        Per-node override of the mechanism family: a family name (see ``bayes_rca.model.mechanisms.FAMILIES``) or a
        :class:`~bayes_rca.model.mechanisms.Mechanism` instance. Other nodes are assigned automatically.
    inference : {"auto", "conjugate", "svi", "nuts"}
        ``"auto"``: exact conjugate draws where the family allows, Metropolis-Hastings from a Laplace fit
        for the linear Student-t families, draws exact given two scales integrated on a grid for
        ``fourier_gaussian`` (:mod:`bayes_rca.inference.shrinkage_grid`), SVI otherwise. ``"nuts"`` is the most
        accurate, ``"svi"`` the fastest approximate method.
    num_draws : int
        Posterior draws per node (all chains together).
    num_chains : int
        Chains (for NUTS; the draws of other methods are laid out in as many groups).
    seed : int
        Seed of every random choice; the same seed gives the same draws.
    n_jobs : int
        Processes that fit nodes in parallel (1: in this process).
    progress : bool
        Show a progress bar while fitting.
    options : InferenceOptions, optional
        Settings of SVI and NUTS.
    unseen_weight_prior : (float, float)
        Mean and sd (data units: child units per parent unit) of the weight of a parent that is constant in a
        node's training rows; the data say nothing about it, so this prior is its posterior. The default is a
        pass-through edge (a deviation never seen before passes on about one for one), as for latencies that
        add up along calls and availabilities that fall with a callee's.
    constant_noise : {"prior", "pooled"}
        The noise of a linear-Gaussian node whose training values are all equal. ``"prior"``: its posterior, a
        tiny scale from the noise-variance prior (any other value is then thousands of sds out); ``"pooled"``:
        a Gaussian with the median standard deviation of the columns that vary, for systems whose nodes share
        one metric (PetShop availabilities stuck at 100): the data only say that the node did not move, not how
        far it moves when it does.

    Examples
    --------
    >>> import networkx as nx
    >>> from bayes_rca.data.synthetic import random_linear_system
    >>> graph = nx.DiGraph([("db", "api"), ("api", "web")])
    >>> normal_data = random_linear_system(graph, seed=0).sample(500, seed=1)
    >>> model = BayesianSCM(graph, num_draws=100, progress=False).fit(normal_data)
    >>> {node: model.nodes_[node].mechanism.name for node in graph}  # the automatic assignment
    {'db': 'gaussian_root', 'api': 'linear_gaussian', 'web': 'linear_gaussian'}
    """

    def __init__(self, graph: nx.DiGraph, mechanisms: Mapping[Hashable, str | Mechanism] | None = None,
                 inference: str = "auto", num_draws: int = 200, num_chains: int = 1, seed: int = 0,
                 n_jobs: int = 1, progress: bool = True, options: InferenceOptions | None = None,
                 unseen_weight_prior: tuple[float, float] = (1.0, 0.25), constant_noise: str = "prior") -> None:
        self.graph = validate_graph(graph)
        # a Mechanism instance is set up in place when fitted: each node gets its own copy (as scikit-learn clones)
        self.mechanisms = {node: copy.deepcopy(mechanism) for node, mechanism in (mechanisms or {}).items()}
        for node in self.mechanisms:
            check_node(self.graph, node, "mechanism override for")
        check_choice("inference", inference, INFERENCE_CHOICES, MechanismError)
        if num_draws < 1 or num_chains < 1 or num_draws % num_chains:
            raise MechanismError(f"num_draws={num_draws} must be a positive multiple of num_chains={num_chains}")
        self.inference, self.num_draws, self.num_chains = inference, num_draws, num_chains
        self.seed, self.n_jobs, self.progress = check_seed(seed), n_jobs, progress
        self.options = options or InferenceOptions()
        if len(unseen_weight_prior) != 2 or not unseen_weight_prior[1] >= 0:
            raise MechanismError(f"unseen_weight_prior must be (mean, sd >= 0), got {unseen_weight_prior!r}")
        self.unseen_weight_prior = (float(unseen_weight_prior[0]), float(unseen_weight_prior[1]))
        check_choice("constant_noise", constant_noise, CONSTANT_NOISE_CHOICES, MechanismError)
        self.constant_noise = constant_noise
        self.nodes_: dict[Hashable, FittedNode] = {}
        self.fit_report_: pd.DataFrame | None = None

    def _tasks(self, data: pd.DataFrame) -> list[_NodeTask]:
        tasks = []
        pooled = (_pooled_noise_scale(data[list(self.graph.nodes)], self.constant_noise)
                  if self.constant_noise != "prior" else None)
        for index, node in enumerate(topological_order(self.graph)):
            parents = tuple(parents_of(self.graph, node))
            columns = data[[*parents, node]].to_numpy()
            observed = np.isfinite(columns).all(axis=1)
            seed = int(np.random.SeedSequence([self.seed, index]).generate_state(1)[0])
            tasks.append(_NodeTask(node, parents, columns[observed, :-1], columns[observed, -1],
                                   self.mechanisms.get(node), self.inference, self.num_draws, self.num_chains,
                                   self.options, seed, self.unseen_weight_prior, pooled))
        return tasks

    def fit(self, data: pd.DataFrame) -> BayesianSCM:
        """Fit every node's mechanism to normal-operation ``data`` (one column per node).

        Rows with a missing value in a node or its parents are left out of that node's fit only. Constant
        columns, columns that are not graph nodes and fits that did not converge are reported as
        :class:`~bayes_rca.errors.BayesRCAWarning`; the last also in ``fit_report_.converged`` and
        :attr:`converged_`.
        """
        values = validate_training_data(self.graph, data)
        _warn_about_columns(self.graph, data, values, self.constant_noise)
        tasks = self._tasks(values)
        # the bar is closed (its line ended) on errors too, so that an error message starts its own line
        with tqdm(total=len(tasks), desc="fitting mechanisms", unit="node", disable=not self.progress) as bar:
            results = []
            if self.n_jobs > 1 and len(tasks) > 1:
                context = multiprocessing.get_context("spawn")
                with ProcessPoolExecutor(self.n_jobs, mp_context=context) as pool:
                    for result in pool.map(_fit_node, tasks):
                        results.append(result)
                        bar.update()
            else:
                for task in tasks:
                    bar.set_postfix_str(str(task.name))
                    results.append(_fit_node(task))
                    bar.update()
        self.nodes_ = {node.name: node for node, _ in results}
        self.fit_report_ = pd.DataFrame([vars(report) for _, report in results]).set_index("node")
        self.fit_report_["converged"] = [_check_converged(report) for _, report in results]
        return self

    @property
    def converged_(self) -> bool:
        """Whether every node's posterior fit passed its convergence checks (a model built by hand: True)."""
        return self.fit_report_ is None or bool(self.fit_report_["converged"].all())

    def _check_fitted(self) -> None:
        if not self.nodes_:
            raise RuntimeError("this BayesianSCM is not fitted yet; call fit(data) first")

    def node(self, name: Hashable) -> FittedNode:
        """The fitted node ``name``."""
        self._check_fitted()
        check_node(self.graph, name)
        return self.nodes_[name]

    def posterior_draws(self) -> dict[str, np.ndarray]:
        """Posterior draws of every node's parameters, keyed ``"node:site"``, shaped ``(chain, draw, ...)``."""
        self._check_fitted()
        return {f"{node.name}:{site}": value.reshape(self.num_chains, -1, *value.shape[1:]).cpu().numpy()
                for node in self.nodes_.values() for site, value in node.params.items()}

    def to_inference_data(self) -> az.InferenceData:
        """The parameter posterior as an arviz InferenceData (one variable per node and site)."""
        return az.from_dict(posterior=self.posterior_draws())
