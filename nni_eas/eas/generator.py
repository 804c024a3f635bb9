"""The EAS architecture generator: (task, budget) -> a distribution over every gene of the space.

A small MLP reads the task as a class mask (multi-hot, normalised to sum 1) and each budget as
its position between the space's smallest and largest subnet on a log scale, and outputs one
categorical distribution per gene: kernel and expand ratio per block slot, depth per stage,
resolution, width. The most likely choice of every gene is the architecture, and
:func:`~nni_eas.eas.specialize.repair` makes it meet the budget exactly. Many scenarios are one
batched forward pass.

How it learns (:class:`GeneratorModule`): against the *frozen* task-dropout supernet,

* **task loss by policy gradient (REINFORCE).** Choosing a kernel, an expand ratio or a depth
  picks *which weights run*; the supernet's elastic weights are nested slices, so a relaxed
  (Gumbel-softmax) mixture of choices would have to run every candidate of every layer side by
  side and backpropagate through the supernet, at several times the memory and time, and still
  train on mixtures that are never deployed. The policy gradient only needs forward passes of
  *sampled, real* subnets under ``no_grad``: the reward is minus the task-restricted
  cross-entropy of the subnet on the step's images of the task's classes, and the baseline is
  the mean reward of the ``samples`` archs drawn for the same scenario.
* **budget by a differentiable expected cost.** Costs are additive over layers, so their exact
  expectation under the generator's factorised distribution is a small tensor contraction
  (:meth:`~nni_eas.eas.budget.CostTable.expected`); the loss adds ``penalty * relu(E[cost] /
  budget - 1)`` per metric, with exact gradients and no sampling noise. The same penalty is
  also subtracted from each sampled arch's reward (its exact cost, from the tables): the
  expected-cost gradient alone is spread over ~50 genes and is outweighed by the policy
  gradient, so without it the generator learns to ignore tight budgets and leaves everything
  to the repair step.

BatchNorm: a sampled subnet normalises with batch statistics (the stand-in for per-subnet
recalibration during search; the frozen supernet's buffers never change) taken from images of
*every* class: the first half of the ``images_per_scenario`` images of its forward pass come
from the step's shuffled batch (at validation: 256 images of the validation split), the rest
are the task's images, and the reward counts only the task's images (those in the first half
too). This is the ``"all"`` BN of the deployed subnets' baseline
(:func:`~nni_eas.eas.specialize.specialize_subnet`): statistics of the task's images alone
made tasks worse (docs/eas.md), and the generator's reward should rank archs the way they are
evaluated; the per-scenario choice of BN mode is made later, on the validation split. Every
random draw comes from a generator seeded with ``(seed, step)``, so training is reproducible
and resumes exactly.
"""

from __future__ import annotations

import contextlib
import functools
import io
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import pytorch_lightning as pl
import torch
import torch.nn as nn
import torch.nn.functional as F

from ..checkpoint import CheckpointError
from ..config import ConfigError
from ..encodings import genome_length
from ..io import atomic_write_bytes
from ..spaces.config import OFAMobileNetV3Config, load_space_config
from .budget import CostTable, GeneProbs
from .config import GeneratorConfig

__all__ = ["ArchGenerator", "GeneLogits", "GeneratorModule", "save_generator", "load_generator", "FORMAT"]

FORMAT = "nni-eas-generator/1"


