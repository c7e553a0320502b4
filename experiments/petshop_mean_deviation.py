"""Post-hoc analysis (after the validation results of the service model were seen; not a shipped setting):
rank PetShop causes by their posterior-mean push on the target in data units instead of by IT-score Shapley values.

For linear-Gaussian players the Shapley values of the mean-deviation game ``x_t - E[X_t | noise of S redrawn]``
are exactly each noise's share ``alpha_j n_j`` of the target's deviation (the game is additive); this script ranks
nodes by that share, signed towards the target's deviation, with the fitted service model of
``configs/petshop.yaml`` and the issue rows' missing values sampled as in the attribution.

    python experiments/petshop_mean_deviation.py train
    python experiments/petshop_mean_deviation.py validation
"""
from __future__ import annotations

import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import yaml

from bayes_rca.attribution.latent import abduct_sampled_noise
from bayes_rca.attribution.linear_game import LinearGaussianGame
from bayes_rca.attribution.scores import get_feature_map
from bayes_rca.graph.dag import blameable_nodes
from bayes_rca.harness.methods import make_method
from bayes_rca.harness.methods.base import Attribution
from bayes_rca.harness.metrics import recall_at_k
from bayes_rca.harness.real_data import petshop_benchmark

ROOT = Path(__file__).resolve().parents[1]
warnings.filterwarnings("ignore")
cfg = yaml.safe_load((ROOT / "configs" / "petshop.yaml").read_text())["methods"]["bayes_rca"]
split = sys.argv[1] if len(sys.argv) > 1 else "train"
for scen in ["low_traffic", "high_traffic"]:
    for metric in ["latency", "availability"]:
        try:
            b = petshop_benchmark(ROOT.parent / "shared" / "data" / "petshop", scen, split, metric, specificity=False)
        except Exception:  # no such split in this scenario
            continue
        m = make_method("bayes_rca", **cfg).fit(b.graph, b.train)
        t1 = []
        for c in b.cases:
            players = blameable_nodes(m.model_.graph, c.target)
            fitted = [m.model_.nodes_[p] for p in players]
            row = torch.tensor(c.observed_row[players].to_numpy(), dtype=torch.float64)
            ab = abduct_sampled_noise(fitted, row, 20, torch.Generator().manual_seed(0))
            game = LinearGaussianGame(ab, get_feature_map("median_cdf_quantile"))
            mu = (game.lo + game.hi) / 2  # symmetric thresholds: the marginal mean
            sign = torch.sign(game.observed - mu)  # (D, R)
            push = (game.shift * sign.unsqueeze(-1))[:, 0, :].mean(0)  # data-unit push towards the deviation
            scores = pd.Series(push.numpy(), index=players)
            a = Attribution(scores.reindex(list(b.graph.nodes)).fillna(-np.inf))
            t1.append((recall_at_k(a, c.root_cause, 1), recall_at_k(a, c.root_cause, 3)))
        print(scen, split, metric, "mean-deviation top1/top3", np.mean(t1, 0).round(3))
