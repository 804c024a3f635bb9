"""ONNX export of static subnets (or any ``nn.Module``), verified against PyTorch before it is kept.

Exporter choice: **torch.export-based ("dynamo") exporter**, opset 18. Both exporters in torch 2.14
produce numerically equal graphs for our subnets (max diff ~1e-10) and both keep a dynamic batch
axis; the dynamo exporter is the one torch maintains (the TorchScript exporter warns that it
will be removed), and its graph is the cleaner one: BatchNorm folded into the convolutions, no
``Identity`` nodes (the TorchScript graph of a w1.0 subnet has 182 nodes, 42 of them
``Identity``; the dynamo graph has 140), global pooling as one ``ReduceMean``. It is slower to
export (about 7 s vs 3 s for a full subnet on 2 cores), which only matters when building latency
tables, where each block structure is exported once with dynamic height/width and then timed at
every feature size (:func:`onnx_bytes` with ``dynamic_spatial=True``).

Opset 18 is the dynamo exporter's native opset (no version conversion pass), is covered by
onnxruntime >= 1.14 including its mobile builds, and has every operator a MobileNetV3 needs
(``HardSwish``, ``HardSigmoid``, ``ReduceMean`` with axes as an input).

Every export is checked: onnxruntime and PyTorch run the same real images (scikit-learn's
embedded handwritten digits, resized to the model's input, plus two noise images) and the file
is only moved into place when ``max |ort - torch| <= atol``. Otherwise :class:`ExportCheckError`
is raised and nothing is left at the destination (the rejected graph is kept as
``<name>.onnx.rejected`` only when asked for).
"""

from __future__ import annotations

import contextlib
import io
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from ..config import ConfigError
from ..io import atomic_write_bytes

__all__ = [
    "DEFAULT_OPSET",
    "EXPORTER",
    "ExportCheckError",
    "ExportReport",
    "check_onnx",
    "export_onnx",
    "model_input_shape",
    "onnx_bytes",
    "onnx_model_proto",
    "real_images",
]

DEFAULT_OPSET = 18
EXPORTER = "torch.onnx.export(dynamo=True)"
INPUT_NAME = "input"
OUTPUT_NAME = "logits"


class ExportCheckError(RuntimeError):
    """The exported ONNX graph does not compute what the PyTorch module computes."""


@dataclass
class ExportReport:
    """What :func:`export_onnx` wrote and how it was verified (``batch_size`` None: dynamic)."""

    path: Path
    sha256: str
    size_bytes: int
    opset: int
    exporter: str
    input_shape: tuple[int, ...]
    batch_size: int | None
    max_abs_diff: float
    atol: float
    check_images: int
    check_source: str
    torch_version: str = field(default_factory=lambda: str(torch.__version__))

    def to_dict(self) -> dict[str, Any]:
        return {"file": self.path.name, "sha256": self.sha256, "size_bytes": self.size_bytes, "opset": self.opset,
                "exporter": self.exporter, "torch": self.torch_version, "input_name": INPUT_NAME,
                "output_name": OUTPUT_NAME,
                "input_shape": ["batch" if self.batch_size is None else self.batch_size, *self.input_shape],
                "dynamic_batch": self.batch_size is None,
                "check": {"max_abs_diff": self.max_abs_diff, "atol": self.atol, "images": self.check_images,
                          "source": self.check_source}}


# --------------------------------------------------------------------------------------------
# inputs
# --------------------------------------------------------------------------------------------
def model_input_shape(model: nn.Module, input_shape: Sequence[int] | None = None) -> tuple[int, int, int]:
    """``(C, H, W)`` of one input image: given, or known by a :class:`MobileNetV3Subnet`."""
    if input_shape is not None:
        shape = tuple(int(s) for s in input_shape)
        if len(shape) != 3 or min(shape) < 1:
            raise ConfigError(f"input_shape must be (channels, height, width) of one image, got {tuple(input_shape)}")
        return shape  # type: ignore[return-value]
    arch, cfg = getattr(model, "arch", None), getattr(model, "config", None)
    if arch is not None and cfg is not None:
        return (cfg.in_chans, arch.r, arch.r)
    raise ConfigError(f"input_shape is needed to export a {type(model).__name__} (only subnets know their resolution)")


