"""The Once-for-All elastic MobileNetV3 supernet and the static subnets extracted from it.

``OFAMobileNetV3`` holds the weights of every subnet of a space (:mod:`nni_eas.spaces.config`);
``set_active(arch)`` selects one, ``extract(arch)`` copies it out as a :class:`MobileNetV3Subnet`,
a plain PyTorch module made of timm's static blocks with no elastic code inside, and
:func:`to_timm` rebuilds the same network through timm's own ``MobileNetV3`` builder.

Both networks keep timm's state-dict keys; the supernet keeps them too, so extraction is: for
every key of the subnet, slice the supernet tensor to the subnet's shape (channels are prefixes)
except depthwise kernels, which go through the kernel-transform matrices.
"""

from __future__ import annotations

from functools import partial
from typing import Any, Iterator, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F
from timm.layers import create_act_layer, get_act_layer, make_divisible
from timm.models._efficientnet_blocks import (
    ConvBnAct,
    DepthwiseSeparableConv,
    InvertedResidual,
    SqueezeExcite,
)

from .arch import Arch, iter_blocks, max_arch, min_arch, sample_arch, validate_arch
from .config import OFAMobileNetV3Config, SpaceLike, load_space_config
from .dynamic import (
    DynamicBatchNorm2d,
    DynamicConv2d,
    DynamicConvBnAct,
    DynamicDepthwiseConv2d,
    DynamicDepthwiseSeparable,
    DynamicInvertedResidual,
    DynamicLinear,
    act_layer,
)

__all__ = ["OFAMobileNetV3", "MobileNetV3Subnet", "build_subnet", "to_timm", "timm_arch_def"]


def _se_layer(cfg: OFAMobileNetV3Config) -> Any:
    """timm SqueezeExcite configured as OFA's: ReLU inside, hard-sigmoid gate, rounded width."""
    return partial(
        SqueezeExcite,
        rd_ratio=cfg.se_ratio,
        gate_layer="hard_sigmoid",
        force_act_layer=nn.ReLU,
        rd_round_fn=partial(make_divisible, divisor=cfg.channel_divisor),
    )


