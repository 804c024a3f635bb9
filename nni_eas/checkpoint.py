"""The trained-supernet file every strategy reads: one ``.pt`` with weights and what they mean.

Training (Lightning) keeps its own ``.ckpt`` files for resuming; when it finishes it also writes
this self-describing file, which search, EAS, NAT, export and the command line load::

    {"format": "nni-eas-supernet/1",
     "space": {... the full space config ...},
     "state_dict": {... OFAMobileNetV3 weights ...},
     "classes": ["0", "1", ...],          # class names, index = logit
     "meta": {"dataset": "digits", "resolution": 32, "epochs": 3, ...}}

Written atomically, read with ``torch.load(weights_only=True)``; a missing, truncated or
mismatched file raises :class:`CheckpointError` saying which and why. Lightning ``.ckpt`` files
written by :class:`nni_eas.training.SupernetModule` load too.
"""

from __future__ import annotations

import hashlib
import io
import os
from pathlib import Path
from typing import Any, Mapping

import torch

from .config import ConfigError
from .io import atomic_write_bytes
from .spaces.config import load_space_config
from .spaces.ofa_mbv3 import OFAMobileNetV3

__all__ = ["CheckpointError", "save_supernet", "load_supernet", "file_sha256", "FORMAT"]

FORMAT = "nni-eas-supernet/1"


class CheckpointError(RuntimeError):
    """A checkpoint that cannot be used: missing, corrupt, or for another network."""


def file_sha256(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    """Hash of a file (model cards record which supernet a model came from)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def save_supernet(path: str | os.PathLike, supernet: OFAMobileNetV3, classes: list[str] | None = None,
                  meta: Mapping[str, Any] | None = None) -> Path:
    """Write ``supernet`` as a self-describing file, atomically."""
    payload = {
        "format": FORMAT,
        "space": supernet.config.model_dump(mode="json"),
        "state_dict": {k: v.detach().cpu() for k, v in supernet.state_dict().items()},
        "classes": list(classes) if classes is not None else [str(i) for i in range(supernet.config.num_classes)],
        "meta": dict(meta or {}),
    }
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    return atomic_write_bytes(path, buffer.getvalue())


def _read(path: Path) -> dict:
    if not path.is_file():
        raise CheckpointError(f"supernet checkpoint not found: {path}")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # truncated zip, pickle error, disallowed global, ...
        raise CheckpointError(f"cannot read supernet checkpoint {path}: {type(e).__name__}: {e}") from None
    if not isinstance(obj, dict):
        raise CheckpointError(f"{path} is not an nni-eas checkpoint (top level is {type(obj).__name__})")
    return obj


def load_supernet(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> tuple[OFAMobileNetV3, dict]:
    """Load a supernet file (or a Lightning ``.ckpt`` of :class:`~nni_eas.training.SupernetModule`).

    Returns ``(supernet, info)`` where ``info`` has ``classes``, ``meta`` and ``sha256``.
    """
    path = Path(path)
    obj = _read(path)
    if obj.get("format") == FORMAT:
        space, state, classes, meta = obj["space"], obj["state_dict"], obj.get("classes"), obj.get("meta", {})
    elif "state_dict" in obj and "hyper_parameters" in obj:  # Lightning checkpoint
        hp = obj["hyper_parameters"]
        if "space" not in hp:
            raise CheckpointError(f"{path} is a Lightning checkpoint but not of an nni-eas supernet (no 'space' hyper-parameter)")
        prefix = "supernet."
        space = hp["space"]
        state = {k[len(prefix):]: v for k, v in obj["state_dict"].items() if k.startswith(prefix)}
        classes, meta = hp.get("classes"), {"epoch": obj.get("epoch"), "global_step": obj.get("global_step")}
    else:
        raise CheckpointError(f"{path} is not an nni-eas supernet checkpoint (format {obj.get('format')!r}, expected {FORMAT!r})")
    try:
        cfg = load_space_config(space)
    except ConfigError as e:
        raise CheckpointError(f"{path}: the space stored in the checkpoint is invalid:\n{e}") from None
    supernet = OFAMobileNetV3(cfg)
    try:
        missing, unexpected = supernet.load_state_dict(state, strict=False)
    except RuntimeError as e:  # shape mismatch
        raise CheckpointError(f"{path} does not match space {cfg.name!r}: {e}") from None
    if missing or unexpected:
        raise CheckpointError(
            f"{path} does not match space {cfg.name!r}: missing {len(missing)} tensors "
            f"(e.g. {missing[:3]}), unexpected {len(unexpected)} (e.g. {unexpected[:3]})"
        )
    info = {"classes": classes or [str(i) for i in range(cfg.num_classes)], "meta": meta,
            "sha256": file_sha256(path), "path": str(path)}
    return supernet.to(map_location).eval(), info
