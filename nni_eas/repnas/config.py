"""RepNAS as data: the branch space (``search_spaces/repnas_*.yml``) and the training recipe.

:class:`RepNASConfig` says what the network is (a RepVGG-style plain stack of diverse branch
blocks: stage widths, depths, strides, groups) and what can change: which *extra* branches each
layer keeps besides its ``always_on`` ones (default: the base ``k x k`` conv), under ``budget``
(a fraction of the searchable layer-branches; always-on branches are outside it), with at least
``min_spatial_branches`` branches wider than 1x1 per layer. :class:`RepNASRecipe` says how the
one-shot search trains it (warm-up / search / retrain epochs, learning rates, noise). Both are
validated with :func:`nni_eas.config.validate`, so a bad value fails naming the field and what
is allowed.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any, Literal, Mapping, NamedTuple, Sequence, Union

from pydantic import Field, field_validator, model_validator

from ..config import ConfigError, StrictModel, load_preset, load_yaml, validate
from ..spaces.config import BNConfig, preset_dirs
from ..spaces.dbb import BRANCHES, SPATIAL_BRANCHES, available_branches

__all__ = [
    "RepNASConfig",
    "RepNASRecipe",
    "StageConfig",
    "LayerSpec",
    "BranchName",
    "load_repnas_config",
    "load_recipe",
    "list_repnas_presets",
    "budget_size",
    "forced_picks",
]

BranchName = Literal["conv_kxk", "conv_1x1", "avg_kxk", "conv_1x1_kxk", "conv_1xk", "conv_kx1", "identity"]
Act = Literal["relu", "relu6", "silu", "gelu", "hard_swish", "leaky_relu"]


def budget_size(budget: float, total: int) -> int:
    """Branches kept under a budget: ``round(budget * total)`` (``budget`` is a fraction in (0, 1])."""
    return int(math.floor(budget * total + 0.5))


def forced_picks(branches: Sequence[str], always_on: Sequence[str], min_total: int,
                 min_spatial: int) -> tuple[int, int]:
    """Searchable branches a layer must keep beside its always-on ones: ``(in all, of which spatial)``.

    ``min_total`` and ``min_spatial`` count always-on branches too; the result is capped by what
    the layer has (a fixed baseline net may have fewer candidates than the space asks for).
    """
    fixed = [b for b in branches if b in always_on]
    free = [b for b in branches if b not in always_on]
    spatial = min(max(0, min_spatial - sum(b in SPATIAL_BRANCHES for b in fixed)),
                  sum(b in SPATIAL_BRANCHES for b in free))
    return min(max(spatial, min_total - len(fixed)), len(free)), spatial


class StageConfig(StrictModel):
    channels: int = Field(gt=0)
    depth: int = Field(ge=1)
    stride: Literal[1, 2]
    groups: Union[int, Literal["depthwise"]] = Field(
        default=1, description="groups of the stage's layers after the first (the first changes width, stays dense)")

    @field_validator("groups")
    @classmethod
    def _groups(cls, v):
        if isinstance(v, int) and v < 1:
            raise ValueError(f"groups must be a positive integer or 'depthwise', got {v}")
        return v


class LayerSpec(NamedTuple):
    in_chs: int
    out_chs: int
    stride: int
    groups: int
    branches: tuple[str, ...]  # candidate branches of this layer, canonical order
    always_on: tuple[str, ...] = ()  # the candidates every net of the space keeps (outside the budget)
    forced: int = 0  # searchable branches the search must keep here (min_branches_per_layer, min_spatial_branches)
    forced_spatial: int = 0  # ... of which spatial ones (wider than 1x1)

    @property
    def searchable(self) -> tuple[str, ...]:
        """The candidates the search switches on and off (``branches`` less ``always_on``)."""
        return tuple(b for b in self.branches if b not in self.always_on)


class RepNASConfig(StrictModel):
    """A RepNAS branch space: RepVGG-like stages of diverse branch blocks, global pool, linear head."""

    name: str
    family: Literal["repnas"] = "repnas"
    description: str = ""
    in_chans: int = Field(default=3, gt=0)
    num_classes: int = Field(default=1000, gt=0)
    resolution: int = Field(default=224, gt=0, description="input size the preset is meant for (costs, export)")
    kernel_size: int = 3
    branches: tuple[BranchName, ...] = BRANCHES  # type: ignore[assignment]
    stages: tuple[StageConfig, ...] = Field(min_length=1)
    act: Act = "relu"
    dropout: float = Field(default=0.0, ge=0, lt=1)
    bn: BNConfig = BNConfig()
    always_on: tuple[BranchName, ...] = Field(
        default=("conv_kxk",),
        description="branches every layer keeps (where its shape allows), outside the search and the budget")
    budget: float = Field(default=0.34, gt=0, le=1, description="fraction of the searchable layer-branches kept")
    min_branches_per_layer: int = Field(default=1, ge=0, description="branches per layer at least, always-on ones included")
    min_spatial_branches: int = Field(
        default=1, ge=0, description="branches wider than 1x1 per layer at least, always-on ones included")

    @field_validator("kernel_size")
    @classmethod
    def _kernel(cls, v):
        if v < 3 or v % 2 == 0:
            raise ValueError(f"kernel_size must be odd and >= 3 (3, 5, 7, ...), got {v}")
        return v

    @field_validator("branches")
    @classmethod
    def _branches(cls, v):
        if len(v) == 0:
            raise ValueError(f"branches needs at least one of: {', '.join(BRANCHES)}")
        if len(set(v)) != len(v):
            raise ValueError(f"branches has duplicates: {list(v)}")
        return tuple(b for b in BRANCHES if b in v)  # canonical order

    @field_validator("always_on")
    @classmethod
    def _always_on(cls, v):
        if len(set(v)) != len(v):
            raise ValueError(f"always_on has duplicates: {list(v)}")
        return tuple(b for b in BRANCHES if b in v)  # canonical order

    @model_validator(mode="after")
    def _structure(self) -> "RepNASConfig":
        for s, stage in enumerate(self.stages):
            g = stage.channels if stage.groups == "depthwise" else stage.groups
            if stage.depth > 1 and stage.channels % g:
                raise ValueError(f"stages.{s}.groups: {g} does not divide channels {stage.channels}; "
                                 f"allowed: a divisor of {stage.channels} or 'depthwise'")
        stray = [b for b in self.always_on if b not in self.branches]
        if stray:
            raise ValueError(f"always_on: {stray[0]!r} is not one of the branches; allowed values: "
                             f"{', '.join(self.branches)}")
        layers = self.layers
        if any(len(layer.branches) == 0 for layer in layers):
            raise ValueError(f"branches {list(self.branches)} leave a stride-2 or width-changing layer with no "
                             "branch ('identity' alone needs equal shapes); add e.g. 'conv_kxk'")
        most = min(len(layer.branches) for layer in layers)
        if self.min_branches_per_layer > most:
            raise ValueError(f"min_branches_per_layer must be <= {most} (branches of the smallest layer), "
                             f"got {self.min_branches_per_layer}")
        spatial = min(sum(b in SPATIAL_BRANCHES for b in layer.branches) for layer in layers)
        if self.min_spatial_branches > spatial:
            raise ValueError(f"min_spatial_branches must be <= {spatial} (spatial branches of the smallest layer: "
                             f"{', '.join(b for b in self.branches if b in SPATIAL_BRANCHES) or 'none'}), "
                             f"got {self.min_spatial_branches}")
        k, floor, n = self.budget_k, sum(layer.forced for layer in layers), self.num_searchable
        if k < floor:
            lowest = math.ceil((floor - 0.5) / n * 1000) / 1000
            raise ValueError(f"budget {self.budget} keeps {k} of {n} searchable layer-branches, fewer than the "
                             f"{floor} that min_branches_per_layer / min_spatial_branches force beside always_on "
                             f"{list(self.always_on)}; allowed: budget >= {lowest}")
        return self

    # ---- derived structure ------------------------------------------------------------------
    @property
    def layers(self) -> tuple[LayerSpec, ...]:
        """Every layer's shape and candidate branches, in order."""
        out, in_chs = [], self.in_chans
        for stage in self.stages:
            for j in range(stage.depth):
                stride = stage.stride if j == 0 else 1
                groups = 1 if j == 0 else (stage.channels if stage.groups == "depthwise" else stage.groups)
                branches = available_branches(in_chs, stage.channels, stride, self.branches)
                fixed = tuple(b for b in branches if b in self.always_on)
                forced, spatial = forced_picks(branches, fixed, self.min_branches_per_layer, self.min_spatial_branches)
                out.append(LayerSpec(in_chs, stage.channels, stride, groups, branches, fixed, forced, spatial))
                in_chs = stage.channels
        return tuple(out)

    @property
    def num_layers(self) -> int:
        return sum(s.depth for s in self.stages)

    @property
    def num_layer_branches(self) -> int:
        """All (layer, branch) pairs of the supernet, always-on ones included."""
        return sum(len(layer.branches) for layer in self.layers)

    @property
    def num_searchable(self) -> int:
        """The (layer, branch) pairs the search chooses from (always-on ones excluded)."""
        return sum(len(layer.searchable) for layer in self.layers)

    @property
    def num_always_on(self) -> int:
        return sum(len(layer.always_on) for layer in self.layers)

    @property
    def budget_k(self) -> int:
        """Searchable layer-branches kept by the search (exactly); always-on ones come on top."""
        return budget_size(self.budget, self.num_searchable)

    @property
    def width(self) -> int:
        return self.stages[-1].channels


