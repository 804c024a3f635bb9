"""The RepNAS network: a plain stack of diverse branch blocks, a global pool and a linear head.

One builder (:class:`RepNASNet`) serves every form of the network: the search supernet (every
candidate branch, masks switched by the search), a searched net (only the chosen branches:
:meth:`RepNASNet.select`), the all-branches DBB and plain-conv baselines (``branches=``), and the
deployed net (:meth:`RepNASNet.fuse`: one ``Conv2d`` + activation per layer).

Branch choices are plain data: a *sample* maps ``branches_<i>`` to the list of branch names layer
``i`` keeps (the same dict NNI's :class:`~nni_eas.spaces.repnas.RepNASSpace` produces).
"""

from __future__ import annotations

import copy
from typing import Any, Mapping, Sequence

import torch
import torch.nn as nn

from ..config import ConfigError
from ..spaces.dbb import SPATIAL_BRANCHES, DiverseBranchBlock, fuse
from .config import RepNASConfig, SpaceLike, load_repnas_config

__all__ = ["RepNASNet", "layer_label", "validate_sample"]

Sample = Mapping[str, Sequence[str]]


def layer_label(index: int) -> str:
    """The sample key of layer ``index``'s branch choice."""
    return f"branches_{index}"


def validate_sample(config: RepNASConfig, sample: Sample, check_budget: bool = True) -> list[tuple[str, ...]]:
    """Per-layer branch lists of ``sample``, in canonical order; errors name the label and allowed values.

    A sample lists every branch a layer runs, its always-on ones included. ``check_budget`` also
    requires the space's always-on branches in every layer, at most ``config.budget_k``
    searchable branches in all, and per layer at least ``min_branches_per_layer`` branches and
    ``min_spatial_branches`` spatial ones.
    """
    out = []
    for i, layer in enumerate(config.layers):
        label = layer_label(i)
        if label not in sample:
            raise ConfigError(f"sample: missing {label!r}; a sample has one key per layer: "
                              f"branches_0 .. branches_{config.num_layers - 1}")
        chosen = list(sample[label])
        bad = [b for b in chosen if b not in layer.branches]
        if bad:
            raise ConfigError(f"sample: {label}: {bad[0]!r} is not a branch of layer {i}; "
                              f"allowed values: {list(layer.branches)}")
        if len(set(chosen)) != len(chosen):
            raise ConfigError(f"sample: {label}: duplicates in {chosen}")
        if check_budget:
            missing = [b for b in layer.always_on if b not in chosen]
            if missing:
                raise ConfigError(f"sample: {label}: misses {missing[0]!r}, which always_on keeps in every layer")
            if len(chosen) < config.min_branches_per_layer:
                raise ConfigError(f"sample: {label}: keeps {len(chosen)} branches; "
                                  f"min_branches_per_layer is {config.min_branches_per_layer}")
            spatial = sum(b in SPATIAL_BRANCHES for b in chosen)
            if spatial < config.min_spatial_branches:
                raise ConfigError(f"sample: {label}: keeps {spatial} spatial branches (wider than 1x1: "
                                  f"{', '.join(SPATIAL_BRANCHES)}); min_spatial_branches is "
                                  f"{config.min_spatial_branches}")
        out.append(tuple(b for b in layer.branches if b in chosen))
    extra = sorted(set(sample) - {layer_label(i) for i in range(config.num_layers)})
    if extra:
        raise ConfigError(f"sample: unknown key {extra[0]!r}; allowed keys: branches_0 .. "
                          f"branches_{config.num_layers - 1}")
    searched = sum(len([b for b in bs if b not in layer.always_on]) for bs, layer in zip(out, config.layers))
    if check_budget and searched > config.budget_k:
        raise ConfigError(f"sample: keeps {searched} searchable layer-branches, over the budget of "
                          f"{config.budget_k} ({config.budget:.0%} of {config.num_searchable}; always_on "
                          f"{list(config.always_on)} not counted)")
    return out


