"""Deploying a searched RepNAS net: ONNX export, graph checks, side-by-side latency, costs.

Export and timing reuse :mod:`nni_eas.export` (dynamo exporter, opset 18, every file checked
against PyTorch; onnxruntime sessions with fixed threads and I/O binding). What is added here is
what re-parameterisation needs: counting a graph's ops (one ``Conv`` per fused layer, no ``Add``
between branches) and timing several models *interleaved* (round-robin, one inference each), so
that load from other processes on a shared machine hits every model alike and the ratios of the
medians stay meaningful.
"""

from __future__ import annotations

import collections
import os
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import torch.nn as nn

from ..costs import count_params, measure_macs

__all__ = ["export_onnx", "onnx_op_counts", "compare_latency", "model_costs"]


def export_onnx(model: nn.Module, path: str | os.PathLike, input_shape: Sequence[int] = (3, 32, 32),
                atol: float = 1e-4) -> Path:
    """Export ``model`` (eval mode) with :func:`nni_eas.export.onnx_export.export_onnx`, checked to ``atol``.

    ``input_shape`` is ``(C, H, W)``; the batch is 1.
    """
    from ..export.onnx_export import export_onnx as _export

    return Path(_export(model, path, input_shape=tuple(input_shape), atol=atol).path)


def onnx_op_counts(path: str | os.PathLike) -> dict[str, int]:
    """How many nodes of each op type the ONNX graph at ``path`` has (top-level graph)."""
    import onnx

    return dict(collections.Counter(node.op_type for node in onnx.load(str(path)).graph.node))


def compare_latency(models: Mapping[str, str | os.PathLike], threads: int = 1, runs: int = 300,
                    warmup: int = 30) -> dict[str, Any]:
    """Latency of each ONNX model, timed round-robin in one loop (batch 1, ``threads`` intra-op threads).

    Returns ``{'device': {...}, 'models': {name: {'median_ms', 'p10_ms', 'p90_ms', 'runs'}}}``.
    """
    import time

    from ..export.runtime import Timer, describe_device

    timers = {name: Timer(p, batch_size=1, threads=threads) for name, p in models.items()}
    for _ in range(warmup):
        for t in timers.values():
            t.run()
    times: dict[str, list[float]] = {name: [] for name in timers}
    for _ in range(runs):
        for name, t in timers.items():
            t0 = time.perf_counter()
            t.run()
            times[name].append((time.perf_counter() - t0) * 1e3)
    out = {}
    for name, ms in times.items():
        p10, p50, p90 = np.percentile(ms, [10, 50, 90])
        out[name] = {"median_ms": float(p50), "p10_ms": float(p10), "p90_ms": float(p90), "runs": runs}
    return {"device": describe_device(threads).model_dump(), "models": out}


def model_costs(model: nn.Module, resolution: int, in_chans: int = 3) -> dict[str, int]:
    """MACs of one image (hooks on ``Conv2d`` / ``Linear``) and parameters of ``model``."""
    return {"macs": measure_macs(model, resolution, in_chans), "params": count_params(model)}
