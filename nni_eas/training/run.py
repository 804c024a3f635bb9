"""``train_supernet``: one call from a recipe to a trained, saved supernet (resumable).

Output directory layout::

    out_dir/
      checkpoints/last.ckpt   Lightning checkpoint, every epoch (atomic) -> resume
      supernet.pt             the trained supernet (nni_eas.checkpoint format)
      metrics.json, curves.png
      tb/                     TensorBoard logs
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import pytorch_lightning as pl
from pytorch_lightning.callbacks import ModelCheckpoint, TQDMProgressBar
from pytorch_lightning.loggers import TensorBoardLogger

from ..checkpoint import save_supernet
from .callbacks import AtomicCheckpointIO, CurvesCallback, NNIReportCallback
from .data import SupernetDataModule
from .module import SupernetModule
from .policies import SubnetPolicy
from .recipe import TrainingRecipe, load_recipe

__all__ = ["train_supernet", "TrainResult", "build_trainer"]

_log = logging.getLogger(__name__)


@dataclass
class TrainResult:
    supernet_path: Path
    out_dir: Path
    metrics: dict[str, float]
    history: list[dict[str, Any]] = field(default_factory=list)
    module: Optional[SupernetModule] = None


def build_trainer(out_dir: Path, max_epochs: int, val_every: int = 1, progress: bool = True,
                  nni_report: Optional[bool] = None, extra_callbacks: Optional[list] = None,
                  trainer_cls: type = pl.Trainer, report_final: bool = False, curves: bool = True,
                  report_default_key: str = "top1_max", **trainer_kwargs: Any) -> pl.Trainer:
    """The Trainer every nni-eas training uses: atomic epoch checkpoints, TensorBoard, curves.

    ``trainer_cls``: NNI's evaluators need its traced ``nni.nas.evaluator.pytorch.Trainer``.
    ``report_final``: report the last validation to NNI as the final result.
    ``curves``: the supernet's per-epoch ``curves.png`` (other trainings plot their own).
    ``report_default_key``: the validation metric NNI gets as ``'default'``.
    """
    out_dir = Path(out_dir)
    callbacks = [
        # one file, overwritten (atomically) after every epoch: with save_top_k=0, Lightning >= 2.5
        # writes save_last's file only when training ends, which leaves nothing to resume after a kill
        ModelCheckpoint(dirpath=out_dir / "checkpoints", filename="last", save_top_k=1, monitor=None,
                        every_n_epochs=1, save_on_train_epoch_end=True, enable_version_counter=False,
                        auto_insert_metric_name=False),
        NNIReportCallback(default_key=report_default_key, enabled=nni_report, report_final=report_final),
    ]
    if curves:
        callbacks.append(CurvesCallback(out_dir))
    if progress:
        callbacks.append(TQDMProgressBar(refresh_rate=10))
    callbacks += extra_callbacks or []
    kwargs = dict(
        max_epochs=max_epochs, accelerator="cpu" if not _cuda() else "auto", devices=1,
        logger=TensorBoardLogger(str(out_dir), name="tb", version=""), callbacks=callbacks,
        plugins=[AtomicCheckpointIO()], num_sanity_val_steps=0, check_val_every_n_epoch=val_every,
        enable_progress_bar=progress, enable_model_summary=False, log_every_n_steps=10,
    )
    kwargs.update(trainer_kwargs)
    return trainer_cls(**kwargs)


def _cuda() -> bool:
    import torch

    return torch.cuda.is_available()


def train_supernet(recipe: TrainingRecipe | str | dict, out_dir: str | Path, resume: bool = True,
                   progress: bool = True, nni_report: Optional[bool] = None,
                   datamodule: Optional[SupernetDataModule] = None, policy: Optional[SubnetPolicy] = None,
                   **trainer_kwargs: Any) -> TrainResult:
    """Train a supernet as ``recipe`` says, writing everything under ``out_dir``.

    ``resume``: continue from ``out_dir/checkpoints/last.ckpt`` when it exists (a checkpoint of
    another recipe or space is an error, never silently ignored).
    ``policy``: a :class:`~nni_eas.training.policies.SubnetPolicy` replacing the recipe's.
    ``trainer_kwargs``: :func:`build_trainer` / ``Trainer`` arguments (``extra_callbacks``, ...).
    """
    recipe = load_recipe(recipe)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    pl.seed_everything(recipe.seed, workers=True, verbose=False)
    dm = datamodule or SupernetDataModule(recipe.data, recipe.batch_size, recipe.seed, recipe.semi_supervised)
    dm.setup()
    module = SupernetModule(recipe, num_classes=dm.num_classes, classes=dm.classes, policy=policy)
    trainer = build_trainer(out_dir, module.policy.total_epochs, recipe.val_every_n_epochs, progress, nni_report,
                            **trainer_kwargs)
    last = out_dir / "checkpoints" / "last.ckpt"
    ckpt_path = str(last) if resume and last.exists() else None
    if ckpt_path:
        _log.info("resuming from %s", ckpt_path)
    trainer.fit(module, datamodule=dm, ckpt_path=ckpt_path, weights_only=True)
    path = save_supernet(out_dir / "supernet.pt", module.trained_supernet(), classes=dm.classes, meta={
        "recipe": recipe.name, "dataset": recipe.data.dataset, "epochs": trainer.current_epoch,
        "global_step": trainer.global_step, "val": module.last_val_metrics,
    })
    curves = next(c for c in trainer.callbacks if isinstance(c, CurvesCallback))
    return TrainResult(path, out_dir, dict(module.last_val_metrics), curves.history, module)
