"""An MLP accuracy predictor in PyTorch (OFA's design: a few wide ReLU layers on one-hot features)."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
import torch.nn as nn

from ..config import ConfigError
from ..io import atomic_write_bytes
from .base import Predictor

__all__ = ["MLPPredictor", "build_mlp"]

FORMAT = "nni-eas-predictor/1"


@contextlib.contextmanager
def small_model_threads(n: int = 1):
    """Run a small model on ``n`` threads: MLPs this size gain nothing from more, and on a
    shared CPU extra threads can make each step ~50x slower (oversubscription)."""
    saved = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(saved)


def build_mlp(in_features: int, hidden: Sequence[int]) -> nn.Sequential:
    """``Linear -> ReLU`` per hidden width, then a linear output: the layout of OFA's predictor
    (its state-dict keys ``0.weight``, ``2.weight``, ... match)."""
    layers: list[nn.Module] = []
    width = in_features
    for h in hidden:
        layers += [nn.Linear(width, h), nn.ReLU()]
        width = h
    layers.append(nn.Linear(width, 1))
    return nn.Sequential(*layers)


class MLPPredictor(Predictor):
    """Regress accuracy with an MLP; targets are standardised while training.

    Args:
        hidden: hidden widths (OFA: ``(400, 400, 400)``).
        encoding: feature encoding (``onehot`` for any space, ``ofa`` for OFA's 128-d vector).
        epochs, lr, weight_decay, batch_size: Adam training schedule (cosine-decayed lr).
        seed: weight init and shuffling, so a fit is reproducible.
        warm_start: continue from the current weights on the next ``fit`` (fine-tuning).
    """

    def __init__(self, hidden: Sequence[int] = (400, 400, 400), encoding: str = "onehot", epochs: int = 300,
                 lr: float = 1e-3, weight_decay: float = 1e-4, batch_size: int = 64, seed: int = 0,
                 warm_start: bool = False):
        self.hidden, self.encoding = tuple(int(h) for h in hidden), encoding
        self.epochs, self.lr, self.weight_decay, self.batch_size = epochs, lr, weight_decay, batch_size
        self.seed, self.warm_start = seed, warm_start
        self.model: nn.Sequential | None = None
        self.y_mean, self.y_std = 0.0, 1.0

    def _ensure_model(self, in_features: int) -> nn.Sequential:
        if self.model is None or self.model[0].in_features != in_features or not self.warm_start:
            torch.manual_seed(self.seed)
            self.model = build_mlp(in_features, self.hidden)
        return self.model

    def fit(self, X: np.ndarray, y: np.ndarray) -> "MLPPredictor":
        X = torch.as_tensor(np.asarray(X, dtype=np.float32))
        y_np = np.asarray(y, dtype=np.float64).reshape(-1)
        if len(X) != len(y_np) or len(X) < 2:
            raise ConfigError(f"fit needs at least 2 samples with one target each; got X {tuple(X.shape)}, y {y_np.shape}")
        warm = self.warm_start and self.model is not None
        if not warm:
            self.y_mean, self.y_std = float(y_np.mean()), float(y_np.std()) or 1.0
        t = torch.as_tensor((y_np - self.y_mean) / self.y_std, dtype=torch.float32)
        model = self._ensure_model(X.shape[1]).train()
        opt = torch.optim.Adam(model.parameters(), lr=self.lr, weight_decay=self.weight_decay)
        steps_per_epoch = max(1, -(-len(X) // self.batch_size))
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=self.epochs * steps_per_epoch)
        g = torch.Generator().manual_seed(self.seed)
        with small_model_threads():
            self._train(model, opt, sched, X, t, g)
        model.eval()
        return self

    def _train(self, model, opt, sched, X, t, g) -> None:
        for _ in range(self.epochs):
            perm = torch.randperm(len(X), generator=g)
            for i in range(0, len(X), self.batch_size):
                idx = perm[i:i + self.batch_size]
                loss = nn.functional.mse_loss(model(X[idx]).squeeze(1), t[idx])
                opt.zero_grad()
                loss.backward()
                opt.step()
                sched.step()

    @torch.no_grad()
    def predict(self, X: np.ndarray) -> np.ndarray:
        if self.model is None:
            raise ConfigError(f"{type(self).__name__} is not fitted; call fit() or load() first")
        with small_model_threads():
            out = self.model.eval()(torch.as_tensor(np.asarray(X, dtype=np.float32))).squeeze(1)
        return out.double().numpy() * self.y_std + self.y_mean

    # ---- files -------------------------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        if self.model is None:
            raise ConfigError("cannot save an unfitted predictor")
        return {"format": FORMAT, "kind": "mlp", "encoding": self.encoding, "hidden": list(self.hidden),
                "in_features": int(self.model[0].in_features), "y_mean": self.y_mean, "y_std": self.y_std,
                "state_dict": {k: v.detach().cpu() for k, v in self.model.state_dict().items()}}

    def save(self, path: str | os.PathLike) -> Path:
        import io

        buf = io.BytesIO()
        torch.save(self.state(), buf)
        return atomic_write_bytes(path, buf.getvalue())

    @classmethod
    def load(cls, path: str | os.PathLike, **kwargs: Any) -> "MLPPredictor":
        """Read a file written by :meth:`save` (``torch.load(weights_only=True)``: no code runs)."""
        try:
            obj = torch.load(Path(path), map_location="cpu", weights_only=True)
        except FileNotFoundError:
            raise ConfigError(f"predictor file not found: {path}") from None
        if not isinstance(obj, dict) or obj.get("format") != FORMAT:
            raise ConfigError(f"{path} is not an nni-eas predictor file (expected format {FORMAT!r})")
        p = cls(hidden=obj["hidden"], encoding=obj["encoding"], **kwargs)
        p.model = build_mlp(obj["in_features"], p.hidden)
        p.model.load_state_dict(obj["state_dict"])
        p.model.eval()
        p.y_mean, p.y_std = float(obj["y_mean"]), float(obj["y_std"])
        return p
