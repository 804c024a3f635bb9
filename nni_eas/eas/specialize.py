"""From scenarios to deployable subnets: one generator pass, budget repair, extraction, BN, ONNX.

* :func:`generate`: N scenarios -> N archs in one batched forward pass of the generator, then
  :func:`repair` per scenario (microseconds of numpy);
* :func:`repair`: the most likely arch may exceed a budget (the generator is trained on the
  *expected* cost); repair lowers one gene at a time, each time the change that removes the most
  budget violation per unit of log-probability given up, until every budget holds. Costs are
  exact (lookup tables), so a repaired arch *always* meets its budgets, or the scenario is
  reported infeasible;
* :func:`specialize`: extracts the subnet, recalibrates BatchNorm on the task's images only,
  keeps the task's classes in the classifier (logits in task order), measures task top-1 and
  optionally exports ONNX with a model card (:func:`~nni_eas.export.deploy.deploy_subnet`).
"""

from __future__ import annotations

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

__all__ = ["Generated", "generate", "repair", "specialize", "task_data"]


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


def specialize(supernet, scenario: Scenario, genome: np.ndarray, calib: tuple[torch.Tensor, torch.Tensor],
               test: tuple[torch.Tensor, torch.Tensor], calib_images: int = 500) -> dict[str, Any]:
    """Extract, recalibrate BN on the task's images, restrict the classifier, measure task top-1.

    Returns ``{"model", "arch", "top1", "test_images", "seconds": {"extract", "bn", "eval"}}``.
    """
    from ..evaluation import accuracy, recalibrate_bn

    cfg = supernet.config
    arch = arch_from_genome(cfg, genome)
    t0 = time.perf_counter()
    sub = supernet.extract(arch)
    t1 = time.perf_counter()
    xc, yc = task_data(*calib, scenario.classes, calib_images)
    if len(xc) == 0:
        raise ConfigError(f"scenario {scenario.name!r}: the calibration split has no images of classes {list(scenario.classes)}")
    recalibrate_bn(sub, (xc, yc), resolution=arch.r, max_images=calib_images)
    sub.eval().restrict_classes(list(scenario.classes))
    t2 = time.perf_counter()
    xt, yt = task_data(*test, scenario.classes)
    top1 = accuracy(sub, (xt, yt), resolution=arch.r)
    t3 = time.perf_counter()
    return {"model": sub, "arch": arch, "top1": float(top1), "test_images": int(len(yt)),
            "seconds": {"extract": t1 - t0, "bn": t2 - t1, "eval": t3 - t2}}
