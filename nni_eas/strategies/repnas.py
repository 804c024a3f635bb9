"""NNI adapter: RepNAS as a one-shot strategy for ``NasExperiment``.

The algorithm lives in :mod:`nni_eas.repnas` (NNI-free); this module only fits it into NNI's
one-shot machinery, the way ``nni.nas.strategy.DARTS`` / ``RandomOneShot`` do:

* :class:`RepNAS` (an ``OneShotStrategy``) mutates the space with
  :class:`~nni_eas.spaces.repnas.MixedBranchSupernet` (passing the search options through the
  mutation hook's keyword arguments) and wraps the evaluator's Lightning module in
* :class:`RepNASLightningModule`, which runs the warm-up / search / retrain schedule: the phase
  follows the epoch, ``resample`` draws the phase's mask, the weights step with the evaluator's
  optimizer and the importance with its own Adam (search phase only); the mask is fixed (and BN
  statistics restart) when retraining begins.

``exp.export_top_models(formatter='dict')`` gives the searched sample (exactly ``k`` branches),
``space.freeze(sample)`` the multi-branch net and ``.fuse()`` the deployed one.
"""

from __future__ import annotations

from typing import Any, Literal

import torch.nn as nn
import torch.optim as optim
from nni.nas.oneshot.pytorch.base_lightning import BaseOneShotLightningModule
from nni.nas.oneshot.pytorch.strategy import OneShotStrategy, no_default_hook
from pytorch_lightning import LightningModule

from ..repnas.module import recalibrate_from
from ..repnas.search import Phase
from ..spaces.repnas import MixedBranchSupernet

__all__ = ["RepNAS", "RepNASLightningModule"]


def _phase(epoch: int, warmup_epochs: int, search_epochs: int) -> Phase:
    if epoch < warmup_epochs:
        return "warmup"
    return "search" if epoch < warmup_epochs + search_epochs else "retrain"


class RepNASLightningModule(BaseOneShotLightningModule):
    """Search logic of :class:`RepNAS` around the evaluator's training module."""

    def __init__(self, training_module: LightningModule, *, warmup_epochs: int = 1, search_epochs: int = 2,
                 arch_lr: float = 0.05, arch_weight_decay: float = 0.0, reset_bn_on_fix: bool = True,
                 bn_recalibration_batches: int = 20, gradient_clip_val: float | None = None):
        super().__init__(training_module)
        self.bn_recalibration_batches = bn_recalibration_batches
        self.warmup_epochs, self.search_epochs = warmup_epochs, search_epochs
        self.arch_lr, self.arch_weight_decay = arch_lr, arch_weight_decay
        self.reset_bn_on_fix = reset_bn_on_fix
        self.gradient_clip_val = gradient_clip_val

    def _mixed(self) -> list[MixedBranchSupernet]:
        return [m for m in self.supernet_modules() if isinstance(m, MixedBranchSupernet)]

    @property
    def phase(self) -> Phase:
        return _phase(self.trainer.current_epoch, self.warmup_epochs, self.search_epochs)

    def arch_parameters(self) -> list[nn.Parameter]:
        return [p for m in self._mixed() for p in m.arch_parameters()]

    # ---- schedule ----------------------------------------------------------------------------
    def _set_phase(self, phase: Phase) -> None:
        for m in self._mixed():
            m.phase = phase

    def on_train_epoch_start(self):
        phase = self.phase
        self._set_phase(phase)
        for m in self._mixed():
            if phase == "retrain" and not bool(m.search.is_fixed):
                m.search.fix(reset_bn=self.reset_bn_on_fix)
            m.search.alpha.requires_grad_(phase == "search")
        return self.training_module.on_train_epoch_start()

    def on_train_end(self):
        for m in self._mixed():
            if not bool(m.search.is_fixed):
                m.search.fix(reset_bn=False)
            m.search.step("retrain", training=False)
            recalibrate_from(m.net, self.trainer.train_dataloader, self.bn_recalibration_batches)
        return self.training_module.on_train_end()

    # ---- steps -------------------------------------------------------------------------------
    def training_step(self, batch, batch_idx):
        phase = self.phase
        self._set_phase(phase)
        self.resample()
        out = self.training_module.training_step(batch, batch_idx)
        loss = out["loss"] if isinstance(out, dict) else out
        arch_opt = self.architecture_optimizers()
        if arch_opt is not None:
            arch_opt.zero_grad()
        self.advance_optimization(loss, batch_idx, self.gradient_clip_val)
        if phase == "search" and arch_opt is not None:
            arch_opt.step()
        self.advance_lr_schedulers(batch_idx)
        return out

    def validation_step(self, batch, batch_idx):
        self._set_phase(self.phase)
        self.resample()
        return self.training_module.validation_step(batch, batch_idx)

    # ---- optimizers (importance out of the weight optimizer, into its own Adam) --------------
    def configure_architecture_optimizers(self):
        params = self.arch_parameters()
        if not params:
            raise ValueError("RepNAS found no MixedBranchSupernet in the model space; "
                             "use nni_eas.spaces.repnas.RepNASSpace")
        return optim.Adam(params, lr=self.arch_lr, betas=(0.5, 0.999), weight_decay=self.arch_weight_decay)

    def postprocess_weight_optimizers(self, optimizers: Any) -> Any:
        drop = {id(p) for p in self.arch_parameters()}

        def strip(opt):
            if isinstance(opt, optim.Optimizer):
                for group in opt.param_groups:
                    group["params"] = [p for p in group["params"] if id(p) not in drop]
                return opt
            if isinstance(opt, (list, tuple)):
                return type(opt)(strip(o) for o in opt)
            if isinstance(opt, dict):
                return {k: strip(v) for k, v in opt.items()}
            return opt

        return strip(optimizers)


