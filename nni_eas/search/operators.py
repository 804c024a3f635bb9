"""Variation operators for integer genomes of choice indices (pymoo operator classes).

The genome is categorical per gene (index of a kernel size, expand ratio, depth, ...), so the
operators never do arithmetic on values: crossover exchanges genes between parents, mutation
resamples a gene to a *different* choice, repair rounds and clips. Duplicates are detected on
the canonical form (inactive slots zeroed), i.e. per network, not per genome; an optional
archive of everything already evaluated makes every offspring a network never seen before.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from pymoo.core.crossover import Crossover
from pymoo.core.duplicate import DuplicateElimination
from pymoo.core.mutation import Mutation
from pymoo.core.repair import Repair
from pymoo.core.sampling import Sampling

from ..config import ConfigError
from ..encodings import arch_to_genome
from ..spaces.arch import max_arch, min_arch
from ..spaces.config import OFAMobileNetV3Config
from .genome import GenomeLayout

__all__ = ["GenomeSampling", "GenomeCrossover", "GenomeMutation", "GenomeRepair", "GenomeDuplicateElimination"]


def _bounds(problem) -> tuple[np.ndarray, np.ndarray]:
    return np.asarray(problem.xl, dtype=np.int64), np.asarray(problem.xu, dtype=np.int64)


class GenomeSampling(Sampling):
    """Uniformly random genomes, distinct as networks; optionally seeded with given genomes.

    ``extremes=True`` puts the smallest and largest subnets of the space first, so the front
    spans the whole range from the first generation on.
    """

    def __init__(self, cfg: OFAMobileNetV3Config | None = None, extremes: bool = False,
                 initial: np.ndarray | None = None):
        super().__init__()
        self.cfg, self.extremes = cfg, extremes
        self.initial = None if initial is None else np.atleast_2d(np.asarray(initial, dtype=np.int64))
        if extremes and cfg is None:
            raise ConfigError("GenomeSampling(extremes=True) needs the space config")

    def _do(self, problem, n_samples, *args, random_state=None, **kwargs):
        xl, xu = _bounds(problem)
        seeds = []
        if self.initial is not None:
            seeds.append(self.initial)
        if self.extremes:
            seeds.append(np.stack([arch_to_genome(self.cfg, min_arch(self.cfg)), arch_to_genome(self.cfg, max_arch(self.cfg))]))
        X = np.concatenate(seeds)[:n_samples] if seeds else np.zeros((0, len(xl)), dtype=np.int64)
        layout = GenomeLayout(self.cfg) if self.cfg is not None else None
        seen = set(layout.keys(X)) if layout is not None else {r.tobytes() for r in X}
        rows = [X]
        need, tries = n_samples - len(X), 0
        while need > 0 and tries < 100:
            cand = random_state.integers(xl, xu + 1, size=(max(need, 1) * 2, len(xl)), dtype=np.int64)
            keys = layout.keys(cand) if layout is not None else [r.tobytes() for r in cand]
            keep = []
            for i, k in enumerate(keys):
                if k not in seen and len(keep) < need:
                    seen.add(k)
                    keep.append(i)
            rows.append(cand[keep])
            need -= len(keep)
            tries += 1
        return np.concatenate(rows)


class GenomeCrossover(Crossover):
    """Two parents -> two children by exchanging genes.

    ``uniform``: every gene comes from either parent with probability 1/2 (genes of a block
    travel independently; good mixing). ``two_point``: one contiguous segment is exchanged
    (keeps neighbouring slots of a stage together).
    """

    def __init__(self, method: Literal["uniform", "two_point"] = "uniform", prob: float = 0.9):
        if method not in ("uniform", "two_point"):
            raise ConfigError(f"crossover method must be 'uniform' or 'two_point', got {method!r}")
        super().__init__(2, 2, prob=prob)
        self.method = method

    def _do(self, problem, X, *args, random_state=None, **kwargs):
        _, n_matings, n_var = X.shape
        if self.method == "uniform":
            swap = random_state.random((n_matings, n_var)) < 0.5
        else:
            cuts = np.sort(random_state.integers(0, n_var + 1, size=(n_matings, 2)), axis=1)
            idx = np.arange(n_var)[None, :]
            swap = (idx >= cuts[:, :1]) & (idx < cuts[:, 1:])
        a, b = X[0], X[1]
        return np.stack([np.where(swap, b, a), np.where(swap, a, b)])


class GenomeMutation(Mutation):
    """Each gene is resampled, with probability ``gene_prob``, to a different allowed index.

    ``gene_prob`` defaults to ``1 / n_var`` (one gene per child on average, as pymoo's
    polynomial mutation); genes with a single choice never change.
    """

    def __init__(self, gene_prob: float | None = None, prob: float = 1.0):
        super().__init__(prob=prob)
        if gene_prob is not None and not 0 < gene_prob <= 1:
            raise ConfigError(f"mutation gene_prob must be in (0, 1], got {gene_prob}")
        self.gene_prob = gene_prob

    def _do(self, problem, X, *args, random_state=None, **kwargs):
        X = np.asarray(X, dtype=np.int64).copy()
        xl, xu = _bounds(problem)
        span = xu - xl + 1                                           # number of choices per gene
        p = self.gene_prob if self.gene_prob is not None else 1.0 / problem.n_var
        mutate = (random_state.random(X.shape) < p) & (span > 1)[None, :]
        # a shift in 1..span-1 (mod span) always lands on another choice, uniformly
        shift = random_state.integers(1, np.maximum(span, 2)[None, :].repeat(len(X), 0))
        moved = xl + (X - xl + shift) % span
        X[mutate] = moved[mutate]
        return X


class GenomeRepair(Repair):
    """Round and clip into bounds; ``canonical=True`` also zeroes inactive slots."""

    def __init__(self, cfg: OFAMobileNetV3Config | None = None, canonical: bool = False):
        super().__init__()
        if canonical and cfg is None:
            raise ConfigError("GenomeRepair(canonical=True) needs the space config")
        self.layout = GenomeLayout(cfg) if cfg is not None else None
        self.canonical = canonical

    def _do(self, problem, X, **kwargs):
        xl, xu = _bounds(problem)
        X = np.clip(np.rint(np.asarray(X, dtype=np.float64)), xl, xu).astype(np.int64)
        if self.canonical and self.layout is not None:
            X = self.layout.canonical(X)
        return X


class GenomeDuplicateElimination(DuplicateElimination):
    """Duplicates = the same *network* (canonical genome), within a population, against the
    parents, and against ``archive`` (a set of keys of everything evaluated so far) if given."""

    def __init__(self, cfg: OFAMobileNetV3Config, archive: set[bytes] | None = None):
        super().__init__()
        self.layout = GenomeLayout(cfg)
        self.archive = archive

    def _keys(self, pop) -> list[bytes]:
        return self.layout.keys(np.asarray(pop.get("X"), dtype=np.int64))

    def _do(self, pop, other, is_duplicate):
        keys = self._keys(pop)
        if other is None:
            seen: set[bytes] = set()
            for i, k in enumerate(keys):
                if k in seen:
                    is_duplicate[i] = True
                seen.add(k)
        else:
            others = set(self._keys(other))
            for i, k in enumerate(keys):
                if k in others:
                    is_duplicate[i] = True
        if self.archive:
            for i, k in enumerate(keys):
                if k in self.archive:
                    is_duplicate[i] = True
        return is_duplicate
