"""The RepNAS search: importance per layer-branch, logistic noise, global top-k, straight-through.

Every (layer, branch) pair of the network gets an importance ``alpha``. At each training step of
the search phase the scores ``alpha + noise * Logistic(0, 1)`` pick exactly ``k`` branches in the
whole network (the budget): the best ``min_per_layer`` of every layer first (no layer goes empty),
then the best of the rest. Branch ``j`` of a layer is scaled by the gate

    g_j = m_j + sigmoid(s_j / tau) - stop_grad(sigmoid(s_j / tau)),

whose value is the hard mask ``m_j`` (0 or 1, so training sees exactly the net it will deploy)
and whose gradient reaches ``alpha`` through the sigmoid. Logistic noise is the difference of
two Gumbel draws: top-k of noisy scores samples subsets whose inclusion odds grow with alpha.

Nothing here needs NNI: :class:`BranchSearch` drives a :class:`~nni_eas.repnas.RepNASNet` (or
any list of :class:`~nni_eas.spaces.dbb.DiverseBranchBlock`) and is what both
:class:`~nni_eas.repnas.RepNASModule` and the NNI strategy train.
"""

from __future__ import annotations

from typing import Literal, Mapping, Sequence

import torch
import torch.nn as nn

from ..config import ConfigError
from ..spaces.dbb import DiverseBranchBlock
from .config import budget_size
from .net import layer_label

__all__ = ["BranchSearch", "logistic_noise", "topk_mask", "straight_through", "Phase"]

Phase = Literal["warmup", "search", "retrain"]


def logistic_noise(shape: Sequence[int] | torch.Size, generator: torch.Generator | None = None,
                   device: torch.device | str | None = None) -> torch.Tensor:
    """Standard logistic samples ``log(u) - log(1 - u)`` (= Gumbel - Gumbel)."""
    u = torch.rand(tuple(shape), generator=generator, device=device).clamp_(1e-6, 1 - 1e-6)
    return torch.log(u) - torch.log1p(-u)


def topk_mask(scores: torch.Tensor, layer: torch.Tensor, k: int, min_per_layer: int = 1) -> torch.Tensor:
    """Boolean mask of exactly ``k`` entries of ``scores``: each layer's best ``min_per_layer``, then the best rest.

    Args:
        scores: one score per layer-branch, shape ``(N,)``.
        layer: the layer of each entry, shape ``(N,)`` (integers ``0 .. L-1``).
        k: entries kept; ``min_per_layer * L <= k <= N``.
    """
    scores = scores.detach()
    n = scores.numel()
    num_layers = int(layer.max().item()) + 1 if n else 0
    if not min_per_layer * num_layers <= k <= n:
        raise ConfigError(f"budget: keeps {k} layer-branches; allowed: {min_per_layer * num_layers} .. {n} "
                          f"(min_per_layer={min_per_layer} x {num_layers} layers .. all)")
    mask = torch.zeros(n, dtype=torch.bool, device=scores.device)
    if min_per_layer:
        order = torch.argsort(scores, descending=True, stable=True)
        rank_in_layer = torch.zeros(n, dtype=torch.long, device=scores.device)
        seen = torch.zeros(num_layers, dtype=torch.long, device=scores.device)
        for idx in order.tolist():  # N is small (hundreds): a python loop is clearer than scatter tricks
            rank_in_layer[idx] = seen[layer[idx]]
            seen[layer[idx]] += 1
        mask |= rank_in_layer < min_per_layer
    rest = k - int(mask.sum())
    if rest > 0:
        free = scores.masked_fill(mask, float("-inf"))
        mask[torch.topk(free, rest, sorted=False).indices] = True
    return mask


def straight_through(hard: torch.Tensor, scores: torch.Tensor, tau: float = 1.0) -> torch.Tensor:
    """``hard`` in the forward pass, ``d sigmoid(scores / tau)`` in the backward pass."""
    soft = torch.sigmoid(scores / tau)
    return hard.to(soft.dtype) + soft - soft.detach()


