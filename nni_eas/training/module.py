"""The Lightning module that trains an elastic supernet once, for every subnet.

One training step = the subnets the policy picks (progressive shrinking, sandwich, uniform), each
forward/backward on the same batch at its resolution, gradients summed, one optimiser step.
On top: label smoothing (timm), distillation (frozen full-net teacher in progressive shrinking,
in-place from the largest subnet in sandwich), EAS task dropout, TOFA's consistency on
unlabeled images. Every random draw of a step comes from a generator seeded by
(seed, global step), so a run resumed from a checkpoint reproduces the uninterrupted one.

Validation re-calibrates BN of the largest and smallest subnet and reports their top-1.
"""

from __future__ import annotations

import copy
from typing import Any, Optional

import numpy as np
import torch
import torch.nn as nn
from nni.nas.evaluator.pytorch import LightningModule
from timm.loss import LabelSmoothingCrossEntropy
from timm.optim import create_optimizer_v2
from timm.scheduler import create_scheduler_v2
from timm.utils import ModelEmaV3

from ..checkpoint import CheckpointError
from ..evaluation import Data, iter_batches, recalibrate_bn
from ..spaces.arch import Arch
from ..spaces.config import load_space_config
from ..spaces.ofa_mbv3 import OFAMobileNetV3, resize_input
from .augment import strong_augment, weak_augment
from .losses import KeptClasses, TaskDropout, consistency_loss, soft_target_loss
from .policies import Phase, SubnetPolicy, build_policy
from .recipe import TrainingRecipe, load_recipe

__all__ = ["SupernetModule", "TRAINING_FORMAT", "zero_init_last_bn"]

TRAINING_FORMAT = "nni-eas-training/1"


