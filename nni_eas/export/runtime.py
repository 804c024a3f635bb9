"""Measured latency: onnxruntime sessions with fixed threads, timed the same way every time.

Every reported latency in nni-eas comes from :func:`measure_latency`: an onnxruntime CPU session
with fixed intra-/inter-op thread counts, inputs and outputs bound once (I/O binding, so numpy
conversion and output allocation are not timed), ``warmup`` untimed runs, then ``runs`` timed
runs summarised by their median (robust to other processes), p90 and standard deviation.

A number is only meaningful with the machine and settings it was taken on, so every result
carries a :class:`DeviceInfo` whose :attr:`~DeviceInfo.key` is what latency tables and model
cards are keyed by: tables from different devices (or thread counts, or batch sizes) never mix.
"""

from __future__ import annotations

import os
import platform
import re
import time
from pathlib import Path
from typing import Any, Mapping, Sequence, Union

import numpy as np
from pydantic import Field

from ..config import ConfigError, StrictModel

__all__ = [
    "DeviceInfo",
    "LatencyResult",
    "cpu_model",
    "describe_device",
    "make_session",
    "measure_latency",
    "Timer",
    "DEFAULT_THREADS",
    "DEFAULT_WARMUP",
    "DEFAULT_RUNS",
]

# One intra-op thread by default: mobile-like, and on a shared CPU the least disturbed by others.
DEFAULT_THREADS = 1
DEFAULT_WARMUP = 10
DEFAULT_RUNS = 50

OnnxModel = Union[str, os.PathLike, bytes]


