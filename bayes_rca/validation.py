"""Checks of options that must hold before any fitting starts: seeds and Monte Carlo sample counts."""

from __future__ import annotations

import numbers

from bayes_rca.attribution.linear_game import NUM_BATCHES
from bayes_rca.errors import BayesRCAError

SEED_MAX = 2**64 - 1  # torch.Generator.manual_seed takes an unsigned 64-bit seed; numpy takes any non-negative


def check_seed(seed: object) -> int:
    """Return ``seed`` as an int, or raise a :class:`BayesRCAError` unless it is an integer in ``[0, 2**64 - 1]``."""
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or not 0 <= seed <= SEED_MAX:
        raise BayesRCAError(f"seed must be an integer from 0 to {SEED_MAX} (2**64 - 1), got {seed!r}")
    return int(seed)


def check_num_samples(num_samples: object) -> int:
    """Return ``num_samples`` as an int, or raise unless it is an integer of at least :data:`NUM_BATCHES`.

    The Monte Carlo game splits its samples into ``NUM_BATCHES`` batches for its standard errors, so fewer
    samples than batches cannot be honoured.
    """
    if isinstance(num_samples, bool) or not isinstance(num_samples, numbers.Integral) or num_samples < NUM_BATCHES:
        raise BayesRCAError(f"num_samples (--samples) must be an integer of at least {NUM_BATCHES}: the Monte Carlo "
                            f"game splits its samples into {NUM_BATCHES} batches for its standard errors; got "
                            f"{num_samples!r}")
    return int(num_samples)