def real_images(n: int, input_shape: Sequence[int], seed: int = 0) -> torch.Tensor:
    """``n`` real images shaped ``(C, H, W)``: scikit-learn's embedded handwritten digits.

    They ship with scikit-learn (no download), are resized bilinearly to ``H x W``, repeated over
    ``C`` channels and standardised, so activations look like a real input's (smooth regions,
    edges), which random noise does not exercise.
    """
    from sklearn.datasets import load_digits

    c, h, w = (int(s) for s in input_shape)
    digits = load_digits().images.astype(np.float32) / 16.0
    idx = np.random.default_rng(seed).choice(len(digits), size=n, replace=n > len(digits))
    x = torch.from_numpy(digits[idx])[:, None]
    x = F.interpolate(x, size=(h, w), mode="bilinear", align_corners=False)
    x = (x - 0.3044) / 0.3828
    return x.repeat(1, c, 1, 1).contiguous()


def _check_inputs(input_shape: Sequence[int], images: torch.Tensor | None, n: int = 8,
                  source: str | None = None) -> tuple[torch.Tensor, str]:
    if images is not None:
        images = torch.as_tensor(images, dtype=torch.float32)
        if images.dim() != 4 or tuple(images.shape[1:]) != tuple(input_shape):
            raise ConfigError(f"check images must be [N, {', '.join(map(str, input_shape))}], got {tuple(images.shape)}")
        return images, source or f"{len(images)} given images"
    g = torch.Generator().manual_seed(0)
    noise = torch.randn((2, *input_shape), generator=g)
    return torch.cat([real_images(n, input_shape), noise]), f"{n} scikit-learn digits + 2 noise images"


# --------------------------------------------------------------------------------------------
# export
# --------------------------------------------------------------------------------------------
def _dynamic_shapes(dynamic_batch: bool, dynamic_spatial: bool) -> tuple[dict[int, Any], ...] | None:
    from torch.export import Dim

    axes: dict[int, Any] = {}
    if dynamic_batch:
        axes[0] = Dim("batch", min=1)
    if dynamic_spatial:
        axes[2], axes[3] = Dim("height", min=1), Dim("width", min=1)
    return (axes,) if axes else None


def onnx_model_proto(model: nn.Module, example: torch.Tensor, dynamic_batch: bool = False,
                     dynamic_spatial: bool = False, opset: int = DEFAULT_OPSET, output_name: str = OUTPUT_NAME):
    """The ``onnx.ModelProto`` of ``model`` traced on ``example`` (eval mode, no file written).

    Dynamic axes are named ``batch``, ``height``, ``width``; fix them at session creation with
    :func:`nni_eas.export.runtime.make_session` ``dims=``.
    """
    from ..compat import check_onnx_exporter

    check_onnx_exporter()
    import onnx

    if not isinstance(opset, int) or not 13 <= opset <= onnx.defs.onnx_opset_version():
        raise ConfigError(f"opset must be an integer in 13..{onnx.defs.onnx_opset_version()} "
                          f"(onnx {onnx.__version__}); got {opset!r}")
    if (dynamic_batch or dynamic_spatial) and example.shape[0] == 1:
        # torch.export specialises size-1 dimensions; trace with 2 so the batch axis stays free
        example = example.repeat(2, *([1] * (example.dim() - 1)))
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad(), warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            program = torch.onnx.export(
                model, (example,), None, dynamo=True, external_data=False, opset_version=opset,
                input_names=[INPUT_NAME], output_names=[output_name],
                dynamic_shapes=_dynamic_shapes(dynamic_batch, dynamic_spatial), verbose=False,
            )
    finally:
        model.train(was_training)
    return program.model_proto


def onnx_bytes(model: nn.Module, example: torch.Tensor, dynamic_batch: bool = False, dynamic_spatial: bool = False,
               opset: int = DEFAULT_OPSET, output_name: str = OUTPUT_NAME) -> bytes:
    """Serialized ONNX of ``model`` (see :func:`onnx_model_proto`)."""
    return onnx_model_proto(model, example, dynamic_batch, dynamic_spatial, opset, output_name).SerializeToString()


