"""Building a latency table for this machine, the way OFA built its tables.

Every distinct layer of the space (:func:`nni_eas.export.layers.space_layers`: stem, first block,
each MBConv configuration, final expand, pooled head, classifier, at every feature size the
chosen resolutions produce) becomes a small ONNX model timed with onnxruntime. The modules are
taken from real :class:`~nni_eas.spaces.MobileNetV3Subnet` instances (uniform kernel/expand
subnets at full depth contain every block configuration), so the timed graph of a block is
exactly the graph it has inside an exported network.

Each block *structure* is exported once with dynamic height/width and timed at every input size
with the free dimensions fixed at session creation (onnxruntime then optimises a static graph),
which divides export time by the number of resolutions. The per-inference overhead of
onnxruntime is measured on an empty model and recorded as ``overhead_ms``, and the smallest and
largest subnets of every resolution are timed end to end to calibrate the sum of layers
(``scale``; see :mod:`nni_eas.export.lut` for both corrections).
"""

from __future__ import annotations

import time
from typing import Callable, Iterator, Sequence

import numpy as np
import torch
import torch.nn as nn

from ..config import ConfigError
from ..spaces.arch import Arch, max_arch, min_arch
from ..spaces.config import OFAMobileNetV3Config, SpaceLike, load_space_config
from ..spaces.ofa_mbv3 import MobileNetV3Subnet, build_subnet
from .layers import Layer, block_layer, fixed_layers
from .lut import LatencyTable, layer_keys, stamp
from .onnx_export import DEFAULT_OPSET, EXPORTER, onnx_bytes
from .runtime import DEFAULT_THREADS, Timer, describe_device

__all__ = ["build_latency_table", "measure_overhead"]

Progress = Callable[[int, int, str, float], None]


class _ModuleBank:
    """Blocks of uniform-choice subnets: every layer module of a space, built once each."""

    def __init__(self, cfg: OFAMobileNetV3Config, num_classes: int | None):
        self.cfg, self.num_classes = cfg, num_classes
        self._subnets: dict[tuple, MobileNetV3Subnet] = {}

    def subnet(self, w: float, k: int, e: float) -> MobileNetV3Subnet:
        key = (w, k, e)
        if key not in self._subnets:
            c = self.cfg
            arch = Arch(ks=(k,) * c.num_slots, e=(e,) * c.num_slots, d=(c.max_depth,) * c.num_stages,
                        r=c.resolutions[0], w=w)
            with torch.random.fork_rng():  # deterministic weights, the caller's RNG untouched
                torch.manual_seed(0)
                self._subnets[key] = build_subnet(c, arch, num_classes=self.num_classes).eval()
        return self._subnets[key]

    def module(self, source: tuple) -> nn.Module:
        kind, w = source[0], source[1]
        if kind == "mbconv":
            s, j, k, e = source[2:]
            return self.subnet(w, k, e).blocks[s + 1][min(j, 1)]
        sub = self.subnet(w, self.cfg.kernel_sizes[0], self.cfg.expand_ratios[0])
        if kind == "stem":
            return nn.Sequential(sub.conv_stem, sub.bn1, sub.act1)
        if kind == "first":
            return sub.blocks[0]
        if kind == "final_expand":
            return sub.blocks[-1]
        if kind == "head":
            return nn.Sequential(sub.global_pool, sub.conv_head, sub.act2, sub.flatten)
        return sub.classifier


def _units(cfg: OFAMobileNetV3Config, resolutions: Sequence[int], widths: Sequence[float],
           num_classes: int | None) -> Iterator[tuple[int, Layer, tuple]]:
    """``(resolution, layer, module source)`` for every distinct layer (first occurrence)."""
    for r in resolutions:
        seen: set[Layer] = set()
        for w in widths:
            before, after = fixed_layers(cfg, w, r, num_classes)
            items = [(layer, (layer.kind, w)) for layer in before]
            for s in range(cfg.num_stages):
                for j in range(min(2, cfg.max_depth)):
                    for k in cfg.kernel_sizes:
                        for e in cfg.expand_ratios:
                            items.append((block_layer(cfg, w, r, s, j, k, e), ("mbconv", w, s, j, k, e)))
            items += [(layer, (layer.kind, w)) for layer in after]
            for layer, source in items:
                if layer not in seen:
                    seen.add(layer)
                    yield r, layer, source


