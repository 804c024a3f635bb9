"""Pluggable metric evaluators: each maps a population of genomes to named metric arrays.

An evaluator says which metrics it ``provides`` and returns ``{metric: array[P]}``; ``NaN``
marks a genome whose evaluation failed (the search records it as failed and goes on).
Cheap evaluators (MACs/params, lookup-table latency, accuracy predictors) are vectorised over
the whole population; the supernet evaluator runs one subnet at a time.

Latency comes from any object following :class:`LatencyModel` (a ``predict`` over archs, and
optionally a vectorised ``predict_genomes``), so the search does not depend on how a lookup
table is stored: ``nni_eas.export.lut.LatencyTable`` plugs in, and so does a dict-backed fake.
"""

from __future__ import annotations

import logging
import math
import time
from abc import ABC, abstractmethod
from typing import Any, Callable, Mapping, Protocol, Sequence, runtime_checkable

import numpy as np
import torch

from ..costs import CostModel
from ..encodings import genomes_to_archs
from ..spaces.arch import Arch
from ..spaces.config import OFAMobileNetV3Config

__all__ = [
    "MetricEvaluator",
    "CostEvaluator",
    "LatencyModel",
    "LatencyEvaluator",
    "PredictorEvaluator",
    "SupernetEvaluator",
    "MeasuredLatencyEvaluator",
    "FunctionEvaluator",
    "evaluate_all",
]

_logger = logging.getLogger(__name__)


class MetricEvaluator(ABC):
    """Maps genomes ``[P, L]`` to ``{metric: float array [P]}`` (NaN = failed)."""

    provides: tuple[str, ...] = ()
    #: True when one evaluation costs real time (subnet inference); drives caching and batching
    expensive: bool = False

    @abstractmethod
    def __call__(self, genomes: np.ndarray) -> dict[str, np.ndarray]:
        ...

    def __repr__(self) -> str:
        return f"{type(self).__name__}(provides={list(self.provides)})"


def evaluate_all(evaluators: Sequence[MetricEvaluator], genomes: np.ndarray) -> dict[str, np.ndarray]:
    """Run every evaluator; a metric provided twice keeps the first evaluator's values."""
    out: dict[str, np.ndarray] = {}
    for ev in evaluators:
        for k, v in ev(genomes).items():
            out.setdefault(k, np.asarray(v, dtype=np.float64))
    return out


class CostEvaluator(MetricEvaluator):
    """Analytic MACs and parameters (:class:`nni_eas.costs.CostModel`), one gather per population."""

    provides = ("macs", "params")

    def __init__(self, cfg: OFAMobileNetV3Config, convention: str = "ofa", num_classes: int | None = None):
        self.model = CostModel(cfg, convention, num_classes)  # type: ignore[arg-type]

    def __call__(self, genomes: np.ndarray) -> dict[str, np.ndarray]:
        c = self.model.costs(genomes)
        return {"macs": c.macs.astype(np.float64), "params": c.params.astype(np.float64)}


@runtime_checkable
class LatencyModel(Protocol):
    """What the search needs from a latency lookup table (``nni_eas.export.lut.LatencyTable``
    fits): latency in ms of one arch of space ``cfg``; a vectorised ``predict_genomes(genomes,
    cfg)`` is used when present."""

    def predict(self, arch: Arch, cfg: OFAMobileNetV3Config | None = None) -> float:
        ...


class LatencyEvaluator(MetricEvaluator):
    """Latency from a :class:`LatencyModel`, the whole population in one gather when it can.

    ``exact=True`` sums each arch's layers one by one (:meth:`LatencyModel.predict`), in the
    table's own order, for bit-exact comparisons with published numbers; the vectorised path
    agrees to ~1e-14 ms.
    """

    provides = ("latency_ms",)

    def __init__(self, model: LatencyModel, cfg: OFAMobileNetV3Config, metric: str = "latency_ms", exact: bool = False):
        self.model, self.cfg = model, cfg
        self.provides = (metric,)
        self._vectorised = callable(getattr(model, "predict_genomes", None)) and not exact

    def __call__(self, genomes: np.ndarray) -> dict[str, np.ndarray]:
        if self._vectorised:
            values = self.model.predict_genomes(genomes, self.cfg)  # type: ignore[attr-defined]
        else:
            values = [self.model.predict(a, self.cfg) for a in genomes_to_archs(self.cfg, genomes)]
        return {self.provides[0]: np.asarray(values, dtype=np.float64).reshape(-1)}


