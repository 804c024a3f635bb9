"""Search-space presets as data: the YAML files in ``search_spaces/``, validated by pydantic.

A preset says what the elastic network is (stage widths, strides, activations, SE) and what can
change (kernel sizes, expand ratios, depths, width multipliers, resolutions). Everything that
builds, encodes or costs a network of the space reads the same :class:`OFAMobileNetV3Config`.
"""

from __future__ import annotations

import functools
import os
from importlib import resources
from pathlib import Path
from typing import Any, Literal, Mapping, Union

from pydantic import Field, field_validator, model_validator

from ..config import ConfigError, StrictModel, load_preset

def make_divisible(value: float, divisor: int = 8, min_value: int | None = None, round_limit: float = 0.9) -> int:
    """Round ``value`` to a multiple of ``divisor``, never more than 10 % below it.

    The channel rule of MobileNet / OFA and timm's ``timm.layers.make_divisible`` (the tests check
    they agree). Defined here so a space config is costed without importing timm or torch.
    """
    min_value = min_value or divisor
    rounded = max(min_value, int(value + divisor / 2) // divisor * divisor)
    return int(rounded + divisor if rounded < round_limit * value else rounded)


__all__ = [
    "make_divisible",
    "OFAMobileNetV3Config",
    "StageConfig",
    "list_presets",
    "load_space_config",
    "preset_dirs",
]

Act = Literal["relu", "hswish", "mish"]


class StemConfig(StrictModel):
    channels: int = Field(gt=0)
    kernel: int = Field(default=3, gt=0)
    stride: Literal[1, 2] = 2
    act: Act = "hswish"


class FirstBlockConfig(StrictModel):
    """The fixed depthwise-separable block after the stem (expand 1, never elastic, as in OFA)."""

    channels: int = Field(gt=0)
    kernel: int = Field(default=3, gt=0)
    act: Act = "relu"
    se: bool = False


class StageConfig(StrictModel):
    channels: int = Field(gt=0)
    stride: Literal[1, 2]
    act: Act
    se: bool


class ResolutionRange(StrictModel):
    min: int = Field(gt=0)
    max: int = Field(gt=0)
    step: int = Field(gt=0)

    @model_validator(mode="after")
    def _ordered(self) -> "ResolutionRange":
        if self.max < self.min:
            raise ValueError(f"max ({self.max}) must be >= min ({self.min})")
        return self

    def values(self) -> tuple[int, ...]:
        return tuple(range(self.min, self.max + 1, self.step))


class BNConfig(StrictModel):
    eps: float = Field(default=1e-5, gt=0)
    momentum: float = Field(default=0.1, gt=0, le=1)


def _sorted_unique(values: list, field: str) -> tuple:
    if len(values) == 0:
        raise ValueError(f"{field} needs at least one value")
    if len(set(values)) != len(values):
        raise ValueError(f"{field} has duplicates: {values}")
    return tuple(sorted(values))


class OFAMobileNetV3Config(StrictModel):
    """An OFA-style elastic MobileNetV3 space (see ``docs/spaces.md`` for every field)."""

    name: str
    family: Literal["ofa_mobilenetv3"] = "ofa_mobilenetv3"
    description: str = ""
    in_chans: int = Field(default=3, gt=0)
    num_classes: int = Field(default=1000, gt=0)
    stem: StemConfig
    first_block: FirstBlockConfig
    stages: tuple[StageConfig, ...] = Field(min_length=1)
    final_expand: int = Field(gt=0)
    head: int = Field(gt=0)
    head_act: Act = "hswish"
    kernel_sizes: tuple[int, ...]
    expand_ratios: tuple[Union[int, float], ...]
    depths: tuple[int, ...]
    width_mults: tuple[float, ...] = (1.0,)
    resolutions: tuple[int, ...]
    dropout: float = Field(default=0.1, ge=0, lt=1)
    se_ratio: float = Field(default=0.25, gt=0, le=1)
    channel_divisor: int = Field(default=8, gt=0)
    bn: BNConfig = BNConfig()

    @field_validator("channel_divisor")
    @classmethod
    def _divisor(cls, v):
        # static subnets use timm blocks, whose expanded widths are rounded to multiples of 8
        if v % 8:
            raise ValueError(f"channel_divisor must be a multiple of 8 (8, 16, ...), got {v}")
        return v

    @field_validator("kernel_sizes")
    @classmethod
    def _kernels(cls, v):
        v = _sorted_unique(list(v), "kernel_sizes")
        bad = [k for k in v if k < 1 or k % 2 == 0]
        if bad:
            raise ValueError(f"kernel sizes must be odd and positive, got {bad}")
        return v

    @field_validator("expand_ratios")
    @classmethod
    def _expands(cls, v):
        v = _sorted_unique([int(e) if float(e).is_integer() else float(e) for e in v], "expand_ratios")
        if any(e <= 0 for e in v):
            raise ValueError(f"expand ratios must be positive, got {list(v)}")
        return v

    @field_validator("depths")
    @classmethod
    def _depths(cls, v):
        v = _sorted_unique(list(v), "depths")
        if v[0] < 1:
            raise ValueError(f"depths must be >= 1, got {list(v)}")
        return v

    @field_validator("width_mults")
    @classmethod
    def _widths(cls, v):
        v = _sorted_unique([float(w) for w in v], "width_mults")
        if v[0] <= 0:
            raise ValueError(f"width multipliers must be positive, got {list(v)}")
        return v

    @field_validator("resolutions", mode="before")
    @classmethod
    def _resolutions(cls, v):
        if isinstance(v, Mapping):
            v = ResolutionRange.model_validate(v).values()
        v = _sorted_unique(list(v), "resolutions")
        if any(int(r) != r or r <= 0 for r in v):
            raise ValueError(f"resolutions must be positive integers, got {list(v)}")
        return tuple(int(r) for r in v)

    # ---- derived structure ------------------------------------------------------------------
    @property
    def num_stages(self) -> int:
        return len(self.stages)

    @property
    def max_depth(self) -> int:
        return self.depths[-1]

    @property
    def num_slots(self) -> int:
        """Elastic block positions: ``num_stages * max_depth`` (OFA: 5 x 4 = 20)."""
        return self.num_stages * self.max_depth

    def divisible(self, channels: float) -> int:
        return make_divisible(channels, self.channel_divisor)

    def scaled(self, channels: int, width: float) -> int:
        """Channels of a layer with base width ``channels`` at width multiplier ``width``."""
        return self.divisible(channels * width)

    def mid_channels(self, in_channels: int, expand: float) -> int:
        """Expanded channels of an inverted bottleneck, as OFA computes them."""
        return self.divisible(round(in_channels * expand))

    def se_channels(self, channels: int) -> int:
        return self.divisible(channels * self.se_ratio)

    @functools.cached_property
    def layout(self) -> "SpaceLayout":
        return SpaceLayout(self)


class SpaceLayout:
    """Channel counts and feature-map sizes per width / resolution, precomputed once per config."""

    def __init__(self, cfg: OFAMobileNetV3Config):
        self.cfg = cfg
        self.stage_strides = tuple(s.stride for s in cfg.stages)

    def widths(self, width: float) -> dict[str, Any]:
        """Channels of every layer at width multiplier ``width``."""
        c = self.cfg
        return {
            "stem": c.scaled(c.stem.channels, width),
            "first": c.scaled(c.first_block.channels, width),
            "stages": tuple(c.scaled(s.channels, width) for s in c.stages),
            "final_expand": c.scaled(c.final_expand, width),
            "head": c.scaled(c.head, width),
        }

    def max_widths(self) -> dict[str, Any]:
        return self.widths(max(self.cfg.width_mults))

    def block_in_out(self, width: float, stage: int, index: int) -> tuple[int, int]:
        w = self.widths(width)
        out = w["stages"][stage]
        if index > 0:
            return out, out
        return (w["first"] if stage == 0 else w["stages"][stage - 1]), out

    def feature_sizes(self, resolution: int) -> dict[str, Any]:
        """Input size (H = W) of the stem, first block, each stage's first block, and the head.

        "Same" padding: every stride-s layer maps H to ceil(H / s).
        """
        def down(h: int, s: int) -> int:
            return -(-h // s)

        h = resolution
        sizes: dict[str, Any] = {"stem_in": h}
        h = down(h, self.cfg.stem.stride)
        sizes["first_in"] = h
        stage_in = []
        for s in self.stage_strides:
            stage_in.append(h)
            h = down(h, s)
        sizes["stage_in"] = tuple(stage_in)
        sizes["head_in"] = h
        return sizes


# --------------------------------------------------------------------------------------------
# presets
# --------------------------------------------------------------------------------------------
def preset_dirs() -> list[Path]:
    """Folders searched for ``<name>.yml`` presets, in order.

    ``NNI_EAS_SEARCH_SPACES`` (``os.pathsep``-separated) first, then the repository's
    ``search_spaces/`` (source checkouts and editable installs), then the copy shipped inside
    the installed package.
    """
    dirs: list[Path] = []
    env = os.environ.get("NNI_EAS_SEARCH_SPACES")
    if env:
        dirs += [Path(p) for p in env.split(os.pathsep) if p]
    repo = Path(__file__).resolve().parents[2] / "search_spaces"
    if repo.is_dir():
        dirs.append(repo)
    try:
        shipped = Path(str(resources.files("nni_eas") / "search_spaces"))
        if shipped.is_dir() and shipped not in dirs:
            dirs.append(shipped)
    except (ModuleNotFoundError, TypeError):  # pragma: no cover - exotic importers
        pass
    return dirs


def list_presets() -> list[str]:
    """Names of every available preset (file stems in :func:`preset_dirs`)."""
    names: set[str] = set()
    for d in preset_dirs():
        names.update(p.stem for p in d.glob("*.yml"))
    return sorted(names)


def _find_preset(name: str) -> Path:
    for d in preset_dirs():
        p = d / f"{name}.yml"
        if p.is_file():
            return p
    raise ConfigError(
        f"unknown search-space preset {name!r}; available presets: {', '.join(list_presets())} "
        f"(searched {', '.join(str(d) for d in preset_dirs())}), or pass a path to a .yml file"
    )


SpaceLike = Union[str, os.PathLike, Mapping[str, Any], OFAMobileNetV3Config]


def load_space_config(space: SpaceLike = "ofa_mbv3_small", **overrides: Any) -> OFAMobileNetV3Config:
    """Load a preset by name, a YAML path, or a mapping; ``overrides`` replace top-level keys.

    >>> cfg = load_space_config("ofa_mbv3_small", num_classes=10)
    """
    return load_preset(OFAMobileNetV3Config, space, _find_preset, "space config", **overrides)
