"""Running small dense linear algebra on one thread.

Batched LAPACK calls on small matrices (a few hundred 40 x 40 solves) take milliseconds on one thread, but with
torch's OpenMP threads competing for oversubscribed cores (a sweep's worker processes, the test runner) they were
measured 300-500 times slower on the project's 2-core machine (``torch.linalg.inv`` of 200 38 x 38 matrices:
9 ms on one thread, 3.1 s on two beside two busy processes). Results do not depend on the thread count.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from threadpoolctl import threadpool_limits


@contextmanager
def one_thread() -> Iterator[None]:
    """Run torch and numpy's BLAS on one thread inside the block, restoring the previous setting after it.

    Examples
    --------
    >>> import torch
    >>> with one_thread():
    ...     torch.get_num_threads()
    1
    """
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with threadpool_limits(limits=1):
            yield
    finally:
        torch.set_num_threads(previous)