class RepNASNet(nn.Module):
    """Diverse branch blocks in RepVGG-style stages, global average pool, dropout, linear classifier.

    Args:
        config: preset name (``search_spaces/repnas_*.yml``), YAML path, mapping or config.
        num_classes: overrides the preset's number of classes.
        branches: which branches each layer *has*: ``None`` (every candidate: the supernet),
            a sample (``{'branches_<i>': [...]}``), a per-layer list, or one list for every layer
            (e.g. ``['conv_kxk']`` for a plain conv net; ``identity`` is dropped where shapes differ).
        **overrides: other top-level preset keys.
    """

    def __init__(self, config: SpaceLike = "repnas_small", num_classes: int | None = None,
                 branches: Sample | Sequence[Sequence[str]] | Sequence[str] | None = None, **overrides: Any):
        super().__init__()
        if num_classes is not None:
            overrides["num_classes"] = num_classes
        cfg = self.config = load_repnas_config(config, **overrides)
        per_layer = self._per_layer(cfg, branches)
        self.features = nn.Sequential(*[
            DiverseBranchBlock(layer.in_chs, layer.out_chs, cfg.kernel_size, layer.stride, layer.groups,
                               branches=chosen, act_layer=cfg.act, bn_eps=cfg.bn.eps, bn_momentum=cfg.bn.momentum)
            for layer, chosen in zip(cfg.layers, per_layer)
        ])
        self.global_pool = nn.AdaptiveAvgPool2d(1)
        self.flatten = nn.Flatten(1)
        self.drop = nn.Dropout(cfg.dropout)
        self.classifier = nn.Linear(cfg.width, cfg.num_classes)

    @staticmethod
    def _per_layer(cfg: RepNASConfig, branches) -> list[tuple[str, ...]]:
        if branches is None:
            return [layer.branches for layer in cfg.layers]
        if isinstance(branches, Mapping):
            return validate_sample(cfg, branches, check_budget=False)
        branches = list(branches)
        if branches and all(isinstance(b, str) for b in branches):  # one list for every layer
            bad = [b for b in branches if b not in cfg.branches]
            if bad:
                raise ConfigError(f"branches: {bad[0]!r} is not a candidate of this space; "
                                  f"allowed values: {list(cfg.branches)}")
            return [tuple(b for b in layer.branches if b in branches) for layer in cfg.layers]
        if len(branches) != cfg.num_layers:
            raise ConfigError(f"branches: needs one list per layer ({cfg.num_layers}), got {len(branches)}")
        return validate_sample(cfg, {layer_label(i): b for i, b in enumerate(branches)}, check_budget=False)

    # ---- structure ---------------------------------------------------------------------------
    @property
    def blocks(self) -> list[DiverseBranchBlock]:
        return [m for m in self.features if isinstance(m, DiverseBranchBlock)]

    def sample(self) -> dict[str, list[str]]:
        """The branches each layer currently runs (its mask), as a sample."""
        return {layer_label(i): list(b.active_branches) for i, b in enumerate(self.blocks)}

    def set_sample(self, sample: Sample) -> None:
        """Switch branches on/off so that each layer runs exactly the sample's branches."""
        per_layer = validate_sample(self.config, sample, check_budget=False)
        for i, (block, chosen) in enumerate(zip(self.blocks, per_layer)):
            missing = [b for b in chosen if b not in block.branch_names]
            if missing:
                raise ConfigError(f"sample: {layer_label(i)}: this net has no {missing[0]!r} branch in layer {i}; "
                                  f"allowed values: {list(block.branch_names)}")
            block.set_mask([n in chosen for n in block.branch_names])

    def select(self, sample: Sample | None = None) -> "RepNASNet":
        """A new net with only the sample's branches (default: the active ones), weights copied."""
        sample = self.sample() if sample is None else sample
        net = RepNASNet(self.config, branches=sample)
        own = self.state_dict()
        state = {k: own[k] for k in net.state_dict() if k in own and not k.endswith(".mask")}
        net.load_state_dict(state, strict=False)
        return net.train(self.training)

    def fuse(self) -> nn.Module:
        """Deploy form: every layer one ``Conv2d`` + activation (eval-mode semantics)."""
        return fuse(copy.deepcopy(self).eval(), inplace=True)

    def reset_bn(self) -> None:
        """Forget BN running statistics (after the branch mask changes, as RepNAS does)."""
        for m in self.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                m.reset_running_stats()

    # ---- forward -----------------------------------------------------------------------------
    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)

    def forward_head(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.drop(self.flatten(self.global_pool(x))))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))
