"""The RepNAS search: importance per searchable layer-branch, logistic noise, global top-k, straight-through.

Every layer keeps its *always-on* branches (default: the base ``k x k`` conv) outside the search;
every other (layer, branch) pair gets an importance ``alpha`` (initialised to 0, so the first
masks are uniformly random). At each training step of the search phase the scores
``alpha + noise * Logistic(0, 1)`` pick exactly ``k`` searchable branches in the whole network
(the budget): first what each layer must keep (its best spatial branch if it has no always-on
one, then its best others up to ``min_per_layer``), then the best of the rest. Branch ``j`` is
scaled by the gate

    g_j = m_j + sigmoid(s_j / tau) - stop_grad(sigmoid(s_j / tau)),

whose value is the hard mask ``m_j`` (0 or 1, so training sees exactly the net it will deploy)
and whose gradient reaches ``alpha`` through the sigmoid; always-on branches have gate 1.
Logistic noise is the difference of two Gumbel draws: top-k of noisy scores samples subsets
whose inclusion odds grow with alpha.

Nothing here needs NNI: :class:`BranchSearch` drives a :class:`~nni_eas.repnas.RepNASNet` (or
any list of :class:`~nni_eas.spaces.dbb.DiverseBranchBlock`) and is what both
:class:`~nni_eas.repnas.RepNASModule` and the NNI strategy train.
"""

from __future__ import annotations

from typing import Literal, Mapping, Sequence

import torch
import torch.nn as nn

from ..config import ConfigError
from ..spaces.dbb import SPATIAL_BRANCHES, DiverseBranchBlock
from .config import budget_size, forced_picks
from .net import layer_label

__all__ = ["BranchSearch", "logistic_noise", "topk_mask", "straight_through", "Phase"]

Phase = Literal["warmup", "search", "retrain"]
PerLayer = int | Sequence[int] | torch.Tensor


def logistic_noise(shape: Sequence[int] | torch.Size, generator: torch.Generator | None = None,
                   device: torch.device | str | None = None) -> torch.Tensor:
    """Standard logistic samples ``log(u) - log(1 - u)`` (= Gumbel - Gumbel)."""
    u = torch.rand(tuple(shape), generator=generator, device=device).clamp_(1e-6, 1 - 1e-6)
    return torch.log(u) - torch.log1p(-u)


def _per_layer(value: PerLayer, num_layers: int, name: str) -> list[int]:
    if isinstance(value, int):
        return [value] * num_layers
    out = [int(v) for v in (value.tolist() if isinstance(value, torch.Tensor) else value)]
    if len(out) != num_layers:
        raise ConfigError(f"{name}: needs one value per layer ({num_layers}), got {len(out)}")
    return out


def topk_mask(scores: torch.Tensor, layer: torch.Tensor, k: int, min_per_layer: PerLayer = 1,
              spatial: torch.Tensor | None = None, min_spatial: PerLayer = 0,
              num_layers: int | None = None) -> torch.Tensor:
    """Boolean mask of exactly ``k`` entries of ``scores``: what each layer must keep, then the best rest.

    Args:
        scores: one score per layer-branch, shape ``(N,)``.
        layer: the layer of each entry, shape ``(N,)`` (integers ``0 .. L-1``).
        k: entries kept; at least the forced ones, at most ``N``.
        min_per_layer: entries every layer keeps at least (an int, or one per layer).
        spatial: which entries are spatial branches (wider than 1x1); ``None``: all.
        min_spatial: spatial entries every layer keeps at least (an int, or one per layer).
        num_layers: ``L`` (default: ``layer.max() + 1``).

    Forced picks are each layer's best spatial entries (``min_spatial``), then its best others
    up to ``min_per_layer``; the rest of ``k`` are the best remaining scores of the whole network.
    """
    scores = scores.detach()
    n = scores.numel()
    lay = layer.tolist()
    num_layers = num_layers if num_layers is not None else (max(lay) + 1 if lay else 0)
    need = _per_layer(min_per_layer, num_layers, "min_per_layer")
    need_sp = _per_layer(min_spatial, num_layers, "min_spatial")
    is_sp = [True] * n if spatial is None else [bool(v) for v in spatial.tolist()]
    order = torch.argsort(scores, descending=True, stable=True).tolist()
    keep = [False] * n
    taken, taken_sp = [0] * num_layers, [0] * num_layers
    for idx in order:  # N is small (hundreds): python loops are clearer than scatter tricks
        li = lay[idx]
        if is_sp[idx] and taken_sp[li] < need_sp[li]:
            keep[idx] = True
            taken_sp[li] += 1
            taken[li] += 1
    for idx in order:
        li = lay[idx]
        if not keep[idx] and taken[li] < need[li]:
            keep[idx] = True
            taken[li] += 1
    short = [i for i in range(num_layers) if taken[i] < need[i] or taken_sp[i] < need_sp[i]]
    if short:
        raise ConfigError(f"layer {short[0]} has too few candidates for min_per_layer={need[short[0]]} / "
                          f"min_spatial={need_sp[short[0]]}")
    forced = sum(taken)
    if not forced <= k <= n:
        raise ConfigError(f"budget: keeps {k} layer-branches; allowed: {forced} .. {n} ({forced} forced by "
                          f"min_per_layer / min_spatial .. all)")
    mask = torch.tensor(keep, dtype=torch.bool, device=scores.device)
    rest = k - forced
    if rest > 0:
        free = scores.masked_fill(mask, float("-inf"))
        mask[torch.topk(free, rest, sorted=False).indices] = True
    return mask


