"""NNI ``Tuner`` adapters for ``nnictl`` experiments (imported lazily: no NNI on ``import``).

``SearchTuner`` drives any search core (:mod:`nni_eas.search.core`); the multi-objective
tuners (``NSGA2Tuner``, ``SMSEMOATuner``, ``NSGA3Tuner``) are thin subclasses. Trials run
``python -m nni_eas.trial``.
"""

from __future__ import annotations

from typing import Any

__all__ = ["SearchTuner", "MultiObjectiveTuner", "NSGA2Tuner", "SMSEMOATuner", "NSGA3Tuner", "NATTuner", "EASTuner", "experiment_params"]

_LAZY = {
    "SearchTuner": "base",
    "experiment_params": "base",
    "MultiObjectiveTuner": "emo",
    "NSGA2Tuner": "emo",
    "SMSEMOATuner": "emo",
    "NSGA3Tuner": "emo",
    "NATTuner": "nat",
    "EASTuner": "eas",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