def cpu_model() -> str:
    """The CPU's marketing name (``/proc/cpuinfo`` on Linux, else :mod:`platform`)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
        for pattern in (r"^model name\s*:\s*(.+)$", r"^Hardware\s*:\s*(.+)$", r"^Model\s*:\s*(.+)$"):
            m = re.search(pattern, text, re.MULTILINE)
            if m:
                return " ".join(m.group(1).split())
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


class DeviceInfo(StrictModel):
    """Where and how a latency was measured. Two numbers compare only if their keys are equal."""

    name: str = Field(description="CPU model or device name")
    cores: int | None = Field(default=None, description="logical CPUs of the machine")
    machine: str = ""
    system: str = ""
    runtime: str = Field(default="", description="inference runtime and version, e.g. onnxruntime 1.32.0")
    provider: str = "CPUExecutionProvider"
    intra_op_threads: int | None = None
    inter_op_threads: int | None = None
    batch_size: int | None = 1
    source: str = Field(default="measured", description="'measured' here, or who published the numbers")

    @property
    def key(self) -> str:
        """A stable string naming the device and settings (what tables are keyed by)."""
        parts = [self.name, f"{self.cores} cores" if self.cores else "", self.machine, self.runtime, self.provider,
                 f"threads {self.intra_op_threads}x{self.inter_op_threads}" if self.intra_op_threads else "",
                 f"batch {self.batch_size}" if self.batch_size else "", f"source {self.source}"]
        return " | ".join(p for p in parts if p)


def describe_device(threads: int = DEFAULT_THREADS, inter_threads: int = 1, batch_size: int = 1) -> DeviceInfo:
    """This machine, with the runtime settings a measurement uses."""
    import onnxruntime as ort

    return DeviceInfo(
        name=cpu_model(), cores=os.cpu_count(), machine=platform.machine(), system=platform.system(),
        runtime=f"onnxruntime {ort.__version__}", provider="CPUExecutionProvider",
        intra_op_threads=threads, inter_op_threads=inter_threads, batch_size=batch_size,
    )


class LatencyResult(StrictModel):
    """Summary of ``runs`` timed inferences (milliseconds)."""

    median_ms: float
    p90_ms: float
    std_ms: float
    mean_ms: float
    min_ms: float
    runs: int
    warmup: int
    input_shape: tuple[int, ...]
    device: DeviceInfo

    @classmethod
    def from_times(cls, times_s: Sequence[float], warmup: int, input_shape: Sequence[int],
                   device: DeviceInfo) -> "LatencyResult":
        ms = np.asarray(times_s, dtype=np.float64) * 1e3
        return cls(median_ms=float(np.median(ms)), p90_ms=float(np.percentile(ms, 90)),
                   std_ms=float(ms.std(ddof=1)) if len(ms) > 1 else 0.0, mean_ms=float(ms.mean()),
                   min_ms=float(ms.min()), runs=len(ms), warmup=warmup,
                   input_shape=tuple(int(s) for s in input_shape), device=device)


def _check_threads(threads: int, inter_threads: int) -> None:
    for name, value in (("threads", threads), ("inter_threads", inter_threads)):
        if not isinstance(value, int) or value < 1:
            raise ConfigError(f"{name} must be a positive integer (onnxruntime thread count), got {value!r}")


def make_session(model: OnnxModel, threads: int = DEFAULT_THREADS, inter_threads: int = 1,
                 dims: Mapping[str, int] | None = None, optimize: bool = True):
    """An onnxruntime CPU session with fixed thread counts.

    ``dims`` fixes named free dimensions (``{"batch": 1, "height": 56}``) before the graph is
    optimised, so a model exported with dynamic axes is optimised and timed as a static one.
    """
    import onnxruntime as ort

    _check_threads(threads, inter_threads)
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = inter_threads
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.graph_optimization_level = (ort.GraphOptimizationLevel.ORT_ENABLE_ALL if optimize
                                   else ort.GraphOptimizationLevel.ORT_DISABLE_ALL)
    so.log_severity_level = 3
    so.add_session_config_entry("session.intra_op.allow_spinning", "1")
    for name, value in (dims or {}).items():
        so.add_free_dimension_override_by_name(name, int(value))
    source = os.fspath(model) if isinstance(model, (str, os.PathLike)) else model
    return ort.InferenceSession(source, sess_options=so, providers=["CPUExecutionProvider"])


def _static_shape(arg: Any, batch_size: int, dims: Mapping[str, int]) -> list[int]:
    shape = []
    for i, d in enumerate(arg.shape):
        if isinstance(d, int) and d > 0:
            shape.append(d)
        elif isinstance(d, str) and d in dims:
            shape.append(int(dims[d]))
        elif i == 0:
            shape.append(batch_size)
        else:
            raise ConfigError(f"input {arg.name!r} has a free dimension {d!r} at axis {i}; fix it with dims={{{d!r}: N}}")
    return shape


class Timer:
    """A session with its inputs and outputs bound once, ready to be timed repeatedly.

    ``batch_size`` fills a free first axis (dynamic batch); a static batch must match it.
    ``dims`` fixes other free dimensions by name. Inputs are random normal (conv timings do not
    depend on values, and this distribution produces no denormals).
    """

    def __init__(self, model: OnnxModel, batch_size: int = 1, threads: int = DEFAULT_THREADS, inter_threads: int = 1,
                 dims: Mapping[str, int] | None = None, seed: int = 0):
        if not isinstance(batch_size, int) or batch_size < 1:
            raise ConfigError(f"batch_size must be a positive integer, got {batch_size!r}")
        import onnxruntime as ort

        dims = dict(dims or {})
        self.session = sess = make_session(model, threads, inter_threads, dims={"batch": batch_size, **dims})
        inputs = sess.get_inputs()
        rng = np.random.default_rng(seed)
        self.binding = sess.io_binding()
        self._inputs = []
        self.input_shape: list[int] = []
        for i, arg in enumerate(inputs):
            shape = _static_shape(arg, batch_size, dims)
            if i == 0:
                self.input_shape = shape
                if shape[0] != batch_size:
                    raise ConfigError(f"the model has a static batch size of {shape[0]}; batch_size={batch_size} needs "
                                      "a model exported with a dynamic batch (--dynamic-batch)")
            value = ort.OrtValue.ortvalue_from_numpy(rng.standard_normal(shape).astype(np.float32))
            self._inputs.append(value)  # keep the buffers alive while bound
            self.binding.bind_ortvalue_input(arg.name, value)
        for out in sess.get_outputs():
            self.binding.bind_output(out.name, "cpu")
        self._run_options = ort.RunOptions()

    def run(self) -> None:
        self.session.run_with_iobinding(self.binding, self._run_options)

    def times(self, warmup: int = DEFAULT_WARMUP, runs: int = DEFAULT_RUNS) -> list[float]:
        """Seconds of each of ``runs`` inferences after ``warmup`` untimed ones."""
        if not isinstance(runs, int) or runs < 1:
            raise ConfigError(f"runs must be a positive integer, got {runs!r}")
        if not isinstance(warmup, int) or warmup < 0:
            raise ConfigError(f"warmup must be a non-negative integer, got {warmup!r}")
        for _ in range(warmup):
            self.run()
        out = []
        for _ in range(runs):
            t0 = time.perf_counter()
            self.run()
            out.append(time.perf_counter() - t0)
        return out


def measure_latency(model: OnnxModel, batch_size: int = 1, threads: int = DEFAULT_THREADS, inter_threads: int = 1,
                    warmup: int = DEFAULT_WARMUP, runs: int = DEFAULT_RUNS, dims: Mapping[str, int] | None = None,
                    seed: int = 0, device: DeviceInfo | None = None) -> LatencyResult:
    """Latency of an ONNX model (a path or serialized bytes) on this CPU with onnxruntime.

    See :class:`Timer` for ``batch_size`` and ``dims``; the result's device records the CPU,
    onnxruntime version, thread counts and batch size.
    """
    timer = Timer(model, batch_size, threads, inter_threads, dims, seed)
    times = timer.times(warmup, runs)
    device = device or describe_device(threads, inter_threads, batch_size)
    return LatencyResult.from_times(times, warmup, timer.input_shape, device)