# --------------------------------------------------------------------------------------------
# the training recipe
# --------------------------------------------------------------------------------------------
class RepNASRecipe(StrictModel):
    """How :class:`~nni_eas.repnas.RepNASModule` trains: warm-up, search, retrain (epochs each).

    * warm-up: importance frozen at its initial value (0: every subset equally likely); weights
      train on a fresh uniformly random top-k mask under the budget every step (``warmup_mode:
      random``, default, as the RepNAS code), or with every branch on (``all``).
    * search: importance + logistic noise -> global top-k -> straight-through gates; importance
      trains with Adam (``arch_lr``) beside the weights. ``dense_gradients`` (default) also runs
      the masked-off branches at gate 0, so every importance gets a gradient at every step (the
      RepNAS code only runs the kept ones: ``False``).
    * retrain: the mask is fixed to the top-k importance (exactly the budget), BN statistics
      restart, and the weights the search trained go on training on that mask alone (one-stage,
      as the RepNAS code's fixed epochs); :meth:`RepNASNet.select` + a fresh run retrains the
      searched blocks from scratch instead.

    Always-on branches (the space's ``always_on``, default the ``k x k`` conv) run in every phase.
    """

    warmup_epochs: int = Field(default=1, ge=0)
    search_epochs: int = Field(default=2, ge=0)
    retrain_epochs: int = Field(default=2, ge=0)
    batch_size: int = Field(default=64, gt=0)
    lr: float = Field(default=0.05, gt=0)
    momentum: float = Field(default=0.9, ge=0, lt=1)
    weight_decay: float = Field(default=5e-5, ge=0)
    nesterov: bool = True
    label_smoothing: float = Field(default=0.0, ge=0, lt=1)
    augment: Literal["none", "weak"] = Field(
        default="none", description="training-batch augmentation: none, or weak = random crop (1/8 padding) + flip")
    arch_lr: float = Field(default=0.05, gt=0)
    arch_weight_decay: float = Field(default=0.0, ge=0)
    noise_scale: float = Field(default=1.0, ge=0, description="logistic noise multiplier (0: greedy top-k)")
    tau: float = Field(default=1.0, gt=0, description="temperature of the straight-through sigmoid")
    warmup_mode: Literal["random", "all"] = "random"
    dense_gradients: bool = Field(
        default=True, description="run inactive branches too (gate 0), so every importance gets a gradient")
    reset_bn_on_fix: bool = True
    bn_recalibration_batches: int = Field(
        default=20, ge=0,
        description="training batches that re-estimate BN statistics before validation and at the end (0: off)")
    budget: float | None = Field(default=None, gt=0, le=1, description="overrides the space's budget")
    seed: int = 0

    @property
    def max_epochs(self) -> int:
        return self.warmup_epochs + self.search_epochs + self.retrain_epochs

    def phase(self, epoch: int) -> Literal["warmup", "search", "retrain"]:
        if epoch < self.warmup_epochs:
            return "warmup"
        if epoch < self.warmup_epochs + self.search_epochs:
            return "search"
        return "retrain"


