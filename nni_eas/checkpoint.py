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
import pickle
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping

from .config import ConfigError
from .io import atomic_write_bytes
from .spaces.config import OFAMobileNetV3Config, load_space_config

if TYPE_CHECKING:  # torch only to read or write weights: read_header needs none
    import torch

    from .spaces.ofa_mbv3 import OFAMobileNetV3

__all__ = ["CheckpointError", "save_supernet", "load_supernet", "read_header", "SupernetHeader", "file_sha256", "FORMAT"]

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
    import torch

    buffer = io.BytesIO()
    torch.save(payload, buffer)
    return atomic_write_bytes(path, buffer.getvalue())


def _read(path: Path) -> dict:
    if not path.is_file():
        raise CheckpointError(f"supernet checkpoint not found: {path}")
    import torch

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
    from .spaces.ofa_mbv3 import OFAMobileNetV3

    path = Path(path)
    obj = _read(path)
    space, state, classes, meta = _fields(obj, path)
    cfg = _space(space, path)
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


def _fields(obj: Mapping[str, Any], path: Path) -> tuple[Any, Any, Any, dict]:
    """``(space, state_dict, classes, meta)`` of a supernet file or a Lightning ``.ckpt``."""
    if obj.get("format") == FORMAT:
        return obj.get("space"), obj.get("state_dict"), obj.get("classes"), dict(obj.get("meta") or {})
    if "state_dict" in obj and "hyper_parameters" in obj:  # Lightning checkpoint
        hp = obj["hyper_parameters"]
        if not isinstance(hp, Mapping) or "space" not in hp:
            raise CheckpointError(f"{path} is a Lightning checkpoint but not of an nni-eas supernet (no 'space' hyper-parameter)")
        prefix = "supernet."
        state = obj["state_dict"]
        state = {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)} if isinstance(state, Mapping) else state
        return hp["space"], state, hp.get("classes"), {"epoch": obj.get("epoch"), "global_step": obj.get("global_step")}
    raise CheckpointError(f"{path} is not an nni-eas supernet checkpoint (format {obj.get('format')!r}, expected {FORMAT!r})")


def _space(space: Any, path: Path) -> OFAMobileNetV3Config:
    try:
        return load_space_config(space)
    except ConfigError as e:
        raise CheckpointError(f"{path}: the space stored in the checkpoint is invalid:\n{e}") from None


# --------------------------------------------------------------------------------------------
# the header: what a supernet file is, without torch
# --------------------------------------------------------------------------------------------
class SupernetHeader:
    """Space, class names and meta of a supernet file, read without torch (:func:`read_header`)."""

    def __init__(self, path: Path, space: OFAMobileNetV3Config, classes: list[str], meta: dict[str, Any]):
        self.path, self.space, self.classes, self.meta = path, space, classes, meta

    def __repr__(self) -> str:
        return f"SupernetHeader({str(self.path)!r}, space={self.space.name!r}, classes={len(self.classes)})"


class _Opaque:
    """Stands for every object of the pickle that is not plain data (tensors, storages)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        pass

    def __call__(self, *args: Any, **kwargs: Any) -> "_Opaque":
        return _Opaque()

    def __setstate__(self, state: Any) -> None:
        pass


class _HeaderUnpickler(pickle.Unpickler):
    """Reads a ``torch.save`` pickle as plain data: tensors become :class:`_Opaque`, and no
    global is ever imported or called (so it is as safe as ``weights_only`` and needs no torch)."""

    _PLAIN = {("collections", "OrderedDict"): dict, ("builtins", "set"): set, ("builtins", "frozenset"): frozenset,
              ("builtins", "complex"): complex}

    def find_class(self, module: str, name: str) -> Any:
        return self._PLAIN.get((module, name), _Opaque)

    def persistent_load(self, pid: Any) -> Any:
        return _Opaque()


def read_header(path: str | os.PathLike) -> SupernetHeader:
    """What a supernet file holds (space, classes, meta) without importing torch or reading weights.

    Used by the checks that run before an experiment starts (``nni_eas.preflight``), where NNI
    gives a tuner 10 s to connect. Raises :class:`CheckpointError` naming the file when it is
    missing, truncated, or not an nni-eas supernet.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"supernet checkpoint not found: {path}" + (" (it is a folder)" if path.is_dir() else ""))
    try:
        with zipfile.ZipFile(path) as z:
            pkl = [n for n in z.namelist() if n.endswith("/data.pkl") or n == "data.pkl"]
            if len(pkl) != 1:
                raise CheckpointError(f"{path} is not a torch.save file (no data.pkl record)")
            with z.open(pkl[0]) as f:
                obj = _HeaderUnpickler(f).load()
    except CheckpointError:
        raise
    except (zipfile.BadZipFile, EOFError, OSError, pickle.UnpicklingError, ValueError, TypeError, KeyError,
            AttributeError, IndexError) as e:
        raise CheckpointError(f"cannot read supernet checkpoint {path} (truncated, or not written by nni-eas): "
                              f"{type(e).__name__}: {e}") from None
    if not isinstance(obj, dict):
        raise CheckpointError(f"{path} is not an nni-eas checkpoint (top level is not a dict)")
    space, _, classes, meta = _fields(obj, path)
    cfg = _space(space, path)
    names = [str(c) for c in classes] if classes else [str(i) for i in range(cfg.num_classes)]
    if len(names) != cfg.num_classes:
        raise CheckpointError(f"{path}: {len(names)} class names for a space with {cfg.num_classes} classes")
    return SupernetHeader(path, cfg, names, meta)
