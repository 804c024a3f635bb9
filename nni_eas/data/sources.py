"""What each dataset is, from ``sources.yml``: names, classes, statistics, splits, where files may be.

Reading this needs no torch, so configs that name a dataset or its classes are checked before
anything heavy is imported (``nni_eas.preflight``); :mod:`nni_eas.data.datasets` reads the files.
"""

from __future__ import annotations

import functools
from importlib import resources
from typing import Any, Literal

from pydantic import Field, model_validator

from ..config import ConfigError, StrictModel, load_yaml, validate

__all__ = ["DatasetSpec", "SourceSpec", "SplitSpec", "available_datasets", "dataset_spec", "dataset_classes",
           "check_dataset"]




class SplitSpec(StrictModel):
    kind: Literal["native", "stratified", "per_class"]
    test_fraction: float | None = Field(default=None, gt=0, lt=1)
    train_per_class: int | None = Field(default=None, gt=0)

    @model_validator(mode="after")
    def _needs_its_parameter(self) -> "SplitSpec":
        if self.kind == "stratified" and self.test_fraction is None:
            raise ValueError("split kind 'stratified' needs test_fraction")
        if self.kind == "per_class" and self.train_per_class is None:
            raise ValueError("split kind 'per_class' needs train_per_class")
        return self


class SourceSpec(StrictModel):
    format: str
    paths: list[str]
    cache: bool = False


class DownloadSpec(StrictModel):
    method: Literal["torchvision", "archive"]
    dataset: str | None = None  # torchvision.datasets class name (method: torchvision)
    args: dict[str, Any] = Field(default_factory=dict)
    url: str | None = None  # method: archive
    md5: str | None = None
    subdir: str | None = None

    @model_validator(mode="after")
    def _complete(self) -> "DownloadSpec":
        if self.method == "torchvision" and not self.dataset:
            raise ValueError("download method 'torchvision' needs dataset (a torchvision.datasets class)")
        if self.method == "archive" and not self.url:
            raise ValueError("download method 'archive' needs url")
        return self


class DatasetSpec(StrictModel):
    """One dataset's entry in ``sources.yml``."""

    description: str = ""
    homepage: str | None = None
    classes: list[str] | None
    channels: Literal[1, 3]
    mean: list[float]
    std: list[float]
    resolution: int | None = Field(default=None, gt=0)
    decode_size: int | None = Field(default=None, gt=0)
    images_per_class: int | None = Field(default=None, gt=0)
    split: SplitSpec
    sources: list[SourceSpec] = Field(min_length=1)
    system_roots: list[str] = Field(default_factory=list)
    download: DownloadSpec | None = None
    hint: str = ""

    @model_validator(mode="after")
    def _stats_per_channel(self) -> "DatasetSpec":
        if len(self.mean) != self.channels or len(self.std) != self.channels:
            raise ValueError(f"mean and std need one value per channel ({self.channels})")
        if min(self.std) <= 0:
            raise ValueError("std must be positive")
        return self


class SourceDefaults(StrictModel):
    val_fraction: float = Field(ge=0, lt=1)
    split_seed: int


class SourcesFile(StrictModel):
    format: Literal["nni-eas-sources/1"]
    defaults: SourceDefaults
    datasets: dict[str, DatasetSpec]


@functools.lru_cache(maxsize=None)
def _sources() -> SourcesFile:
    with resources.as_file(resources.files(__package__) / "sources.yml") as path:
        return validate(SourcesFile, load_yaml(path), source=str(path))


def available_datasets() -> list[str]:
    """Names accepted by :func:`load_dataset`."""
    return list(_sources().datasets)


def _canonical_name(name: str) -> str:
    key = str(name).strip().lower().replace("-", "_")
    if key not in _sources().datasets:
        raise ConfigError(f"unknown dataset {name!r}; allowed: {', '.join(available_datasets())}")
    return key


def dataset_spec(name: str) -> DatasetSpec:
    """The ``sources.yml`` entry of ``name`` (classes, statistics, split, sources)."""
    return _sources().datasets[_canonical_name(name)]


def dataset_classes(name: str) -> list[str] | None:
    """Class names of ``name`` in label order, or ``None`` where they are read from the data (Omniglot)."""
    classes = dataset_spec(name).classes
    return None if classes is None else list(classes)


def check_dataset(name: str, where: str) -> str:
    """``name`` if it is a dataset of ``sources.yml``, else :class:`ConfigError` naming ``where``."""
    names = available_datasets()
    if name not in names:
        raise ConfigError(f"{where}: unknown dataset {name!r}; allowed: {', '.join(names)}")
    return name
