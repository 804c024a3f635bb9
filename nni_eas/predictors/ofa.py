"""OFA's published ImageNet accuracy predictor (``acc_predictor.pth`` of OFA's tutorial).

The file is a state dict of an MLP ``128 -> 400 -> 400 -> 400 -> 1`` (ReLU) saved in PyTorch's
legacy (pre-1.6, non-zip) format, with CUDA storages. ``torch.load(weights_only=True)`` reads
that format with its restricted unpickler (tensors, storages and containers only), so nothing
in the file can run code; ``map_location="cpu"`` moves the CUDA storages.

Output: top-1 accuracy as a fraction (about 0.75..0.85 on OFA's space). OFA² (Ito & Von Zuben,
2023) searched on *top-1 error in percent*: its ``AccuracyPredictor.predict_accuracy`` returns
``model(features) * 100`` and its problem minimises ``100 - predict_accuracy(archs)``, both in
float32 torch arithmetic (then widened to float64 by ``np.column_stack``). :func:`ofa2_error_pct`
reproduces exactly that; ``100 * (1 - top1)`` in float64 differs from it by ~1e-5 %.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import torch

from ..config import ConfigError
from .mlp import MLPPredictor, build_mlp, small_model_threads

__all__ = ["OFAAccuracyPredictor", "load_state_dict_file", "ofa2_error_pct", "OFA_HIDDEN"]

OFA_HIDDEN = (400, 400, 400)
_OFA_KEYS = {"0.weight": (400, 128), "0.bias": (400,), "2.weight": (400, 400), "2.bias": (400,),
             "4.weight": (400, 400), "4.bias": (400,), "6.weight": (1, 400), "6.bias": (1,)}


def load_state_dict_file(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """A tensor state dict from a ``.pth`` file (zip or legacy format), without unsafe unpickling."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"predictor weights not found: {path}")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # a pickle that references anything but tensors is refused here
        raise ConfigError(f"cannot read {path} as a plain state dict (weights_only=True): {type(e).__name__}: {e}") from None
    if isinstance(obj, Mapping) and "state_dict" in obj and isinstance(obj["state_dict"], Mapping):
        obj = obj["state_dict"]
    if not isinstance(obj, Mapping) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise ConfigError(f"{path} does not hold a state dict of tensors")
    return {str(k): v for k, v in obj.items()}


class OFAAccuracyPredictor(MLPPredictor):
    """OFA's MLP on OFA's 128-d one-hot features; :meth:`fit` fine-tunes it (warm start)."""

    def __init__(self, epochs: int = 100, lr: float = 1e-4, weight_decay: float = 0.0, batch_size: int = 64,
                 seed: int = 0):
        super().__init__(hidden=OFA_HIDDEN, encoding="ofa", epochs=epochs, lr=lr, weight_decay=weight_decay,
                         batch_size=batch_size, seed=seed, warm_start=True)

    @classmethod
    def from_file(cls, path: str | os.PathLike, **kwargs: Any) -> "OFAAccuracyPredictor":
        """Load OFA's ``acc_predictor.pth`` (checks every key and shape)."""
        sd = load_state_dict_file(path)
        bad = {k: tuple(sd[k].shape) if k in sd else None for k, shape in _OFA_KEYS.items()
               if k not in sd or tuple(sd[k].shape) != shape}
        extra = sorted(set(sd) - set(_OFA_KEYS))
        if bad or extra:
            raise ConfigError(f"{path} is not OFA's accuracy predictor: expected tensors {_OFA_KEYS}; "
                              f"mismatched {bad}, unexpected {extra}")
        p = cls(**kwargs)
        p.model = build_mlp(128, OFA_HIDDEN)
        p.model.load_state_dict({k: v.float() for k, v in sd.items()})
        p.model.eval()
        return p

    @torch.no_grad()
    def raw(self, X: np.ndarray) -> torch.Tensor:
        """The network output as float32 (no target scaling: OFA's file predicts top-1 directly)."""
        if self.model is None:
            raise ConfigError("OFAAccuracyPredictor has no weights; use OFAAccuracyPredictor.from_file(path)")
        with small_model_threads():
            out = self.model.eval()(torch.as_tensor(np.asarray(X, dtype=np.float32))).squeeze(1)
        return out * self.y_std + self.y_mean


def ofa2_error_pct(top1: torch.Tensor | np.ndarray) -> np.ndarray:
    """OFA²'s objective: ``100 - top1 * 100`` computed in float32, returned as float64."""
    t = torch.as_tensor(top1, dtype=torch.float32)
    return (100 - t * 100).double().numpy()