class RepNAS(OneShotStrategy):
    """RepNAS (Zhang et al., 2021): one-shot search of which diverse branches each layer keeps.

    Args:
        warmup_epochs: epochs of weight training before the search (importance frozen).
        search_epochs: epochs of noisy top-k + straight-through importance training; the epochs
            after them (up to the evaluator's ``max_epochs``) retrain the fixed mask.
        arch_lr, arch_weight_decay: Adam settings of the importance.
        noise_scale, tau, dense_gradients, warmup_mode, seed: see :class:`~nni_eas.repnas.BranchSearch`.
        reset_bn_on_fix: restart BN statistics when the mask is fixed.
        bn_recalibration_batches: training batches that re-estimate the searched net's BN
            statistics when training ends (0: off).
        gradient_clip_val: clip the weights' gradients.
    """

    def __init__(self, warmup_epochs: int = 1, search_epochs: int = 2, arch_lr: float = 0.05,
                 arch_weight_decay: float = 0.0, noise_scale: float = 1.0, tau: float = 1.0,
                 dense_gradients: bool = True, warmup_mode: Literal["random", "all"] = "random",
                 reset_bn_on_fix: bool = True, bn_recalibration_batches: int = 20,
                 gradient_clip_val: float | None = None, seed: int = 0, **kwargs: Any):
        super().__init__(**kwargs)
        self.module_kwargs = dict(warmup_epochs=warmup_epochs, search_epochs=search_epochs, arch_lr=arch_lr,
                                  arch_weight_decay=arch_weight_decay, reset_bn_on_fix=reset_bn_on_fix,
                                  bn_recalibration_batches=bn_recalibration_batches,
                                  gradient_clip_val=gradient_clip_val)
        self.search_kwargs = dict(noise_scale=noise_scale, tau=tau, dense_gradients=dense_gradients,
                                  warmup=warmup_mode, seed=seed)

    def default_mutation_hooks(self) -> list:
        return [MixedBranchSupernet.mutate, no_default_hook]

    def run_hook(self, hook, name, module, memo):
        return hook(module, name, memo, {"repnas": dict(self.search_kwargs)})

    def configure_oneshot_module(self, training_module: LightningModule) -> RepNASLightningModule:
        return RepNASLightningModule(training_module, **self.module_kwargs)