@dataclass
class GeneLogits:
    """Logits of a batch: ``k [B,N,K]``, ``e [B,N,E]``, ``d [B,S,D]``, ``r [B,R]``, ``w [B,W]``."""

    k: torch.Tensor
    e: torch.Tensor
    d: torch.Tensor
    r: torch.Tensor
    w: torch.Tensor

    def probs(self) -> GeneProbs:
        return GeneProbs(*(F.softmax(t, dim=-1) for t in (self.k, self.e, self.d, self.r, self.w)))

    def log_probs(self) -> "GeneLogits":
        return GeneLogits(*(F.log_softmax(t, dim=-1) for t in (self.k, self.e, self.d, self.r, self.w)))

    def flat(self) -> list[torch.Tensor]:
        """Per-gene log-prob rows in genome order: ``[B, choices]`` each."""
        lp = self.log_probs()
        return ([lp.k[:, i] for i in range(lp.k.shape[1])] + [lp.e[:, i] for i in range(lp.e.shape[1])]
                + [lp.d[:, i] for i in range(lp.d.shape[1])] + [lp.r, lp.w])

    def argmax(self) -> torch.Tensor:
        """``[B, L]`` genomes of the most likely choices."""
        return torch.cat([self.k.argmax(-1), self.e.argmax(-1), self.d.argmax(-1), self.r.argmax(-1, keepdim=True),
                          self.w.argmax(-1, keepdim=True)], dim=1)

    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """``[B, n, L]`` genomes drawn from the distributions."""
        def draw(t: torch.Tensor) -> torch.Tensor:   # t [B, ..., C] -> [B, n, ...]
            p = F.softmax(t.detach(), dim=-1)
            flat = p.reshape(-1, p.shape[-1])
            idx = torch.multinomial(flat, n, replacement=True, generator=generator)   # [B*..., n]
            return idx.reshape(*p.shape[:-1], n).movedim(-1, 1)
        k, e, d = draw(self.k), draw(self.e), draw(self.d)                               # [B, n, N|S]
        r, w = draw(self.r)[..., None], draw(self.w)[..., None]                          # [B, n, 1]
        return torch.cat([k, e, d, r, w], dim=2)

    def entropy(self) -> torch.Tensor:
        """``[B]`` mean entropy per gene."""
        ents = [-(F.softmax(t, -1) * F.log_softmax(t, -1)).sum(-1).reshape(t.shape[0], -1) for t in (self.k, self.e, self.d, self.r, self.w)]
        return torch.cat(ents, dim=1).mean(1)


