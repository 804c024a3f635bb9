"""Diverse branch blocks: many linear branches while training, one convolution when deployed.

A :class:`DiverseBranchBlock` sums up to seven branches, each linear in its input once BatchNorm
uses running statistics, so that in eval mode the whole block is one ``k x k`` convolution with a
bias (followed by the block's activation):

==================  =====================================================================
``conv_kxk``        k x k conv, BN
``conv_1x1``        1 x 1 conv, BN
``avg_kxk``         1 x 1 conv, BN (padded with its own bias), k x k average pool, BN
``conv_1x1_kxk``    1 x 1 conv, BN (padded with its own bias), k x k conv, BN
``conv_1xk``        1 x k conv, BN
``conv_kx1``        k x 1 conv, BN
``identity``        BN (only where ``in_chs == out_chs`` and ``stride == 1``)
==================  =====================================================================

Which branches run is a boolean ``mask`` (a buffer, so it travels with the state dict), which a
search switches on and off; during a search, ``set_gates`` scales each branch by a gate instead
(straight-through estimators need the gate in the graph). ``fuse_kernel`` folds the active
branches into one kernel and bias (:func:`fold_bn`, :func:`merge_sequential`, :func:`avg_kernel`,
:func:`identity_kernel`, :func:`pad_kernel`), and :func:`fuse` swaps every block of a network for
``Conv2d`` + activation. Fusion runs in float64, so a fused net matches its multi-branch twin to
float32 rounding. See ``docs/repnas.md`` for the algebra.
"""

from __future__ import annotations

import copy
from collections import OrderedDict
from typing import Iterable, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F
from timm.layers import create_act_layer, get_act_layer

from ..config import ConfigError

__all__ = [
    "BRANCHES",
    "SPATIAL_BRANCHES",
    "DiverseBranchBlock",
    "available_branches",
    "fold_bn",
    "merge_sequential",
    "avg_kernel",
    "identity_kernel",
    "pad_kernel",
    "fuse",
    "BNAndPad",
]

BRANCHES: tuple[str, ...] = ("conv_kxk", "conv_1x1", "avg_kxk", "conv_1x1_kxk", "conv_1xk", "conv_kx1", "identity")
# branches that see more than one pixel (a layer with only 1x1 / identity branches has no spatial extent)
SPATIAL_BRANCHES: tuple[str, ...] = ("conv_kxk", "avg_kxk", "conv_1x1_kxk", "conv_1xk", "conv_kx1")

Kernel = tuple[torch.Tensor, torch.Tensor]  # (weight [out, in/groups, k, k], bias [out]), float64


# --------------------------------------------------------------------------------------------
# fusion algebra: pure functions on tensors
# --------------------------------------------------------------------------------------------
def fold_bn(weight: torch.Tensor, bias: torch.Tensor | None, bn: nn.BatchNorm2d) -> Kernel:
    """Fold eval-mode BN into the linear map before it: ``bn(W*x + b) = (W t)*x + beta + (b - mu) t``."""
    t = bn.weight.double() / (bn.running_var.double() + bn.eps).sqrt()
    b = bias.double() if bias is not None else torch.zeros_like(t)
    return weight.double() * t.reshape(-1, 1, 1, 1), bn.bias.double() + (b - bn.running_mean.double()) * t


def pad_kernel(weight: torch.Tensor, kernel_size: int) -> torch.Tensor:
    """Centre a ``(kh, kw)`` kernel in a ``k x k`` one (1x1, 1xk and kx1 -> kxk, zeros around).

    Exact because every branch pads its input by half its own kernel: the centres line up.
    """
    kh, kw = weight.shape[-2:]
    ph, pw = (kernel_size - kh) // 2, (kernel_size - kw) // 2
    return F.pad(weight, [pw, pw, ph, ph])


