"""Training data for predictors: (genome, top-1) pairs measured on a trained supernet."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..search.genome import GenomeLayout

__all__ = ["measure_accuracy_dataset"]


def measure_accuracy_dataset(evaluation: Any, n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``n`` distinct random subnets of ``evaluation`` (a :class:`~nni_eas.search.SubnetEvaluation`)
    and their measured top-1 (BN recalibrated); failed evaluations are dropped."""
    layout = GenomeLayout(evaluation.cfg)
    rng = np.random.default_rng(seed)
    genomes, seen = [], set()
    while len(genomes) < n:
        g = layout.random(1, rng)
        k = layout.keys(g)[0]
        if k not in seen:
            seen.add(k)
            genomes.append(g[0])
    G = np.stack(genomes)
    results = evaluation.evaluate(G)
    ok = np.array(["top1" in r for r in results])
    y = np.array([r.get("top1", np.nan) for r in results], dtype=np.float64)
    return G[ok], y[ok]