class PredictorEvaluator(MetricEvaluator):
    """Accuracy from a fitted predictor (:mod:`nni_eas.predictors`), the whole population at once."""

    def __init__(self, predictor: Any, cfg: OFAMobileNetV3Config, metric: str = "top1"):
        self.predictor, self.cfg = predictor, cfg
        self.provides = (metric,)

    def __call__(self, genomes: np.ndarray) -> dict[str, np.ndarray]:
        return {self.provides[0]: np.asarray(self.predictor.predict_genomes(self.cfg, genomes), dtype=np.float64)}


class FunctionEvaluator(MetricEvaluator):
    """Wrap ``fn(genomes) -> {metric: array}`` (tests, custom hardware counters)."""

    def __init__(self, fn: Callable[[np.ndarray], Mapping[str, Any]], provides: Sequence[str], expensive: bool = False):
        self.fn, self.provides, self.expensive = fn, tuple(provides), expensive

    def __call__(self, genomes: np.ndarray) -> dict[str, np.ndarray]:
        out = self.fn(genomes)
        return {k: np.asarray(out[k], dtype=np.float64) for k in self.provides}


class SupernetEvaluator(MetricEvaluator):
    """Top-1 of each subnet with inherited weights, after BN recalibration (OFA's protocol).

    A subnet whose evaluation raises gets ``NaN`` (and the error in :attr:`errors`): the search
    records it as failed and goes on.
    """

    provides = ("top1",)
    expensive = True

    def __init__(self, supernet: torch.nn.Module, calib_data: Any, val_data: Any,
                 classes: Sequence[int] | None = None, calib_images: int = 500):
        self.supernet, self.calib_data, self.val_data = supernet, calib_data, val_data
        self.classes, self.calib_images = classes, calib_images
        self.errors: dict[int, str] = {}

    def evaluate_arch(self, arch: Arch) -> float:
        from ..evaluation import evaluate_arch

        return evaluate_arch(self.supernet, arch, self.calib_data, self.val_data, classes=self.classes,
                             calib_images=self.calib_images)

    def __call__(self, genomes: np.ndarray) -> dict[str, np.ndarray]:
        archs = genomes_to_archs(self.supernet.config, genomes)
        top1 = np.full(len(archs), np.nan)
        for i, arch in enumerate(archs):
            try:
                top1[i] = self.evaluate_arch(arch)
            except Exception as e:  # a broken subnet must not stop the search
                self.errors[i] = f"{type(e).__name__}: {e}"
                _logger.warning("evaluation of %s failed: %s", arch, self.errors[i])
        return {"top1": top1}


class MeasuredLatencyEvaluator(MetricEvaluator):
    """Latency measured here: median wall time of a batch-1 forward pass of the extracted subnet."""

    provides = ("latency_ms",)
    expensive = True

    def __init__(self, supernet: torch.nn.Module, repeats: int = 10, warmup: int = 2, threads: int | None = None):
        self.supernet, self.repeats, self.warmup, self.threads = supernet, repeats, warmup, threads

    @torch.no_grad()
    def measure(self, arch: Arch) -> float:
        subnet = self.supernet.extract(arch).eval()
        x = torch.randn(1, self.supernet.config.in_chans, arch.r, arch.r)
        saved = torch.get_num_threads()
        if self.threads:
            torch.set_num_threads(self.threads)
        try:
            for _ in range(self.warmup):
                subnet(x)
            times = []
            for _ in range(self.repeats):
                t = time.perf_counter()
                subnet(x)
                times.append(time.perf_counter() - t)
        finally:
            torch.set_num_threads(saved)
        return 1000.0 * float(np.median(times))

    def __call__(self, genomes: np.ndarray) -> dict[str, np.ndarray]:
        out = np.full(len(genomes), np.nan)
        for i, arch in enumerate(genomes_to_archs(self.supernet.config, genomes)):
            try:
                out[i] = self.measure(arch)
            except Exception as e:  # pragma: no cover - same policy as accuracy
                _logger.warning("latency measurement of %s failed: %s", arch, e)
        return {"latency_ms": out}


def finite_or_none(x: float) -> float | None:
    """JSON-friendly metric value: NaN/inf become ``None``."""
    return float(x) if x is not None and math.isfinite(float(x)) else None