class BranchSearch(nn.Module):
    """Importance parameters over every layer-branch of ``blocks`` and the masks they give.

    Args:
        blocks: the searched layers (a :class:`~nni_eas.repnas.RepNASNet` or a list of blocks).
            They are referenced, not registered: the search's state dict holds only its own tensors.
        budget: fraction of all layer-branches kept (``round(budget * N)``) or, if an ``int``, the
            number kept.
        min_per_layer: branches every layer keeps at least.
        noise_scale: multiplier of the logistic noise (0: deterministic top-k).
        tau: temperature of the straight-through sigmoid.
        dense_gradients: run masked-off branches too (gate value 0) so every importance gets a
            gradient at every step (default); ``False`` runs only the kept ones, as the RepNAS
            code does (exploration then comes from the noise alone).
        warmup: every branch on (``all``, default) or ``random`` top-k masks under the budget
            (the RepNAS code) during warm-up.

    ``step(phase, training)`` sets every block's gates for the next forward pass and returns the
    hard mask; ``fix()`` freezes the final mask into the blocks.
    """

    def __init__(self, blocks: nn.Module | Sequence[DiverseBranchBlock], budget: float | int,
                 min_per_layer: int = 1, noise_scale: float = 1.0, tau: float = 1.0,
                 dense_gradients: bool = True, warmup: Literal["random", "all"] = "all", seed: int = 0):
        super().__init__()
        if isinstance(blocks, nn.Module):
            blocks = [m for m in blocks.modules() if isinstance(m, DiverseBranchBlock)]
        self._blocks: list[DiverseBranchBlock] = list(blocks)  # plain list: not submodules
        if not self._blocks:
            raise ConfigError("blocks: no DiverseBranchBlock to search")
        self.slots: list[tuple[int, str]] = [(i, n) for i, b in enumerate(self._blocks) for n in b.branch_names]
        self.num_slots = len(self.slots)
        self.k = budget if isinstance(budget, int) else budget_size(budget, self.num_slots)
        self.min_per_layer = min_per_layer
        self.noise_scale, self.tau, self.dense_gradients = noise_scale, tau, dense_gradients
        if warmup not in ("random", "all"):
            raise ConfigError(f"warmup_mode: {warmup!r}; allowed values: random, all")
        self.warmup = warmup
        self.alpha = nn.Parameter(torch.zeros(self.num_slots))
        self.register_buffer("layer_index", torch.tensor([i for i, _ in self.slots], dtype=torch.long))
        self.register_buffer("fixed_mask", torch.zeros(self.num_slots, dtype=torch.bool))
        self.register_buffer("is_fixed", torch.zeros((), dtype=torch.bool))
        self._bounds = []  # slice of each block's slots
        start = 0
        for b in self._blocks:
            self._bounds.append((start, start + len(b.branch_names)))
            start += len(b.branch_names)
        topk_mask(torch.zeros(self.num_slots), self.layer_index, self.k, min_per_layer)  # validates k
        self._generator = torch.Generator().manual_seed(seed)
        self._eval_noise = logistic_noise((self.num_slots,), torch.Generator().manual_seed(seed + 1))

    # ---- masks -------------------------------------------------------------------------------
    def _noise(self) -> torch.Tensor:
        return logistic_noise((self.num_slots,), self._generator).to(self.alpha.device)

    def mask(self) -> torch.Tensor:
        """The searched mask: top-k of the importance (exactly ``k`` branches); the fixed one once fixed."""
        if bool(self.is_fixed):
            return self.fixed_mask.clone()
        return topk_mask(self.alpha, self.layer_index, self.k, self.min_per_layer)

    def random_mask(self) -> torch.Tensor:
        """A uniformly random top-k mask under the same budget (warm-up, random one-shot)."""
        return topk_mask(self._noise(), self.layer_index, self.k, self.min_per_layer)

    def probabilities(self) -> torch.Tensor:
        """``sigmoid(alpha / tau)`` per layer-branch: how strongly each branch is wanted."""
        return torch.sigmoid(self.alpha.detach() / self.tau)

    # ---- driving the blocks -------------------------------------------------------------------
    def _push(self, hard: torch.Tensor, gates: torch.Tensor | None) -> None:
        active = hard.tolist()
        for block, (a, b) in zip(self._blocks, self._bounds):
            if gates is None:
                block.set_gates(None)
                block.set_mask(active[a:b])
            else:
                run = None if self.dense_gradients else active[a:b]
                block.set_gates(gates[a:b], run)

    def step(self, phase: Phase, training: bool = True) -> torch.Tensor:
        """Set the blocks' branches for the next forward pass; returns the hard mask.

        ``warmup``: a random top-k mask in training (every branch if ``warmup='all'``), a fixed
        random one for validation. ``search``: noisy top-k with straight-through gates in
        training, the top-k of ``alpha`` for validation. ``retrain``: the fixed mask.
        """
        if bool(self.is_fixed) or phase == "retrain":
            hard = self.mask()
            self._push(hard, None)
            return hard
        if phase == "warmup":
            if self.warmup == "all":
                self.set_all()
                return torch.ones(self.num_slots, dtype=torch.bool)
            hard = self.random_mask() if training else topk_mask(self._eval_noise.to(self.alpha.device),
                                                                 self.layer_index, self.k, self.min_per_layer)
            self._push(hard, None)
            return hard
        if phase != "search":
            raise ConfigError(f"phase: {phase!r}; allowed values: warmup, search, retrain")
        if not training:
            hard = self.mask()
            self._push(hard, None)
            return hard
        scores = self.alpha + self.noise_scale * self._noise()
        hard = topk_mask(scores, self.layer_index, self.k, self.min_per_layer)
        self._push(hard, straight_through(hard, scores, self.tau))
        return hard

    def apply(self, mask: torch.Tensor) -> None:
        """Run exactly the branches of ``mask`` (hard, no gates) until the next :meth:`step`."""
        if mask.numel() != self.num_slots:
            raise ConfigError(f"mask: needs {self.num_slots} values, got {mask.numel()}")
        self._push(mask.to(torch.bool), None)

    def set_all(self) -> None:
        """Every branch on (all-branches warm-up or the DBB baseline)."""
        self._push(torch.ones(self.num_slots, dtype=torch.bool), None)

    def fix(self, mask: torch.Tensor | None = None, reset_bn: bool = True) -> torch.Tensor:
        """Freeze ``mask`` (default: top-k of alpha) into the blocks; optionally restart BN statistics."""
        mask = self.mask() if mask is None else mask.to(torch.bool)
        if mask.numel() != self.num_slots:
            raise ConfigError(f"mask: needs {self.num_slots} values, got {mask.numel()}")
        self.fixed_mask.copy_(mask)
        self.is_fixed.fill_(True)
        self._push(mask, None)
        if reset_bn:
            for block in self._blocks:
                for m in block.modules():
                    if isinstance(m, nn.modules.batchnorm._BatchNorm):
                        m.reset_running_stats()
        return mask

    # ---- samples -----------------------------------------------------------------------------
    def to_sample(self, mask: torch.Tensor | None = None) -> dict[str, list[str]]:
        """``{'branches_<i>': [kept branch names]}`` of ``mask`` (default: :meth:`mask`)."""
        mask = self.mask() if mask is None else mask
        sample: dict[str, list[str]] = {layer_label(i): [] for i in range(len(self._blocks))}
        for (i, name), keep in zip(self.slots, mask.tolist()):
            if keep:
                sample[layer_label(i)].append(name)
        return sample

    def from_sample(self, sample: Mapping[str, Sequence[str]]) -> torch.Tensor:
        """The mask of a sample (labels ``branches_<i>``)."""
        mask = torch.zeros(self.num_slots, dtype=torch.bool)
        for j, (i, name) in enumerate(self.slots):
            label = layer_label(i)
            if label not in sample:
                raise ConfigError(f"sample: missing {label!r}")
            mask[j] = name in sample[label]
        return mask

    def extra_repr(self) -> str:
        return (f"layers={len(self._blocks)}, layer_branches={self.num_slots}, k={self.k}, "
                f"min_per_layer={self.min_per_layer}, noise_scale={self.noise_scale}, tau={self.tau}")
