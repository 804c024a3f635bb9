"""NNI ``Strategy`` adapters for ``NasExperiment``: thin wrappers around the NNI-free algorithms.

Imported lazily, so ``import nni_eas.strategies`` does not import NNI or Lightning.
"""

from __future__ import annotations

from .._lazy import lazy_exports

__all__, __getattr__, __dir__ = lazy_exports(__name__, {
    'repnas': ('RepNAS',),
    'emo': ('MultiObjectiveStrategy', 'NSGA2', 'NSGA3', 'SMSEMOA',),
    'base': ('SearchStrategy', 'subnet_evaluator',),
    'nat': ('NAT',),
    'eas': ('EAS',),
    'supernet': ('SupernetTraining', 'ProgressiveShrinkingTraining', 'SandwichTraining', 'UniformTraining',
                 'supernet_evaluator'),
})
