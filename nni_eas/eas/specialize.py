"""From scenarios to deployable subnets: one generator pass, budget repair, extraction, BN, ONNX.

* :func:`generate`: N scenarios -> N archs in one batched forward pass of the generator, then
  :func:`repair` per scenario (microseconds of numpy);
* :func:`repair`: the most likely arch may exceed a budget (the generator is trained on the
  *expected* cost); repair lowers one gene at a time, each time the change that removes the most
  budget violation per unit of log-probability given up, until every budget holds. Costs are
  exact (lookup tables), so a repaired arch *always* meets its budgets, or the scenario is
  reported infeasible;
* :func:`specialize_subnet` (:func:`specialize` for a scenario and a genome): extracts the
  subnet and decides, **on the validation split**, how its BatchNorm statistics are
  recalibrated (:data:`BN_MODES`); the classifier is always restricted to the task's classes
  (logits in task order). The plain baseline is ``"all"`` (BN on training images of every
  class, the supernet's own evaluation); ``"task"`` (the task's images only) and ``"mix"``
  (the task's images plus as many images of other classes) are kept only when they score
  higher on the task's validation images beyond noise; then the classifier alone may be fitted
  to the task's training images (:func:`tune_head`), kept by the same rule. So the specialized
  subnet is never worse than the baseline on validation. Test top-1 is then measured once for
  the chosen subnet and once for the baseline, never used to decide.
  :func:`~nni_eas.export.deploy.deploy_subnet` (``bn="auto"``) runs the same function before
  exporting ONNX with a model card.

Why not task-only BN always: measured with the demo's supernet it lost to all-class BN on most
tasks ("0 vs 1" 0.861 vs 1.000, "4 vs 9" 0.819 vs 0.972): the task's images alone give BN
statistics the supernet's weights were never trained with (one or two classes shift every
channel's mean), while the restricted classifier already removes the other classes' logits.
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import torch

from ..config import ConfigError
from ..encodings import arch_from_genome, genome_bounds
from .budget import CostTable, budget_check
from .scenario import Scenario

__all__ = ["BN_MODES", "Generated", "bn_calibration_set", "generate", "repair", "specialize", "specialize_subnet",
           "task_data", "tune_head"]

# BatchNorm recalibration candidates; the order breaks ties: "all" (the plain baseline) first
BN_MODES = ("all", "mix", "task")


@dataclass
class Generated:
    """The arch chosen for one scenario."""

    genome: np.ndarray
    costs: dict[str, float]
    argmax_costs: dict[str, float]
    repair_steps: int
    log_prob: float


def _violation(tables: Mapping[str, CostTable], genomes: np.ndarray, budgets: Mapping[str, float]) -> np.ndarray:
    v = np.zeros(len(genomes))
    for m, b in budgets.items():
        v += np.maximum(tables[m].exact(genomes) / b - 1.0, 0.0)
    return v


def repair(genome: np.ndarray, gene_logp: Sequence[np.ndarray], tables: Mapping[str, CostTable],
           budgets: Mapping[str, float], max_steps: int = 500) -> tuple[np.ndarray, int]:
    """Make ``genome`` meet ``budgets``; returns ``(genome, steps)``.

    ``gene_logp[i]`` holds the log-probability of each choice of gene ``i``. Every step tries
    every single-gene change and takes the one with the best ratio of violation removed to
    log-probability lost; violation strictly decreases, so the loop ends. If no change helps
    (only possible with several budgets that pull apart) the cheapest subnet is tried; if even
    that violates a budget the scenario is infeasible: :class:`ConfigError`.
    """
    g = np.asarray(genome, dtype=np.int64).copy()
    lo, hi = None, None
    viol = float(_violation(tables, g[None], budgets)[0])
    steps = 0
    while viol > 0 and steps < max_steps:
        if lo is None:
            cfg = next(iter(tables.values())).cfg
            lo, hi = genome_bounds(cfg)
        cands, genes, losses = [], [], []
        for i in range(len(g)):
            for c in range(lo[i], hi[i] + 1):
                if c != g[i]:
                    cand = g.copy()
                    cand[i] = c
                    cands.append(cand)
                    genes.append(i)
                    losses.append(gene_logp[i][g[i]] - gene_logp[i][c])
        C = np.stack(cands)
        new = _violation(tables, C, budgets)
        gain = viol - new
        ok = gain > 1e-12
        if not ok.any():
            break
        score = np.where(ok, gain / (np.maximum(np.asarray(losses), 0.0) + 1e-3), -np.inf)
        best = int(np.argmax(score))
        g, viol = C[best], float(new[best])
        steps += 1
    if viol > 0:
        cheapest = np.zeros_like(g)            # choice lists are sorted ascending: index 0 is the smallest
        if budget_check(tables, cheapest[None], budgets)[0]:
            return cheapest, steps + 1
        costs = {m: float(tables[m].exact(cheapest[None])[0]) for m in budgets}
        raise ConfigError("no subnet meets all budgets " + ", ".join(f"{m} <= {b:.4g}" for m, b in budgets.items())
                          + f" together (the smallest subnet costs {costs})")
    return g, steps


@torch.no_grad()
def generate(generator, tables: Mapping[str, CostTable], scenarios: Sequence[Scenario]) -> list[Generated]:
    """Archs for ``scenarios``: one generator forward pass for all, then budget repair each."""
    generator.eval()
    masks, budgets = generator.inputs(scenarios)
    logits = generator(masks, budgets)
    genomes = logits.argmax().cpu().numpy()
    flat = [t.cpu().numpy() for t in logits.flat()]
    out = []
    for i, s in enumerate(scenarios):
        missing = [m for m in s.budgets if m not in tables]
        if missing:
            raise ConfigError(f"scenario {s.name!r}: budget metric(s) {missing} have no cost table; allowed: {', '.join(tables)}")
        gene_logp = [f[i] for f in flat]
        before = {m: float(tables[m].exact(genomes[i][None])[0]) for m in tables}
        g, steps = repair(genomes[i], gene_logp, tables, s.budgets)
        lp = float(sum(gene_logp[j][g[j]] for j in range(len(g))))
        out.append(Generated(g, {m: float(tables[m].exact(g[None])[0]) for m in tables}, before, steps, lp))
    return out


def task_data(x: torch.Tensor, y: torch.Tensor, classes: Sequence[int], limit: int | None = None,
              remap: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """The images of ``classes`` (labels renumbered 0..k-1 in ascending class order, the order of
    every scenario's classes, when ``remap``)."""
    from ..data.tasks import Task

    task = Task(list(classes))
    keep = torch.isin(y, task.index())
    xs, ys = x[keep], y[keep]
    if limit is not None:
        xs, ys = xs[:limit], ys[:limit]
    return xs, task.remap_labels(ys) if remap else ys



def bn_calibration_set(x: torch.Tensor, y: torch.Tensor, classes: Sequence[int] | None, mode: str,
                       images: int | None = None, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """The training images BatchNorm statistics are re-estimated on, for ``mode`` of :data:`BN_MODES`.

    * ``"all"`` (or ``classes=None``): ``images`` images of every class, a seeded random subset
      (the same images :func:`~nni_eas.export.deploy.load_task_data` keeps for ``max_images``);
    * ``"task"``: the first ``images`` images of ``classes``;
    * ``"mix"``: up to ``images // 2`` images of ``classes`` and as many of the other classes,
      shuffled together (every recalibration batch sees both).
    """
    if mode not in BN_MODES:
        raise ConfigError(f"bn: unknown BatchNorm calibration mode {mode!r}; allowed: {', '.join(BN_MODES)} (or auto)")
    if mode == "all" or classes is None:
        if images is not None and len(x) > images:
            keep = torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))[:images].sort().values
            x, y = x[keep], y[keep]
        return x, y
    in_task = torch.isin(y, torch.as_tensor([int(c) for c in classes], dtype=y.dtype))
    xt, yt = x[in_task], y[in_task]
    if not len(xt):
        raise ConfigError(f"no images of classes {list(classes)} to recalibrate BatchNorm on")
    if mode == "task":
        return (xt, yt) if images is None else (xt[:images], yt[:images])
    n = len(xt) if images is None else min(len(xt), max(images // 2, 1))
    xs = torch.cat([xt[:n], x[~in_task][:n]])
    ys = torch.cat([yt[:n], y[~in_task][:n]])
    perm = torch.randperm(len(xs), generator=torch.Generator().manual_seed(seed))
    return xs[perm], ys[perm]


@torch.no_grad()
def _task_correct(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, classes: Sequence[int] | None,
                  resolution: int) -> torch.Tensor:
    """Per image of ``classes`` (in ``x`` order): is the (restricted) model's arg-max right?
    Logit ``i`` is ``classes[i]``."""
    from ..spaces.ofa_mbv3 import resize_input

    if classes is not None:
        index = torch.as_tensor([int(c) for c in classes], dtype=torch.int64)
        keep = torch.isin(y, index)
        x, y = x[keep], y[keep]
        lookup = torch.full((int(index.max()) + 1,), -1, dtype=torch.int64)
        lookup[index] = torch.arange(len(index))
        y = lookup[y]
    if len(y) == 0:
        raise ConfigError(f"no evaluation images of classes {list(classes or [])}")
    was = model.training
    model.eval()
    device = next(model.parameters()).device
    try:
        out = [model(resize_input(x[i:i + 256].to(device), resolution)).argmax(1).cpu() for i in range(0, len(x), 256)]
    finally:
        model.train(was)
    return torch.cat(out) == y


def _task_top1(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, classes: Sequence[int] | None,
               resolution: int) -> tuple[float, int]:
    """(top-1, images) of a (restricted) model on the images of ``classes``."""
    ok = _task_correct(model, x, y, classes, resolution)
    return float(ok.float().mean()), int(len(ok))


def _beats(candidate: torch.Tensor, baseline: torch.Tensor, min_z: float) -> bool:
    """Is ``candidate`` (per-image correctness on the validation images) better than ``baseline``
    beyond noise? Paired: only images where the two disagree count (``wins`` right only with the
    candidate, ``losses`` only with the baseline); ``wins - losses > min_z * sqrt(wins + losses)``
    (McNemar's statistic; ``min_z=0``: any strictly higher top-1)."""
    wins = int((candidate & ~baseline).sum())
    losses = int((~candidate & baseline).sum())
    return wins > losses and wins - losses > min_z * (wins + losses) ** 0.5


def tune_head(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, classes: Sequence[int], resolution: int,
              steps: int = 50, lr: float = 0.05, anchor: float = 1e-3, images: int | None = 500) -> torch.nn.Module:
    """A copy of a restricted subnet whose classifier (only) is fitted to the task's training images.

    The features (pre-logits, eval-mode BN) of up to ``images`` images of ``classes`` are
    computed once; the restricted linear classifier then takes ``steps`` full-batch Adam steps
    on their cross-entropy plus ``anchor * ||W - W0||^2`` (it stays near the supernet's rows).
    Milliseconds after the one forward pass.
    """
    import torch.nn.functional as F

    from ..spaces.ofa_mbv3 import resize_input

    out = copy.deepcopy(model).eval()
    index = torch.as_tensor([int(c) for c in classes], dtype=torch.int64)
    keep = torch.isin(y, index)
    x, y = x[keep], y[keep]
    if images is not None:
        x, y = x[:images], y[:images]
    if len(y) < 2:
        return out
    lookup = torch.full((int(index.max()) + 1,), -1, dtype=torch.int64)
    lookup[index] = torch.arange(len(index))
    target = lookup[y]
    device = next(out.parameters()).device
    with torch.no_grad():
        feats = torch.cat([out.forward_head(out.forward_features(resize_input(x[i:i + 256].to(device), resolution)),
                                            pre_logits=True) for i in range(0, len(x), 256)])
    fc = out.classifier
    w0 = fc.weight.detach().clone()
    w = w0.clone().requires_grad_(True)
    b = (fc.bias.detach().clone() if fc.bias is not None else torch.zeros(len(w0), device=device)).requires_grad_(True)
    opt = torch.optim.Adam([w, b], lr=lr)
    target = target.to(device)
    with torch.enable_grad():
        for _ in range(steps):
            loss = F.cross_entropy(feats @ w.t() + b, target) + anchor * (w - w0).pow(2).sum()
            opt.zero_grad()
            loss.backward()
            opt.step()
    with torch.no_grad():
        fc.weight.copy_(w)
        if fc.bias is not None:
            fc.bias.copy_(b)
    return out


def specialize_subnet(supernet, arch, classes: Sequence[int] | None, calib: tuple[torch.Tensor, torch.Tensor],
                      test: tuple[torch.Tensor, torch.Tensor] | None = None,
                      val: tuple[torch.Tensor, torch.Tensor] | None = None, *, bn: str = "auto",
                      calib_images: int | None = 500, min_z: float = 1.0, head_steps: int = 50,
                      seed: int = 0) -> dict[str, Any]:
    """Extract ``arch``, recalibrate its BatchNorm, restrict its classifier to ``classes``, measure.

    The one place where task specialization is decided. Data are ``(images, labels)`` with
    supernet class indices (images at any size: resized to ``arch.r``); ``calib`` is a training
    split (BN statistics only, see :func:`bn_calibration_set`).

    ``bn="auto"``: every mode of :data:`BN_MODES` is tried on the task's images of ``val``. The
    baseline ``"all"`` is kept unless another mode is better *beyond noise*: more validation
    images right than the baseline, by ``wins - losses > min_z * sqrt(wins + losses)`` over the
    images where the two disagree (:func:`_beats`; ``min_z=0``: any higher top-1); among such
    modes the highest validation top-1 wins (ties in :data:`BN_MODES` order). So the chosen
    mode's validation top-1 is never below the baseline's. Then the chosen subnet's classifier
    is fitted to the task's training images (:func:`tune_head`, ``head_steps`` steps; 0: never)
    and kept by the same rule against the untuned one (so again never below it on validation).
    No decision is made (``"all"``, untuned) without validation images of the task; a task of
    every class keeps ``"all"`` (the other modes are other samples of the same images) but may
    tune its head. A fixed ``bn`` skips both decisions (no tuning). ``test`` is only
    measured, for the chosen subnet and for the baseline (``"all"``, untuned).

    Returns a dict: ``model`` (the chosen subnet, eval mode), ``arch``, ``classes``, ``bn`` (the
    chosen mode), ``head`` (``"tuned"`` or ``"supernet"``), ``decided_on`` (``"val"``,
    ``"fixed"`` or why no decision was made),
    ``val_scores`` (val top-1 of every mode tried), ``val_top1`` / ``val_baseline_top1`` /
    ``val_images`` (None without val images), ``top1`` / ``baseline_top1`` / ``test_images``
    (None without ``test``), ``calib_images`` (per mode) and ``seconds``.
    """
    from ..evaluation import recalibrate_bn
    from ..spaces.arch import validate_arch

    cfg = supernet.config
    arch = validate_arch(cfg, arch)
    if classes is not None:
        classes = [int(c) for c in classes]
    if bn != "auto" and bn not in BN_MODES:
        raise ConfigError(f"bn: unknown BatchNorm calibration mode {bn!r}; allowed: auto, {', '.join(BN_MODES)}")
    t0 = time.perf_counter()
    base = supernet.extract(arch)
    t1 = time.perf_counter()
    task_index = None if classes is None else torch.as_tensor(classes, dtype=torch.int64)
    if classes is None or set(classes) >= set(range(cfg.num_classes)):
        # the task is every class: "task" and "mix" are other samples of the same images
        candidates, decided = ["all"], "every class: BN 'all'"
    elif bn != "auto":
        candidates, decided = [bn], "fixed"
    elif not torch.isin(calib[1], task_index).any():
        candidates, decided = ["all"], "no calibration images of the task: baseline"
    else:
        candidates, decided = list(BN_MODES), "val"
    val_task = None
    if val is not None and task_index is not None:
        keep = torch.isin(val[1], task_index)
        if keep.any():
            val_task = (val[0][keep], val[1][keep])
    if decided == "val" and val_task is None:
        candidates, decided = ["all"], "no validation images of the task: baseline"
    # the baseline is built whenever something is measured against it
    modes = list(dict.fromkeys((["all"] if (test is not None or val_task is not None) else []) + candidates))
    models, correct, n_calib = {}, {}, {}
    t_bn = t_val = 0.0
    for mode in modes:
        ta = time.perf_counter()
        sub = copy.deepcopy(base) if mode != modes[-1] else base
        xc, yc = bn_calibration_set(calib[0], calib[1], classes, mode, calib_images, seed)
        recalibrate_bn(sub, (xc, yc), resolution=arch.r, max_images=None)
        sub.eval()
        if classes is not None:
            sub.restrict_classes(classes)
        models[mode], n_calib[mode] = sub, int(len(xc))
        tb = time.perf_counter()
        if val_task is not None:
            correct[mode] = _task_correct(sub, *val_task, classes, arch.r)
        t_bn, t_val = t_bn + tb - ta, t_val + time.perf_counter() - tb
    val_scores = {m: float(c.float().mean()) for m, c in correct.items()}
    chosen = candidates[0]
    if decided == "val":
        better = [m for m in candidates if m != "all" and _beats(correct[m], correct["all"], min_z)]
        # max() keeps the first of equal scores: BN_MODES order
        chosen = max(better, key=lambda m: val_scores[m]) if better else "all"
    model, head, val_top1, t_head = models[chosen], "supernet", val_scores.get(chosen), 0.0
    if bn == "auto" and val_task is not None and head_steps > 0:
        ta = time.perf_counter()
        tuned = tune_head(model, calib[0], calib[1], classes, arch.r, steps=head_steps, images=calib_images)
        ok = _task_correct(tuned, *val_task, classes, arch.r)
        val_scores[f"{chosen}+head"] = float(ok.float().mean())
        if _beats(ok, correct[chosen], min_z):
            model, head, val_top1 = tuned, "tuned", val_scores[f"{chosen}+head"]
        t_head = time.perf_counter() - ta
    t2 = time.perf_counter()
    out: dict[str, Any] = {
        "model": model, "arch": arch, "classes": classes, "bn": chosen, "head": head, "decided_on": decided,
        "val_scores": val_scores, "val_top1": val_top1, "val_baseline_top1": val_scores.get("all"),
        "val_images": int(len(val_task[1])) if val_task is not None else None,
        "top1": None, "baseline_top1": None, "test_images": None, "calib_images": n_calib}
    if test is not None:
        out["top1"], out["test_images"] = _task_top1(model, test[0], test[1], classes, arch.r)
        out["baseline_top1"] = (out["top1"] if model is models["all"]
                                else _task_top1(models["all"], test[0], test[1], classes, arch.r)[0])
    out["seconds"] = {"extract": t1 - t0, "bn": t_bn, "val": t_val, "head": t_head, "test": time.perf_counter() - t2}
    return out


def specialize(supernet, scenario: Scenario, genome: np.ndarray, calib: tuple[torch.Tensor, torch.Tensor],
               test: tuple[torch.Tensor, torch.Tensor], calib_images: int = 500,
               val: tuple[torch.Tensor, torch.Tensor] | None = None, bn: str = "auto") -> dict[str, Any]:
    """A scenario's subnet (``genome``), specialized by :func:`specialize_subnet`: BatchNorm mode
    decided on ``val`` (the baseline ``"all"`` without it), classifier restricted to the task's
    classes (ascending), top-1 on ``test`` for the chosen mode and for the baseline.

    Returns :func:`specialize_subnet`'s dict (``model``, ``bn``, ``top1``, ``baseline_top1``,
    ``val_top1``, ``val_baseline_top1``, ``test_images``, ...).
    """
    cfg = supernet.config
    try:
        return specialize_subnet(supernet, arch_from_genome(cfg, genome), list(scenario.classes), calib, test, val,
                                 bn=bn, calib_images=calib_images)
    except ConfigError as e:
        raise ConfigError(f"scenario {scenario.name!r}: {e}") from None
