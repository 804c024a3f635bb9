"""Generator proposals re-ranked on validation: how the budget comes to matter.

The generator is trained by policy gradient on noisy rewards (a few dozen images per sampled
subnet), so its most likely arch under a budget is a good *region*, not always the best arch:
measured on the demo's first supernet, nine of ten scenarios landed on about the same MACs
whatever their budget. The design answer keeps "N scenarios in one generator pass" and adds a
few real evaluations per scenario:

1. :func:`propose`: one batched forward pass gives every scenario's gene distributions. Each
   scenario gets ``1 + samples`` archs (the most likely one and draws from its distribution),
   each repaired into the budget (:func:`~nni_eas.eas.specialize.repair`) and then *filled*
   (:func:`fill`): genes are raised one step at a time, the most likely raise first, while every
   budget still holds. Both the repaired and the filled arch are candidates, so an arch that uses
   the budget is always on the table.
2. :func:`pool_by_task`: a scenario also gets the candidates of every scenario with the same task
   and a smaller-or-equal budget that fit its own budget. With a deterministic score this makes
   the choice monotone: a larger budget never scores lower on validation than a smaller one.
3. :func:`choose`: every candidate is scored on the task's *validation* images (inherited
   weights, BN recalibrated on all-class training images, task-restricted logits: the same
   protocol NSGA-II's evaluations use) and the best is kept; ties go to the larger subnet
   (MACs), then to the earlier candidate (the generator's own most likely arch first).

All of it is numpy + one generator pass; only :func:`choose` touches the supernet.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from .budget import CostTable, budget_check

__all__ = ["Proposal", "fill", "propose", "pool_by_task", "choose", "val_scorer"]


@dataclass
class Proposal:
    """One scenario's candidate archs (``genomes[0]``: the generator's most likely arch, repaired)."""

    genomes: list[list[int]]
    origin: list[str] = field(default_factory=list)   # "argmax", "argmax+fill", "sample3+fill", "pool:<name>"

    def add(self, genome: Sequence[int], origin: str) -> None:
        g = [int(v) for v in genome]
        if g not in self.genomes:
            self.genomes.append(g)
            self.origin.append(origin)


def fill(genome: np.ndarray, gene_logp: Sequence[np.ndarray], tables: Mapping[str, CostTable],
         budgets: Mapping[str, float], max_steps: int = 500) -> np.ndarray:
    """Raise genes one choice at a time while every budget holds; the raise the generator finds
    most likely (largest log-probability of the new choice relative to the old) goes first.

    Choice lists are sorted ascending, so a raise never lowers a cost. Raises that change no cost
    (genes of inactive block slots) are skipped.
    """
    g = np.asarray(genome, dtype=np.int64).copy()
    cfg = next(iter(tables.values())).cfg
    from ..encodings import genome_bounds

    _, hi = genome_bounds(cfg)
    metrics = list(budgets)
    cost = {m: float(tables[m].exact(g[None])[0]) for m in metrics}
    for _ in range(max_steps):
        idx = np.flatnonzero(g < hi)
        if len(idx) == 0:
            break
        cands = np.repeat(g[None], len(idx), axis=0)
        cands[np.arange(len(idx)), idx] += 1
        new = {m: tables[m].exact(cands) for m in metrics}
        ok = np.ones(len(idx), dtype=bool)
        grows = np.zeros(len(idx), dtype=bool)
        for m in metrics:
            ok &= new[m] <= budgets[m] * (1 + 1e-12)
            grows |= new[m] > cost[m] + 1e-9
        ok &= grows
        if not ok.any():
            break
        gain = np.array([gene_logp[i][g[i] + 1] - gene_logp[i][g[i]] for i in idx])
        best = int(np.argmax(np.where(ok, gain, -np.inf)))
        g = cands[best]
        cost = {m: float(new[m][best]) for m in metrics}
    return g


def propose(generator: Any, tables: Mapping[str, CostTable], scenarios: Sequence[Any], samples: int = 8,
            seed: int = 0) -> list[Proposal]:
    """Candidates of every scenario from ONE generator forward pass (see the module docstring)."""
    import torch

    from .specialize import repair

    generator.eval()
    with torch.no_grad():
        masks, budgets = generator.inputs(scenarios)
        logits = generator(masks, budgets)
        top = logits.argmax().cpu().numpy()
        draws = (logits.sample(samples, torch.Generator().manual_seed(seed)).cpu().numpy() if samples > 0
                 else np.zeros((len(scenarios), 0, top.shape[1]), dtype=np.int64))
        flat = [t.cpu().numpy() for t in logits.flat()]
    out = []
    for i, s in enumerate(scenarios):
        gene_logp = [f[i] for f in flat]
        p = Proposal([], [])
        for name, g in [("argmax", top[i])] + [(f"sample{j}", d) for j, d in enumerate(draws[i])]:
            r, _ = repair(g, gene_logp, tables, s.budgets)
            p.add(r, name)
            p.add(fill(r, gene_logp, tables, s.budgets), f"{name}+fill")
        out.append(p)
    return out


def pool_by_task(scenarios: Sequence[Any], proposals: Sequence[Proposal], tables: Mapping[str, CostTable]) -> list[Proposal]:
    """Each scenario also considers the candidates of same-task scenarios that fit its budgets."""
    out = []
    for i, s in enumerate(scenarios):
        p = Proposal(list(proposals[i].genomes), list(proposals[i].origin))
        for j, t in enumerate(scenarios):
            if j == i or tuple(t.classes) != tuple(s.classes):
                continue
            g = np.asarray(proposals[j].genomes, dtype=np.int64)
            ok = budget_check(tables, g, s.budgets)
            for k in np.flatnonzero(ok):
                p.add(g[k], f"pool:{t.name}")
        out.append(p)
    return out


def choose(genomes: Sequence[Sequence[int]], score: Callable[[np.ndarray], np.ndarray],
           prefer: Sequence[float] | None = None) -> tuple[int, np.ndarray]:
    """``(index of the best candidate, scores)``: ``score(genomes [P, L]) -> [P]`` (higher is
    better, NaN = failed). Ties on the score go to the largest ``prefer`` (e.g. MACs: with small
    validation sets ties are common, and a larger subnet of a well-trained supernet is the better
    bet), then to the earliest candidate."""
    g = np.asarray(genomes, dtype=np.int64)
    s = np.asarray(score(g), dtype=np.float64)
    if not np.isfinite(s).any():
        raise RuntimeError("every candidate arch failed to evaluate")
    s_ok = np.where(np.isfinite(s), s, -np.inf)
    best = np.flatnonzero(s_ok >= s_ok.max() - 1e-12)
    if prefer is not None and len(best) > 1:
        pref = np.asarray(prefer, dtype=np.float64)[best]
        best = best[pref >= pref.max()]
    return int(best[0]), s


def val_scorer(supernet: Any, classes: Sequence[int], calib: Any, val: Any, calib_images: int = 500
               ) -> Callable[[np.ndarray], np.ndarray]:
    """``score(genomes) -> task top-1 on val``: inherited weights, BN recalibrated on all-class
    ``calib`` images, logits restricted to ``classes`` (the plain baseline of specialization, the
    protocol every search evaluation uses)."""
    from ..search.evaluators import SupernetEvaluator

    ev = SupernetEvaluator(supernet, calib, val, classes=list(classes), calib_images=calib_images)
    return lambda genomes: ev(np.atleast_2d(np.asarray(genomes, dtype=np.int64)))["top1"]
