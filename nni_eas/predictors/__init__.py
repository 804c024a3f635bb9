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

from .base import Predictor, kendall_tau, regression_scores
from .features import ENCODINGS, encode, feature_dim
from .mlp import MLPPredictor, build_mlp
from .ofa import OFAAccuracyPredictor, load_state_dict_file, ofa2_error_pct
from .supernet import measure_accuracy_dataset
from .surrogates import SURROGATES, AdaptiveSurrogate, GPPredictor, RBFPredictor, TreeEnsemblePredictor, make_surrogate

__all__ = [
    "AdaptiveSurrogate",
    "ENCODINGS",
    "GPPredictor",
    "RBFPredictor",
    "SURROGATES",
    "TreeEnsemblePredictor",
    "make_surrogate",
    "MLPPredictor",
    "OFAAccuracyPredictor",
    "Predictor",
    "build_mlp",
    "encode",
    "feature_dim",
    "kendall_tau",
    "load_state_dict_file",
    "measure_accuracy_dataset",
    "ofa2_error_pct",
    "regression_scores",
]
