"""Abduction: the players of an outlier (the target's ancestors and the target) and their noise, inferred from
the observed rows, one posterior sample per draw.

The counterfactual games (:mod:`bayes_rca.attribution.linear_game`, :mod:`bayes_rca.attribution.scale_mixture_game`,
:mod:`bayes_rca.attribution.monte_carlo_game`) redraw the noise of a coalition and keep the rest at its abducted
value; missing values of an outlier row are abducted with the noise in :mod:`bayes_rca.attribution.latent`.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from bayes_rca.model.node import FittedNode


@dataclass(frozen=True)
class Players:
    """The target's ancestors and the target (last), with their fitted nodes and observed rows.

    Attributes
    ----------
    nodes : list of FittedNode
        In topological order, the target last; every parent of a player is a player.
    values : torch.Tensor
        Observed values ``(R, K)`` of the outlier rows.
    noise : torch.Tensor
        Abducted noise ``(D, R, K)`` in standardised units, one per posterior draw.
    """

    nodes: list[FittedNode]
    values: torch.Tensor
    noise: torch.Tensor

    @staticmethod
    def abduct(nodes: list[FittedNode], values: torch.Tensor, generator: torch.Generator | None = None) -> Players:
        """Players with every node's noise abducted from ``values (R, K)`` (see :func:`abduct_noise`)."""
        return Players(nodes, values, abduct_noise(nodes, values, generator))

    @property
    def parent_index(self) -> list[list[int]]:
        index = {node.name: k for k, node in enumerate(self.nodes)}
        return [[index[p] for p in node.parents] for node in self.nodes]


def abduct_noise(nodes: list[FittedNode], values: torch.Tensor,
                 generator: torch.Generator | None = None) -> torch.Tensor:
    """Every node's noise ``(D, R, K)`` given rows ``values``: ``(R, K)`` shared by all draws, or ``(D, R, K)``.

    Residuals for invertible mechanisms, one posterior sample per draw (from ``generator``) for the others.
    """
    index = {node.name: k for k, node in enumerate(nodes)}
    noise = [node.abduct(values[..., k], values[..., [index[p] for p in node.parents]], generator)
             for k, node in enumerate(nodes)]
    return torch.stack(noise, dim=-1)
