"""NNI ``Tuner`` adapters for ``nnictl`` experiments (imported lazily: no NNI on ``import``).

``SearchTuner`` drives any search core (:mod:`nni_eas.search.core`); the multi-objective
tuners (``NSGA2Tuner``, ``SMSEMOATuner``, ``NSGA3Tuner``) are thin subclasses. Trials run
``python -m nni_eas.trial``.
"""

from __future__ import annotations

from .._lazy import lazy_exports

__all__, __getattr__, __dir__ = lazy_exports(__name__, {
    'base': ('SearchTuner', 'experiment_params',),
    'emo': ('MultiObjectiveTuner', 'NSGA2Tuner', 'SMSEMOATuner', 'NSGA3Tuner',),
    'nat': ('NATTuner',),
    'eas': ('EASTuner',),
})