class ArchGenerator(nn.Module):
    """(task mask, budgets) -> :class:`GeneLogits` for space ``cfg``.

    ``budget_range``: per metric, the ``(min, max)`` cost over the space, used to normalise
    budgets as ``log(b / min) / log(max / min)`` clipped to [0, 1].
    """

    def __init__(self, cfg: OFAMobileNetV3Config, num_classes: int, metrics: Sequence[str],
                 budget_range: Mapping[str, tuple[float, float]], hidden: int = 128):
        super().__init__()
        self.cfg, self.num_classes, self.metrics = cfg, int(num_classes), list(metrics)
        self.hidden = hidden
        lo = torch.tensor([budget_range[m][0] for m in self.metrics], dtype=torch.float64)
        hi = torch.tensor([budget_range[m][1] for m in self.metrics], dtype=torch.float64)
        self.register_buffer("log_lo", lo.log().float())
        self.register_buffer("log_span", (hi.log() - lo.log()).clamp_min(1e-6).float())
        self.sizes = (cfg.num_slots, len(cfg.kernel_sizes), len(cfg.expand_ratios), cfg.num_stages, len(cfg.depths),
                      len(cfg.resolutions), len(cfg.width_mults))
        n, K, E, S, D, R, W = self.sizes
        self.body = nn.Sequential(nn.Linear(self.num_classes + len(self.metrics), hidden), nn.GELU(),
                                  nn.Linear(hidden, hidden), nn.GELU())
        self.head = nn.Linear(hidden, n * K + n * E + S * D + R + W)
        nn.init.zeros_(self.head.weight)   # start uniform over every gene: no prior for any arch
        nn.init.zeros_(self.head.bias)

    def features(self, masks: torch.Tensor, budgets: torch.Tensor) -> torch.Tensor:
        """Inputs: class masks ``[B, C]`` (0/1) and absolute budgets ``[B, M]`` (order: ``metrics``)."""
        masks = masks.float()
        task = masks / masks.sum(1, keepdim=True).clamp_min(1)
        z = ((budgets.float().log() - self.log_lo) / self.log_span).clamp(0, 1)
        return torch.cat([task, z], dim=1)

    def forward(self, masks: torch.Tensor, budgets: torch.Tensor) -> GeneLogits:
        n, K, E, S, D, R, W = self.sizes
        out = self.head(self.body(self.features(masks, budgets)))
        parts = torch.split(out, [n * K, n * E, S * D, R, W], dim=1)
        B = out.shape[0]
        return GeneLogits(parts[0].reshape(B, n, K), parts[1].reshape(B, n, E), parts[2].reshape(B, S, D), parts[3], parts[4])

    def inputs(self, scenarios: Sequence[Any]) -> tuple[torch.Tensor, torch.Tensor]:
        """Masks and budgets of :class:`~nni_eas.eas.scenario.Scenario` objects; a metric a
        scenario does not budget is set to the largest subnet's cost (no constraint)."""
        dev = self.log_lo.device
        masks = torch.zeros(len(scenarios), self.num_classes, device=dev)
        budgets = torch.empty(len(scenarios), len(self.metrics), device=dev)
        hi = (self.log_lo + self.log_span).exp()
        for i, s in enumerate(scenarios):
            masks[i, list(s.classes)] = 1
            for j, m in enumerate(self.metrics):
                budgets[i, j] = float(s.budgets[m]) if m in s.budgets else hi[j]
        return masks, budgets

    def log_prob(self, logits: GeneLogits, genomes: torch.Tensor) -> torch.Tensor:
        """``[B, n]`` log-probability of genomes ``[B, n, L]``, counting only genes that change the
        network (kernel / expand of slots past a stage's depth are ignored)."""
        cfg = self.cfg
        n, S = cfg.num_slots, cfg.num_stages
        lp = logits.log_probs()
        g = genomes.long()

        def gather(t: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:   # t [B, G, C], idx [B, s, G] -> [B, s, G]
            return torch.gather(t[:, None].expand(-1, idx.shape[1], -1, -1), 3, idx[..., None]).squeeze(-1)

        lk = gather(lp.k, g[..., :n])
        le = gather(lp.e, g[..., n:2 * n])
        ld = gather(lp.d, g[..., 2 * n:2 * n + S])
        lr = torch.gather(lp.r, 1, g[..., 2 * n + S])
        lw = torch.gather(lp.w, 1, g[..., 2 * n + S + 1])
        depths = torch.as_tensor(cfg.depths, device=g.device)[g[..., 2 * n:2 * n + S]]          # [B, s, S]
        slot_stage = torch.arange(S, device=g.device).repeat_interleave(cfg.max_depth)
        slot_index = torch.arange(cfg.max_depth, device=g.device).repeat(S)
        active = (slot_index < depths[..., slot_stage]).float()                                  # [B, s, N]
        return ((lk + le) * active).sum(-1) + ld.sum(-1) + lr + lw

    def extra_repr(self) -> str:
        return f"space={self.cfg.name!r}, classes={self.num_classes}, metrics={self.metrics}, genes={genome_length(self.cfg)}"


# --------------------------------------------------------------------------------------------
# training
# --------------------------------------------------------------------------------------------
@contextlib.contextmanager
def _bn_stats_of_first(net: nn.Module, n: int):
    """Inside: every BatchNorm normalises the whole batch with the statistics of its first ``n``
    images (an all-class reference part) and leaves its buffers alone. ``n=0``: unchanged."""
    if n <= 0:
        yield
        return

    def forward(bn: nn.modules.batchnorm._BatchNorm, x: torch.Tensor) -> torch.Tensor:
        c = x.shape[1]
        var, mean = torch.var_mean(x[:n], dim=[0] + list(range(2, x.dim())), unbiased=False)
        return F.batch_norm(x, mean, var, bn.weight[:c] if bn.weight is not None else None,
                            bn.bias[:c] if bn.bias is not None else None, False, 0.0, bn.eps)

    bns = [m for m in net.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    for m in bns:
        m.forward = functools.partial(forward, m)
    try:
        yield
    finally:
        for m in bns:
            m.__dict__.pop("forward", None)


def with_reference(x: torch.Tensor, y: torch.Tensor, classes: Sequence[int], n_ref: int,
                   n_task: int | None = None, total: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """A batch for :meth:`GeneratorModule.task_reward`: the first ``n_ref`` images of ``x`` (all
    classes: BN statistics), then the task's images after them, so that up to ``n_task`` images
    of ``classes`` are in the batch (those inside the reference part count too) and at most
    ``total`` images in all."""
    n_ref = min(n_ref, len(x))
    keep = torch.isin(y, torch.as_tensor(list(classes), device=y.device))
    idx = keep.nonzero().flatten()
    if n_task is not None:
        idx = idx[:n_task]
    extra = idx[idx >= n_ref]
    if total is not None:
        extra = extra[:max(total - n_ref, 0)]
    return torch.cat([x[:n_ref], x[extra]]), torch.cat([y[:n_ref], y[extra]])


def _bn_batch_stats(supernet: nn.Module) -> None:
    """Eval mode, but BatchNorm normalises with batch statistics and leaves its buffers alone."""
    supernet.eval()
    for m in supernet.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.train()
            m.momentum = 0.0
    for p in supernet.parameters():
        p.requires_grad_(False)


class GeneratorModule(pl.LightningModule):
    """Trains an :class:`ArchGenerator` against a frozen supernet (see the module docstring).

    The supernet is held outside the module's state (it is frozen and saved elsewhere), so the
    Lightning checkpoints hold only the generator and its optimiser.
    """

    def __init__(self, generator: ArchGenerator, supernet: nn.Module, tables: Mapping[str, CostTable],
                 config: GeneratorConfig, val_data: tuple[torch.Tensor, torch.Tensor] | None = None):
        super().__init__()
        self.generator = generator
        self.config = config
        self.tables = dict(tables)
        _bn_batch_stats(supernet)
        self._supernet = [supernet]            # a list: not a registered submodule
        self.val_data = val_data
        self.last_val_metrics: dict[str, float] = {}
        self.history: list[dict[str, float]] = []
        C = generator.num_classes
        self._max_classes = min(config.max_classes or C, C)
        if config.min_classes > self._max_classes:
            raise ConfigError(f"generator.min_classes {config.min_classes} > max_classes {self._max_classes}")
        self._range = {m: tables[m].minmax() for m in generator.metrics}

    @property
    def supernet(self) -> nn.Module:
        return self._supernet[0]

    def configure_optimizers(self):
        return torch.optim.Adam(self.generator.parameters(), lr=self.config.lr)

    # ---- scenarios -------------------------------------------------------------------------------
    def random_scenarios(self, n: int, rng: np.random.Generator) -> tuple[torch.Tensor, torch.Tensor, list[list[int]]]:
        """``n`` random (task, budgets): class subsets of min..max classes, budgets log-uniform
        over each metric's range."""
        C = self.generator.num_classes
        masks = torch.zeros(n, C)
        budgets = torch.empty(n, len(self.generator.metrics))
        tasks = []
        for i in range(n):
            size = int(rng.integers(self.config.min_classes, self._max_classes + 1))
            cls = sorted(rng.choice(C, size=size, replace=False).tolist())
            masks[i, cls] = 1
            tasks.append(cls)
            for j, m in enumerate(self.generator.metrics):
                lo, hi = self._range[m]
                budgets[i, j] = float(np.exp(rng.uniform(np.log(lo), np.log(hi))))
        return masks.to(self.device), budgets.to(self.device), tasks

    @torch.no_grad()
    def task_reward(self, genome: np.ndarray, x: torch.Tensor, y: torch.Tensor, classes: Sequence[int],
                    n_ref: int = 0) -> tuple[float, float]:
        """(minus task-restricted cross-entropy, task top-1) of one subnet on the images of
        ``classes`` in ``x``. BatchNorm uses the statistics of the first ``n_ref`` images (all
        classes, :func:`with_reference`); ``n_ref=0``: of the whole batch."""
        from ..encodings import arch_from_genome
        from ..spaces.ofa_mbv3 import resize_input

        from ..data.tasks import Task

        net = self.supernet
        arch = net.set_active(arch_from_genome(self.generator.cfg, genome), validate=False)
        task = Task(list(classes))
        with _bn_stats_of_first(net, n_ref):
            out = net(resize_input(x, arch.r))
        keep = torch.isin(y, task.index().to(y.device))
        logits = task.restrict_logits(out[keep])
        target = task.remap_labels(y[keep])
        ce = F.cross_entropy(logits, target)
        return -float(ce), float((logits.argmax(1) == target).float().mean())

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> torch.Tensor:
        cfg = self.config
        x, y = batch
        step = int(self.global_step)
        rng = np.random.default_rng([cfg.seed, step])
        tgen = torch.Generator().manual_seed(int(rng.integers(2 ** 31)))
        masks, budgets, tasks = self.random_scenarios(cfg.scenarios_per_step, rng)
        logits = self.generator(masks, budgets)
        genomes = logits.sample(cfg.samples, tgen)                                        # [S, K, L]
        rewards = torch.zeros(cfg.scenarios_per_step, cfg.samples, device=self.device)
        accs = []
        for s, cls in enumerate(tasks):
            keep = torch.isin(y, torch.as_tensor(cls, device=y.device))
            if keep.sum() < 2:        # too few images of this task in the batch: no signal
                continue
            # all-class BN statistics from the shuffled batch's first half, the task's images scored;
            # the forward pass stays images_per_scenario images: measured on digits (40 random
            # archs and tasks), the rewards' rank correlation with all-class-BN test top-1 was the
            # same for 16 reference + 16 task images (0.67) as for 32 + 32 (0.67, twice the cost);
            # task-only statistics of 32 task images, the former rule, 0.64
            n_ref = min(max(2, cfg.images_per_scenario // 2), len(x))
            xs, ys = with_reference(x, y, cls, n_ref, total=max(cfg.images_per_scenario, n_ref + 2))
            for k in range(cfg.samples):
                r, a = self.task_reward(genomes[s, k].cpu().numpy(), xs, ys, cls, n_ref=n_ref)
                rewards[s, k] = r
                accs.append(a)
        # baseline: the scenario's mean reward; scaled by its spread, so that the policy-gradient
        # term has the same size whatever the task's difficulty (and the budget term a fixed weight)
        # sampled archs over budget lose reward too (exact costs from the tables): the policy
        # gradient then learns feasibility first and accuracy among feasible archs, while the
        # expected-cost term below gives the budget an exact gradient of its own
        g_np = genomes.reshape(-1, genomes.shape[-1]).cpu().numpy()
        over_sampled = torch.zeros(cfg.scenarios_per_step * cfg.samples, device=self.device)
        for j, m in enumerate(self.generator.metrics):
            cost = torch.as_tensor(self.tables[m].exact(g_np), dtype=torch.float32, device=self.device)
            over_sampled += F.relu(cost / budgets[:, j].repeat_interleave(cfg.samples) - 1)
        rewards = rewards - cfg.penalty * over_sampled.reshape(cfg.scenarios_per_step, cfg.samples)
        adv = (rewards - rewards.mean(1, keepdim=True)) / (rewards.std(1, keepdim=True) + 1e-3)
        logp = self.generator.log_prob(logits, genomes)                                   # [S, K]
        pg = -(adv.detach() * logp).mean()
        probs = logits.probs()
        over = []
        for j, m in enumerate(self.generator.metrics):
            ratio = self.tables[m].expected(probs) / budgets[:, j]
            over.append(F.relu(ratio - 1))
        penalty = torch.stack(over, 1).sum(1).mean()
        entropy = logits.entropy().mean()
        loss = pg + cfg.penalty * penalty - cfg.entropy * entropy
        self.log_dict({"train/loss": loss, "train/reward": rewards.mean(), "train/task_top1": float(np.mean(accs)) if accs else 0.0,
                       "train/over_budget": penalty, "train/entropy": entropy}, prog_bar=False, on_step=True, on_epoch=False)
        self.log("reward", rewards.mean(), prog_bar=True, on_step=True, on_epoch=False)
        return loss

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint["eas_history"] = [dict(h) for h in self.history]

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        self.history = [dict(h) for h in checkpoint.get("eas_history", [])]
        self.last_val_metrics = dict(self.history[-1]) if self.history else {}

    # ---- validation: argmax + repair on fixed scenarios --------------------------------------------
    def validation_step(self, batch: Any, batch_idx: int) -> None:
        pass

    def on_validation_epoch_end(self) -> None:
        if self.val_data is None or self.trainer.sanity_checking:
            return
        from .specialize import generate

        rng = np.random.default_rng([self.config.seed, 10 ** 6])
        masks, budgets, tasks = self.random_scenarios(self.config.val_scenarios, rng)
        from .scenario import Scenario

        scen = [Scenario(f"val-{i}", tuple(t), {m: float(budgets[i, j]) for j, m in enumerate(self.generator.metrics)})
                for i, t in enumerate(tasks)]
        was = self.generator.training
        out = generate(self.generator, self.tables, scen)
        self.generator.train(was)
        x, y = self.val_data
        x, y = x.to(self.device), y.to(self.device)
        accs, use = [], []
        n_ref = min(len(x), 256)      # all-class BN statistics, as the deployed baseline ("all"); no decision here
        for s, g in zip(scen, out):
            xs, ys = with_reference(x, y, s.classes, n_ref)
            _, a = self.task_reward(g.genome, xs, ys, s.classes, n_ref=n_ref)
            accs.append(a)
            use.append(max(g.costs[m] / s.budgets[m] for m in s.budgets))
        metrics = {"task_top1": float(np.mean(accs)), "budget_use": float(np.mean(use)),
                   "repaired": float(np.mean([g.repair_steps > 0 for g in out])), "step": float(self.global_step)}
        self.last_val_metrics = metrics
        self.history.append(metrics)
        self.log_dict({f"val/{k}": v for k, v in metrics.items() if k != "step"}, prog_bar=False)


# --------------------------------------------------------------------------------------------
# files
# --------------------------------------------------------------------------------------------
def save_generator(path: str | os.PathLike, generator: ArchGenerator, class_names: Sequence[str],
                   meta: Mapping[str, Any] | None = None) -> Path:
    """Write a self-describing generator file atomically (read with ``weights_only=True``)."""
    lo = generator.log_lo.exp().tolist()
    hi = (generator.log_lo + generator.log_span).exp().tolist()
    payload = {"format": FORMAT, "space": generator.cfg.model_dump(mode="json"), "num_classes": generator.num_classes,
               "class_names": list(class_names), "metrics": list(generator.metrics), "hidden": generator.hidden,
               "budget_range": {m: [a, b] for m, a, b in zip(generator.metrics, lo, hi)},
               "state_dict": {k: v.detach().cpu() for k, v in generator.state_dict().items()}, "meta": dict(meta or {})}
    buf = io.BytesIO()
    torch.save(payload, buf)
    return atomic_write_bytes(path, buf.getvalue())


def load_generator(path: str | os.PathLike) -> tuple[ArchGenerator, dict[str, Any]]:
    """``(generator, info)``; info has ``class_names``, ``meta``. Bad files raise CheckpointError
    naming the file: missing, a folder, truncated, not written by nni-eas, or inconsistent."""
    path = Path(path)
    fix = "pass the generator.pt written by EAS's generator stage (nni_eas.eas.save_generator)"
    if path.is_dir():
        raise CheckpointError(f"{path} is a directory, not a generator file; {fix}")
    if not path.is_file():
        raise CheckpointError(f"generator file not found: {path}; {fix}")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # truncated zip, random bytes, a pickle of other objects, unreadable...
        raise CheckpointError(f"cannot read generator file {path}: it is not a readable nni-eas generator (truncated "
                              f"or not written by nni-eas): {type(e).__name__}: {e}; {fix}") from None
    fmt = obj.get("format") if isinstance(obj, dict) else None
    if fmt != FORMAT:
        raise CheckpointError(f"{path} is not an nni-eas generator (format {fmt!r}, expected {FORMAT!r}); {fix}")
    try:
        cfg = load_space_config(obj["space"])
        rng = {m: tuple(v) for m, v in obj["budget_range"].items()}
        gen = ArchGenerator(cfg, obj["num_classes"], obj["metrics"], rng, hidden=obj["hidden"])
        info = {"class_names": list(obj["class_names"]), "meta": dict(obj.get("meta") or {}), "path": str(path)}
    except (KeyError, TypeError, ValueError, AttributeError) as e:  # ConfigError is a ValueError
        raise CheckpointError(f"{path} is an incomplete or inconsistent nni-eas generator "
                              f"({type(e).__name__}: {e}); {fix}") from None
    try:
        gen.load_state_dict(obj["state_dict"])
    except (RuntimeError, KeyError, TypeError, AttributeError) as e:
        raise CheckpointError(f"{path}: generator weights do not match its own description: {e}") from None
    return gen.eval(), info
