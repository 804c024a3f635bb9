"""Training recipes as data: ``search_spaces/recipes/*.yml``, validated here.

A recipe names the space, the data, the subnet-sampling policy (progressive shrinking, sandwich,
uniform), the losses that ride on top (distillation, task dropout, semi-supervised consistency)
and the optimiser / schedule (timm's). Everything the training loop does comes from here.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal, Mapping, Optional, Union

from pydantic import Field, model_validator

from ..config import ConfigError, StrictModel, load_yaml, validate
from ..spaces.config import preset_dirs

__all__ = [
    "TrainingRecipe",
    "PhaseConfig",
    "ProgressiveShrinkingConfig",
    "SandwichConfig",
    "UniformConfig",
    "load_recipe",
    "list_recipes",
    "OFA_PHASE_EPOCHS",
]

ElasticDim = Literal["kernel", "expand", "depth", "width", "resolution"]

# OFA's progressive-shrinking schedule (train_ofa_net.py): epochs per phase on ImageNet.
OFA_PHASE_EPOCHS = {"full": 180, "kernel": 120, "depth_1": 25, "depth_2": 120, "expand_1": 25, "expand_2": 120}


class PhaseConfig(StrictModel):
    """One phase of progressive shrinking: which dimensions are elastic, and how far."""

    name: str
    epochs: int = Field(gt=0)
    # allowed values per elastic dimension; a dimension not listed is held at its maximum
    # (resolution is sampled from the whole space in every phase unless listed)
    choices: dict[ElasticDim, list[Union[int, float]]] = Field(default_factory=dict)
    subnets: int = Field(default=1, gt=0, description="subnets sampled per training step")
    lr: Optional[float] = Field(default=None, gt=0, description="peak learning rate of this phase")
    sort_channels: bool = False


class ProgressiveShrinkingConfig(StrictModel):
    kind: Literal["progressive_shrinking"] = "progressive_shrinking"
    phases: Optional[list[PhaseConfig]] = None
    # used when `phases` is omitted: OFA's schedule, each phase's epochs scaled by this factor
    epoch_scale: float = Field(default=1.0, gt=0)
    distill: bool = True


class SandwichConfig(StrictModel):
    """BigNAS / AttentiveNAS sandwich rule: largest, smallest and N random subnets per step."""

    kind: Literal["sandwich"] = "sandwich"
    epochs: int = Field(gt=0)
    num_random: int = Field(default=2, ge=0)
    distill: bool = True  # in-place distillation from the largest subnet


class UniformConfig(StrictModel):
    """Single-path uniform sampling (SPOS / NNI RandomOneShot): N random subnets per step."""

    kind: Literal["uniform"] = "uniform"
    epochs: int = Field(gt=0)
    subnets: int = Field(default=1, gt=0)


class OptimizerConfig(StrictModel):
    name: str = "sgd"  # any timm.optim.create_optimizer_v2 name
    lr: float = Field(default=0.05, gt=0)
    weight_decay: float = Field(default=3e-5, ge=0)
    momentum: float = Field(default=0.9, ge=0, lt=1)
    nesterov: bool = True


class SchedulerConfig(StrictModel):
    name: str = "cosine"  # any timm.scheduler.create_scheduler_v2 name
    warmup_epochs: int = Field(default=0, ge=0)
    warmup_lr: float = Field(default=1e-4, ge=0)
    min_lr: float = Field(default=0.0, ge=0)


class DistillConfig(StrictModel):
    ratio: float = Field(default=1.0, ge=0)
    temperature: float = Field(default=1.0, gt=0)


class TaskDropoutConfig(StrictModel):
    """EAS task dropout: per batch, drop a random subset of classes (or super-classes)."""

    rate: float = Field(default=0.0, ge=0, lt=1, description="probability that a class (group) is dropped")
    min_kept: int = Field(default=2, ge=1)
    # null: single classes; a list of lists: super-classes (class ids per group)
    groups: Optional[list[list[int]]] = None


class SemiSupervisedConfig(StrictModel):
    """TOFA-style consistency on unlabeled data (pseudo-labels from weak views, strong views trained)."""

    enabled: bool = False
    labeled_fraction: float = Field(default=0.1, gt=0, le=1)
    threshold: float = Field(default=0.95, ge=0, le=1)
    weight: float = Field(default=1.0, ge=0)
    unlabeled_ratio: int = Field(default=1, ge=1, description="unlabeled batch size / labeled batch size")


class AugmentConfig(StrictModel):
    crop_padding: float = Field(default=0.125, ge=0, lt=1, description="random-crop padding, fraction of the image")
    padding_mode: Literal["zeros", "replicate"] = "zeros"  # replicate: no grey frame on small images
    flip: bool = True  # off for data whose mirror image is another class (digits, text)


class EmaConfig(StrictModel):
    enabled: bool = False
    decay: float = Field(default=0.9998, gt=0, lt=1)


class DataConfig(StrictModel):
    dataset: str = "digits"
    resolution: int = Field(default=32, gt=0, description="size the images are loaded at (max of the space)")
    root: Optional[str] = None
    val_split: Optional[float] = Field(default=None, gt=0, lt=1,
                                       description="share of each class held out for validation (default: the dataset's)")
    limit_train: Optional[int] = Field(default=None, gt=0, description="use only the first N training images (tests, smoke runs)")
    limit_val: Optional[int] = Field(default=None, gt=0, description="use only the first N validation images")
    num_workers: int = Field(default=0, ge=0)


class TrainingRecipe(StrictModel):
    name: str
    description: str = ""
    space: Union[str, dict[str, Any]] = "ofa_mbv3_small"
    space_overrides: dict[str, Any] = Field(default_factory=dict)
    data: DataConfig = DataConfig()
    policy: Union[ProgressiveShrinkingConfig, SandwichConfig, UniformConfig] = Field(discriminator="kind")
    batch_size: int = Field(default=64, gt=0)
    optimizer: OptimizerConfig = OptimizerConfig()
    scheduler: SchedulerConfig = SchedulerConfig()
    label_smoothing: float = Field(default=0.1, ge=0, lt=1)
    distill: DistillConfig = DistillConfig()
    task_dropout: TaskDropoutConfig = TaskDropoutConfig()
    semi_supervised: SemiSupervisedConfig = SemiSupervisedConfig()
    augment: AugmentConfig = AugmentConfig()
    ema: EmaConfig = EmaConfig()
    grad_clip: Optional[float] = Field(default=None, gt=0)
    # BigNAS / timm: residual blocks start as identities (last BN's gamma = 0); applied to untrained supernets only
    zero_init_last_bn: bool = True
    bn_calibration_images: int = Field(default=500, gt=0)
    val_every_n_epochs: int = Field(default=1, gt=0)
    seed: int = 0

    @model_validator(mode="after")
    def _checks(self) -> "TrainingRecipe":
        if self.semi_supervised.enabled and self.task_dropout.rate > 0:
            raise ValueError("task_dropout and semi_supervised cannot be combined (unlabeled images have no class to drop)")
        return self


# --------------------------------------------------------------------------------------------
def recipe_dirs() -> list[Path]:
    return [d / "recipes" for d in preset_dirs() if (d / "recipes").is_dir()]


def list_recipes() -> list[str]:
    return sorted({p.stem for d in recipe_dirs() for p in d.glob("*.yml")})


def load_recipe(recipe: Union[str, os.PathLike, Mapping[str, Any], TrainingRecipe], **overrides: Any) -> TrainingRecipe:
    """A recipe by name (``search_spaces/recipes/<name>.yml``), path, mapping or object.

    ``overrides`` replace top-level keys; nested keys with ``"a.b": value``
    (e.g. ``load_recipe("ofa_small_digits", **{"policy.epoch_scale": 0.1})``).
    """
    if isinstance(recipe, TrainingRecipe):
        data, source = recipe.model_dump(), f"recipe {recipe.name!r}"
    elif isinstance(recipe, Mapping):
        data, source = dict(recipe), "recipe"
    else:
        text = os.fspath(recipe)
        if text.endswith((".yml", ".yaml")) or os.sep in text:
            path = Path(text)
        else:
            path = next((d / f"{text}.yml" for d in recipe_dirs() if (d / f"{text}.yml").is_file()), None)
            if path is None:
                raise ConfigError(f"unknown training recipe {text!r}; available recipes: {', '.join(list_recipes())}")
        data, source = load_yaml(path), str(path)
        if not isinstance(data, Mapping):
            raise ConfigError(f"{source}: a recipe must be a mapping of keys to values")
    data = _apply_overrides(dict(data), overrides, source)
    return validate(TrainingRecipe, data, source)


def _apply_overrides(data: dict, overrides: Mapping[str, Any], source: str) -> dict:
    for key, value in overrides.items():
        parts = key.split(".")
        node = data
        for part in parts[:-1]:
            child = node.get(part)
            if child is None:
                child = node[part] = {}
            elif not isinstance(child, dict):
                raise ConfigError(f"{source}: cannot override {key!r}: {part!r} is not a mapping")
            else:
                child = node[part] = dict(child)
            node = child
        node[parts[-1]] = value
    return data