class SupernetModule(LightningModule):
    """Trains an :class:`~nni_eas.spaces.OFAMobileNetV3` with a :class:`TrainingRecipe`.

    Args:
        recipe: recipe name (``search_spaces/recipes``), path, mapping or object.
        num_classes: overrides the space's number of classes (the dataset's).
        classes: class names, stored in checkpoints and model cards.
        supernet: an existing supernet to continue training (else built from the recipe's space).
        calib_data: images for BN recalibration before validation (default: the datamodule's
            ``calibration_data()``, or the first training batches).
        policy: a :class:`~nni_eas.training.policies.SubnetPolicy` object to use instead of the
            recipe's ``policy`` (same protocol: ``phases``, ``phase_at``, ``archs``, ``eval_archs``).
    """

    def __init__(self, recipe: TrainingRecipe | str | dict, num_classes: Optional[int] = None,
                 classes: Optional[list[str]] = None, supernet: Optional[OFAMobileNetV3] = None,
                 calib_data: Optional[Data] = None, policy: Optional[SubnetPolicy] = None):
        super().__init__()
        self.recipe = load_recipe(recipe)
        overrides = dict(self.recipe.space_overrides)
        if num_classes is not None:
            overrides["num_classes"] = num_classes
        cfg = supernet.config if supernet is not None else load_space_config(self.recipe.space, **overrides)
        self.supernet = supernet if supernet is not None else OFAMobileNetV3(cfg)
        if self.recipe.zero_init_last_bn:
            zero_init_last_bn(self.supernet)
        self.classes = list(classes) if classes is not None else [str(i) for i in range(cfg.num_classes)]
        self.automatic_optimization = False
        # a custom policy object (e.g. NAT's archive distribution) replaces the recipe's
        self.policy = policy if policy is not None else build_policy(cfg, self.recipe.policy)
        smoothing = self.recipe.label_smoothing
        self.criterion = LabelSmoothingCrossEntropy(smoothing) if smoothing > 0 else nn.CrossEntropyLoss()
        td = self.recipe.task_dropout
        self.task_dropout = TaskDropout(cfg.num_classes, td.rate, td.min_kept, td.groups) if td.rate > 0 else None
        self.teacher: Optional[nn.Module] = None
        self.ema: Optional[ModelEmaV3] = None
        self.calib_data = calib_data
        self._phase_done = -1          # last phase whose start-of-phase work is done (checkpointed)
        self._scheduler = None
        self._scheduler_phase = -1
        self._eval: dict[str, tuple[nn.Module, Arch]] = {}
        self._val_counts: dict[str, list[int]] = {}
        self.last_val_metrics: dict[str, float] = {}

    # ---- NNI evaluator protocol -------------------------------------------------------------
    def set_model(self, model: nn.Module) -> None:
        """Train the supernet of an NNI model space (``OFAMobileNetV3Space``) or a supernet itself.

        The space's supernet replaces the recipe-built one (weights are trained in place); the space
        is kept unregistered, so checkpoints hold the supernet once, under ``supernet.``.
        """
        supernet = getattr(model, "supernet", model)
        if not isinstance(supernet, OFAMobileNetV3):
            raise TypeError(f"SupernetModule trains an OFAMobileNetV3 or a space holding one, got {type(model).__name__}")
        if supernet.config != self.supernet.config:
            ours, theirs = self.supernet.config.model_dump(), supernet.config.model_dump()
            diff = {k: (theirs.get(k), ours.get(k)) for k in sorted(set(ours) | set(theirs)) if ours.get(k) != theirs.get(k)}
            details = "; ".join(f"{k}: space {a!r} vs recipe {b!r}" for k, (a, b) in diff.items())
            raise ValueError(f"the model space differs from the recipe's space ({details}); build the space with the "
                             "recipe's space and space_overrides, and the dataset's num_classes")
        self.__dict__["_nni_model"] = model  # not a submodule (see above)
        self.supernet = supernet
        if self.recipe.zero_init_last_bn:
            zero_init_last_bn(self.supernet)

    @property
    def model(self) -> nn.Module:
        """The model given to :meth:`set_model` (NNI protocol), else the supernet."""
        return self.__dict__.get("_nni_model", self.supernet)

    @property
    def config(self):
        return self.supernet.config

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.supernet(x)

    # ---- optimisation -----------------------------------------------------------------------
    def configure_optimizers(self):
        o = self.recipe.optimizer
        kwargs = {"momentum": o.momentum} if o.name in ("sgd", "momentum", "nesterov") else {}
        if o.name == "sgd" and not o.nesterov:
            kwargs["nesterov"] = False
        return create_optimizer_v2(self.supernet, opt=o.name, lr=o.lr, weight_decay=o.weight_decay, **kwargs)

    def _phase(self) -> Phase:
        return self.policy.phase_at(self.current_epoch)

    def _start_phase(self, phase: Phase) -> None:
        """Work done once when a phase begins: teacher, channel sorting, fresh optimiser state."""
        if phase.distill_from_teacher and self.teacher is None:
            self.teacher = self._make_teacher()
        if phase.sort_channels:
            trained = set()
            for p in self.policy.phases[: phase.index]:
                trained |= set(p.choices.get("expand", [max(self.config.expand_ratios)]))
            self.supernet.sort_channels(sorted(trained))
            if self.ema is not None:
                self.ema = ModelEmaV3(self.supernet, decay=self.recipe.ema.decay)
        optimizer = self.optimizers().optimizer
        optimizer.state.clear()  # OFA starts every phase with a new optimiser (weights may be permuted)
        self._phase_done = phase.index

    def _make_teacher(self) -> nn.Module:
        teacher = self.supernet.extract(self.policy.eval_archs()["max"])
        teacher.eval().requires_grad_(False)
        return teacher

    def _ensure_scheduler(self, phase: Phase) -> None:
        if self._scheduler is not None and self._scheduler_phase == phase.index:
            return
        optimizer = self.optimizers().optimizer
        lr = phase.lr or self.recipe.optimizer.lr
        for group in optimizer.param_groups:
            group["lr"] = group["initial_lr"] = lr
        s = self.recipe.scheduler
        self._scheduler, _ = create_scheduler_v2(
            optimizer, sched=s.name, num_epochs=phase.epochs, warmup_epochs=s.warmup_epochs, warmup_lr=s.warmup_lr,
            min_lr=s.min_lr, step_on_epochs=False, updates_per_epoch=max(1, self._batches_per_epoch()),
        )
        self._scheduler_phase = phase.index
        # a resumed run re-creates the schedule mid-phase: move it to the steps already done, so the
        # next step uses the same learning rate as in the uninterrupted run
        done = (self.current_epoch - phase.first_epoch) * self._batches_per_epoch()
        if done > 0:
            self._scheduler.step_update(num_updates=done)

    def _batches_per_epoch(self) -> int:
        n = self.trainer.num_training_batches
        return int(n) if n != float("inf") else 1

    def on_train_epoch_start(self) -> None:
        phase = self._phase()
        if self._phase_done < phase.index:
            self._start_phase(phase)
        self._ensure_scheduler(phase)
        if self.recipe.ema.enabled and self.ema is None:
            self.ema = ModelEmaV3(self.supernet, decay=self.recipe.ema.decay)

    # ---- training ---------------------------------------------------------------------------
    def _step_rng(self) -> tuple[np.random.Generator, torch.Generator]:
        rng = np.random.default_rng([self.recipe.seed, self.global_step])
        gen = torch.Generator().manual_seed(int(rng.integers(0, 2**62)))
        torch.manual_seed(int(rng.integers(0, 2**62)))  # dropout layers draw from the global generator
        return rng, gen

    def _label_loss(self, logits: torch.Tensor, y: torch.Tensor, kept: Optional[KeptClasses]) -> torch.Tensor:
        if kept is None:
            return self.criterion(logits, y)
        if kept.labels.numel() == 0:
            return logits.sum() * 0.0
        return self.criterion(kept.restrict(logits), kept.labels)

    def _kd(self, logits: torch.Tensor, target: torch.Tensor, kept: Optional[KeptClasses]) -> torch.Tensor:
        if kept is not None:
            if kept.labels.numel() == 0:
                return logits.sum() * 0.0
            logits, target = kept.restrict(logits), kept.restrict(target)
        return soft_target_loss(logits, target, self.recipe.distill.temperature)

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        rng, gen = self._step_rng()
        aug = self.recipe.augment
        if isinstance(batch, dict):
            (x, y), unlabeled = batch["labeled"], batch.get("unlabeled")
        else:
            (x, y), unlabeled = batch, None
        x = weak_augment(x, gen, aug.crop_padding, aug.flip, aug.padding_mode)
        kept = self.task_dropout.sample(y, rng) if self.task_dropout is not None else None
        archs = self.policy.archs(self.current_epoch, rng)
        phase = self._phase()
        if self.teacher is not None:
            self.teacher.eval()  # Lightning's model.train() reaches the teacher too: keep its BN frozen

        pseudo = None
        if unlabeled is not None and self.recipe.semi_supervised.enabled:
            xu = unlabeled[0]
            weak_u = weak_augment(xu, gen, aug.crop_padding, aug.flip, aug.padding_mode)
            strong_u = strong_augment(xu, gen, aug.crop_padding, aug.flip, padding_mode=aug.padding_mode)
            with torch.no_grad():  # pseudo-labels from the largest subnet (or the frozen teacher)
                source = self.teacher if self.teacher is not None else self._with_arch(self.policy.eval_archs()["max"])
                pseudo = source(weak_u)

        optimizer = self.optimizers()
        optimizer.zero_grad()
        ratio = self.recipe.distill.ratio
        inplace_target = None
        teacher_logits: dict[int, torch.Tensor] = {}  # the frozen teacher's output per resolution, once per step
        inputs: dict[int, torch.Tensor] = {}
        total = torch.zeros((), device=x.device)
        for arch, role in archs:
            self.supernet.set_active(arch, validate=False)
            if arch.r not in inputs:
                inputs[arch.r] = _fast_layout(resize_input(x, arch.r))
            xi = inputs[arch.r]
            logits = self.supernet(xi)
            if role == "student" and inplace_target is not None:
                loss = ratio * self._kd(logits, inplace_target, kept)
            else:
                loss = self._label_loss(logits, y, kept)
                if role == "teacher":
                    inplace_target = logits.detach()
                elif self.teacher is not None and phase.distill_from_teacher and ratio > 0:
                    if arch.r not in teacher_logits:  # subnets of one step share the teacher's pass
                        with torch.no_grad():
                            teacher_logits[arch.r] = self.teacher(xi)
                    loss = loss + ratio * self._kd(logits, teacher_logits[arch.r], kept)
            if pseudo is not None:
                u_loss, mask_ratio = consistency_loss(self.supernet(resize_input(strong_u, arch.r)), pseudo,
                                                      self.recipe.semi_supervised.threshold)
                loss = loss + self.recipe.semi_supervised.weight * u_loss
                self.log("train/unlabeled_mask", mask_ratio, on_step=True, on_epoch=False)
            self.manual_backward(loss)
            total = total + loss.detach()
        if self.recipe.grad_clip:
            self.clip_gradients(optimizer, gradient_clip_val=self.recipe.grad_clip, gradient_clip_algorithm="norm")
        optimizer.step()
        step_in_phase = (self.current_epoch - phase.first_epoch) * self._batches_per_epoch() + batch_idx + 1
        self._scheduler.step_update(num_updates=step_in_phase)
        if self.ema is not None:
            self.ema.update(self.supernet, step=self.global_step)
        mean = total / len(archs)
        self.log("train/loss", mean, prog_bar=True, on_step=True, on_epoch=True, batch_size=len(y))
        self.log("train/lr", optimizer.optimizer.param_groups[0]["lr"], on_step=True, on_epoch=False)
        self.log("train/phase", float(phase.index), on_step=False, on_epoch=True)
        return mean

    def _with_arch(self, arch: Arch) -> nn.Module:
        self.supernet.set_active(arch, validate=False)
        return lambda inp: self.supernet(resize_input(inp, arch.r))

    # ---- validation -------------------------------------------------------------------------
    def _calibration(self) -> Data:
        if self.calib_data is not None:
            return self.calib_data
        dm = getattr(self.trainer, "datamodule", None)
        if dm is not None and hasattr(dm, "calibration_data"):
            return dm.calibration_data(self.recipe.bn_calibration_images)
        return self.trainer.train_dataloader

    def on_validation_epoch_start(self) -> None:
        source = self.ema.module if self.ema is not None else self.supernet
        calib = self._calibration()
        self._eval, self._val_counts = {}, {}
        for name, arch in self.policy.eval_archs().items():
            sub = source.extract(arch)
            recalibrate_bn(sub, _labeled(calib), resolution=arch.r, max_images=self.recipe.bn_calibration_images)
            self._eval[name] = (sub.eval(), arch)
            self._val_counts[name] = [0, 0]

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        x, y = batch
        for name, (sub, arch) in self._eval.items():
            logits = sub(resize_input(x, arch.r))
            counts = self._val_counts[name]
            counts[0] += int((logits.argmax(1) == y).sum())
            counts[1] += len(y)
            if name == "max":
                self.log("val/loss_max", nn.functional.cross_entropy(logits, y), on_epoch=True, batch_size=len(y))

    def on_validation_epoch_end(self) -> None:
        metrics = {f"top1_{name}": c[0] / max(1, c[1]) for name, c in self._val_counts.items()}
        self.last_val_metrics = {**metrics, "epoch": float(self.current_epoch)}
        for key, value in metrics.items():
            self.log(f"val/{key}", value, prog_bar=True)
        self._eval = {}

    def trained_supernet(self) -> OFAMobileNetV3:
        """The weights to keep: the EMA copy when the recipe averages weights (that is what
        validation measured), else the supernet itself."""
        return self.ema.module if self.ema is not None else self.supernet

    # ---- checkpoints ------------------------------------------------------------------------
    def hparams_dict(self) -> dict[str, Any]:
        return {"recipe": self.recipe.model_dump(mode="json"), "space": self.config.model_dump(mode="json"),
                "classes": self.classes}

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint["hyper_parameters"] = self.hparams_dict()
        checkpoint["nni_eas"] = {
            "format": TRAINING_FORMAT,
            "phase_done": self._phase_done,
            "teacher": None if self.teacher is None else {k: v.detach().cpu() for k, v in self.teacher.state_dict().items()},
            "ema": None if self.ema is None else {k: v.detach().cpu() for k, v in self.ema.module.state_dict().items()},
        }

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        extra = checkpoint.get("nni_eas")
        hp = checkpoint.get("hyper_parameters", {})
        if not isinstance(extra, dict) or extra.get("format") != TRAINING_FORMAT:
            raise CheckpointError("the checkpoint was not written by nni_eas.training.SupernetModule")
        if hp.get("space") != self.config.model_dump(mode="json"):
            raise CheckpointError(
                f"the checkpoint trains space {hp.get('space', {}).get('name')!r} with different settings "
                f"than this run's space {self.config.name!r}; use the same recipe and dataset to resume"
            )
        if hp.get("recipe", {}).get("policy") != self.recipe.model_dump(mode="json")["policy"]:
            raise CheckpointError("the checkpoint was trained with another subnet-sampling policy; use the same recipe to resume")
        self._phase_done = int(extra["phase_done"])
        if extra.get("teacher") is not None:
            self.teacher = self._make_teacher()
            self.teacher.load_state_dict(extra["teacher"])
        if extra.get("ema") is not None:
            self.ema = ModelEmaV3(self.supernet, decay=self.recipe.ema.decay)
            self.ema.module.load_state_dict(extra["ema"])


