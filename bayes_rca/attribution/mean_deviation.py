"""The mean-deviation game of linear-Gaussian players: each noise's share of the target's deviation from its mean.

For linear-Gaussian players the target is ``X_t = E[X_t] + sum_j alpha_j N_j`` (``alpha_j`` the total effect of
noise ``j`` in data units), so the game ``x_t - E[X_t | the noise of S redrawn]`` is additive and its Shapley
values are exactly the shares ``alpha_j n_j`` of the abducted noises. Signed towards the target's deviation, a
share is the push of a node on the target in the target's units: the question "which node moved the target",
where the IT-score game asks "which node made the target improbable" (the two differ when the target moved
but is not improbable under its own normal variation).
"""

from __future__ import annotations

from collections.abc import Hashable

import pandas as pd
import torch

from bayes_rca.attribution.abduction import Players
from bayes_rca.attribution.extrapolation_game import ExtrapolationGame, extrapolates
from bayes_rca.attribution.latent import abduct_sampled_noise
from bayes_rca.attribution.linear_game import total_effects
from bayes_rca.attribution.scores import get_feature_map
from bayes_rca.errors import MechanismError
from bayes_rca.graph.dag import blameable_nodes
from bayes_rca.model.scm import BayesianSCM


def mean_deviation_shares(model: BayesianSCM, target: Hashable, row: pd.Series, num_samples: int = 20,
                          seed: int = 0) -> pd.DataFrame:
    """Per posterior draw, each player's share of the target's deviation from its mean, signed towards it.

    Parameters
    ----------
    model : BayesianSCM
        A fitted model whose target and ancestors are all linear-Gaussian.
    target : hashable
        The target node.
    row : pandas.Series
        The outlier row (players' values; NaN where missing: inferred with the noise, ``num_samples`` per draw).
    num_samples : int
        Noise samples per posterior draw where the row has missing values.
    seed : int
        Seed of those samples.

    Returns
    -------
    pandas.DataFrame
        ``(draws, players)``: positive where the node pushed the target the way it deviated (data units).

    Examples
    --------
    >>> import networkx as nx, numpy as np, pandas as pd
    >>> rng = np.random.default_rng(0)
    >>> x = rng.normal(size=500)
    >>> data = pd.DataFrame({"X": x, "Y": 2 * x + rng.normal(size=500)})
    >>> model = BayesianSCM(nx.DiGraph([("X", "Y")]), mechanisms={"X": "gaussian_root", "Y": "linear_gaussian"},
    ...                     num_draws=50, progress=False).fit(data)
    >>> shares = mean_deviation_shares(model, "Y", pd.Series({"X": 3.0, "Y": 6.0}))
    >>> bool(shares["X"].mean() > 5 * abs(shares["Y"].mean()))
    True
    """
    players = blameable_nodes(model.graph, target)
    nodes = [model.nodes_[player] for player in players]
    nonlinear = [player for player, node in zip(players, nodes) if not node.mechanism.linear_gaussian]
    if nonlinear:
        raise MechanismError(f"the mean-deviation game needs linear-Gaussian players; {nonlinear!r} are "
                             f"{sorted({model.nodes_[n].mechanism.name for n in nonlinear})}")
    values = torch.tensor(row[players].to_numpy(dtype=float), dtype=torch.float64).unsqueeze(0)
    generator = torch.Generator().manual_seed(seed)
    abducted: Players = abduct_sampled_noise(nodes, values, num_samples, generator)
    effect, intercept = total_effects(abducted)
    scale = torch.tensor([node.standardizer.scale for node in abducted.nodes], dtype=effect.dtype)
    if extrapolates(abducted.nodes):  # the effects of the regime the row is in
        shift = ExtrapolationGame(abducted, get_feature_map("zscore")).pushes()[:, 0]
    else:
        shift = (effect * scale) * abducted.noise[:, 0]  # (D, K)
    mean = (effect * intercept).sum(-1)  # (D,): E[X_t] per draw
    sign = torch.sign(abducted.values[0, -1] - mean).unsqueeze(-1)
    return pd.DataFrame((shift * sign).numpy(), columns=players)
