"""One interface for accuracy predictors and surrogates (MLP, OFA's published MLP, NAT's RBF/GP/trees).

A predictor learns ``y = f(X)`` on feature matrices (``fit`` / ``predict``, scikit-learn style)
and knows which feature ``encoding`` it reads (:mod:`nni_eas.predictors.features`), so the
search can hand it genomes directly (``predict_genomes``). Ranking quality is what matters for
search, so :meth:`Predictor.score` reports Kendall's tau first.

To add a surrogate (e.g. NAT's RBF ensemble): subclass :class:`Predictor`, set ``encoding``
(``"index"`` suits RBF/GP/trees), implement ``fit`` and ``predict``; everything else (genome
helpers, scoring, use as a search evaluator) comes with the base class.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, Sequence

import numpy as np

from ..encodings import archs_to_genomes
from ..spaces.arch import Arch
from ..spaces.config import OFAMobileNetV3Config
from .features import encode

__all__ = ["Predictor", "kendall_tau", "regression_scores"]


def kendall_tau(y_true: Sequence[float], y_pred: Sequence[float]) -> float:
    """Kendall's tau-b between measured and predicted values (scipy): 1 = same ranking."""
    from scipy import stats

    tau = stats.kendalltau(np.asarray(y_true, dtype=np.float64), np.asarray(y_pred, dtype=np.float64)).statistic
    return float(tau) if np.isfinite(tau) else 0.0


def regression_scores(y_true: Sequence[float], y_pred: Sequence[float]) -> dict[str, float]:
    """Kendall's tau, Spearman's rho, RMSE and MAE of a prediction."""
    t, p = np.asarray(y_true, dtype=np.float64), np.asarray(y_pred, dtype=np.float64)
    from scipy import stats

    rho = stats.spearmanr(t, p).statistic
    return {"kendall_tau": kendall_tau(t, p), "spearman": float(rho) if np.isfinite(rho) else 0.0,
            "rmse": float(np.sqrt(np.mean((t - p) ** 2))), "mae": float(np.mean(np.abs(t - p))), "n": int(len(t))}


class Predictor(ABC):
    """Base class: ``fit(X, y)`` / ``predict(X)`` on features of encoding :attr:`encoding`."""

    #: feature encoding the predictor reads (``ofa``, ``onehot``, ``index``)
    encoding: str = "onehot"

    @abstractmethod
    def fit(self, X: np.ndarray, y: np.ndarray) -> "Predictor":
        """Learn from features ``X`` ``[n, F]`` and targets ``y`` ``[n]``; returns self."""

    @abstractmethod
    def predict(self, X: np.ndarray) -> np.ndarray:
        """Predictions ``[n]`` (float64) for features ``X``."""

    # ---- genomes / archs ------------------------------------------------------------------------
    def features(self, cfg: OFAMobileNetV3Config, genomes: np.ndarray) -> np.ndarray:
        return encode(self.encoding, cfg, genomes)

    def fit_genomes(self, cfg: OFAMobileNetV3Config, genomes: np.ndarray, y: Sequence[float]) -> "Predictor":
        return self.fit(self.features(cfg, genomes), np.asarray(y, dtype=np.float64))

    def predict_genomes(self, cfg: OFAMobileNetV3Config, genomes: np.ndarray) -> np.ndarray:
        """Predictions for a whole population of genomes at once (what the search calls)."""
        return self.predict(self.features(cfg, genomes))

    def predict_archs(self, cfg: OFAMobileNetV3Config, archs: Sequence[Arch]) -> np.ndarray:
        return self.predict_genomes(cfg, archs_to_genomes(cfg, list(archs)))

    # ---- quality ----------------------------------------------------------------------------------
    def score(self, X: np.ndarray, y: Sequence[float]) -> dict[str, float]:
        """Kendall's tau (ranking), Spearman, RMSE, MAE on held-out ``(X, y)``."""
        return regression_scores(y, self.predict(X))

    def score_genomes(self, cfg: OFAMobileNetV3Config, genomes: np.ndarray, y: Sequence[float]) -> dict[str, float]:
        return self.score(self.features(cfg, genomes), y)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(encoding={self.encoding!r})"

    def get_params(self) -> dict[str, Any]:  # pragma: no cover - informational
        return {"encoding": self.encoding}