@torch.no_grad()
def zero_init_last_bn(supernet: OFAMobileNetV3) -> bool:
    """Start every residual block as an identity (its last BN's gamma = 0), as BigNAS and timm do:
    a deep supernet then trains stably from the first step. Only an untrained supernet (all those
    gammas still at their initial 1) is changed, so a trained one passed in keeps its weights.
    Returns whether it changed anything."""
    bns = [b.bn3.weight for b in supernet.elastic_blocks() if b.has_skip]
    if not bns or not all(bool((w == 1).all()) for w in bns):
        return False
    for w in bns:
        w.zero_()
    return True


def _fast_layout(x: torch.Tensor) -> torch.Tensor:
    """Channels-last input on CPU: oneDNN then runs the whole network channels-last, whose
    depthwise-convolution backward is 2-4x faster than NCHW's (the bulk of a small MobileNet's
    step). Same numbers up to float rounding; GPUs keep the layout they are given."""
    return x.contiguous(memory_format=torch.channels_last) if x.device.type == "cpu" and x.dim() == 4 else x


def _labeled(data: Data):
    """Calibration batches; a semi-supervised loader's dict batches contribute their labeled part."""
    if isinstance(data, tuple) and len(data) == 2 and isinstance(data[0], torch.Tensor):
        yield from iter_batches(data)
        return
    for batch in data:
        if isinstance(batch, dict):
            batch = batch["labeled"]
        yield batch[0], batch[1]
