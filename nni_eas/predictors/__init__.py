"""Accuracy predictors and surrogates behind one interface (:class:`Predictor`).

* :class:`MLPPredictor`: a PyTorch MLP fitted on (arch, accuracy) pairs.
* :class:`OFAAccuracyPredictor`: OFA's published ImageNet predictor, loaded without unsafe
  unpickling; :func:`ofa2_error_pct` is OFA²'s objective computed from it.
* :func:`kendall_tau` / :func:`regression_scores`: ranking quality on held-out archs.
* :func:`measure_accuracy_dataset`: (genome, top-1) pairs measured on a trained supernet.

NAT's surrogates (:mod:`~nni_eas.predictors.surrogates`): :class:`RBFPredictor`,
:class:`GPPredictor`, :class:`TreeEnsemblePredictor` (``encoding = "index"``) and
:class:`AdaptiveSurrogate` (picks one by cross-validated Kendall's tau).
"""

from __future__ import annotations

from .._lazy import lazy_exports

__all__, __getattr__, __dir__ = lazy_exports(__name__, {
    'base': ('Predictor', 'kendall_tau', 'regression_scores',),
    'features': ('ENCODINGS', 'encode', 'feature_dim',),
    'mlp': ('MLPPredictor', 'build_mlp',),
    'ofa': ('OFAAccuracyPredictor', 'load_state_dict_file', 'ofa2_error_pct',),
    'supernet': ('measure_accuracy_dataset',),
    'surrogates': ('SURROGATES', 'AdaptiveSurrogate', 'GPPredictor', 'RBFPredictor',
                   'TreeEnsemblePredictor', 'make_surrogate'),
})
