"""Supernet training: one elastic supernet trained once, so that every subnet is good without retraining.

Recipes (``search_spaces/recipes/*.yml``) say what to train and how: the subnet-sampling policy
(progressive shrinking, sandwich, uniform) and the losses on top of it (distillation, EAS task
dropout, TOFA semi-supervised consistency). See ``docs/training.md``::

    from nni_eas.training import load_recipe, train_supernet

    result = train_supernet("eas_small_digits", "runs/eas")   # resumable; writes runs/eas/supernet.pt

Imported lazily: ``import nni_eas.training`` pulls in neither Lightning nor NNI.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    # recipes
    "TrainingRecipe", "load_recipe", "list_recipes",
    # subnet sampling
    "SubnetPolicy", "ProgressiveShrinking", "Sandwich", "Uniform", "build_policy", "ofa_phases",
    # losses and augmentation
    "soft_target_loss", "TaskDropout", "KeptClasses", "consistency_loss", "weak_augment", "strong_augment",
    # Lightning
    "SupernetModule", "SupernetDataModule", "SeededRandomSampler",
    "AtomicCheckpointIO", "NNIReportCallback", "CurvesCallback",
    "train_supernet", "TrainResult", "build_trainer",
]

_LAZY = {
    "TrainingRecipe": "recipe", "load_recipe": "recipe", "list_recipes": "recipe",
    "SubnetPolicy": "policies", "ProgressiveShrinking": "policies", "Sandwich": "policies", "Uniform": "policies",
    "build_policy": "policies", "ofa_phases": "policies",
    "soft_target_loss": "losses", "TaskDropout": "losses", "KeptClasses": "losses", "consistency_loss": "losses",
    "weak_augment": "augment", "strong_augment": "augment",
    "SupernetModule": "module",
    "SupernetDataModule": "data", "SeededRandomSampler": "data",
    "AtomicCheckpointIO": "callbacks", "NNIReportCallback": "callbacks", "CurvesCallback": "callbacks",
    "train_supernet": "run", "TrainResult": "run", "build_trainer": "run",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(list(globals()) + __all__)