def measure_overhead(batch_size: int = 1, threads: int = DEFAULT_THREADS, inter_threads: int = 1,
                     warmup: int = 50, runs: int = 400) -> float:
    """Median time (ms) of one onnxruntime inference of a near-empty model (one ReLU on 8 floats).

    This fixed cost is in every timed layer model but only once in a whole network.
    """
    data = onnx_bytes(nn.ReLU(), torch.zeros(2, 8), dynamic_batch=True, output_name="output")
    timer = Timer(data, batch_size, threads, inter_threads)
    return float(np.median(timer.times(warmup, runs)) * 1e3)


def build_latency_table(space: SpaceLike, resolutions: Sequence[int] | None = None,
                        widths: Sequence[float] | None = None, num_classes: int | None = None,
                        batch_size: int = 1, threads: int = DEFAULT_THREADS, inter_threads: int = 1,
                        warmup: int = 10, runs: int = 30, rounds: int = 3, calibrate: bool = True,
                        opset: int = DEFAULT_OPSET, progress: Progress | None = None) -> LatencyTable:
    """Measure every distinct layer of ``space`` on this machine and return the table.

    Args:
        space: preset name, path, mapping or config.
        resolutions: input sizes to cover (default: every resolution of the space).
        widths: width multipliers to cover (default: all of the space's).
        num_classes: classifier outputs (default: the space's).
        batch_size, threads, inter_threads: onnxruntime settings (recorded in the device).
        warmup, runs: untimed and timed inferences per layer; the median is the entry.
        rounds: the ``runs`` are taken in this many round-robin passes over a resolution's
            layers, so that load from other processes does not hit one layer only.
        calibrate: time the smallest and largest subnet of each resolution end to end and keep
            the per-resolution ratio measured / sum-of-layers as the table's ``scale``.
        progress: called as ``progress(done, total, key, ms)`` after each layer.
    """
    cfg = load_space_config(space)
    resolutions = tuple(cfg.resolutions if resolutions is None else resolutions)
    widths = tuple(cfg.width_mults if widths is None else widths)
    bad_r = [r for r in resolutions if r not in cfg.resolutions]
    if bad_r:
        raise ConfigError(f"resolutions {bad_r} are not in space {cfg.name!r}; allowed: {list(cfg.resolutions)}")
    bad_w = [w for w in widths if w not in cfg.width_mults]
    if bad_w:
        raise ConfigError(f"widths {bad_w} are not in space {cfg.name!r}; allowed: {list(cfg.width_mults)}")
    if not isinstance(rounds, int) or not 1 <= rounds <= max(runs, 1):
        raise ConfigError(f"rounds must be an integer in 1..runs ({runs}), got {rounds!r}")
    t_start = time.perf_counter()
    units = list(_units(cfg, resolutions, widths, num_classes))
    bank = _ModuleBank(cfg, num_classes)
    exported: dict[tuple, bytes] = {}
    export_s = measure_s = 0.0
    entries: dict[int, dict[str, dict]] = {int(r): {} for r in resolutions}
    overhead = measure_overhead(batch_size, threads, inter_threads)
    done = 0
    for r in resolutions:
        timers: list[tuple[str, Timer]] = []
        for r_, layer, source in units:
            if r_ != r:
                continue
            (key,) = layer_keys(layer, "nni-eas")
            spatial = layer.kind != "classifier"
            if layer.structure not in exported:
                t0 = time.perf_counter()
                module = bank.module(source)
                example = torch.zeros(2, layer.c_in, layer.h_in, layer.h_in) if spatial else torch.zeros(2, layer.c_in)
                exported[layer.structure] = onnx_bytes(module, example, dynamic_batch=True, dynamic_spatial=spatial,
                                                       opset=opset, output_name="output")
                export_s += time.perf_counter() - t0
            dims = {"height": layer.h_in, "width": layer.h_in} if spatial else {}
            timers.append((key, Timer(exported[layer.structure], batch_size, threads, inter_threads, dims)))
        # round-robin over the layers: a burst of load from other processes spreads over many
        # layers' samples instead of inflating a few layers' medians
        t0 = time.perf_counter()
        samples: dict[str, list[float]] = {key: [] for key, _ in timers}
        for key, timer in timers:
            timer.times(warmup, 1)
        per_round = [runs // rounds + (1 if i < runs % rounds else 0) for i in range(rounds)]
        for n in per_round:
            for key, timer in timers:
                if n:
                    samples[key] += timer.times(0, n)
        measure_s += time.perf_counter() - t0
        for key, _ in timers:
            ms = np.asarray(samples[key]) * 1e3
            entries[int(r)][key] = {"median": float(np.median(ms)), "p90": float(np.percentile(ms, 90)),
                                    "std": float(ms.std(ddof=1)) if len(ms) > 1 else 0.0,
                                    "mean": float(ms.mean()), "runs": len(ms)}
            done += 1
            if progress is not None:
                progress(done, len(units), key, entries[int(r)][key]["median"])
        del timers
    device = describe_device(threads, inter_threads, batch_size)
    table = LatencyTable(entries, "nni-eas", device, cfg, statistic="median", overhead_ms=overhead,
                         source=f"{cfg.name} on {device.name}")
    calib_s = 0.0
    references: list[dict] = []
    if calibrate:
        t0 = time.perf_counter()
        table.scale, references = _calibration(table, cfg, resolutions, widths, num_classes, batch_size, threads,
                                               inter_threads, warmup, runs, rounds, opset)
        calib_s = time.perf_counter() - t0
    table.meta = {
        "created": stamp(), "build_seconds": round(time.perf_counter() - t_start, 2),
        "export_seconds": round(export_s, 2), "measure_seconds": round(measure_s, 2),
        "calibration_seconds": round(calib_s, 2), "layers": len(units), "onnx_models": len(exported),
        "warmup": warmup, "runs": runs, "rounds": rounds, "exporter": EXPORTER, "opset": opset,
        "torch": str(torch.__version__), "resolutions": list(resolutions), "widths": list(widths),
        "num_classes": num_classes or cfg.num_classes, "calibration_references": references,
    }
    return table


def _calibration(table: LatencyTable, cfg: OFAMobileNetV3Config, resolutions: Sequence[int], widths: Sequence[float],
                 num_classes: int | None, batch_size: int, threads: int, inter_threads: int, warmup: int, runs: int,
                 rounds: int, opset: int) -> tuple[dict[int, float], list[dict]]:
    """Per-resolution ``geometric mean(measured / sum of layers)`` over the smallest and largest
    subnets (at the smallest and largest width), timed end to end like a deployed model."""
    scale: dict[int, float] = {}
    references: list[dict] = []
    # the reference subnets differ only in resolution: export each once with a free height/width
    graphs: list[tuple[Callable, float, bytes]] = []
    for w in sorted({min(widths), max(widths)}):
        for make in (min_arch, max_arch):
            a = Arch(**{**make(cfg, resolutions[0]).to_dict(), "w": w})
            with torch.random.fork_rng():
                torch.manual_seed(0)
                sub = build_subnet(cfg, a, num_classes=num_classes).eval()
            graphs.append((make, w, onnx_bytes(sub, torch.zeros(2, cfg.in_chans, a.r, a.r), dynamic_batch=True,
                                               dynamic_spatial=True, opset=opset)))
    for r in resolutions:
        archs, timers = [], []
        for make, w, data in graphs:
            archs.append(Arch(**{**make(cfg, r).to_dict(), "w": w}))
            timers.append(Timer(data, batch_size, threads, inter_threads, {"height": r, "width": r}))
        samples: list[list[float]] = [[] for _ in timers]
        for t in timers:
            t.times(warmup, 1)
        for n in [runs // rounds + (1 if i < runs % rounds else 0) for i in range(rounds)]:
            for i, t in enumerate(timers):
                if n:
                    samples[i] += t.times(0, n)
        ratios = []
        for a, times in zip(archs, samples):
            measured = float(np.median(times) * 1e3)
            raw = table.predict(a, cfg, num_classes, calibrated=False)
            ratios.append(measured / raw)
            references.append({"arch": a.to_dict(), "measured_ms": measured, "sum_of_layers_ms": raw})
        scale[int(r)] = float(np.exp(np.mean(np.log(ratios))))
    return scale, references
