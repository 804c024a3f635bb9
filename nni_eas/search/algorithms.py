"""pymoo algorithms (NSGA-II, SMS-EMOA, NSGA-III) assembled with the genome operators.

An algorithm is a composition of operators (pymoo's design); this module only picks the
operators that suit integer choice genomes and, for NSGA-III, the reference directions.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
from pymoo.algorithms.moo.nsga2 import NSGA2
from pymoo.algorithms.moo.nsga3 import NSGA3
from pymoo.algorithms.moo.sms import SMSEMOA
from pymoo.core.algorithm import Algorithm
from pymoo.util.ref_dirs import get_reference_directions

from ..config import ConfigError
from ..spaces.config import OFAMobileNetV3Config
from .operators import GenomeCrossover, GenomeDuplicateElimination, GenomeMutation, GenomeRepair, GenomeSampling

__all__ = ["ALGORITHMS", "make_algorithm", "reference_directions"]

AlgorithmName = Literal["nsga2", "smsemoa", "nsga3"]
ALGORITHMS: dict[str, str] = {
    "nsga2": "NSGA-II: non-dominated sorting + crowding distance (2 objectives, the default)",
    "smsemoa": "SMS-EMOA: drops the point contributing least hypervolume (2-3 objectives, best HV)",
    "nsga3": "NSGA-III: reference directions keep the front spread (3 or more objectives)",
}


def reference_directions(n_obj: int, pop_size: int, n_partitions: int | None = None) -> np.ndarray:
    """Das-Dennis directions; by default the most partitions that give <= ``pop_size`` directions."""
    if n_partitions is None:
        n_partitions = 1
        while len(get_reference_directions("das-dennis", n_obj, n_partitions=n_partitions + 1)) <= pop_size:
            n_partitions += 1
    return get_reference_directions("das-dennis", n_obj, n_partitions=n_partitions)


def make_algorithm(name: str, cfg: OFAMobileNetV3Config, *, pop_size: int, n_obj: int,
                   n_offsprings: int | None = None, crossover: str = "two_point", crossover_prob: float = 0.9,
                   mutation_prob: float | None = None, extremes: bool = False,
                   archive: set[bytes] | None = None, n_partitions: int | None = None,
                   initial: np.ndarray | None = None, **kwargs: Any) -> Algorithm:
    """A pymoo algorithm over genomes of ``cfg`` with :mod:`~nni_eas.search.operators`.

    ``archive``: keys of already evaluated networks; offspring never repeat one of them.
    """
    if name not in ALGORITHMS:
        raise ConfigError(f"unknown algorithm {name!r}; allowed: {', '.join(ALGORITHMS)}")
    if pop_size < 2:
        raise ConfigError(f"pop_size must be >= 2, got {pop_size}")
    ops = dict(
        sampling=GenomeSampling(cfg, extremes=extremes, initial=initial),
        crossover=GenomeCrossover(crossover, prob=crossover_prob),
        mutation=GenomeMutation(gene_prob=mutation_prob),
        repair=GenomeRepair(cfg),
        eliminate_duplicates=GenomeDuplicateElimination(cfg, archive),
        n_offsprings=n_offsprings,
    )
    if name == "nsga2":
        return NSGA2(pop_size=pop_size, **ops, **kwargs)
    if name == "smsemoa":
        return SMSEMOA(pop_size=pop_size, **ops, **kwargs)
    if n_obj < 2:
        raise ConfigError("NSGA-III needs at least 2 objectives (it is meant for 3 or more)")
    ref_dirs = reference_directions(n_obj, pop_size, n_partitions)
    return NSGA3(ref_dirs=ref_dirs, pop_size=pop_size, **ops, **kwargs)