class OFAMobileNetV3(nn.Module):
    """Elastic MobileNetV3 supernet (OFA): kernel, expand, depth, width, resolution.

    Args:
        config: preset name (``search_spaces/<name>.yml``), YAML path, mapping or config object.
        num_classes: overrides the preset's ``num_classes``.
        kernel_transform: use OFA's kernel-transform matrices (default) or plain centre crops.
        **overrides: other top-level preset keys to override.
    """

    def __init__(self, config: SpaceLike = "ofa_mbv3_small", num_classes: int | None = None,
                 kernel_transform: bool = True, **overrides: Any):
        super().__init__()
        if num_classes is not None:
            overrides["num_classes"] = num_classes
        cfg = self.config = load_space_config(config, **overrides)
        mw = cfg.layout.max_widths()
        se = cfg.se_channels
        self.conv_stem = DynamicConv2d(cfg.in_chans, mw["stem"], cfg.stem.kernel, cfg.stem.stride)
        self.bn1 = DynamicBatchNorm2d(mw["stem"])
        self.act1 = create_act_layer(act_layer(cfg.stem.act), inplace=True)

        fb = cfg.first_block
        first = DynamicDepthwiseSeparable(
            mw["stem"], mw["first"], fb.kernel, 1, fb.act, se if fb.se else None,
            has_skip=cfg.stem.channels == fb.channels,
        )
        stages = [nn.ModuleList([first])]
        for s, stage in enumerate(cfg.stages):
            blocks = []
            for j in range(cfg.max_depth):
                max_in = (mw["first"] if s == 0 else mw["stages"][s - 1]) if j == 0 else mw["stages"][s]
                block = DynamicInvertedResidual(
                    max_in, mw["stages"][s], cfg.kernel_sizes, cfg.expand_ratios,
                    stride=stage.stride if j == 0 else 1, act=stage.act,
                    se_channels=se if stage.se else None, has_skip=j > 0, mid_channels=cfg.mid_channels,
                )
                if not kernel_transform:
                    block.conv_dw = DynamicDepthwiseConv2d(block.conv_dw.weight.shape[0], cfg.kernel_sizes,
                                                           block.stride, transform=False)
                blocks.append(block)
            stages.append(nn.ModuleList(blocks))
        stages.append(nn.ModuleList([DynamicConvBnAct(mw["stages"][-1], mw["final_expand"], 1, 1, cfg.head_act)]))
        self.blocks = nn.ModuleList(stages)
        self.conv_head = DynamicConv2d(mw["final_expand"], mw["head"], 1)
        self.act2 = create_act_layer(act_layer(cfg.head_act), inplace=True)
        self.dropout = nn.Dropout(cfg.dropout)
        self.classifier = DynamicLinear(mw["head"], cfg.num_classes)
        for m in self.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.eps, m.momentum = cfg.bn.eps, cfg.bn.momentum
        self.active_arch: Arch = max_arch(cfg)
        self.set_active(self.active_arch)

    # ---- choosing a subnet ----------------------------------------------------------------
    def stage_blocks(self, stage: int) -> nn.ModuleList:
        return self.blocks[stage + 1]

    def elastic_blocks(self) -> Iterator[DynamicInvertedResidual]:
        for s in range(self.config.num_stages):
            yield from self.stage_blocks(s)

    def set_active(self, arch: Arch | dict, validate: bool = True) -> Arch:
        """Make ``forward`` run ``arch``. Returns the arch as an :class:`Arch`."""
        cfg = self.config
        arch = validate_arch(cfg, arch) if validate or not isinstance(arch, Arch) else arch
        widths = cfg.layout.widths(arch.w)
        self.conv_stem.active_out = widths["stem"]
        self.blocks[0][0].active_out = widths["first"]
        for s, blocks in enumerate(self.blocks[1:-1]):
            for j, block in enumerate(blocks):
                slot = s * cfg.max_depth + j
                block.active_kernel, block.active_expand = arch.ks[slot], arch.e[slot]
                block.active_out = widths["stages"][s]
        self.blocks[-1][0].active_out = widths["final_expand"]
        self.conv_head.active_out = widths["head"]
        self.active_arch = arch
        return arch

    def sample_active(self, rng=None) -> Arch:
        """Activate a uniformly random subnet and return it."""
        return self.set_active(sample_arch(self.config, rng), validate=False)

    def set_max(self) -> Arch:
        return self.set_active(max_arch(self.config), validate=False)

    def set_min(self) -> Arch:
        return self.set_active(min_arch(self.config), validate=False)

    # ---- forward ----------------------------------------------------------------------------
    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.act1(self.bn1(self.conv_stem(x)))
        x = self.blocks[0][0](x)
        for s, depth in enumerate(self.active_arch.d):
            for block in self.blocks[s + 1][:depth]:
                x = block(x)
        return self.blocks[-1][0](x)

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        x = self.act2(self.conv_head(x.mean((2, 3), keepdim=True))).flatten(1)
        return x if pre_logits else self.classifier(self.dropout(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Run the active subnet on ``x`` as given (resize inputs with :func:`resize_input`)."""
        return self.forward_head(self.forward_features(x))

    # ---- channel sorting --------------------------------------------------------------------
    @torch.no_grad()
    def sort_channels(self, expand_ratios: Sequence[float] | None = None) -> None:
        """Reorder every block's middle channels by importance (OFA's ``re_organize_middle_weights``).

        ``expand_ratios``: the ratios already trained; their channel prefixes are kept as sets
        (see :meth:`DynamicInvertedResidual.sort_channels`). The network function is unchanged.
        """
        cfg = self.config
        w = max(cfg.width_mults)
        for s, blocks in enumerate(self.blocks[1:-1]):
            for j, block in enumerate(blocks):
                in_ch = cfg.layout.block_in_out(w, s, j)[0]
                groups = sorted({cfg.mid_channels(in_ch, e) for e in (expand_ratios or ())})
                block.sort_channels(groups)

    # ---- extraction ---------------------------------------------------------------------------
    @torch.no_grad()
    def extract(self, arch: Arch | dict | None = None, resize_input: bool = False) -> "MobileNetV3Subnet":
        """A static copy of ``arch`` (default: the active one) with inherited weights.

        Nothing elastic remains: depthwise kernels are materialised through the transforms,
        channels are sliced, unused blocks dropped. ``resize_input`` makes the subnet resize
        its input to the arch resolution first (used when NNI freezes the space).
        """
        arch = self.active_arch if arch is None else validate_arch(self.config, arch)
        with torch.device("meta"):
            subnet = MobileNetV3Subnet(self.config, arch, resize_input=resize_input)
        source = self.state_dict()
        # assign tensors module by module (cheaper than load_state_dict for a fresh meta model)
        for prefix, module in subnet.named_modules():
            for tensors, wrap in ((module._parameters, nn.Parameter), (module._buffers, None)):
                for name, target in list(tensors.items()):
                    if target is None:
                        continue
                    key = f"{prefix}.{name}" if prefix else name
                    if key.endswith("conv_dw.weight"):
                        value = self.get_submodule(prefix).kernel_weight(target.shape[0], target.shape[-1])
                    else:
                        value = source[key]
                        if value.dim():
                            value = value[tuple(slice(0, n) for n in target.shape)]
                    value = value.detach().clone()
                    tensors[name] = wrap(value, requires_grad=target.requires_grad) if wrap else value
        return subnet.train(self.training)


class MobileNetV3Subnet(nn.Module):
    """A static MobileNetV3 of one architecture, made of timm blocks (timm state-dict keys).

    Built directly from the arch (``build_subnet``) or extracted from a supernet. ``arch`` and
    ``config`` are kept as attributes so the model knows what it is (resolution, classes).
    """

    def __init__(self, config: OFAMobileNetV3Config, arch: Arch, num_classes: int | None = None,
                 resize_input: bool = False):
        super().__init__()
        cfg = self.config = config
        self.arch = arch = validate_arch(cfg, arch)
        self.resize_input = resize_input
        self.num_classes = num_classes or cfg.num_classes
        self.task_classes: tuple[int, ...] | None = None  # set by restrict_classes()
        widths = cfg.layout.widths(arch.w)
        bn = partial(nn.BatchNorm2d, eps=cfg.bn.eps, momentum=cfg.bn.momentum)
        se_layer = _se_layer(cfg)
        act = lambda name: get_act_layer(act_layer(name))  # noqa: E731

        self.conv_stem = nn.Conv2d(cfg.in_chans, widths["stem"], cfg.stem.kernel, cfg.stem.stride,
                                   cfg.stem.kernel // 2, bias=False)
        self.bn1 = bn(widths["stem"])
        self.act1 = create_act_layer(act_layer(cfg.stem.act), inplace=True)
        fb = cfg.first_block
        stages = [nn.Sequential(DepthwiseSeparableConv(
            widths["stem"], widths["first"], fb.kernel, 1, act_layer=act(fb.act), norm_layer=bn,
            se_layer=se_layer if fb.se else None, noskip=cfg.stem.channels != fb.channels,
        ))]
        blocks: list[list[nn.Module]] = [[] for _ in cfg.stages]
        for s, j, slot in iter_blocks(cfg, arch):
            stage = cfg.stages[s]
            in_ch, out_ch = cfg.layout.block_in_out(arch.w, s, j)
            mid = cfg.mid_channels(in_ch, arch.e[slot])
            # exp_ratio = mid / in: timm's make_divisible(in * exp_ratio) then gives exactly mid
            blocks[s].append(InvertedResidual(
                in_ch, out_ch, arch.ks[slot], stage.stride if j == 0 else 1, exp_ratio=mid / in_ch,
                act_layer=act(stage.act), norm_layer=bn, se_layer=se_layer if stage.se else None,
                noskip=j == 0,
            ))
        stages += [nn.Sequential(*b) for b in blocks]
        stages.append(nn.Sequential(ConvBnAct(widths["stages"][-1], widths["final_expand"], 1,
                                              act_layer=act(cfg.head_act), norm_layer=bn)))
        self.blocks = nn.Sequential(*stages)
        self.global_pool = nn.AdaptiveAvgPool2d(1)
        self.conv_head = nn.Conv2d(widths["final_expand"], widths["head"], 1, bias=False)
        self.act2 = create_act_layer(act_layer(cfg.head_act), inplace=True)
        self.flatten = nn.Flatten(1)
        self.dropout = nn.Dropout(cfg.dropout)
        self.classifier = nn.Linear(widths["head"], self.num_classes)

    @property
    def resolution(self) -> int:
        return self.arch.r

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        if self.resize_input:
            x = resize_input(x, self.arch.r)
        return self.blocks(self.act1(self.bn1(self.conv_stem(x))))

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        x = self.flatten(self.act2(self.conv_head(self.global_pool(x))))
        return x if pre_logits else self.classifier(self.dropout(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))

    @torch.no_grad()
    def restrict_classes(self, classes: Sequence[int]) -> "MobileNetV3Subnet":
        """Keep only the logits of ``classes`` (a task), in the given order, in place.

        The classifier becomes a ``len(classes)``-way linear layer made of the selected rows, so
        the deployed model costs less and outputs exactly the task's classes.
        """
        classes = [int(c) for c in classes]
        if not classes or len(set(classes)) != len(classes) or not all(0 <= c < self.num_classes for c in classes):
            raise ValueError(f"classes must be distinct indices in 0..{self.num_classes - 1}, got {classes}")
        old = self.classifier
        new = nn.Linear(old.in_features, len(classes), bias=old.bias is not None,
                        device=old.weight.device, dtype=old.weight.dtype)
        index = torch.as_tensor(classes, device=old.weight.device)
        new.weight.copy_(old.weight[index])
        if old.bias is not None:
            new.bias.copy_(old.bias[index])
        self.classifier = new
        self.num_classes = len(classes)
        self.task_classes = tuple(classes)
        return self


def resize_input(x: torch.Tensor, resolution: int) -> torch.Tensor:
    """Bilinear resize of a batch to ``resolution`` (no-op when it already has that size)."""
    if x.shape[-1] == resolution and x.shape[-2] == resolution:
        return x
    antialias = x.shape[-1] > resolution
    return F.interpolate(x, size=(resolution, resolution), mode="bilinear", align_corners=False, antialias=antialias)


def build_subnet(config: SpaceLike, arch: Arch | dict, num_classes: int | None = None) -> MobileNetV3Subnet:
    """A freshly initialised static subnet of ``arch`` (no supernet needed)."""
    cfg = load_space_config(config) if not isinstance(config, OFAMobileNetV3Config) else config
    return MobileNetV3Subnet(cfg, validate_arch(cfg, arch), num_classes=num_classes)


# --------------------------------------------------------------------------------------------
# timm
# --------------------------------------------------------------------------------------------
def timm_arch_def(config: OFAMobileNetV3Config, arch: Arch) -> list[list[str]]:
    """timm block strings (``ir_r1_k5_s2_e4_c40_se0.25_nre``) describing ``arch``.

    Expand ratios are written as ``mid / in`` so timm's ``make_divisible(in * e)`` recovers
    exactly the expanded width OFA computes.
    """
    cfg = config
    arch = validate_arch(cfg, arch)
    widths = cfg.layout.widths(arch.w)
    fb = cfg.first_block
    if any(a not in ("relu", cfg.head_act) for a in [fb.act] + [s.act for s in cfg.stages]):
        raise ValueError("timm block strings express ReLU or the model activation only; "
                         f"space {cfg.name!r} mixes other activations")
    relu = lambda a: "_nre" if a == "relu" and cfg.head_act != "relu" else ""  # noqa: E731
    se = lambda on: f"_se{cfg.se_ratio}" if on else ""  # noqa: E731
    noskip = "_noskip" if cfg.stem.channels != fb.channels else ""
    arch_def = [[f"ds_r1_k{fb.kernel}_s1_e1_c{widths['first']}{se(fb.se)}{relu(fb.act)}{noskip}"]]
    stages: list[list[str]] = [[] for _ in cfg.stages]
    for s, j, slot in iter_blocks(cfg, arch):
        stage = cfg.stages[s]
        in_ch, out_ch = cfg.layout.block_in_out(arch.w, s, j)
        mid = cfg.mid_channels(in_ch, arch.e[slot])
        stride = stage.stride if j == 0 else 1
        stages[s].append(f"ir_r1_k{arch.ks[slot]}_s{stride}_e{mid / in_ch!r}_c{out_ch}{se(stage.se)}{relu(stage.act)}")
    arch_def += stages
    arch_def.append([f"cn_r1_k1_s1_c{widths['final_expand']}"])
    return arch_def


def to_timm(model: MobileNetV3Subnet | OFAMobileNetV3, arch: Arch | dict | None = None) -> nn.Module:
    """The same network as a timm ``MobileNetV3`` built by timm's own builder, weights copied.

    Accepts a static subnet, or a supernet plus an arch (extracted first). The result works with
    timm's tooling (``timm.data.resolve_data_config``, fine-tuning scripts, ``model.pretrained_cfg``).
    timm's stem is always stride 2; presets with a stride-1 stem get it set after construction.
    """
    from timm.models._efficientnet_builder import decode_arch_def
    from timm.models.mobilenetv3 import MobileNetV3

    if isinstance(model, OFAMobileNetV3):
        model = model.extract(arch)
    cfg, arch = model.config, model.arch
    widths = cfg.layout.widths(arch.w)
    with torch.device("meta"):
        net = MobileNetV3(
            block_args=decode_arch_def(timm_arch_def(cfg, arch)),
            num_classes=model.num_classes,
            in_chans=cfg.in_chans,
            stem_size=widths["stem"],
            fix_stem=True,
            num_features=widths["head"],
            head_bias=False,
            act_layer=get_act_layer(act_layer(cfg.head_act)),
            norm_layer=partial(nn.BatchNorm2d, eps=cfg.bn.eps, momentum=cfg.bn.momentum),
            se_layer=_se_layer(cfg),
            round_chs_fn=lambda c: int(c),
            drop_rate=cfg.dropout,
        )
    if cfg.stem.stride != 2 or cfg.stem.kernel != 3:
        net.conv_stem = nn.Conv2d(cfg.in_chans, widths["stem"], cfg.stem.kernel, cfg.stem.stride,
                                  cfg.stem.kernel // 2, bias=False, device="meta")
    if cfg.stem.act != cfg.head_act:  # timm uses the model activation for the stem and the head
        net.bn1.act = create_act_layer(act_layer(cfg.stem.act), inplace=True)
    state = {k: v.detach().clone() for k, v in model.state_dict().items() if not k.startswith("global_pool")}
    net.load_state_dict(state, assign=True)
    net.pretrained_cfg = {
        "input_size": (cfg.in_chans, arch.r, arch.r),
        "num_classes": model.num_classes,
        "architecture": "mobilenetv3",
        "nni_eas_space": cfg.name,
        "nni_eas_arch": arch.to_dict(),
    }
    return net.train(model.training)
