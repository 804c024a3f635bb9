"""Datasets and tasks: decoded image arrays with deterministic splits, and subsets of classes.

``load_dataset(name, split)`` returns an :class:`ArrayDataset` (uint8 images in memory, served as
normalised float tensors at any resolution); ``Task``/``TaskSampler``/``TaskDataset`` describe and
sample subsets of classes. The Lightning :class:`ClassificationDataModule` is imported lazily, so
``import nni_eas.data`` does not import Lightning.
"""

from __future__ import annotations

from typing import Any

from .datasets import (
    SPLITS,
    ArrayDataset,
    DatasetCacheWarning,
    DatasetFormatError,
    DatasetNotFoundError,
    available_datasets,
    convert_channels,
    data_roots,
    dataset_spec,
    default_cache_dir,
    default_data_home,
    load_dataset,
    stratified_split,
)
from .tasks import Task, TaskDataset, TaskSampler, labeled_unlabeled_split

__all__ = [
    "SPLITS",
    "ArrayDataset",
    "ClassificationDataModule",
    "DatasetCacheWarning",
    "DatasetFormatError",
    "DatasetNotFoundError",
    "Task",
    "TaskDataset",
    "TaskSampler",
    "available_datasets",
    "convert_channels",
    "data_roots",
    "dataset_spec",
    "default_cache_dir",
    "default_data_home",
    "labeled_unlabeled_split",
    "load_dataset",
    "stratified_split",
]


def __getattr__(name: str) -> Any:
    if name == "ClassificationDataModule":
        from .module import ClassificationDataModule

        return ClassificationDataModule
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