def straight_through(hard: torch.Tensor, scores: torch.Tensor, tau: float = 1.0) -> torch.Tensor:
    """``hard`` in the forward pass, ``d sigmoid(scores / tau)`` in the backward pass."""
    soft = torch.sigmoid(scores / tau)
    return hard.to(soft.dtype) + soft - soft.detach()


class BranchSearch(nn.Module):
    """Importance parameters over every searchable layer-branch of ``blocks`` and the masks they give.

    Args:
        blocks: the searched layers (a :class:`~nni_eas.repnas.RepNASNet` or a list of blocks).
            They are referenced, not registered: the search's state dict holds only its own tensors.
        budget: fraction of the searchable layer-branches kept (``round(budget * N)``) or, if an
            ``int``, the number kept. Always-on branches are outside it.
        always_on: branches every block keeps (where it has them), never searched (default: the
            base ``conv_kxk``).
        min_per_layer: branches every layer keeps at least, always-on ones included.
        min_spatial: spatial branches (wider than 1x1) every layer keeps at least, always-on ones
            included.
        noise_scale: multiplier of the logistic noise (0: deterministic top-k).
        tau: temperature of the straight-through sigmoid.
        dense_gradients: run masked-off branches too (gate value 0) so every importance gets a
            gradient at every step (default); ``False`` runs only the kept ones, as the RepNAS
            code does (exploration then comes from the noise alone).
        warmup: a fresh uniformly random top-k mask under the budget every step (``random``,
            default, the RepNAS code) or every branch on (``all``) during warm-up.

    ``step(phase, training)`` sets every block's gates for the next forward pass and returns the
    hard mask over the searchable slots; ``fix()`` freezes the final mask into the blocks.
    """

    def __init__(self, blocks: nn.Module | Sequence[DiverseBranchBlock], budget: float | int,
                 always_on: Sequence[str] = ("conv_kxk",), min_per_layer: int = 1, min_spatial: int = 1,
                 noise_scale: float = 1.0, tau: float = 1.0, dense_gradients: bool = True,
                 warmup: Literal["random", "all"] = "random", seed: int = 0):
        super().__init__()
        if isinstance(blocks, nn.Module):
            blocks = [m for m in blocks.modules() if isinstance(m, DiverseBranchBlock)]
        self._blocks: list[DiverseBranchBlock] = list(blocks)  # plain list: not submodules
        if not self._blocks:
            raise ConfigError("blocks: no DiverseBranchBlock to search")
        self.always_on = tuple(always_on)
        self.slots: list[tuple[int, str]] = [(i, n) for i, b in enumerate(self._blocks) for n in b.branch_names
                                             if n not in self.always_on]
        self.num_slots = len(self.slots)
        self.k = budget if isinstance(budget, int) else budget_size(budget, self.num_slots)
        self.min_per_layer, self.min_spatial = min_per_layer, min_spatial
        forced = [forced_picks(b.branch_names, self.always_on, min_per_layer, min_spatial) for b in self._blocks]
        self._need = [f for f, _ in forced]
        self._need_spatial = [f for _, f in forced]
        self.noise_scale, self.tau, self.dense_gradients = noise_scale, tau, dense_gradients
        if warmup not in ("random", "all"):
            raise ConfigError(f"warmup_mode: {warmup!r}; allowed values: random, all")
        self.warmup = warmup
        self.alpha = nn.Parameter(torch.zeros(self.num_slots))
        self.register_buffer("layer_index", torch.tensor([i for i, _ in self.slots], dtype=torch.long))
        self.register_buffer("spatial", torch.tensor([n in SPATIAL_BRANCHES for _, n in self.slots], dtype=torch.bool))
        self.register_buffer("fixed_mask", torch.zeros(self.num_slots, dtype=torch.bool))
        self.register_buffer("is_fixed", torch.zeros((), dtype=torch.bool))
        # per block: slice of its slots, and the position in block.branch_names of each branch
        self._bounds: list[tuple[int, int]] = []
        self._free_pos: list[list[int]] = []
        self._fixed_pos: list[list[int]] = []
        start = 0
        for b in self._blocks:
            free = [j for j, n in enumerate(b.branch_names) if n not in self.always_on]
            self._free_pos.append(free)
            self._fixed_pos.append([j for j, n in enumerate(b.branch_names) if n in self.always_on])
            self._bounds.append((start, start + len(free)))
            start += len(free)
        self._select(torch.zeros(self.num_slots))  # validates k against the forced picks
        self._generator = torch.Generator().manual_seed(seed)
        self._eval_noise = logistic_noise((self.num_slots,), torch.Generator().manual_seed(seed + 1))

    # ---- masks -------------------------------------------------------------------------------
    def _select(self, scores: torch.Tensor) -> torch.Tensor:
        return topk_mask(scores, self.layer_index, self.k, self._need, self.spatial, self._need_spatial,
                         num_layers=len(self._blocks))

    def _noise(self) -> torch.Tensor:
        return logistic_noise((self.num_slots,), self._generator).to(self.alpha.device)

    def mask(self) -> torch.Tensor:
        """The searched mask: top-k of the importance (exactly ``k`` branches); the fixed one once fixed."""
        if bool(self.is_fixed):
            return self.fixed_mask.clone()
        return self._select(self.alpha)

    def random_mask(self) -> torch.Tensor:
        """A uniformly random top-k mask under the same budget (warm-up, random one-shot)."""
        return self._select(self._noise())

    def probabilities(self) -> torch.Tensor:
        """``sigmoid(alpha / tau)`` per searchable layer-branch: how strongly each branch is wanted."""
        return torch.sigmoid(self.alpha.detach() / self.tau)

    # ---- driving the blocks -------------------------------------------------------------------
    def _push(self, hard: torch.Tensor, gates: torch.Tensor | None) -> None:
        active = hard.tolist()
        for block, (a, b), free, fixed in zip(self._blocks, self._bounds, self._free_pos, self._fixed_pos):
            full = [True] * len(block.branch_names)
            for j, on in zip(free, active[a:b]):
                full[j] = bool(on)
            if gates is None:
                block.set_gates(None)
                block.set_mask(full)
                continue
            parts: list[torch.Tensor] = [gates.new_ones(())] * len(block.branch_names)
            for j, g in zip(free, gates[a:b].unbind(0) if b > a else ()):
                parts[j] = g
            block.set_gates(torch.stack(parts), None if self.dense_gradients else full)

    def step(self, phase: Phase, training: bool = True) -> torch.Tensor:
        """Set the blocks' branches for the next forward pass; returns the hard mask (searchable slots).

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
            hard = self.random_mask() if training else self._select(self._eval_noise.to(self.alpha.device))
            self._push(hard, None)
            return hard
        if phase != "search":
            raise ConfigError(f"phase: {phase!r}; allowed values: warmup, search, retrain")
        if not training:
            hard = self.mask()
            self._push(hard, None)
            return hard
        scores = self.alpha + self.noise_scale * self._noise()
        hard = self._select(scores)
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
        """``{'branches_<i>': [branch names]}`` of ``mask`` (default: :meth:`mask`), always-on ones included."""
        mask = self.mask() if mask is None else mask
        kept = {(i, name) for (i, name), keep in zip(self.slots, mask.tolist()) if keep}
        return {layer_label(i): [n for n in block.branch_names if n in self.always_on or (i, n) in kept]
                for i, block in enumerate(self._blocks)}

    def from_sample(self, sample: Mapping[str, Sequence[str]]) -> torch.Tensor:
        """The mask (searchable slots) of a sample (labels ``branches_<i>``)."""
        mask = torch.zeros(self.num_slots, dtype=torch.bool)
        for i in range(len(self._blocks)):
            if layer_label(i) not in sample:
                raise ConfigError(f"sample: missing {layer_label(i)!r}")
        for j, (i, name) in enumerate(self.slots):
            mask[j] = name in sample[layer_label(i)]
        return mask

    def extra_repr(self) -> str:
        return (f"layers={len(self._blocks)}, searchable={self.num_slots}, k={self.k}, "
                f"always_on={list(self.always_on)}, min_per_layer={self.min_per_layer}, "
                f"min_spatial={self.min_spatial}, noise_scale={self.noise_scale}, tau={self.tau}")
