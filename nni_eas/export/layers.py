"""The layers a subnet runs, as plain data: what a latency table is keyed by.

A latency lookup table charges a network the sum of its layers' latencies, where a "layer" is
one configuration of a building block at one feature-map size: the stem conv, the first
(depthwise-separable) block, each MBConv block (input size, in/out channels, expanded channels,
kernel, stride, skip, SE, activation), the final 1x1 expansion, the pooled head (global pool +
feature-mix conv) and the classifier. :class:`Layer` describes one; :func:`arch_layers` lists a
subnet's in network order; :func:`block_layer` gives the layer of one block slot for a (kernel,
expand) choice, which is what the vectorised predictor tabulates per slot, exactly as
:class:`nni_eas.costs.CostModel` tabulates MACs.

Feature sizes come from ``cfg.layout.feature_sizes`` ("same" padding, ``ceil(H / stride)``) and
channels from ``cfg.layout.block_in_out`` / ``cfg.mid_channels``, so tables, MACs and the built
modules can never disagree about a block's shape.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Literal, Sequence

from ..spaces.arch import Arch, iter_blocks, validate_arch
from ..spaces.config import OFAMobileNetV3Config

__all__ = ["Layer", "LayerKind", "arch_layers", "block_layer", "fixed_layers", "space_layers"]

LayerKind = Literal["stem", "first", "mbconv", "final_expand", "head", "classifier"]


def _down(h: int, stride: int) -> int:
    return -(-h // stride)


@dataclass(frozen=True)
class Layer:
    """One block configuration at one input size (``h_in`` x ``h_in`` x ``c_in``).

    ``mid`` is the depthwise (expanded) width of ``first``/``mbconv`` blocks; for ``head`` it is
    unused and ``c_in -> c_out`` is final-expand width -> feature width after global pooling.
    """

    kind: LayerKind
    h_in: int
    c_in: int
    h_out: int
    c_out: int
    kernel: int = 1
    stride: int = 1
    mid: int = 0
    expand: float = 1
    skip: bool = False
    se: bool = False
    act: str = ""

    @property
    def structure(self) -> tuple:
        """Everything but the spatial size: one exported module serves every input size."""
        return (self.kind, self.c_in, self.c_out, self.kernel, self.stride, self.mid, self.skip, self.se, self.act)


def block_layer(cfg: OFAMobileNetV3Config, width: float, resolution: int, stage: int, index: int,
                kernel: int, expand: float) -> Layer:
    """The MBConv layer at block ``index`` of ``stage`` for a (kernel, expand) choice."""
    st = cfg.stages[stage]
    cin, cout = cfg.layout.block_in_out(width, stage, index)
    stage_in = cfg.layout.feature_sizes(resolution)["stage_in"][stage]
    stride = st.stride if index == 0 else 1
    h_in = stage_in if index == 0 else _down(stage_in, st.stride)
    return Layer("mbconv", h_in, cin, _down(h_in, stride), cout, kernel=kernel, stride=stride,
                 mid=cfg.mid_channels(cin, expand), expand=expand, skip=index > 0, se=st.se, act=st.act)


def fixed_layers(cfg: OFAMobileNetV3Config, width: float, resolution: int,
                 num_classes: int | None = None) -> tuple[list[Layer], list[Layer]]:
    """The layers every subnet has: ``(before the blocks, after the blocks)``."""
    w = cfg.layout.widths(width)
    sz = cfg.layout.feature_sizes(resolution)
    h1, hf = sz["first_in"], sz["head_in"]
    fb = cfg.first_block
    before = [
        Layer("stem", resolution, cfg.in_chans, h1, w["stem"], kernel=cfg.stem.kernel, stride=cfg.stem.stride,
              act=cfg.stem.act),
        Layer("first", h1, w["stem"], h1, w["first"], kernel=fb.kernel, stride=1, mid=w["stem"], expand=1,
              skip=cfg.stem.channels == fb.channels, se=fb.se, act=fb.act),
    ]
    after = [
        Layer("final_expand", hf, w["stages"][-1], hf, w["final_expand"], act=cfg.head_act),
        Layer("head", hf, w["final_expand"], 1, w["head"], act=cfg.head_act),
        Layer("classifier", 1, w["head"], 1, num_classes or cfg.num_classes),
    ]
    return before, after


def arch_layers(cfg: OFAMobileNetV3Config, arch: Arch, num_classes: int | None = None) -> list[Layer]:
    """Every layer ``arch`` runs, in network order."""
    arch = validate_arch(cfg, arch)
    before, after = fixed_layers(cfg, arch.w, arch.r, num_classes)
    blocks = [block_layer(cfg, arch.w, arch.r, s, j, arch.ks[slot], arch.e[slot]) for s, j, slot in iter_blocks(cfg, arch)]
    return before + blocks + after


def space_layers(cfg: OFAMobileNetV3Config, resolutions: Iterable[int] | None = None,
                 widths: Sequence[float] | None = None, num_classes: int | None = None) -> dict[int, list[Layer]]:
    """Every distinct layer of the space, per resolution (what a table for the space measures).

    Blocks 1..3 of a stage share one configuration, so a 5 x 4 space has 5 x 2 x 9 MBConv
    layers per width and resolution, plus 5 fixed ones.
    """
    out: dict[int, list[Layer]] = {}
    for r in (cfg.resolutions if resolutions is None else resolutions):
        seen: dict[Layer, None] = {}
        for w in (cfg.width_mults if widths is None else widths):
            before, after = fixed_layers(cfg, w, r, num_classes)
            for layer in before:
                seen.setdefault(layer)
            for s in range(cfg.num_stages):
                for j in range(min(2, cfg.max_depth)):
                    for k in cfg.kernel_sizes:
                        for e in cfg.expand_ratios:
                            seen.setdefault(block_layer(cfg, w, r, s, j, k, e))
            for layer in after:
                seen.setdefault(layer)
        out[int(r)] = list(seen)
    return out
