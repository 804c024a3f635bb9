"""Datasets and tasks: decoded image arrays with deterministic splits, and subsets of classes.

``load_dataset(name, split)`` returns an :class:`ArrayDataset` (uint8 images in memory, served as
normalised float tensors at any resolution); ``Task``/``TaskSampler``/``TaskDataset`` describe and
sample subsets of classes. The Lightning :class:`ClassificationDataModule` is imported lazily, so
``import nni_eas.data`` does not import Lightning.
"""

from __future__ import annotations

from .._lazy import lazy_exports

_EXPORTS = {
    'SPLITS': 'datasets',
    'ArrayDataset': 'datasets',
    'DatasetCacheWarning': 'datasets',
    'DatasetFormatError': 'datasets',
    'DatasetNotFoundError': 'datasets',
    'convert_channels': 'datasets',
    'data_roots': 'datasets',
    'default_cache_dir': 'datasets',
    'default_data_home': 'datasets',
    'load_dataset': 'datasets',
    'stratified_split': 'datasets',
    'available_datasets': 'sources',
    'dataset_spec': 'sources',
    'dataset_classes': 'sources',
    'Task': 'tasks',
    'TaskDataset': 'datasets',
    'TaskSampler': 'tasks',
    'labeled_unlabeled_split': 'datasets',
    'ClassificationDataModule': 'module',
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
