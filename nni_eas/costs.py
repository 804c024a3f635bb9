"""Analytic MACs and parameter counts of any subnet, without building it, for many archs at once.

Counting convention (OFA's, the default): only convolutions and linear layers count;
conv MACs = C_in / groups * k^2 * H_out * W_out * C_out with "same" padding
(H_out = ceil(H / stride)); squeeze-excite 1x1 convs at 1x1 spatial size; linear = in * out.
BN, activations, biases, pooling and residual additions are free. Parameters count every
trainable tensor (conv and linear weights, biases, BN scale and shift), not BN running stats.

``convention="nat"`` reproduces the MAdds in NAT's / NSGANetV2's published folder names: their
``get_net_info`` traced the network with torchprofile 0.0.2, which also charges one MAC per output
element of every element-wise multiply (h-swish's ``x * relu6(x + 3)``, squeeze-excite's
``x * gate``) and of every ``mean`` (the SE and global pools, taken as ``mean(3).mean(2)``);
ReLU, Mish, BN, additions and divisions are free. This matches 9 of the 10 published
transfer-learning subnets (``tests/test_costs.py``).

A :class:`CostModel` precomputes, per block slot, a table of costs over (width, kernel, expand,
resolution); a population of genomes is then costed by one gather and one masked sum
(millions of archs per second). :func:`measure_macs` counts the same quantity with forward
hooks on a real module: the tests check that both agree on every kind of subnet.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Literal, Sequence

from typing import TYPE_CHECKING

import numpy as np

from .config import ConfigError
from .spaces.arch import Arch
from .spaces.config import OFAMobileNetV3Config

if TYPE_CHECKING:  # torch only to count real modules: costing a config needs none
    import torch.nn as nn

__all__ = ["CostModel", "Costs", "CONVENTIONS", "measure_macs", "count_params"]

Convention = Literal["ofa", "nat"]
CONVENTIONS: dict[str, str] = {
    "ofa": "convolutions and linear layers only (OFA, OFA², the default)",
    "nat": "OFA's count plus element-wise multiplies and means, as NAT's published MAdds (torchprofile 0.0.2)",
}


@dataclass(frozen=True)
class Costs:
    """MACs and parameters of a population (arrays of length P)."""

    macs: np.ndarray
    params: np.ndarray


def _ceil_div(h: int, s: int) -> int:
    return -(-h // s)


class CostModel:
    """MACs / params for every arch of one space, vectorised over genomes.

    >>> cm = CostModel(load_space_config("ofa_mbv3_w1.0"))
    >>> cm.macs(arch)            # one arch
    >>> cm.costs(genomes).macs   # a population of integer genomes (see nni_eas.encodings)
    """

    def __init__(self, cfg: OFAMobileNetV3Config, convention: Convention = "ofa", num_classes: int | None = None):
        if convention not in CONVENTIONS:
            raise ConfigError(f"unknown counting convention {convention!r}; allowed: {', '.join(CONVENTIONS)}")
        self.cfg, self.convention = cfg, convention
        self.num_classes = num_classes or cfg.num_classes
        self._build_tables()

    # ---- per-layer formulas -----------------------------------------------------------------
    def _act(self, channels: int, hw: int, act: str) -> int:
        """Element-wise work NAT counts for an activation (0 under OFA's convention)."""
        if self.convention == "ofa":
            return 0
        return channels * hw * _NAT_ACT_COST[act]

    def _pool(self, channels: int, h: int) -> int:
        """NAT: ``x.mean(3).mean(2)`` costs its two outputs, C*H + C."""
        return channels * h + channels if self.convention == "nat" else 0

    def _conv(self, cin: int, cout: int, k: int, hw_out: int, groups: int = 1) -> int:
        return cin // groups * k * k * hw_out * cout

    def _se_macs(self, channels: int, h: int) -> int:
        rd = self.cfg.se_channels(channels)
        macs = channels * rd + rd * channels
        if self.convention == "nat":
            macs += self._pool(channels, h) + channels * h * h  # squeeze means + the x * gate multiply
        return macs

    def _se_params(self, channels: int) -> int:
        rd = self.cfg.se_channels(channels)
        return channels * rd + rd + rd * channels + channels

    def _block(self, cin: int, cout: int, mid: int, k: int, stride: int, h_in: int, act: str, se: bool,
               expand: bool) -> tuple[int, int]:
        h_out = _ceil_div(h_in, stride)
        hw_in, hw_out = h_in * h_in, h_out * h_out
        macs = params = 0
        if expand:
            macs += self._conv(cin, mid, 1, hw_in) + self._act(mid, hw_in, act)
            params += cin * mid + 2 * mid
        macs += self._conv(mid, mid, k, hw_out, groups=mid) + self._act(mid, hw_out, act)
        params += mid * k * k + 2 * mid
        if se:
            macs += self._se_macs(mid, h_out)
            params += self._se_params(mid)
        macs += self._conv(mid, cout, 1, hw_out)
        params += mid * cout + 2 * cout
        return macs, params

    # ---- tables ------------------------------------------------------------------------------
    def _build_tables(self) -> None:
        cfg = self.cfg
        W, K, E, R = len(cfg.width_mults), len(cfg.kernel_sizes), len(cfg.expand_ratios), len(cfg.resolutions)
        self.block_macs = np.zeros((cfg.num_slots, W, K, E, R), dtype=np.int64)
        self.block_params = np.zeros((cfg.num_slots, W, K, E), dtype=np.int64)
        self.base_macs = np.zeros((W, R), dtype=np.int64)
        self.base_params = np.zeros((W,), dtype=np.int64)
        sizes = [cfg.layout.feature_sizes(r) for r in cfg.resolutions]
        for wi, w in enumerate(cfg.width_mults):
            widths = cfg.layout.widths(w)
            for ri, sz in enumerate(sizes):
                self.base_macs[wi, ri] = self._fixed_macs(widths, sz)
            self.base_params[wi] = self._fixed_params(widths)
            for s, stage in enumerate(cfg.stages):
                for j in range(cfg.max_depth):
                    slot = s * cfg.max_depth + j
                    cin, cout = cfg.layout.block_in_out(w, s, j)
                    stride = stage.stride if j == 0 else 1
                    for ki, k in enumerate(cfg.kernel_sizes):
                        for ei, e in enumerate(cfg.expand_ratios):
                            mid = cfg.mid_channels(cin, e)
                            for ri, sz in enumerate(sizes):
                                h_in = sz["stage_in"][s] if j == 0 else _ceil_div(sz["stage_in"][s], stage.stride)
                                m, p = self._block(cin, cout, mid, k, stride, h_in, stage.act, stage.se, True)
                                self.block_macs[slot, wi, ki, ei, ri] = m
                            self.block_params[slot, wi, ki, ei] = p

    def _fixed_macs(self, widths: dict, sz: dict) -> int:
        cfg = self.cfg
        h1 = sz["first_in"]
        macs = self._conv(cfg.in_chans, widths["stem"], cfg.stem.kernel, h1 * h1) + self._act(widths["stem"], h1 * h1, cfg.stem.act)
        fb = cfg.first_block
        m, _ = self._block(widths["stem"], widths["first"], widths["stem"], fb.kernel, 1, h1, fb.act, fb.se, False)
        macs += m
        hf = sz["head_in"]
        macs += self._conv(widths["stages"][-1], widths["final_expand"], 1, hf * hf) + self._act(widths["final_expand"], hf * hf, cfg.head_act)
        macs += self._pool(widths["final_expand"], hf)  # global average pooling
        macs += widths["final_expand"] * widths["head"] + self._act(widths["head"], 1, cfg.head_act)
        macs += widths["head"] * self.num_classes
        return macs

    def _fixed_params(self, widths: dict) -> int:
        cfg = self.cfg
        k = cfg.stem.kernel
        params = cfg.in_chans * widths["stem"] * k * k + 2 * widths["stem"]
        fb = cfg.first_block
        params += widths["stem"] * fb.kernel ** 2 + 2 * widths["stem"]
        if fb.se:
            params += self._se_params(widths["stem"])
        params += widths["stem"] * widths["first"] + 2 * widths["first"]
        params += widths["stages"][-1] * widths["final_expand"] + 2 * widths["final_expand"]
        params += widths["final_expand"] * widths["head"]
        params += widths["head"] * self.num_classes + self.num_classes
        return params

    # ---- queries ----------------------------------------------------------------------------
    def _indices(self, genomes: np.ndarray):
        from .encodings import _check_genomes

        g = _check_genomes(self.cfg, np.atleast_2d(genomes))
        n, s = self.cfg.num_slots, self.cfg.num_stages
        k, e, d = g[:, :n], g[:, n:2 * n], g[:, 2 * n:2 * n + s]
        r, w = g[:, 2 * n + s], g[:, 2 * n + s + 1]
        depths = np.asarray(self.cfg.depths)[d]                                   # [P, S]
        j = np.tile(np.arange(self.cfg.max_depth), s)                            # [N]
        stage = np.repeat(np.arange(s), self.cfg.max_depth)                      # [N]
        active = j[None, :] < depths[:, stage]                                    # [P, N]
        return k, e, r, w, active

    def costs(self, genomes: np.ndarray) -> Costs:
        """MACs and params of every genome in ``genomes`` (``[P, L]`` choice indices)."""
        k, e, r, w, active = self._indices(genomes)
        slots = np.arange(self.cfg.num_slots)[None, :]
        block_m = self.block_macs[slots, w[:, None], k, e, r[:, None]]
        block_p = self.block_params[slots, w[:, None], k, e]
        macs = self.base_macs[w, r] + (block_m * active).sum(1)
        params = self.base_params[w] + (block_p * active).sum(1)
        return Costs(macs=macs, params=params)

    def macs(self, arch: Arch) -> int:
        from .encodings import arch_to_genome

        return int(self.costs(arch_to_genome(self.cfg, arch)[None]).macs[0])

    def params(self, arch: Arch) -> int:
        from .encodings import arch_to_genome

        return int(self.costs(arch_to_genome(self.cfg, arch)[None]).params[0])

    def min_max_macs(self) -> tuple[int, int]:
        """MACs of the smallest and the largest subnet (budget sanity checks)."""
        from .spaces.arch import max_arch, min_arch

        return self.macs(min_arch(self.cfg)), self.macs(max_arch(self.cfg))


# MACs per output element NAT's count charges an activation: h-swish is x * relu6(x + 3) / 6,
# one multiply; ReLU is free; Mish ran as an opaque autograd function the tracer did not see.
_NAT_ACT_COST = {"relu": 0, "hswish": 1, "mish": 0}


# --------------------------------------------------------------------------------------------
# measured with hooks (reference implementation for tests and for arbitrary modules)
# --------------------------------------------------------------------------------------------
def measure_macs(model: nn.Module, input_size: Sequence[int] | int, in_chans: int = 3) -> int:
    """MACs of one forward pass at batch size 1 under OFA's convention, counted by hooks.

    Every ``nn.Conv2d`` adds ``C_in / groups * k_h * k_w * H_out * W_out * C_out`` and every
    ``nn.Linear`` adds ``in * out`` per output row. Works on any module built from those layers.
    """
    import torch
    import torch.nn as nn

    if isinstance(input_size, int):
        input_size = (input_size, input_size)
    total = 0

    def conv_hook(m: nn.Conv2d, _inp, out):
        nonlocal total
        kh, kw = m.kernel_size
        total += m.in_channels // m.groups * kh * kw * out.shape[2] * out.shape[3] * m.out_channels

    def linear_hook(m: nn.Linear, _inp, out):
        nonlocal total
        total += m.in_features * m.out_features * (out.numel() // out.shape[-1])

    handles = []
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            handles.append(m.register_forward_hook(conv_hook))
        elif isinstance(m, nn.Linear):
            handles.append(m.register_forward_hook(linear_hook))
    was_training = model.training
    try:
        model.eval()
        p = next(model.parameters())
        with torch.no_grad():
            model(torch.zeros(1, in_chans, *input_size, dtype=p.dtype, device=p.device))
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
    return total


def count_params(model: nn.Module, trainable_only: bool = False) -> int:
    """Number of parameters (BN scale/shift included, running statistics not)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


def costs_of(cfg: OFAMobileNetV3Config, archs: Iterable[Arch], convention: Convention = "ofa") -> Costs:
    """Convenience: costs of a list of archs (builds a :class:`CostModel`)."""
    from .encodings import archs_to_genomes

    return CostModel(cfg, convention).costs(archs_to_genomes(cfg, list(archs)))
