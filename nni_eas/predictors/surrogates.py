"""NAT's surrogates behind the :class:`~nni_eas.predictors.Predictor` interface, and adaptive switching.

NAT fits a fresh accuracy surrogate on its archive every iteration. Which model ranks best
depends on the space, the archive size and the task, so NAT (following the authors) keeps
several and picks one by cross-validated Kendall's tau:

* :class:`RBFPredictor`: radial basis interpolation (scipy ``RBFInterpolator``, cubic kernel
  with a linear tail), NAT's default; exact on the archive, smooth in between.
* :class:`GPPredictor`: Gaussian process regression (scikit-learn, Matern kernel + noise).
* :class:`TreeEnsemblePredictor`: random forest, extra trees or gradient boosting (scikit-learn);
  robust to step-like responses and irrelevant genes.
* :class:`~nni_eas.predictors.MLPPredictor` (one-hot features), already in the package.
* :class:`AdaptiveSurrogate`: k-fold cross-validation of every candidate on the archive, the one
  with the highest mean Kendall's tau is refitted on everything (``selection`` says which and why).

All but the MLP read the ``index`` encoding (canonical choice indices in [0, 1]), which suits
distance- and split-based models with few samples.
"""

from __future__ import annotations

import warnings
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from ..config import ConfigError
from ..spaces.config import OFAMobileNetV3Config
from .base import Predictor, kendall_tau

__all__ = [
    "RBFPredictor",
    "GPPredictor",
    "TreeEnsemblePredictor",
    "AdaptiveSurrogate",
    "SURROGATES",
    "make_surrogate",
]


def _one_thread():
    """Small linear algebra runs fastest on one BLAS thread; on a shared CPU more threads only
    oversubscribe it (a GP fit was seen 5x slower with the default thread count)."""
    from threadpoolctl import threadpool_limits

    return threadpool_limits(1)


