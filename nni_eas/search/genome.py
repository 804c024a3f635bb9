"""Vectorised helpers on populations of integer genomes (``nni_eas.encodings`` layout).

A genome is ``[kernel x N, expand x N, depth x S, resolution, width]`` choice indices. Genes of
slots past a stage's depth are *inactive*: they do not change the network. The search keeps
them (they carry latent variation that a later depth mutation can express) but compares and
deduplicates genomes by their *canonical* form, in which inactive genes are 0.
"""

from __future__ import annotations

import numpy as np

from ..encodings import genome_bounds, genome_length
from ..spaces.config import OFAMobileNetV3Config

__all__ = ["GenomeLayout", "active_mask", "canonical_genomes", "genome_keys", "random_genomes"]


class GenomeLayout:
    """Where each gene group lives in a genome of ``cfg`` (computed once per space)."""

    def __init__(self, cfg: OFAMobileNetV3Config):
        self.cfg = cfg
        n, s = cfg.num_slots, cfg.num_stages
        self.length = genome_length(cfg)
        self.kernel = slice(0, n)
        self.expand = slice(n, 2 * n)
        self.depth = slice(2 * n, 2 * n + s)
        self.resolution = 2 * n + s
        self.width = 2 * n + s + 1
        self.lower, self.upper = genome_bounds(cfg)
        if self.upper.max() > 255:
            raise ValueError(f"space {cfg.name!r} has a gene with more than 256 choices")
        self.depth_values = np.asarray(cfg.depths)
        self._slot_stage = np.repeat(np.arange(s), cfg.max_depth)        # [N]
        self._slot_index = np.tile(np.arange(cfg.max_depth), s)          # [N]

    def active(self, genomes: np.ndarray) -> np.ndarray:
        """``[P, N]`` boolean: slot runs in that genome's network."""
        g = np.atleast_2d(genomes)
        depths = self.depth_values[g[:, self.depth]]                     # [P, S]
        return self._slot_index[None, :] < depths[:, self._slot_stage]

    def canonical(self, genomes: np.ndarray) -> np.ndarray:
        """Copy with inactive kernel/expand genes set to 0 (same network, one representation)."""
        g = np.array(np.atleast_2d(genomes), dtype=np.int64, copy=True)
        inactive = ~self.active(g)
        g[:, self.kernel][inactive] = 0   # basic slices are views: this writes into g
        g[:, self.expand][inactive] = 0
        return g

    def keys(self, genomes: np.ndarray) -> list[bytes]:
        """One hashable key per network (canonical genome bytes), for archives and dedup."""
        c = np.ascontiguousarray(self.canonical(genomes), dtype=np.uint8)  # < 256 choices per gene
        return [row.tobytes() for row in c]

    def random(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """``n`` uniformly random genomes (every choice independent, as OFA samples)."""
        return rng.integers(self.lower, self.upper + 1, size=(n, self.length), dtype=np.int64)


def active_mask(cfg: OFAMobileNetV3Config, genomes: np.ndarray) -> np.ndarray:
    return GenomeLayout(cfg).active(genomes)


def canonical_genomes(cfg: OFAMobileNetV3Config, genomes: np.ndarray) -> np.ndarray:
    return GenomeLayout(cfg).canonical(genomes)


def genome_keys(cfg: OFAMobileNetV3Config, genomes: np.ndarray) -> list[bytes]:
    return GenomeLayout(cfg).keys(genomes)


def random_genomes(cfg: OFAMobileNetV3Config, n: int, rng: np.random.Generator | int | None = None) -> np.ndarray:
    return GenomeLayout(cfg).random(n, np.random.default_rng(rng))
