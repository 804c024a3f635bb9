"""RepNAS: search which diverse branches each layer keeps, train them, fuse each layer into one conv.

NNI-free core (the NNI adapters are :mod:`nni_eas.spaces.repnas` and
:mod:`nni_eas.strategies.repnas`):

* :mod:`.config`: the branch space (:class:`RepNASConfig`, presets ``search_spaces/repnas_*.yml``)
  and the training recipe (:class:`RepNASRecipe`);
* :mod:`.net`: :class:`RepNASNet`, the network in every form (supernet, searched, baselines, fused);
* :mod:`.search`: :class:`BranchSearch`, importance + logistic noise + global top-k + straight-through;
* :mod:`.module`: :class:`RepNASModule`, the Lightning module running warm-up / search / retrain;
* :mod:`.deploy`: ONNX export, op counts, onnxruntime latency;
* :mod:`.trial`: the ``nnictl`` trial (``python -m nni_eas.repnas.trial``).

Lightning is imported lazily (``RepNASModule``, ``run_repnas``).
"""

from __future__ import annotations

from typing import Any

from .config import (
    RepNASConfig,
    RepNASRecipe,
    budget_size,
    list_repnas_presets,
    load_recipe,
    load_repnas_config,
)
from .net import RepNASNet, layer_label, validate_sample
from .search import BranchSearch, logistic_noise, straight_through, topk_mask

__all__ = [
    "BranchSearch",
    "RepNASConfig",
    "RepNASModule",
    "RepNASNet",
    "RepNASRecipe",
    "budget_size",
    "layer_label",
    "list_repnas_presets",
    "load_recipe",
    "load_repnas_config",
    "logistic_noise",
    "run_repnas",
    "straight_through",
    "topk_mask",
    "validate_sample",
]

_LAZY = {"RepNASModule": "module", "make_search": "module", "run_repnas": "trial"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
