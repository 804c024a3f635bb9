"""NNI ``Strategy`` adapters for ``NasExperiment``: thin wrappers around the NNI-free algorithms.

Imported lazily, so ``import nni_eas.strategies`` does not import NNI or Lightning.
"""

from __future__ import annotations

from typing import Any

__all__ = ["EAS", "NAT", "RepNAS", "MultiObjectiveStrategy", "NSGA2", "NSGA3", "SMSEMOA", "SearchStrategy", "subnet_evaluator",
           "SupernetTraining", "ProgressiveShrinkingTraining", "SandwichTraining", "UniformTraining",
           "supernet_evaluator"]

_LAZY = {
    "RepNAS": "repnas",
    # multi-objective search (pymoo) on trained supernets: one core, thin NNI adapters
    "MultiObjectiveStrategy": "emo",
    "NSGA2": "emo",
    "NSGA3": "emo",
    "SMSEMOA": "emo",
    "SearchStrategy": "base",
    "subnet_evaluator": "base",
    # neural architecture transfer (nni_eas.nat): surrogate-assisted search + supernet adaptation
    "NAT": "nat",
    "EAS": "eas",
    # supernet training (progressive shrinking, sandwich, uniform; EAS / TOFA losses via the recipe)
    "SupernetTraining": "supernet",
    "ProgressiveShrinkingTraining": "supernet",
    "SandwichTraining": "supernet",
    "UniformTraining": "supernet",
    "supernet_evaluator": "supernet",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
