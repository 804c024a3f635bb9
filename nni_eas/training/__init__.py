"""Supernet training: one elastic supernet trained once, so that every subnet is good without retraining.

Recipes (``search_spaces/recipes/*.yml``) say what to train and how: the subnet-sampling policy
(progressive shrinking, sandwich, uniform) and the losses on top of it (distillation, EAS task
dropout, TOFA semi-supervised consistency). See ``docs/training.md``::

    from nni_eas.training import load_recipe, train_supernet

    result = train_supernet("eas_small_digits", "runs/eas")   # resumable; writes runs/eas/supernet.pt

Imported lazily: ``import nni_eas.training`` pulls in neither Lightning nor NNI.
"""

from __future__ import annotations

from .._lazy import lazy_exports

__all__, __getattr__, __dir__ = lazy_exports(__name__, {
    'recipe': ('TrainingRecipe', 'load_recipe', 'list_recipes',),
    'policies': ('SubnetPolicy', 'ProgressiveShrinking', 'Sandwich', 'Uniform', 'build_policy', 'ofa_phases',),
    'losses': ('soft_target_loss', 'TaskDropout', 'KeptClasses', 'consistency_loss',),
    'augment': ('weak_augment', 'strong_augment',),
    'module': ('SupernetModule',),
    'data': ('SupernetDataModule', 'SeededRandomSampler',),
    'callbacks': ('AtomicCheckpointIO', 'NNIReportCallback', 'CurvesCallback',),
    'run': ('train_supernet', 'TrainResult', 'build_trainer',),
})
