"""Reading and writing files safely: restricted unpickling, atomic writes, JSON/YAML helpers.

Published research artefacts come as pickles (OFA²'s population) and legacy PyTorch files (OFA's
accuracy predictor). Plain ``pickle.load`` runs arbitrary code from the file; these loaders only
rebuild numbers, arrays and containers and refuse anything else by name.
"""

from __future__ import annotations

import importlib
import io
import json
import os
import pickle
from pathlib import Path
from typing import IO, Any

from .config import atomic_write_text

__all__ = ["safe_pickle_load", "UnsafePickleError", "atomic_write_json", "atomic_write_bytes", "atomic_write_text",
           "read_json_state", "check_state_format"]

# (module, name) pairs a research pickle may reference: numpy arrays and scalars, and the
# builtins that pickled iterators (``zip(...)``) reduce to. Nothing that can run code.
_ALLOWED = {
    ("builtins", "zip"), ("builtins", "iter"), ("builtins", "list"), ("builtins", "tuple"),
    ("builtins", "dict"), ("builtins", "set"), ("builtins", "frozenset"), ("builtins", "range"),
    ("builtins", "slice"), ("builtins", "complex"),
    ("numpy", "ndarray"), ("numpy", "dtype"),
    ("numpy.core.multiarray", "_reconstruct"), ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "scalar"),
    ("collections", "OrderedDict"),
}
_ALLOWED_MODULE_PREFIXES = ("numpy.dtypes",)


class UnsafePickleError(pickle.UnpicklingError):
    """The pickle references something other than plain data."""


class _RestrictedUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in _ALLOWED or module.startswith(_ALLOWED_MODULE_PREFIXES):
            if module.startswith("numpy.core"):  # NumPy 2 moved numpy.core to numpy._core
                module = "numpy._core" + module[len("numpy.core"):]
            return getattr(importlib.import_module(module), name)
        raise UnsafePickleError(
            f"refusing to unpickle {module}.{name}: only numbers, arrays and containers are loaded "
            "(this file may execute code when unpickled; inspect it or load it yourself if you trust it)"
        )


def safe_pickle_load(file: str | os.PathLike | IO[bytes]) -> Any:
    """``pickle.load`` restricted to plain data (numpy arrays, numbers, containers)."""
    if isinstance(file, (str, os.PathLike)):
        with open(file, "rb") as f:
            return _RestrictedUnpickler(f).load()
    return _RestrictedUnpickler(file).load()


def safe_pickle_loads(data: bytes) -> Any:
    return _RestrictedUnpickler(io.BytesIO(data)).load()


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` so that readers (and a kill in the middle) never see a partial file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    return path


def save_figure(fig: Any, path: str | os.PathLike, dpi: int = 100) -> Path:
    """Write a matplotlib figure as PNG atomically (laid out, then closed)."""
    import matplotlib.pyplot as plt

    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    plt.close(fig)
    return atomic_write_bytes(path, buf.getvalue())


def atomic_write_json(path: str | os.PathLike, obj: Any, indent: int = 2) -> Path:
    return atomic_write_text(path, json.dumps(obj, indent=indent, default=_json_default) + "\n")


def _json_default(obj: Any) -> Any:
    import numpy as np

    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, (set, frozenset, tuple)):
        return list(obj)
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"{type(obj).__name__} is not JSON serializable")


def read_json_state(path: str | os.PathLike, what: str, fix: str) -> Any:
    """A run's JSON state file; a missing, truncated, binary or unreadable file raises
    :class:`~nni_eas.config.ConfigError` naming the file, what it should be and ``fix``."""
    from .config import ConfigError

    path = Path(path)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{what} not found: {path} (expected a {path.name} written by nni-eas)") from None
    except (OSError, ValueError) as e:  # truncated JSON, binary data (UnicodeDecodeError), a folder...
        raise ConfigError(f"{path} is not a readable nni-eas {what} (truncated or not written by nni-eas): "
                          f"{type(e).__name__}: {e}; {fix}") from None


def check_state_format(state: Any, path: str | os.PathLike, what: str, expected: str, fix: str) -> dict:
    """``state`` if it is a dict of format ``expected``, else :class:`~nni_eas.config.ConfigError`."""
    from .config import ConfigError

    fmt = state.get("format") if isinstance(state, dict) else None
    if fmt != expected:
        raise ConfigError(f"{path} is not an nni-eas {what} (format {fmt!r}, expected {expected!r}); {fix}")
    return state