# --------------------------------------------------------------------------------------------
# presets
# --------------------------------------------------------------------------------------------
def list_repnas_presets() -> list[str]:
    """Names of the RepNAS presets (``repnas_*.yml`` in :func:`nni_eas.spaces.config.preset_dirs`)."""
    return sorted({p.stem for d in preset_dirs() for p in d.glob("repnas_*.yml")})


def _find(name: str) -> Path:
    for d in preset_dirs():
        p = d / f"{name}.yml"
        if p.is_file():
            return p
    raise ConfigError(f"unknown RepNAS preset {name!r}; available presets: {', '.join(list_repnas_presets())}, "
                      "or pass a path to a .yml file")


SpaceLike = Union[str, os.PathLike, Mapping[str, Any], RepNASConfig]


def load_repnas_config(space: SpaceLike = "repnas_small", **overrides: Any) -> RepNASConfig:
    """Load a RepNAS preset by name, YAML path or mapping; ``overrides`` replace top-level keys.

    >>> cfg = load_repnas_config("repnas_small", budget=0.5)
    """
    return load_preset(RepNASConfig, space, _find, "RepNAS space config", **overrides)


def load_recipe(recipe: str | os.PathLike | Mapping[str, Any] | RepNASRecipe | None = None,
                **overrides: Any) -> RepNASRecipe:
    """A :class:`RepNASRecipe` from a YAML path, a mapping or defaults; ``overrides`` replace keys."""
    if isinstance(recipe, RepNASRecipe):
        data, source = recipe.model_dump(), "recipe"
    elif recipe is None:
        data, source = {}, "recipe"
    elif isinstance(recipe, Mapping):
        data, source = dict(recipe), "recipe"
    else:
        data, source = load_yaml(recipe), str(recipe)
        if not isinstance(data, Mapping):
            raise ConfigError(f"{source}: a recipe must be a mapping of keys to values")
    return validate(RepNASRecipe, {**data, **overrides}, source)