def merge_sequential(k1: torch.Tensor, b1: torch.Tensor, k2: torch.Tensor, b2: torch.Tensor, groups: int) -> Kernel:
    """One kernel for a 1x1 conv ``(k1, b1)`` followed by a k x k conv ``(k2, b2)``, per group.

    ``W[o, i] = sum_m k2[o, m] k1[m, i]`` and ``b[o] = b2[o] + sum_{m, h, w} k2[o, m, h, w] b1[m]``,
    within each group. The bias term is exact only if the k x k conv's input was padded with
    ``b1`` (what a 1x1 conv of a zero-padded input gives), which :class:`BNAndPad` does.
    """
    mid, in_g = k1.shape[:2]
    out, mid_g, kh, kw = k2.shape
    k1g = k1.double().reshape(groups, mid // groups, in_g)
    k2g = k2.double().reshape(groups, out // groups, mid_g, kh, kw)
    w = torch.einsum("gomhw,gmi->goihw", k2g, k1g).reshape(out, in_g, kh, kw)
    b = b2.double() + torch.einsum("gomhw,gm->go", k2g, b1.double().reshape(groups, mid_g)).reshape(out)
    return w, b


def avg_kernel(channels: int, kernel_size: int, groups: int) -> torch.Tensor:
    """A k x k average pool over ``channels`` as a grouped conv kernel (``1/k^2`` on the diagonal)."""
    per_group = channels // groups
    w = torch.zeros(channels, per_group, kernel_size, kernel_size, dtype=torch.float64)
    w[torch.arange(channels), torch.arange(channels) % per_group] = 1.0 / kernel_size ** 2
    return w


def identity_kernel(channels: int, kernel_size: int, groups: int) -> torch.Tensor:
    """The identity map as a grouped k x k conv kernel (a 1 at the centre of the diagonal)."""
    per_group = channels // groups
    w = torch.zeros(channels, per_group, kernel_size, kernel_size, dtype=torch.float64)
    w[torch.arange(channels), torch.arange(channels) % per_group, kernel_size // 2, kernel_size // 2] = 1.0
    return w


# --------------------------------------------------------------------------------------------
# branches
# --------------------------------------------------------------------------------------------
class BNAndPad(nn.BatchNorm2d):
    """BatchNorm whose output is padded with ``BN(0)`` per channel instead of zeros.

    Followed by a conv or pool without padding, this is what the fused layer computes on its
    zero-padded input: the 1x1 conv maps padded zeros to zero, BN maps zero to
    ``beta - mu * gamma / sqrt(var + eps)``. In training mode the batch statistics are used, so
    the multi-branch block stays the same linear map in both modes.
    """

    def __init__(self, num_features: int, pad: int, eps: float = 1e-5, momentum: float = 0.1):
        super().__init__(num_features, eps=eps, momentum=momentum)
        self.pad = pad

    def pad_values(self, x: torch.Tensor | None = None) -> torch.Tensor:
        """``BN(0)`` per channel; with batch statistics of ``x`` in training mode."""
        if self.training and x is not None:
            mean, var = x.mean(dim=(0, 2, 3)), x.var(dim=(0, 2, 3), unbiased=False)
        else:
            mean, var = self.running_mean, self.running_var
        return self.bias - mean * self.weight / torch.sqrt(var + self.eps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = super().forward(x)
        if self.pad == 0:
            return y
        v = self.pad_values(x).reshape(1, -1, 1, 1)
        return F.pad(y - v, [self.pad] * 4) + v

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, pad={self.pad}"


class ConvBn(nn.Module):
    """``(kh, kw)`` conv without bias, then BN; padding ``(kh//2, kw//2)`` keeps centres aligned."""

    def __init__(self, in_chs: int, out_chs: int, kernel_size: tuple[int, int], stride: int, groups: int,
                 bn_eps: float, bn_momentum: float):
        super().__init__()
        kh, kw = kernel_size
        self.conv = nn.Conv2d(in_chs, out_chs, (kh, kw), stride, (kh // 2, kw // 2), groups=groups, bias=False)
        self.bn = nn.BatchNorm2d(out_chs, eps=bn_eps, momentum=bn_momentum)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bn(self.conv(x))

    def fuse(self, kernel_size: int) -> Kernel:
        w, b = fold_bn(self.conv.weight, None, self.bn)
        return pad_kernel(w, kernel_size), b


class SeqConvBn(nn.Module):
    """``conv_1x1_kxk``: 1x1 conv + BN (padded with BN(0)), then unpadded k x k conv + BN."""

    def __init__(self, in_chs: int, out_chs: int, kernel_size: int, stride: int, groups: int,
                 bn_eps: float, bn_momentum: float, mid_chs: int | None = None):
        super().__init__()
        mid = mid_chs or in_chs
        self.groups = groups
        self.conv1 = nn.Conv2d(in_chs, mid, 1, 1, 0, groups=groups, bias=False)
        self.bn1 = BNAndPad(mid, kernel_size // 2, eps=bn_eps, momentum=bn_momentum)
        self.conv2 = nn.Conv2d(mid, out_chs, kernel_size, stride, 0, groups=groups, bias=False)
        self.bn2 = nn.BatchNorm2d(out_chs, eps=bn_eps, momentum=bn_momentum)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bn2(self.conv2(self.bn1(self.conv1(x))))

    def fuse(self, kernel_size: int) -> Kernel:
        k1, b1 = fold_bn(self.conv1.weight, None, self.bn1)
        k2, b2 = fold_bn(self.conv2.weight, None, self.bn2)
        return merge_sequential(k1, b1, k2, b2, self.groups)


class AvgBn(nn.Module):
    """``avg_kxk``: 1x1 conv + BN (padded with BN(0)), k x k average pool, BN."""

    def __init__(self, in_chs: int, out_chs: int, kernel_size: int, stride: int, groups: int,
                 bn_eps: float, bn_momentum: float):
        super().__init__()
        self.groups = groups
        self.conv = nn.Conv2d(in_chs, out_chs, 1, 1, 0, groups=groups, bias=False)
        self.bn1 = BNAndPad(out_chs, kernel_size // 2, eps=bn_eps, momentum=bn_momentum)
        self.pool = nn.AvgPool2d(kernel_size, stride, 0)
        self.bn2 = nn.BatchNorm2d(out_chs, eps=bn_eps, momentum=bn_momentum)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bn2(self.pool(self.bn1(self.conv(x))))

    def fuse(self, kernel_size: int) -> Kernel:
        k1, b1 = fold_bn(self.conv.weight, None, self.bn1)
        avg = avg_kernel(k1.shape[0], kernel_size, self.groups)
        w, b = merge_sequential(k1, b1, avg, torch.zeros(k1.shape[0], dtype=torch.float64), self.groups)
        return fold_bn(w, b, self.bn2)


class IdentityBn(nn.Module):
    """``identity``: BN of the input (RepVGG's skip branch)."""

    def __init__(self, channels: int, groups: int, bn_eps: float, bn_momentum: float):
        super().__init__()
        self.groups = groups
        self.bn = nn.BatchNorm2d(channels, eps=bn_eps, momentum=bn_momentum)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bn(x)

    def fuse(self, kernel_size: int) -> Kernel:
        return fold_bn(identity_kernel(self.bn.num_features, kernel_size, self.groups), None, self.bn)


def available_branches(in_chs: int, out_chs: int, stride: int, candidates: Iterable[str] = BRANCHES) -> tuple[str, ...]:
    """The candidates a layer of this shape can have (identity needs equal shapes), in canonical order."""
    wanted = set(candidates)
    return tuple(b for b in BRANCHES if b in wanted and (b != "identity" or (in_chs == out_chs and stride == 1)))


def _make_branch(name: str, in_chs: int, out_chs: int, k: int, stride: int, groups: int, eps: float,
                 momentum: float) -> nn.Module:
    if name == "conv_kxk":
        return ConvBn(in_chs, out_chs, (k, k), stride, groups, eps, momentum)
    if name == "conv_1x1":
        return ConvBn(in_chs, out_chs, (1, 1), stride, groups, eps, momentum)
    if name == "conv_1xk":
        return ConvBn(in_chs, out_chs, (1, k), stride, groups, eps, momentum)
    if name == "conv_kx1":
        return ConvBn(in_chs, out_chs, (k, 1), stride, groups, eps, momentum)
    if name == "avg_kxk":
        return AvgBn(in_chs, out_chs, k, stride, groups, eps, momentum)
    if name == "conv_1x1_kxk":
        return SeqConvBn(in_chs, out_chs, k, stride, groups, eps, momentum)
    if name == "identity":
        return IdentityBn(out_chs, groups, eps, momentum)
    raise ConfigError(f"branches: unknown branch {name!r}; allowed values: {', '.join(BRANCHES)}")


# --------------------------------------------------------------------------------------------
# the block
# --------------------------------------------------------------------------------------------
class DiverseBranchBlock(nn.Module):
    """A layer of up to seven linear branches summed, then an activation; fusable into one conv.

    Args:
        in_chs, out_chs, kernel_size, stride, groups: the shape of the fused conv
            (``groups=in_chs`` for depthwise).
        branches: which branches the block has (default: every one its shape allows).
        act_layer: activation after the sum (timm name or class).
        bn_eps, bn_momentum: BatchNorm settings of every branch.

    ``mask`` says which of ``branch_names`` run; ``reparameterize()`` switches the block to its
    deploy form in place, :meth:`fused` returns ``Conv2d`` + activation.
    """

    def __init__(self, in_chs: int, out_chs: int, kernel_size: int = 3, stride: int = 1, groups: int = 1,
                 branches: Sequence[str] | None = None, act_layer: str | type[nn.Module] | None = "relu",
                 bn_eps: float = 1e-5, bn_momentum: float = 0.1):
        super().__init__()
        if kernel_size < 3 or kernel_size % 2 == 0:
            raise ConfigError(f"kernel_size: must be odd and >= 3 (3, 5, 7, ...), got {kernel_size}")
        if stride < 1:
            raise ConfigError(f"stride: must be >= 1, got {stride}")
        if groups < 1 or in_chs % groups or out_chs % groups:
            raise ConfigError(f"groups: must divide in_chs ({in_chs}) and out_chs ({out_chs}), got {groups}")
        possible = available_branches(in_chs, out_chs, stride)
        names = possible if branches is None else tuple(branches)
        unknown = [b for b in names if b not in BRANCHES]
        if unknown:
            raise ConfigError(f"branches: unknown branch {unknown[0]!r}; allowed values: {', '.join(BRANCHES)}")
        if "identity" in names and "identity" not in possible:
            raise ConfigError(
                f"branches: 'identity' needs in_chs == out_chs and stride 1 (got {in_chs} -> {out_chs}, "
                f"stride {stride}); allowed values here: {', '.join(possible)}"
            )
        if len(set(names)) != len(names):
            raise ConfigError(f"branches: duplicates in {list(names)}")
        self.in_chs, self.out_chs, self.kernel_size = in_chs, out_chs, kernel_size
        self.stride, self.groups = stride, groups
        self.branch_names: tuple[str, ...] = tuple(b for b in BRANCHES if b in names)  # canonical order
        self.branches = nn.ModuleDict({
            name: _make_branch(name, in_chs, out_chs, kernel_size, stride, groups, bn_eps, bn_momentum)
            for name in self.branch_names
        })
        self.register_buffer("mask", torch.ones(len(self.branch_names), dtype=torch.bool))
        self._active: list[bool] = [True] * len(self.branch_names)  # python copy: export-friendly control flow
        self._gates: torch.Tensor | None = None
        self._gate_active: list[bool] | None = None
        self.act = create_act_layer(get_act_layer(act_layer), inplace=True) if act_layer else nn.Identity()
        self.reparam: nn.Conv2d | None = None

    # ---- masks and gates ---------------------------------------------------------------------
    @property
    def active_branches(self) -> tuple[str, ...]:
        return tuple(n for n, a in zip(self.branch_names, self._active) if a)

    def set_mask(self, mask: Sequence[bool] | torch.Tensor | Iterable[str]) -> None:
        """Switch branches on/off: a boolean per branch of ``branch_names``, or the names to keep."""
        mask = list(mask.tolist() if isinstance(mask, torch.Tensor) else mask)
        if mask and all(isinstance(m, str) for m in mask):
            unknown = [m for m in mask if m not in self.branch_names]
            if unknown:
                raise ConfigError(f"branches: {unknown[0]!r} is not a branch of this block; "
                                  f"allowed values: {', '.join(self.branch_names)}")
            mask = [n in mask for n in self.branch_names]
        if len(mask) != len(self.branch_names):
            raise ConfigError(f"mask: needs {len(self.branch_names)} values (one per branch of "
                              f"{list(self.branch_names)}), got {len(mask)}")
        self._active = [bool(m) for m in mask]
        self.mask.copy_(torch.tensor(self._active, dtype=torch.bool))

    def set_gates(self, gates: torch.Tensor | None, active: Sequence[bool] | None = None) -> None:
        """Scale each branch by ``gates[i]`` (search time); branches with ``active[i] == False`` are skipped.

        ``None`` goes back to the boolean mask.
        """
        self._gates = gates
        self._gate_active = None if active is None else [bool(a) for a in active]

    def __getstate__(self):
        # gates are transient (they may hold a search's autograd graph): copies and pickles drop them
        return {**super().__getstate__(), "_gates": None, "_gate_active": None}

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)
        if self.reparam is None:
            self._active = [bool(m) for m in self.mask.tolist()]

    # ---- forward -----------------------------------------------------------------------------
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.reparam is not None:
            return self.act(self.reparam(x))
        out: torch.Tensor | None = None
        gates, active = self._gates, self._gate_active
        for i, (name, branch) in enumerate(self.branches.items()):
            if gates is None:
                if not self._active[i]:
                    continue
                y = branch(x)
            else:
                if active is not None and not active[i]:
                    continue
                y = gates[i] * branch(x)
            out = y if out is None else out + y
        if out is None:  # no branch: the fused conv is all zeros
            p, k, s = self.kernel_size // 2, self.kernel_size, self.stride
            h, w = (x.shape[2] + 2 * p - k) // s + 1, (x.shape[3] + 2 * p - k) // s + 1
            out = x.new_zeros(x.shape[0], self.out_chs, h, w)
        return self.act(out)

    # ---- fusion ------------------------------------------------------------------------------
    @torch.no_grad()
    def fuse_kernel(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Kernel and bias of the active branches summed, as the block computes in eval mode."""
        if self.reparam is not None:
            return self.reparam.weight.detach().clone(), self.reparam.bias.detach().clone()
        k = self.kernel_size
        w = torch.zeros(self.out_chs, self.in_chs // self.groups, k, k, dtype=torch.float64)
        b = torch.zeros(self.out_chs, dtype=torch.float64)
        for (name, branch), on in zip(self.branches.items(), self._active):
            if on:
                bw, bb = branch.fuse(k)
                w, b = w + bw, b + bb
        ref = next(iter(self.parameters()))
        return w.to(ref), b.to(ref)

    def to_conv(self) -> nn.Conv2d:
        """The fused ``Conv2d`` (with bias) of this block."""
        ref = next(iter(self.parameters()))
        conv = nn.Conv2d(self.in_chs, self.out_chs, self.kernel_size, self.stride, self.kernel_size // 2,
                         groups=self.groups, bias=True, device=ref.device, dtype=ref.dtype)
        w, b = self.fuse_kernel()
        with torch.no_grad():
            conv.weight.copy_(w)
            conv.bias.copy_(b)
        return conv

    def fused(self) -> nn.Sequential:
        """Deploy form: ``Sequential(conv=Conv2d, act=<activation>)``."""
        return nn.Sequential(OrderedDict([("conv", self.to_conv()), ("act", copy.deepcopy(self.act))]))

    def reparameterize(self) -> None:
        """Switch to the deploy form in place (timm's vocabulary): branches go, ``reparam`` stays."""
        if self.reparam is not None:
            return
        conv = self.to_conv()
        del self.branches, self.mask
        self.reparam = conv

    def extra_repr(self) -> str:
        return (f"{self.in_chs}, {self.out_chs}, kernel_size={self.kernel_size}, stride={self.stride}, "
                f"groups={self.groups}, active={list(self.active_branches)}")


def fuse(model: nn.Module, inplace: bool = False) -> nn.Module:
    """Replace every :class:`DiverseBranchBlock` in ``model`` by ``Conv2d`` + activation.

    The result computes what ``model`` computes in eval mode (BN running statistics are folded),
    so it is returned in eval mode.
    """
    model = model if inplace else copy.deepcopy(model)
    if isinstance(model, DiverseBranchBlock):
        return model.fused().eval()
    for module in list(model.modules()):
        for child_name, child in list(module.named_children()):
            if isinstance(child, DiverseBranchBlock):
                setattr(module, child_name, child.fused())
    return model.eval()