def check_onnx(onnx_model: bytes | str | os.PathLike, model: nn.Module, images: torch.Tensor,
               batch_size: int | None = None) -> float:
    """``max |onnxruntime(images) - model(images)|`` (model in eval mode).

    ``batch_size``: the model's static batch (images are fed in chunks of it); ``None`` for a
    dynamic batch, which is then checked at batch 1 and at the full batch.
    """
    from .runtime import make_session

    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            expected = model(images).float().numpy()
    finally:
        model.train(was_training)
    x = images.numpy().astype(np.float32)
    sess = make_session(onnx_model, threads=1)
    name = sess.get_inputs()[0].name
    if batch_size is None:
        chunks = [x[:1], x]
        got = [sess.run(None, {name: x[:1]})[0], sess.run(None, {name: x})[0]]
        diffs = [np.abs(got[0] - expected[:1]).max(), np.abs(got[1] - expected).max()]
    else:
        n = (len(x) // batch_size) * batch_size
        if n == 0:
            raise ConfigError(f"need at least batch_size={batch_size} check images, got {len(x)}")
        chunks = [x[i:i + batch_size] for i in range(0, n, batch_size)]
        diffs = [np.abs(sess.run(None, {name: c})[0] - expected[i * batch_size:(i + 1) * batch_size]).max()
                 for i, c in enumerate(chunks)]
    return float(max(diffs)) if all(np.isfinite(diffs)) else float("nan")


def export_onnx(model: nn.Module, path: str | os.PathLike, *, input_shape: Sequence[int] | None = None,
                batch_size: int = 1, dynamic_batch: bool = False, opset: int = DEFAULT_OPSET, check: bool = True,
                atol: float = 1e-4, images: torch.Tensor | None = None, images_source: str | None = None,
                keep_failed: bool = False) -> ExportReport:
    """Export ``model`` to ``path`` and prove onnxruntime computes the same outputs.

    Args:
        model: a :class:`~nni_eas.spaces.MobileNetV3Subnet` (input shape known) or any module
            (then pass ``input_shape=(C, H, W)``). Exported in eval mode; its mode is restored.
        batch_size: the static batch size (ignored when ``dynamic_batch``).
        dynamic_batch: export the first axis as ``batch`` (any batch size at run time).
        opset: ONNX opset (default 18, see the module docstring).
        check: compare onnxruntime and PyTorch on real images; ``atol`` is the largest allowed
            absolute difference of any output.
        images: check images ``[N, C, H, W]`` (default: :func:`real_images` + noise);
            ``images_source`` says what they are (recorded in the report).
        keep_failed: on a failed check keep the graph as ``<path>.rejected`` for debugging.

    Raises:
        ExportCheckError: outputs differ by more than ``atol``; nothing is written at ``path``.
    """
    import hashlib

    path = Path(path)
    if path.suffix != ".onnx":
        raise ConfigError(f"output path must end in .onnx, got {str(path)!r}")
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ConfigError(f"batch_size must be a positive integer, got {batch_size!r}")
    shape = model_input_shape(model, input_shape)
    example = torch.zeros((batch_size, *shape))
    data = onnx_bytes(model, example, dynamic_batch=dynamic_batch, opset=opset)
    diff, n_images, source = float("nan"), 0, "not checked"
    if check:
        x, source = _check_inputs(shape, images, source=images_source)
        if not dynamic_batch and len(x) < batch_size:
            x = x.repeat(-(-batch_size // len(x)), 1, 1, 1)[:batch_size]
        diff = check_onnx(data, model, x, None if dynamic_batch else batch_size)
        n_images = len(x)
        if not diff <= atol:  # also catches NaN
            rejected = ""
            if keep_failed:
                atomic_write_bytes(path.with_name(path.name + ".rejected"), data)
                rejected = f"; the rejected graph is in {path.name}.rejected"
            raise ExportCheckError(
                f"ONNX export of {type(model).__name__} to {path} failed its check: max |onnxruntime - torch| = "
                f"{diff:.3g} > atol {atol:g} on {n_images} images ({source}); nothing was written at {path}{rejected}"
            )
    atomic_write_bytes(path, data)
    return ExportReport(path=path, sha256=hashlib.sha256(data).hexdigest(), size_bytes=len(data), opset=opset,
                        exporter=EXPORTER, input_shape=shape,
                        batch_size=None if dynamic_batch else batch_size, max_abs_diff=diff, atol=atol, check_images=n_images,
                        check_source=source)