def _xy(X: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    X = np.asarray(X, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64).reshape(-1)
    if X.ndim != 2 or len(X) != len(y) or len(X) < 2:
        raise ConfigError(f"fit needs at least 2 samples with one target each; got X {X.shape}, y {y.shape}")
    if not np.all(np.isfinite(y)):
        raise ConfigError("fit targets must be finite (drop failed evaluations first)")
    return X, y


class _Standardised(Predictor):
    """Targets standardised while fitting (accuracies vary by ~1e-2; kernels want unit scale)."""

    encoding = "index"

    def __init__(self) -> None:
        self.y_mean, self.y_std = 0.0, 1.0
        self.fitted = False

    def _scale(self, y: np.ndarray) -> np.ndarray:
        self.y_mean, self.y_std = float(y.mean()), float(y.std()) or 1.0
        return (y - self.y_mean) / self.y_std

    def _unscale(self, t: np.ndarray) -> np.ndarray:
        return np.asarray(t, dtype=np.float64).reshape(-1) * self.y_std + self.y_mean

    def _check_fitted(self) -> None:
        if not self.fitted:
            raise ConfigError(f"{type(self).__name__} is not fitted; call fit() first")


class RBFPredictor(_Standardised):
    """Radial basis function interpolation (scipy), NAT's default surrogate.

    Duplicate feature rows are averaged and constant features dropped, so the system stays
    well-posed. ``kernel="auto"`` is NAT's cubic kernel with a linear tail when there are more
    samples than features; with fewer, the linear tail is not determined and a cubic kernel
    without it extrapolates badly, so a multiquadric kernel (shape = 1 / median distance,
    constant tail) is used instead.

    Args:
        kernel: ``auto`` or any ``scipy.interpolate.RBFInterpolator`` kernel.
        smoothing: 0 interpolates exactly; > 0 regularises noisy measurements.
        degree: polynomial tail for an explicit ``kernel`` (``None``: scipy's default).
    """

    def __init__(self, kernel: str = "auto", smoothing: float = 1e-3, degree: int | None = None,
                 epsilon: float | None = None):
        super().__init__()
        self.kernel, self.smoothing, self.degree, self.epsilon = kernel, smoothing, degree, epsilon
        self._model: Any = None
        self._keep: np.ndarray | None = None
        self.used: dict[str, Any] = {}

    def fit(self, X: np.ndarray, y: np.ndarray) -> "RBFPredictor":
        from scipy.interpolate import RBFInterpolator
        from scipy.spatial.distance import pdist

        X, y = _xy(X, y)
        t = self._scale(y)
        keep = np.ptp(X, axis=0) > 0
        if not keep.any():
            keep[:] = True
        Xk = X[:, keep]
        uniq, inverse = np.unique(Xk, axis=0, return_inverse=True)
        inverse = inverse.reshape(-1)
        tu = np.bincount(inverse, weights=t) / np.bincount(inverse)
        kernel, degree, epsilon = self.kernel, self.degree, self.epsilon
        if kernel == "auto":
            if len(uniq) > uniq.shape[1] + 1:
                kernel, degree = "cubic", 1
            else:
                dist = pdist(uniq) if len(uniq) > 1 else np.ones(1)
                kernel, degree = "multiquadric", 0
                epsilon = epsilon or 1.0 / max(float(np.median(dist)), 1e-12)
        kwargs: dict[str, Any] = {"kernel": kernel, "smoothing": self.smoothing, "epsilon": epsilon or 1.0}
        if degree is not None:
            kwargs["degree"] = degree
        with _one_thread():
            self._model = RBFInterpolator(uniq, tu, **kwargs)
        self.used = {k: v for k, v in kwargs.items() if k != "smoothing"}
        self._keep, self.fitted = keep, True
        return self

    def predict(self, X: np.ndarray) -> np.ndarray:
        self._check_fitted()
        X = np.asarray(X, dtype=np.float64)
        with _one_thread():
            return self._unscale(self._model(X[:, self._keep]))


class GPPredictor(_Standardised):
    """Gaussian process regression (scikit-learn): ``C * Matern(nu) + White``, hyper-parameters
    by marginal likelihood. ``ard``: one length scale per feature (needs many samples)."""

    def __init__(self, nu: float = 2.5, ard: bool = False, restarts: int = 2, seed: int = 0):
        super().__init__()
        self.nu, self.ard, self.restarts, self.seed = nu, ard, restarts, seed
        self._model: Any = None

    def fit(self, X: np.ndarray, y: np.ndarray) -> "GPPredictor":
        from sklearn.exceptions import ConvergenceWarning
        from sklearn.gaussian_process import GaussianProcessRegressor
        from sklearn.gaussian_process.kernels import ConstantKernel, Matern, WhiteKernel

        X, y = _xy(X, y)
        t = self._scale(y)
        scale = np.ones(X.shape[1]) if self.ard else 1.0
        kernel = (ConstantKernel(1.0, (1e-2, 1e2)) * Matern(length_scale=scale, length_scale_bounds=(1e-2, 1e3), nu=self.nu)
                  + WhiteKernel(1e-2, (1e-6, 1e0)))
        self._model = GaussianProcessRegressor(kernel, normalize_y=False, n_restarts_optimizer=self.restarts,
                                               random_state=self.seed)
        with warnings.catch_warnings(), _one_thread():
            warnings.simplefilter("ignore", ConvergenceWarning)
            self._model.fit(X, t)
        self.fitted = True
        return self

    def predict(self, X: np.ndarray) -> np.ndarray:
        self._check_fitted()
        with _one_thread():
            return self._unscale(self._model.predict(np.asarray(X, dtype=np.float64)))


class TreeEnsemblePredictor(_Standardised):
    """Tree ensembles (scikit-learn): ``rf`` random forest, ``extra`` extra trees, ``gbdt``
    gradient boosting. Single-threaded (the machine is shared; fits take well under a second)."""

    KINDS = ("rf", "extra", "gbdt")

    def __init__(self, kind: str = "rf", n_estimators: int = 200, seed: int = 0, **kwargs: Any):
        super().__init__()
        if kind not in self.KINDS:
            raise ConfigError(f"tree ensemble kind must be one of {', '.join(self.KINDS)}; got {kind!r}")
        self.kind, self.n_estimators, self.seed, self.kwargs = kind, n_estimators, seed, kwargs
        self._model: Any = None

    def fit(self, X: np.ndarray, y: np.ndarray) -> "TreeEnsemblePredictor":
        from sklearn.ensemble import ExtraTreesRegressor, GradientBoostingRegressor, RandomForestRegressor

        X, y = _xy(X, y)
        t = self._scale(y)
        if self.kind == "rf":
            model = RandomForestRegressor(self.n_estimators, random_state=self.seed, n_jobs=1, **self.kwargs)
        elif self.kind == "extra":
            model = ExtraTreesRegressor(self.n_estimators, random_state=self.seed, n_jobs=1, **self.kwargs)
        else:
            model = GradientBoostingRegressor(n_estimators=self.n_estimators, max_depth=3, learning_rate=0.05,
                                              subsample=0.8, random_state=self.seed, **self.kwargs)
        self._model = model.fit(X, t)
        self.fitted = True
        return self

    def predict(self, X: np.ndarray) -> np.ndarray:
        self._check_fitted()
        return self._unscale(self._model.predict(np.asarray(X, dtype=np.float64)))


# ------------------------------------------------------------------------------------------------
# registry
# ------------------------------------------------------------------------------------------------
def _mlp(seed: int) -> Predictor:
    from .mlp import MLPPredictor  # torch: imported when an MLP surrogate is built, not with the registry

    return MLPPredictor(hidden=(64, 64), encoding="onehot", epochs=150, lr=3e-3, batch_size=32, seed=seed)


SURROGATES: dict[str, Callable[[int], Predictor]] = {
    "rbf": lambda seed: RBFPredictor(),
    "gp": lambda seed: GPPredictor(seed=seed),
    "rf": lambda seed: TreeEnsemblePredictor("rf", seed=seed),
    "extra": lambda seed: TreeEnsemblePredictor("extra", seed=seed),
    "gbdt": lambda seed: TreeEnsemblePredictor("gbdt", seed=seed),
    # small and quick: NAT refits every iteration, several times for cross-validation
    "mlp": lambda seed: _mlp(seed),
}


def make_surrogate(name: str, seed: int = 0) -> Predictor:
    """A fresh, unfitted surrogate by name (``rbf``, ``gp``, ``rf``, ``extra``, ``gbdt``, ``mlp``)."""
    if name not in SURROGATES:
        raise ConfigError(f"unknown surrogate {name!r}; allowed: {', '.join(SURROGATES)}, adaptive")
    return SURROGATES[name](seed)


class AdaptiveSurrogate(Predictor):
    """Pick, by k-fold cross-validated Kendall's tau, the best of several surrogates.

    Works on genomes (each candidate reads its own feature encoding), so it is built with the
    space: ``AdaptiveSurrogate(cfg, ["rbf", "gp", "rf", "mlp"])``. After :meth:`fit`,
    :attr:`selection` holds the chosen name, every candidate's mean tau and the folds;
    predictions come from the chosen model refitted on all samples. Ties keep the earlier
    candidate in ``candidates``.
    """

    encoding = "genome"  # X are genomes; see features()

    def __init__(self, cfg: OFAMobileNetV3Config, candidates: Sequence[str] | Mapping[str, Callable[[], Predictor]] = ("rbf", "gp", "rf", "mlp"),
                 folds: int = 5, seed: int = 0):
        if folds < 2:
            raise ConfigError(f"adaptive surrogate folds must be >= 2, got {folds}")
        if isinstance(candidates, Mapping):
            self.factories = dict(candidates)
        else:
            for name in candidates:
                if name not in SURROGATES:
                    raise ConfigError(f"adaptive surrogate candidate {name!r} is unknown; allowed: {', '.join(SURROGATES)}")
            self.factories = {name: (lambda n=name: make_surrogate(n, seed)) for name in candidates}
        if not self.factories:
            raise ConfigError("adaptive surrogate needs at least one candidate")
        self.cfg, self.folds, self.seed = cfg, int(folds), int(seed)
        self.chosen: str | None = None
        self.model: Predictor | None = None
        self.selection: dict[str, Any] = {}

    def features(self, cfg: OFAMobileNetV3Config, genomes: np.ndarray) -> np.ndarray:
        return np.atleast_2d(np.asarray(genomes, dtype=np.int64))

    def cross_validate(self, genomes: np.ndarray, y: np.ndarray) -> dict[str, float]:
        """Mean Kendall's tau over ``folds`` held-out folds, per candidate (same folds for all)."""
        G, y = np.atleast_2d(np.asarray(genomes, dtype=np.int64)), np.asarray(y, dtype=np.float64)
        k = min(self.folds, len(y))
        order = np.random.default_rng(self.seed).permutation(len(y))
        parts = [p for p in np.array_split(order, k) if len(p) >= 2]
        taus: dict[str, float] = {}
        for name, factory in self.factories.items():
            scores = []
            for test in parts:
                train = np.setdiff1d(order, test)
                if len(train) < 3:
                    continue
                model = factory().fit_genomes(self.cfg, G[train], y[train])
                scores.append(kendall_tau(y[test], model.predict_genomes(self.cfg, G[test])))
            taus[name] = float(np.mean(scores)) if scores else 0.0
        return taus

    def fit(self, X: np.ndarray, y: np.ndarray) -> "AdaptiveSurrogate":
        G, y = np.atleast_2d(np.asarray(X, dtype=np.int64)), np.asarray(y, dtype=np.float64).reshape(-1)
        if len(G) != len(y) or len(y) < 4:
            raise ConfigError(f"adaptive surrogate needs at least 4 samples to cross-validate; got {len(y)}")
        with _one_thread():
            taus = self.cross_validate(G, y)
        best = max(taus, key=lambda n: (taus[n], -list(taus).index(n)))
        self.chosen = best
        self.model = self.factories[best]().fit_genomes(self.cfg, G, y)
        self.selection = {"chosen": best, "tau": taus[best], "taus": taus, "folds": min(self.folds, len(y)), "n": int(len(y))}
        return self

    def predict(self, X: np.ndarray) -> np.ndarray:
        if self.model is None:
            raise ConfigError("AdaptiveSurrogate is not fitted; call fit() first")
        return self.model.predict_genomes(self.cfg, np.atleast_2d(np.asarray(X, dtype=np.int64)))

    def __repr__(self) -> str:
        return f"AdaptiveSurrogate(candidates={list(self.factories)}, chosen={self.chosen!r})"
