"""The robust game against the Gaussian game on synthetic families with known truth (ICML 2022 protocol).

    python experiments/robust_game_icml.py icml2022 10      # family, number of seeds (5 outliers each)

Prints top-1, top-3 recall and NDCG@3 of bayes_rca (linear mechanisms, 100 draws) with the exact Gaussian game,
tails capped at 30 nats, and the robust game with 2 and 4 degrees of freedom.
"""

from __future__ import annotations

import sys
import warnings

import numpy as np

from bayes_rca.harness.benchmarks import make_benchmark
from bayes_rca.harness.methods import make_method
from bayes_rca.harness.metrics import ndcg_at_k, recall_at_k

VARIANTS = {"gaussian": {}, "max_nats=30": {"max_nats": 30.0}, "tail_df=2": {"tail_df": 2.0},
            "tail_df=4": {"tail_df": 4.0}}


def main(family: str, num_seeds: int) -> None:
    warnings.filterwarnings("ignore")
    results: dict[str, list[tuple[float, float, float]]] = {name: [] for name in VARIANTS}
    for seed in range(num_seeds):
        bench = make_benchmark(family, seed, num_rows=2000, num_outliers=5)
        for name, options in VARIANTS.items():
            method = make_method("bayes_rca", mechanisms="linear", num_draws=100, **options)
            method.fit(bench.graph, bench.train)
            for case in bench.cases:
                attribution = method.attribute(case.target, case.row)
                results[name].append((recall_at_k(attribution, case.root_cause, 1),
                                      recall_at_k(attribution, case.root_cause, 3),
                                      ndcg_at_k(attribution, case.relevance, 3)))
    for name, rows in results.items():
        top1, top3, ndcg3 = np.mean(rows, axis=0)
        print(f"{family} {name}: top1 {top1:.3f} top3 {top3:.3f} ndcg@3 {ndcg3:.3f} (n={len(rows)})")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "icml2022", int(sys.argv[2]) if len(sys.argv) > 2 else 10)
