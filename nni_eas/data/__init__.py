"""Datasets and tasks: decoded image arrays with deterministic splits, and subsets of classes.

``load_dataset(name, split)`` returns an :class:`ArrayDataset` (uint8 images in memory, served as
normalised float tensors at any resolution); ``Task``/``TaskSampler``/``TaskDataset`` describe and
sample subsets of classes. The Lightning :class:`ClassificationDataModule` is imported lazily, so
``import nni_eas.data`` does not import Lightning.
"""

from __future__ import annotations

from .._lazy import lazy_exports

__all__, __getattr__, __dir__ = lazy_exports(__name__, {
    'datasets': ('SPLITS', 'ArrayDataset', 'DatasetCacheWarning', 'DatasetFormatError',
                 'DatasetNotFoundError', 'convert_channels', 'data_roots', 'default_cache_dir',
                 'default_data_home', 'load_dataset', 'stratified_split', 'TaskDataset',
                 'labeled_unlabeled_split'),
    'sources': ('available_datasets', 'dataset_spec', 'dataset_classes',),
    'tasks': ('Task', 'TaskSampler',),
    'module': ('ClassificationDataModule',),
})
