"""Lightning plumbing: atomic checkpoints, NNI intermediate results, training curves on disk."""

from __future__ import annotations

import io
import time
from pathlib import Path
from typing import Any, Optional

import pytorch_lightning as pl
import torch
from lightning_fabric.plugins.io.torch_io import TorchCheckpointIO

from ..checkpoint import CheckpointError
from ..compat import with_default_metric
from ..io import atomic_write_bytes, atomic_write_json, save_figure

__all__ = ["AtomicCheckpointIO", "NNIReportCallback", "CurvesCallback", "in_nni_trial", "nni_reporting",
           "SaveSupernetCallback"]


class AtomicCheckpointIO(TorchCheckpointIO):
    """Checkpoints written to a temporary file and renamed, read back with ``weights_only=True``.

    A kill during saving leaves the previous checkpoint intact; a truncated or foreign file is
    reported as :class:`~nni_eas.checkpoint.CheckpointError`, never silently skipped.
    """

    def save_checkpoint(self, checkpoint: dict[str, Any], path, storage_options: Optional[Any] = None) -> None:
        buffer = io.BytesIO()
        torch.save(checkpoint, buffer)
        atomic_write_bytes(path, buffer.getvalue())

    def load_checkpoint(self, path, map_location=None, weights_only: Optional[bool] = None) -> dict[str, Any]:
        path = Path(path)
        if not path.is_file():
            raise CheckpointError(f"checkpoint not found: {path}")
        try:
            return torch.load(path, map_location=map_location or "cpu", weights_only=True)
        except Exception as e:
            raise CheckpointError(f"cannot read checkpoint {path} ({type(e).__name__}: {e}); "
                                  "it is truncated or not an nni-eas training checkpoint") from None


def in_nni_trial() -> bool:
    """True inside a trial launched by an NNI experiment (not standalone)."""
    try:
        import nni

        return nni.get_experiment_id() != "STANDALONE"
    except Exception:  # pragma: no cover - nni import problems
        return False


def nni_reporting() -> bool:
    """True where NNI listens for metrics: an nnictl trial, or a model that a ``NasExperiment``'s
    in-process (sequential) engine is running, which sets the current parameter."""
    if in_nni_trial():
        return True
    try:
        import nni

        return nni.get_current_parameter() is not None
    except Exception:  # pragma: no cover - nni import problems
        return False


class NNIReportCallback(pl.Callback):
    """Per-epoch top-1 of the largest and smallest subnet as NNI intermediate results.

    Reported dicts always carry ``'default'`` (the largest subnet's top-1), so NNI's web UI plots
    them. ``report_final``: also report the last validation as the final result when training
    ends (the NNI strategy does; :func:`~nni_eas.training.train_supernet` leaves it to its caller).
    ``enabled=None`` decides at each report (:func:`nni_reporting`).
    """

    def __init__(self, default_key: str = "top1_max", enabled: Optional[bool] = None, report_final: bool = False):
        self.default_key = default_key
        self.enabled = enabled
        self.report_final = report_final
        self.reported: list[dict[str, float]] = []
        self.final: Optional[dict[str, float]] = None

    def _active(self) -> bool:
        return nni_reporting() if self.enabled is None else self.enabled

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        # not on_validation_epoch_end: Lightning runs callbacks' epoch-end hooks before the module's,
        # which is where this epoch's metrics are computed
        metrics = dict(_val_metrics(pl_module))
        if not metrics or trainer.sanity_checking:
            return
        metric = with_default_metric(metrics, self.default_key)
        self.reported.append(metric)
        if self._active():
            import nni

            nni.report_intermediate_result(metric)

    def on_fit_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        metrics = dict(_val_metrics(pl_module))
        if not self.report_final or not metrics:
            return
        self.final = with_default_metric(metrics, self.default_key)
        if self._active():
            import nni

            nni.report_final_result(self.final)


class SaveSupernetCallback(pl.Callback):
    """Writes the trained supernet (:func:`nni_eas.checkpoint.save_supernet`) when fitting ends,
    for runs that Lightning drives on its own (NNI's evaluators)."""

    def __init__(self, path: str | Path):
        self.path = Path(path)

    def on_fit_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        from ..checkpoint import save_supernet

        module = getattr(pl_module, "training_module", pl_module)
        recipe = module.recipe
        save_supernet(self.path, module.trained_supernet(), classes=module.classes, meta={
            "recipe": recipe.name, "dataset": recipe.data.dataset, "epochs": trainer.current_epoch,
            "global_step": trainer.global_step, "val": dict(module.last_val_metrics),
        })


def _val_metrics(pl_module: pl.LightningModule) -> dict[str, float]:
    """The last validation metrics of a SupernetModule, also through NNI's one-shot wrapper."""
    module = getattr(pl_module, "training_module", pl_module)
    return getattr(module, "last_val_metrics", {}) or {}


class CurvesCallback(pl.Callback):
    """Writes ``metrics.json`` every epoch and ``curves.png`` (loss, top-1 of max/min subnets).

    The plot is redrawn at most every ``plot_every_s`` seconds, and when training ends: drawing
    it costs ~0.4 s, as much as a whole epoch of a small supernet. A killed run keeps a
    ``metrics.json`` of every epoch and a plot at most ``plot_every_s`` old.
    """

    def __init__(self, out_dir: str | Path, plot_every_s: float = 30.0):
        self.out_dir = Path(out_dir)
        self.plot_every_s = plot_every_s
        self.history: list[dict[str, float]] = []
        self._plotted_at: Optional[float] = None
        self._plotted_rows = 0

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        metrics = {k: float(v) for k, v in trainer.callback_metrics.items() if v.numel() == 1}
        row = {"epoch": trainer.current_epoch, **{k: v for k, v in metrics.items() if not k.endswith("_step")}}
        row.update({f"val/{k}": v for k, v in _val_metrics(pl_module).items() if k != "epoch"})
        self.history = [h for h in self.history if h["epoch"] != row["epoch"]] + [row]
        atomic_write_json(self.out_dir / "metrics.json", self.history)
        if self._plotted_at is None or time.monotonic() - self._plotted_at >= self.plot_every_s:
            self._draw()

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self.history and self._plotted_rows != len(self.history):
            self._draw()

    def _draw(self) -> None:
        self._plot()
        self._plotted_at, self._plotted_rows = time.monotonic(), len(self.history)

    def _plot(self) -> None:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        epochs = [h["epoch"] for h in self.history]
        fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(9, 3.4))
        loss = [h.get("train/loss_epoch", h.get("train/loss")) for h in self.history]
        ax1.plot(epochs, loss, marker="o")
        ax1.set(xlabel="epoch", ylabel="training loss", title="supernet training loss")
        for key, label in (("val/top1_max", "largest subnet"), ("val/top1_min", "smallest subnet")):
            ys = [h.get(key) for h in self.history]
            if any(y is not None for y in ys):
                ax2.plot(epochs, [y if y is not None else float("nan") for y in ys], marker="o", label=label)
        ax2.set(xlabel="epoch", ylabel="val top-1 (BN recalibrated)", title="validation")
        if ax2.get_legend_handles_labels()[0]:  # nothing validated yet (val_every_n_epochs > 1)
            ax2.legend()
        save_figure(fig, self.out_dir / "curves.png")
