"""Option objects of :func:`~bayes_rca.attribute_outliers`: how Shapley values and Monte Carlo games are computed.

As DoWhy groups its Shapley settings in ``ShapleyConfig``, the attribution takes a :class:`ShapleyOptions` and a
:class:`MonteCarloOptions` beside the model's :class:`~bayes_rca.inference.InferenceOptions`. Their fields may
also be given by name to ``attribute_outliers`` (``num_samples=500``), which replaces that field of the object;
:func:`resolve_options` does that in one place. Like scikit-learn's estimators, the objects store what they are
given and the attribution checks it (:func:`check_attribution_options`).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from bayes_rca.errors import BayesRCAError
from bayes_rca.validation import check_num_samples


@dataclass(frozen=True)
class ShapleyOptions:
    """How each game's Shapley values are computed.

    Attributes
    ----------
    max_exact_players : int, optional
        Enumerate all ``2^K`` coalitions up to this many players (exact Shapley values, no Monte Carlo error);
        sample antithetic permutations above. None: as many as fit a fixed cost per row
        (:func:`~bayes_rca.attribution.api.default_max_exact_players`). The permutation estimate's error is common
        to all posterior draws, so it shifts the whole posterior.
    num_permutations : int
        Permutations (in antithetic pairs) when sampling; with ``tolerance``, per round.
    tolerance : float, optional
        When sampling permutations, keep drawing rounds of ``num_permutations`` until every contribution's Monte
        Carlo standard error is at most ``tolerance`` nats (or ``max_permutations`` is reached).
    max_permutations : int
        Cap on the permutations drawn with ``tolerance``.

    Examples
    --------
    >>> ShapleyOptions(max_exact_players=4).num_permutations
    1000
    """

    max_exact_players: int | None = None
    num_permutations: int = 1000
    tolerance: float | None = None
    max_permutations: int = 100_000


@dataclass(frozen=True)
class MonteCarloOptions:
    """Sample sizes of the games that are not analytic and of the noise that a row does not identify.

    Attributes
    ----------
    num_samples : int
        Monte Carlo samples per draw and coalition (Monte Carlo and scale-mixture games).
    num_latent_samples : int
        Noise samples per posterior draw where the row does not identify the noise: a row has missing values, or
        a player's mechanism is not invertible (a threshold, count or censored node, whose value only bounds its
        noise to an interval). The draws of the result are then posterior draws x samples, and every axiom holds
        per (draw, sample).

    Examples
    --------
    >>> MonteCarloOptions(num_samples=500)
    MonteCarloOptions(num_samples=500, num_latent_samples=20)
    """

    num_samples: int = 2000
    num_latent_samples: int = 20


OPTION_FIELDS: dict[str, type] = {field.name: cls for cls in (ShapleyOptions, MonteCarloOptions)
                                  for field in dataclasses.fields(cls)}
"""Every option field that ``attribute_outliers`` also takes by name, and the object it belongs to."""


def resolve_options(shapley: ShapleyOptions | None, monte_carlo: MonteCarloOptions | None,
                    by_name: dict[str, Any]) -> tuple[ShapleyOptions, MonteCarloOptions]:
    """The option objects (defaults for None) with the fields given ``by_name`` replaced.

    Raises
    ------
    BayesRCAError
        A name that is no option field, naming it and the known ones.

    Examples
    --------
    >>> shapley, monte_carlo = resolve_options(None, None, {"num_samples": 100})
    >>> monte_carlo.num_samples, shapley.num_permutations
    (100, 1000)
    """
    unknown = sorted(set(by_name) - set(OPTION_FIELDS))
    if unknown:
        raise BayesRCAError(f"attribute_outliers got unknown option(s) {', '.join(map(repr, unknown))}; options "
                            f"by name: {', '.join(OPTION_FIELDS)}")
    shapley, monte_carlo = shapley or ShapleyOptions(), monte_carlo or MonteCarloOptions()
    shapley = dataclasses.replace(shapley, **{k: v for k, v in by_name.items() if OPTION_FIELDS[k] is ShapleyOptions})
    monte_carlo = dataclasses.replace(monte_carlo, **{k: v for k, v in by_name.items()
                                                      if OPTION_FIELDS[k] is MonteCarloOptions})
    return shapley, monte_carlo


def check_attribution_options(monte_carlo: MonteCarloOptions, max_nats: float | None,
                              tail_df: float | None) -> MonteCarloOptions:
    """Raise a :class:`~bayes_rca.errors.BayesRCAError` for an option the attribution cannot honour; return the
    Monte Carlo options with ``num_samples`` as an int."""
    if max_nats is not None and not max_nats > 0:
        raise BayesRCAError(f"max_nats must be positive, got {max_nats!r}")
    if tail_df is not None and not tail_df > 0:
        raise BayesRCAError(f"tail_df must be positive, got {tail_df!r}")
    return dataclasses.replace(monte_carlo, num_samples=check_num_samples(monte_carlo.num_samples))
