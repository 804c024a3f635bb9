"""Feature encodings of architectures for predictors, vectorised over genome populations.

=========  =====================================================================================
``ofa``    OFA's 128-d one-hot (20 x kernel, 20 x expand, zeros for skipped blocks, 8
           resolution slots): what OFA's published predictor reads; OFA's 5 x 4 layout only
``onehot`` the same idea for any space: kernel/expand one-hot per *active* slot, depth one-hot
           per stage, resolution and width one-hot (MLPs, GPs)
``index``  canonical choice indices scaled to [0, 1] (trees, RBF, GP with few samples: NAT)
=========  =====================================================================================
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from ..config import ConfigError
from ..encodings import archs_to_predictor_features, genomes_to_archs
from ..spaces.config import OFAMobileNetV3Config

__all__ = ["ENCODINGS", "encode", "feature_dim"]


def _onehot(cfg: OFAMobileNetV3Config, genomes: np.ndarray) -> np.ndarray:
    from ..search.genome import GenomeLayout

    lay = GenomeLayout(cfg)
    g = np.atleast_2d(np.asarray(genomes, dtype=np.int64))
    P, N, S = len(g), cfg.num_slots, cfg.num_stages
    K, E, D, R, W = (len(cfg.kernel_sizes), len(cfg.expand_ratios), len(cfg.depths), len(cfg.resolutions),
                     len(cfg.width_mults))
    active = lay.active(g).astype(np.float32)                                   # [P, N]
    rows = np.arange(P)[:, None]
    k = np.zeros((P, N, K), np.float32)
    k[rows, np.arange(N)[None, :], g[:, lay.kernel]] = 1
    e = np.zeros((P, N, E), np.float32)
    e[rows, np.arange(N)[None, :], g[:, lay.expand]] = 1
    k *= active[..., None]
    e *= active[..., None]
    d = np.zeros((P, S, D), np.float32)
    d[rows, np.arange(S)[None, :], g[:, lay.depth]] = 1
    r = np.zeros((P, R), np.float32)
    r[np.arange(P), g[:, lay.resolution]] = 1
    w = np.zeros((P, W), np.float32)
    w[np.arange(P), g[:, lay.width]] = 1
    return np.concatenate([k.reshape(P, -1), e.reshape(P, -1), d.reshape(P, -1), r, w], axis=1)


def _index(cfg: OFAMobileNetV3Config, genomes: np.ndarray) -> np.ndarray:
    from ..search.genome import GenomeLayout

    lay = GenomeLayout(cfg)
    c = lay.canonical(genomes).astype(np.float32)
    return c / np.maximum(lay.upper, 1).astype(np.float32)


def _ofa(cfg: OFAMobileNetV3Config, genomes: np.ndarray) -> np.ndarray:
    return archs_to_predictor_features(cfg, genomes_to_archs(cfg, np.atleast_2d(genomes)))


ENCODINGS: dict[str, Callable[[OFAMobileNetV3Config, np.ndarray], np.ndarray]] = {
    "ofa": _ofa,
    "onehot": _onehot,
    "index": _index,
}


def encode(encoding: str, cfg: OFAMobileNetV3Config, genomes: np.ndarray) -> np.ndarray:
    """Features ``[P, F]`` (float32) of genomes ``[P, L]`` under ``encoding``."""
    if encoding not in ENCODINGS:
        raise ConfigError(f"unknown feature encoding {encoding!r}; allowed: {', '.join(ENCODINGS)}")
    return ENCODINGS[encoding](cfg, np.atleast_2d(np.asarray(genomes, dtype=np.int64)))


def feature_dim(encoding: str, cfg: OFAMobileNetV3Config) -> int:
    from ..encodings import genome_length

    return encode(encoding, cfg, np.zeros((1, genome_length(cfg)), np.int64) + _first_valid(cfg)).shape[1]


def _first_valid(cfg: OFAMobileNetV3Config) -> np.ndarray:
    from ..encodings import arch_to_genome
    from ..spaces.arch import min_arch

    r = next((x for x in cfg.resolutions if 112 <= x < 240), cfg.resolutions[0])
    return arch_to_genome(cfg, min_arch(cfg, r))
