"""Measuring subnets of a trained supernet: the evaluation every front-end shares.

:class:`SubnetEvaluation` loads a supernet checkpoint and a dataset once, then evaluates genomes
(top-1 after BN recalibration on a training split, MACs/params analytically, latency from a
lookup table or measured here) into metric dicts. An in-process search, an NNI trial
(``python -m nni_eas.trial``) and a ``NasExperiment`` evaluator all call it, so a subnet's
numbers do not depend on which front-end asked for them.
"""

from __future__ import annotations

import functools
import logging
import os
from pathlib import Path
from typing import Any, Literal, Mapping, Sequence

import numpy as np
import torch
from pydantic import Field

from ..config import ConfigError, StrictModel, validate
from ..encodings import genomes_to_archs
from .config import EvaluationConfig
from .evaluators import CostEvaluator, LatencyEvaluator, MeasuredLatencyEvaluator, SupernetEvaluator

__all__ = ["EvaluationConfig", "SubnetEvaluation", "load_eval_data", "load_latency_model"]

_logger = logging.getLogger(__name__)


def _digits_fallback(split: str, resolution: int, channels: int) -> tuple[torch.Tensor, torch.Tensor]:
    """scikit-learn digits, split 60/20/20 with a fixed seed (when ``nni_eas.data`` is absent)."""
    import torch.nn.functional as F
    from sklearn.datasets import load_digits

    x, y = load_digits(return_X_y=True)
    perm = np.random.default_rng(0).permutation(len(y))
    n_tr, n_va = int(0.6 * len(y)), int(0.2 * len(y))
    parts = {"train": perm[:n_tr], "val": perm[n_tr:n_tr + n_va], "test": perm[n_tr + n_va:],
             "trainval": perm[:n_tr + n_va]}
    if split not in parts:
        raise ConfigError(f"split: got {split!r}; allowed: {', '.join(parts)}")
    idx = parts[split]
    t = torch.tensor(x[idx], dtype=torch.float32).reshape(-1, 1, 8, 8) / 16.0
    t = F.interpolate(t, size=resolution, mode="bilinear", align_corners=False).repeat(1, channels, 1, 1)
    return (t - 0.5) / 0.5, torch.as_tensor(y[idx], dtype=torch.int64)


@functools.lru_cache(maxsize=8)
def load_eval_data(dataset: str, split: str, resolution: int, channels: int = 3,
                   limit: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """``(X, Y)`` tensors of a split, from ``nni_eas.data`` (or scikit-learn for digits without it)."""
    try:
        from ..data import load_dataset
    except ImportError:
        load_dataset = None  # type: ignore[assignment]
    if load_dataset is not None:
        x, y = load_dataset(dataset, split=split, resolution=resolution, channels=channels).tensors()
    elif dataset == "digits":
        x, y = _digits_fallback(split, resolution, channels)
    else:
        raise ConfigError(f"dataset {dataset!r} needs nni_eas.data, which is not available")
    if limit is not None:
        x, y = x[:limit], y[:limit]
    return x, y


def load_latency_model(spec: str, cfg: Any) -> Any:
    """A :class:`~nni_eas.search.evaluators.LatencyModel` from a lookup-table file or folder
    (``nni_eas.export.lut.load_latency_table``: tables built here, OFA's Note10, NSGANetV2's)."""
    try:
        from ..export.lut import load_latency_table
    except ImportError as e:
        raise ConfigError(f"latency {spec!r}: lookup tables need nni_eas.export.lut ({e}); "
                          "use latency: measured or latency: none") from None
    return load_latency_table(spec, cfg)


class SubnetEvaluation:
    """Evaluate genomes of a supernet checkpoint into metric dicts (loaded once, reused)."""

    def __init__(self, config: EvaluationConfig | Mapping[str, Any]):
        self.config = config if isinstance(config, EvaluationConfig) else validate(EvaluationConfig, config, "evaluation")
        from ..checkpoint import load_supernet

        self.supernet, self.info = load_supernet(self.config.supernet)
        cfg = self.cfg = self.supernet.config
        self.resolution = self.config.resolution or max(cfg.resolutions)
        c = self.config
        calib = load_eval_data(c.dataset, c.calib_split, self.resolution, cfg.in_chans, c.calib_images)
        val = load_eval_data(c.dataset, c.val_split, self.resolution, cfg.in_chans, c.val_images)
        self.accuracy = SupernetEvaluator(self.supernet, calib, val, classes=c.classes, calib_images=c.calib_images)
        self.costs = CostEvaluator(cfg, c.convention)
        if c.latency == "none":
            self.latency = None
        elif c.latency == "measured":
            self.latency = MeasuredLatencyEvaluator(self.supernet, repeats=c.latency_repeats)
        else:
            self.latency = LatencyEvaluator(load_latency_model(c.latency, cfg), cfg)

    @property
    def sha256(self) -> str:
        return self.info["sha256"]

    def evaluate(self, genomes: np.ndarray | Sequence[Sequence[int]]) -> list[dict[str, Any]]:
        """One dict per genome: ``top1``, ``macs``, ``params`` (+ ``latency_ms``), or ``error``."""
        g = np.atleast_2d(np.asarray(genomes, dtype=np.int64))
        saved = torch.get_num_threads()
        if self.config.threads:  # per call: other code in the process may change the global setting
            torch.set_num_threads(self.config.threads)
        try:
            return self._evaluate(g)
        finally:
            torch.set_num_threads(saved)

    def _evaluate(self, g: np.ndarray) -> list[dict[str, Any]]:
        results: list[dict[str, Any]] = []
        costs = self.costs(g)
        lat = self.latency(g)["latency_ms"] if self.latency is not None else None
        for i, arch in enumerate(genomes_to_archs(self.cfg, g)):
            try:
                top1 = self.accuracy.evaluate_arch(arch)
            except Exception as e:  # reported as a failed evaluation; the search goes on
                _logger.warning("evaluation of %s failed: %s", arch, e)
                results.append({"error": f"{type(e).__name__}: {e}"})
                continue
            m = {"top1": float(top1), "macs": float(costs["macs"][i]), "params": float(costs["params"][i])}
            if lat is not None:
                m["latency_ms"] = float(lat[i])
            results.append(m)
        return results
