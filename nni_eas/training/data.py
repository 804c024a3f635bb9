"""Data for supernet training: seeded shuffling, optional unlabeled stream, calibration images.

Shuffling draws from a generator seeded by (seed, epoch) (``SeededRandomSampler``; Lightning
calls ``set_epoch``), so an epoch's batches do not depend on how the run got there: resuming
from an epoch-end checkpoint replays the same batches.
"""

from __future__ import annotations

from typing import Iterator, Optional, Sequence

import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, Dataset, Sampler, Subset

from .recipe import DataConfig, SemiSupervisedConfig

__all__ = ["SeededRandomSampler", "SupernetDataModule"]


class SeededRandomSampler(Sampler[int]):
    """A random permutation per epoch that depends only on ``(seed, epoch)``."""

    def __init__(self, length: int, seed: int = 0):
        self.length, self.seed, self.epoch = length, seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self) -> Iterator[int]:
        g = torch.Generator().manual_seed(self.seed * 100_003 + self.epoch)
        return iter(torch.randperm(self.length, generator=g).tolist())

    def __len__(self) -> int:
        return self.length


class SupernetDataModule(pl.LightningDataModule):
    """Train / val loaders for a dataset of :mod:`nni_eas.data`, or for given datasets.

    With ``semi_supervised.enabled`` only ``labeled_fraction`` of the training labels are used
    and the train loader yields ``{"labeled": (x, y), "unlabeled": (x, y)}`` batches.
    """

    def __init__(self, data: DataConfig | dict | None = None, batch_size: int = 64, seed: int = 0,
                 semi_supervised: SemiSupervisedConfig | None = None, in_chans: int = 3,
                 train: Optional[Dataset] = None, val: Optional[Dataset] = None,
                 classes: Optional[Sequence[str]] = None):
        super().__init__()
        self.data = data if isinstance(data, DataConfig) else DataConfig.model_validate(data or {})
        self.batch_size, self.seed, self.in_chans = batch_size, seed, in_chans
        self.ssl = semi_supervised or SemiSupervisedConfig()
        self.train_set, self.val_set = train, val
        self._classes = list(classes) if classes is not None else None
        self.labeled_set: Optional[Dataset] = None
        self.unlabeled_set: Optional[Dataset] = None
        self._limited = False

    # ---- datasets ---------------------------------------------------------------------------
    def setup(self, stage: Optional[str] = None) -> None:
        if self.train_set is None:
            from ..data import load_dataset

            d = self.data
            kwargs = dict(root=d.root, resolution=d.resolution, channels=self.in_chans, val_fraction=d.val_split)
            self.train_set = load_dataset(d.dataset, "train", **kwargs)
            self.val_set = load_dataset(d.dataset, "val", **kwargs)
            self._classes = list(self.train_set.classes)
        if not self._limited:  # setup() runs more than once (our callers, then Lightning)
            if self.data.limit_train:
                self.train_set = Subset(self.train_set, range(min(self.data.limit_train, len(self.train_set))))
            if self.data.limit_val and self.val_set is not None:
                self.val_set = Subset(self.val_set, range(min(self.data.limit_val, len(self.val_set))))
            self._limited = True
        if self.ssl.enabled and self.labeled_set is None:
            self.labeled_set, self.unlabeled_set = _split(self.train_set, self.ssl.labeled_fraction, self.seed)

    @property
    def classes(self) -> list[str]:
        if self._classes is None:
            self.setup()
        if self._classes is None:
            raise RuntimeError("class names unknown: pass classes= with explicit datasets")
        return self._classes

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    # ---- loaders ----------------------------------------------------------------------------
    def _loader(self, ds: Dataset, batch_size: int, seed_offset: int = 0) -> DataLoader:
        return DataLoader(ds, batch_size=batch_size, sampler=SeededRandomSampler(len(ds), self.seed + seed_offset),
                          drop_last=len(ds) >= batch_size, num_workers=self.data.num_workers)

    def train_dataloader(self):
        if not self.ssl.enabled:
            return self._loader(self.train_set, self.batch_size)
        from pytorch_lightning.utilities import CombinedLoader

        return CombinedLoader({
            "labeled": self._loader(self.labeled_set, self.batch_size),
            "unlabeled": self._loader(self.unlabeled_set, self.batch_size * self.ssl.unlabeled_ratio, seed_offset=1),
        }, mode="max_size_cycle")

    def val_dataloader(self):
        return DataLoader(self.val_set, batch_size=max(256, self.batch_size), num_workers=self.data.num_workers)

    def calibration_data(self, images: int) -> tuple[torch.Tensor, torch.Tensor]:
        """The first ``images`` training images (labeled part), unaugmented: BN recalibration."""
        source = self.labeled_set if self.ssl.enabled else self.train_set
        n = min(images, len(source))
        xs, ys = zip(*(source[i] for i in range(n)))
        return torch.stack(xs), torch.as_tensor(ys)


def _split(ds: Dataset, fraction: float, seed: int) -> tuple[Subset, Subset]:
    """Stratified labeled / unlabeled split (by label), deterministic in ``seed``."""
    labels = torch.as_tensor([int(ds[i][1]) for i in range(len(ds))])
    g = torch.Generator().manual_seed(seed)
    labeled, unlabeled = [], []
    for c in labels.unique().tolist():
        idx = torch.nonzero(labels == c).flatten()
        idx = idx[torch.randperm(len(idx), generator=g)]
        k = max(1, round(fraction * len(idx)))
        labeled += idx[:k].tolist()
        unlabeled += idx[k:].tolist()
    return Subset(ds, sorted(labeled)), Subset(ds, sorted(unlabeled))
