"""Neural architecture transfer (NAT): a trained supernet brought to a new dataset.

* :class:`NATCore` (:mod:`~nni_eas.nat.core`): the loop as an ask/tell search core (archive,
  surrogate, NSGA-II / NSGA-III on the surrogate, diverse subset selection, adaptation,
  re-evaluation, atomic checkpoints, resume), driven in-process (:meth:`NATCore.run`) or by the
  NNI adapters (``nni_eas.strategies.NAT``, ``nni_eas.tuners.NATTuner``).
* :class:`Archive` (:mod:`~nni_eas.nat.archive`): every measured arch, its front and ranks.
* :mod:`~nni_eas.nat.adapt`: the archive's arch distribution as a training policy, and one
  adaptation step (:func:`adapt_supernet`) on the target data.
* :class:`NATConfig` (:mod:`~nni_eas.nat.config`): the settings.

Surrogates (RBF, GP, tree ensembles, MLP, adaptive switching) are predictors:
:mod:`nni_eas.predictors.surrogates`. Nothing here imports NNI; Lightning is imported only when
a supernet is adapted.
"""

from __future__ import annotations

from .._lazy import lazy_exports

__all__, __getattr__, __dir__ = lazy_exports(__name__, {
    'archive': ('Archive', 'ArchiveRecord',),
    'config': ('AdaptConfig', 'NATConfig', 'SurrogateConfig',),
    'core': ('EVALUATIONS_FILE', 'STATE_FILE', 'LocalEvaluator', 'NATBatch', 'NATCore', 'select_diverse',),
})
