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

_EXPORTS = {
    'Predictor': 'base',
    'kendall_tau': 'base',
    'regression_scores': 'base',
    'ENCODINGS': 'features',
    'encode': 'features',
    'feature_dim': 'features',
    'MLPPredictor': 'mlp',
    'build_mlp': 'mlp',
    'OFAAccuracyPredictor': 'ofa',
    'load_state_dict_file': 'ofa',
    'ofa2_error_pct': 'ofa',
    'measure_accuracy_dataset': 'supernet',
    'SURROGATES': 'surrogates',
    'AdaptiveSurrogate': 'surrogates',
    'GPPredictor': 'surrogates',
    'RBFPredictor': 'surrogates',
    'TreeEnsemblePredictor': 'surrogates',
    'make_surrogate': 'surrogates',
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
