"""Losses that ride on supernet training: soft-target distillation, task dropout, consistency.

All take plain tensors, so each is tested on a hand-made batch.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F

__all__ = ["soft_target_loss", "TaskDropout", "KeptClasses", "consistency_loss"]


def soft_target_loss(logits: torch.Tensor, target_logits: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
    """Cross-entropy against a teacher's softened distribution (OFA's ``kd_type='ce'``), scaled by T^2."""
    t = temperature
    target = F.softmax(target_logits.detach() / t, dim=1)
    return -(target * F.log_softmax(logits / t, dim=1)).sum(1).mean() * (t * t)


@dataclass(frozen=True)
class KeptClasses:
    """The classes a batch keeps after task dropout, and the samples that belong to them."""

    classes: torch.Tensor      # [K] global class ids, sorted
    sample_mask: torch.Tensor  # [B] bool: sample's label is kept
    labels: torch.Tensor       # [B_kept] labels remapped to 0..K-1

    def restrict(self, logits: torch.Tensor) -> torch.Tensor:
        """Logits of the kept samples over the kept classes only."""
        return logits[self.sample_mask][:, self.classes]


class TaskDropout:
    """EAS task dropout: each class (or super-class group) is dropped with probability ``rate``.

    The loss is computed over the kept classes only: images of dropped classes leave the batch
    and the dropped classes' logits leave the softmax, so the network learns to be accurate on
    whatever subset of classes a deployment keeps.
    """

    def __init__(self, num_classes: int, rate: float, min_kept: int = 2, groups: Sequence[Sequence[int]] | None = None):
        if not 0 <= rate < 1:
            raise ValueError(f"task dropout rate must be in [0, 1), got {rate}")
        self.num_classes = num_classes
        self.rate = rate
        self.groups = [list(g) for g in groups] if groups else [[c] for c in range(num_classes)]
        covered = sorted(c for g in self.groups for c in g)
        if covered != list(range(num_classes)):
            raise ValueError(f"task dropout groups must partition the {num_classes} classes exactly once each")
        if not 1 <= min_kept <= num_classes:
            raise ValueError(f"min_kept must be in 1..{num_classes}, got {min_kept}")
        self.min_kept = min_kept

    def sample(self, labels: torch.Tensor, rng: np.random.Generator) -> KeptClasses:
        """Draw which classes this batch keeps (at least ``min_kept`` classes)."""
        keep = rng.random(len(self.groups)) >= self.rate
        order = rng.permutation(len(self.groups))
        for g in order:  # top up with random groups until min_kept classes are kept
            if sum(len(self.groups[i]) for i in np.flatnonzero(keep)) >= self.min_kept:
                break
            keep[g] = True
        classes = sorted(c for i in np.flatnonzero(keep) for c in self.groups[i])
        return self.keep(labels, classes)

    @staticmethod
    def keep(labels: torch.Tensor, classes: Sequence[int]) -> KeptClasses:
        """Restrict a batch to ``classes`` (also used for evaluation on a fixed task)."""
        cls = torch.as_tensor(sorted(classes), device=labels.device, dtype=torch.long)
        mask = torch.isin(labels, cls)
        remap = torch.full((int(max(int(labels.max()), int(cls.max())) + 1),), -1, dtype=torch.long, device=labels.device)
        remap[cls] = torch.arange(len(cls), device=labels.device)
        return KeptClasses(classes=cls, sample_mask=mask, labels=remap[labels[mask]])


def consistency_loss(strong_logits: torch.Tensor, weak_logits: torch.Tensor, threshold: float) -> tuple[torch.Tensor, torch.Tensor]:
    """FixMatch-style term used by TOFA on unlabeled images.

    Pseudo-labels are the arg-max of the (detached) weak-view prediction where its confidence is
    at least ``threshold``; the strong view is trained towards them. Returns (loss, mask ratio).
    """
    probs = F.softmax(weak_logits.detach(), dim=1)
    confidence, pseudo = probs.max(1)
    mask = (confidence >= threshold).float()
    loss = (F.cross_entropy(strong_logits, pseudo, reduction="none") * mask).mean()
    return loss, mask.mean()
