"""RepNAS training as a Lightning module: warm-up, search, retrain in one ``Trainer.fit``.

The phase is a function of the epoch (:meth:`RepNASRecipe.phase`), so resuming from a Lightning
checkpoint resumes the schedule too. Two optimizers (manual optimization): SGD with a cosine
schedule for the weights, Adam for the branch importance (stepped in the search phase only).
When the search phase ends the mask is fixed (top-k importance, exactly ``k`` branches) and BN
statistics restart. Before each validation and after training, BN statistics of the branches
that run are re-estimated exactly on ``bn_recalibration_batches`` training batches. After
``fit``, :meth:`RepNASModule.searched_net` and :meth:`RepNASModule.fused` give the multi-branch
and the deployed network.
"""

from __future__ import annotations

import itertools
from typing import Any, Iterable, Mapping

import pytorch_lightning as pl
import torch
import torch.nn as nn
import torch.nn.functional as F

from ..evaluation import recalibrate_bn
from ..training.augment import weak_augment
from .config import RepNASRecipe, SpaceLike, load_recipe
from .net import RepNASNet
from .search import BranchSearch, Phase

__all__ = ["RepNASModule", "make_search", "recalibrate_from"]


def recalibrate_from(net: nn.Module, loader: Iterable | None, batches: int) -> bool:
    """Exact BN statistics of ``net``'s current branches from ``batches`` batches of ``loader``.

    Short runs need it: BN running averages lag behind weights that still move fast, and a
    mask change (fix) restarts them. Returns whether anything was recalibrated.
    """
    if not batches or loader is None:
        return False
    recalibrate_bn(net, list(itertools.islice(iter(loader), batches)), max_images=None)
    return True


def make_search(net: RepNASNet, recipe: RepNASRecipe) -> BranchSearch:
    """The :class:`BranchSearch` of ``net`` configured by ``recipe`` (budget: recipe's, else the space's)."""
    cfg = net.config
    return BranchSearch(
        net, recipe.budget if recipe.budget is not None else cfg.budget, always_on=cfg.always_on,
        min_per_layer=cfg.min_branches_per_layer, min_spatial=cfg.min_spatial_branches,
        noise_scale=recipe.noise_scale, tau=recipe.tau, dense_gradients=recipe.dense_gradients,
        warmup=recipe.warmup_mode, seed=recipe.seed,
    )


class RepNASModule(pl.LightningModule):
    """One-shot RepNAS on a :class:`RepNASNet`: ``Trainer(max_epochs=recipe.max_epochs).fit(module, ...)``.

    Args:
        net: the supernet, or a preset name / path / mapping to build one.
        recipe: a :class:`RepNASRecipe`, a mapping, a YAML path, or ``None`` for defaults.
        num_classes: overrides the preset's number of classes when ``net`` is built here.

    Batches are ``(images, labels)``. Logs ``train_loss``, ``train_acc``, ``val_loss``,
    ``val_acc`` and ``branches_kept``.
    """

    def __init__(self, net: RepNASNet | SpaceLike = "repnas_small",
                 recipe: RepNASRecipe | Mapping[str, Any] | str | None = None, num_classes: int | None = None):
        super().__init__()
        self.recipe = load_recipe(recipe)
        self.net = net if isinstance(net, RepNASNet) else RepNASNet(net, num_classes=num_classes)
        self.search = make_search(self.net, self.recipe)
        self.automatic_optimization = False
        self._augment_gen = torch.Generator().manual_seed(self.recipe.seed)
        self.save_hyperparameters({"space": self.net.config.model_dump(mode="json"),
                                   "recipe": self.recipe.model_dump(mode="json")})

    # ---- schedule ----------------------------------------------------------------------------
    @property
    def phase(self) -> Phase:
        return self.recipe.phase(self.current_epoch)

    def on_train_epoch_start(self) -> None:
        phase = self.phase
        if phase == "retrain" and not bool(self.search.is_fixed):
            self.search.fix(reset_bn=self.recipe.reset_bn_on_fix)
        self.search.alpha.requires_grad_(phase == "search")

    def on_train_end(self) -> None:
        if not bool(self.search.is_fixed):  # no retrain epochs: fix what the search found
            self.search.fix(reset_bn=False)
        self.search.step("retrain", training=False)
        recalibrate_from(self.net, self._train_loader(), self.recipe.bn_recalibration_batches)

    def _train_loader(self) -> Iterable | None:
        trainer = self._trainer
        return None if trainer is None else trainer.train_dataloader

    # ---- steps -------------------------------------------------------------------------------
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def training_step(self, batch, batch_idx: int) -> torch.Tensor:
        x, y = batch[0], batch[1]
        if self.recipe.augment == "weak":
            x = weak_augment(x, self._augment_gen)
        phase = self.phase
        self.search.step(phase, training=True)
        logits = self.net(x)
        loss = F.cross_entropy(logits, y, label_smoothing=self.recipe.label_smoothing)
        opt_w, opt_a = self.optimizers()
        opt_w.zero_grad()
        opt_a.zero_grad()
        self.manual_backward(loss)
        opt_w.step()
        if phase == "search":
            opt_a.step()
        self.log("train_loss", loss, prog_bar=True)
        self.log("train_acc", (logits.argmax(1) == y).float().mean(), prog_bar=True)
        return loss.detach()

    def on_train_epoch_end(self) -> None:
        sched = self.lr_schedulers()
        if sched is not None:
            sched.step()

    def on_validation_epoch_start(self) -> None:
        self.search.step(self.phase, training=False)
        if not self.trainer.sanity_checking:
            recalibrate_from(self.net, self._train_loader(), self.recipe.bn_recalibration_batches)

    def validation_step(self, batch, batch_idx: int) -> None:
        x, y = batch[0], batch[1]
        logits = self.net(x)
        self.log("val_loss", F.cross_entropy(logits, y), prog_bar=False)
        self.log("val_acc", (logits.argmax(1) == y).float().mean(), prog_bar=True)

    def on_validation_epoch_end(self) -> None:
        self.log("branches_kept", float(sum(len(v) for v in self.net.sample().values())))

    def configure_optimizers(self):
        r = self.recipe
        opt_w = torch.optim.SGD(self.net.parameters(), lr=r.lr, momentum=r.momentum,
                                nesterov=r.nesterov and r.momentum > 0, weight_decay=r.weight_decay)
        opt_a = torch.optim.Adam([self.search.alpha], lr=r.arch_lr, betas=(0.5, 0.999),
                                 weight_decay=r.arch_weight_decay)
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt_w, T_max=max(1, r.max_epochs))
        return [opt_w, opt_a], [sched]

    # ---- results -----------------------------------------------------------------------------
    def searched_sample(self) -> dict[str, list[str]]:
        """Kept branches per layer: ``{'branches_<i>': [...]}`` (exactly ``search.k`` in all)."""
        return self.search.to_sample()

    def searched_net(self) -> RepNASNet:
        """The multi-branch net with only the searched branches, weights inherited."""
        return self.net.select(self.searched_sample())

    def fused(self) -> nn.Module:
        """The deployed net: every layer one ``Conv2d`` + activation."""
        return self.searched_net().fuse()
