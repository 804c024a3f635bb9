"""Lightning DataModule over :func:`~nni_eas.data.load_dataset`, optionally restricted to a task.

Training recipes name a dataset and a resolution; this module turns that into the three
dataloaders Lightning asks for, with the same deterministic splits as the rest of nni-eas (so a
model's "val" accuracy means the same images in a recipe, a search and a test).
"""

from __future__ import annotations

from typing import Callable, Sequence, Union

import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, Dataset

from ..config import ConfigError
from .datasets import ArrayDataset, PathLike, Roots, load_dataset
from .datasets import TaskDataset
from .tasks import Task

__all__ = ["ClassificationDataModule"]

TaskLike = Union[Task, Sequence[int], Sequence[str], None]


class ClassificationDataModule(pl.LightningDataModule):
    """``train``/``val``/``test`` loaders of one dataset at one resolution.

    ``task`` restricts every split to a subset of classes (labels renumbered ``0..k-1``); it may be
    a :class:`Task`, class indices, or class names. ``val_split`` is the share of each class of the
    train pool held out for validation (default: ``sources.yml``). ``train_transform`` is applied to
    training images only (float tensors, after normalisation). Shuffling is seeded by ``seed``.
    """

    def __init__(self, dataset: str = "digits", *, resolution: int | None = None, channels: int | None = None,
                 batch_size: int = 64, eval_batch_size: int | None = None, num_workers: int = 0,
                 task: TaskLike = None, root: Roots = None, download: bool = False, val_split: float | None = None,
                 cache_dir: PathLike | None = None, decode_size: int | None = None,
                 train_transform: Callable[[torch.Tensor], torch.Tensor] | None = None,
                 pin_memory: bool = False, drop_last: bool = False, seed: int = 0):
        super().__init__()
        if batch_size < 1:
            raise ConfigError(f"batch_size: must be >= 1, got {batch_size}")
        if num_workers < 0:
            raise ConfigError(f"num_workers: must be >= 0, got {num_workers}")
        self.dataset_name = dataset
        self.resolution = resolution
        self.channels = channels
        self.batch_size = batch_size
        self.eval_batch_size = eval_batch_size or batch_size
        self.num_workers = num_workers
        self.task_spec = task
        self.root = root
        self.download = download
        self.val_split = val_split
        self.cache_dir = cache_dir
        self.decode_size = decode_size
        self.train_transform = train_transform
        self.pin_memory = pin_memory
        self.drop_last = drop_last
        self.seed = seed
        self.task: Task | None = None
        self.datasets: dict[str, Dataset] = {}
        self._full_classes: list[str] | None = None

    # ---- Lightning hooks
    def _load(self, split: str, *, download: bool = False) -> ArrayDataset:
        return load_dataset(self.dataset_name, split, root=self.root, resolution=self.resolution,
                            channels=self.channels, download=download, cache_dir=self.cache_dir,
                            decode_size=self.decode_size, val_fraction=self.val_split,
                            transform=self.train_transform if split == "train" else None)

    def prepare_data(self) -> None:
        """Download (once, on one process) and build the decoded-array caches."""
        if self.download:
            for split in ("train", "test"):
                self._load(split, download=True)

    def setup(self, stage: str | None = None) -> None:
        wanted = {"fit": ("train", "val"), "validate": ("val",), "test": ("test",), "predict": ("test",)}
        for split in wanted.get(stage or "", ("train", "val", "test")):
            if split not in self.datasets:
                self.datasets[split] = self._restrict(self._load(split))

    def _restrict(self, data: ArrayDataset) -> Dataset:
        self._full_classes = data.classes
        if self.task_spec is None:
            return data
        if self.task is None:
            self.task = self._resolve_task(self.task_spec, data.classes)
        return TaskDataset(data, self.task)

    @staticmethod
    def _resolve_task(task: TaskLike, class_names: Sequence[str]) -> Task:
        if isinstance(task, Task):
            return task.validate(len(class_names))
        items = list(task or [])
        if items and all(isinstance(t, str) for t in items):
            return Task.from_names(items, class_names)
        return Task(tuple(items), num_classes=len(class_names))

    # ---- facts (after setup)
    def _require_setup(self) -> None:
        if self._full_classes is None:
            raise RuntimeError("ClassificationDataModule: call setup() (or use it in a Trainer) before asking for classes")

    @property
    def classes(self) -> list[str]:
        """Class names of the labels the loaders yield (the task's classes, in task order)."""
        self._require_setup()
        assert self._full_classes is not None
        return self.task.names(self._full_classes) if self.task is not None else list(self._full_classes)

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    # ---- loaders
    def _split(self, split: str) -> Dataset:
        if split not in self.datasets:
            self.setup({"train": "fit", "val": "validate", "test": "test"}[split])
        return self.datasets[split]

    def _loader(self, split: str, *, train: bool) -> DataLoader:
        return DataLoader(self._split(split), batch_size=self.batch_size if train else self.eval_batch_size,
                          shuffle=train, drop_last=self.drop_last and train, num_workers=self.num_workers,
                          pin_memory=self.pin_memory, persistent_workers=self.num_workers > 0,
                          generator=torch.Generator().manual_seed(self.seed) if train else None)

    def train_dataloader(self) -> DataLoader:
        return self._loader("train", train=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader("val", train=False)

    def test_dataloader(self) -> DataLoader:
        return self._loader("test", train=False)

    def predict_dataloader(self) -> DataLoader:
        return self._loader("test", train=False)
