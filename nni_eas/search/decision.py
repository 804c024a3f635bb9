"""A-posteriori decision making: pick networks from a front after the search, for any budget.

The search runs once; these helpers answer "which arch for 200 M MACs?", "where is the knee?"
or "what if latency matters twice as much as accuracy?" without searching again (OFA²). The
trade-off based choices use pymoo's decision makers (``pymoo.mcdm``).
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np
from pymoo.mcdm.high_tradeoff import HighTradeoffPoints
from pymoo.mcdm.pseudo_weights import PseudoWeights

from ..config import ConfigError
from .objectives import parse_budgets

__all__ = ["best_for_budget", "knee_point", "high_tradeoff_points", "pseudo_weights_choice", "normalise"]


def normalise(F: np.ndarray) -> np.ndarray:
    """Scale each column of a minimisation matrix to [0, 1] over the front (constant columns -> 0)."""
    F = np.asarray(F, dtype=np.float64)
    lo, hi = F.min(axis=0), F.max(axis=0)
    span = np.where(hi > lo, hi - lo, 1.0)
    return (F - lo) / span


def knee_point(F: np.ndarray) -> int:
    """Index of the knee of a front (minimisation matrix ``[n, m]``).

    The knee is the point farthest below the hyperplane through the front's extreme points
    (in normalised objectives): where giving up a little in one objective stops buying much in
    the others. With fewer than 3 points it is the point closest to the ideal point.
    """
    F = np.asarray(F, dtype=np.float64)
    if len(F) == 0:
        raise ConfigError("an empty front has no knee point")
    N = normalise(F)
    n, m = N.shape
    if n < 3 or m < 2:
        return int(np.argmin(np.linalg.norm(N, axis=1)))
    extremes = N[np.argmin(N, axis=0)] if m > 2 else N[[np.argmin(N[:, 0]), np.argmin(N[:, 1])]]
    if m == 2:
        a, b = extremes
        direction = b - a
        normal = np.array([direction[1], -direction[0]])
    else:
        # normal of the hyperplane through the m extreme points
        _, _, vt = np.linalg.svd(extremes[1:] - extremes[0])
        normal, a = vt[-1], extremes[0]
    if not np.any(normal):
        return int(np.argmin(np.linalg.norm(N, axis=1)))
    normal = normal / np.linalg.norm(normal)
    if normal.sum() < 0:  # point the normal away from the ideal point
        normal = -normal
    distance = (N - a) @ normal   # negative = on the ideal side of the plane
    return int(np.argmin(distance))


def high_tradeoff_points(F: np.ndarray) -> list[int]:
    """pymoo's high trade-off points: where a unit of sacrifice buys the most gain (maybe none)."""
    F = np.asarray(F, dtype=np.float64)
    if len(F) < 3:
        return []
    idx = HighTradeoffPoints().do(normalise(F))
    return [] if idx is None else [int(i) for i in np.atleast_1d(idx)]


def pseudo_weights_choice(F: np.ndarray, weights: Sequence[float]) -> int:
    """pymoo's pseudo-weights choice: the point whose relative position matches ``weights``
    (one weight per objective, larger = that objective matters more)."""
    F = np.asarray(F, dtype=np.float64)
    w = np.asarray(weights, dtype=np.float64)
    if w.shape != (F.shape[1],) or np.any(w < 0) or w.sum() <= 0:
        raise ConfigError(f"pseudo weights need {F.shape[1]} non-negative numbers (one per objective), got {list(weights)}")
    if len(F) == 1:
        return 0
    return int(PseudoWeights(w / w.sum()).do(F))


def best_for_budget(front: Any, objective: str | None = None, **budgets: float | Mapping[str, float]) -> int:
    """Index of the best entry of ``front`` (a :class:`~nni_eas.search.front.Front`) within budgets.

    ``best_for_budget(front, macs=3e8)``: the highest-``top1`` arch with at most 300 M MACs
    (``objective`` defaults to the first front objective that is not budgeted). A budget is a
    maximum, or ``{"max": .., "min": ..}``.
    """
    if len(front) == 0:
        raise ConfigError("the front is empty")
    bs = parse_budgets(dict(budgets))
    names = front.objective_names
    if objective is None:
        free = [o for o in front.objectives if o.metric not in budgets and o.name not in budgets]
        target = (free or front.objectives)[0]
    else:
        matches = [o for o in front.objectives if o.name == objective]
        if not matches:
            raise ConfigError(f"objective {objective!r} is not one of the front's objectives {names}")
        target = matches[0]
    ok = np.ones(len(front), dtype=bool)
    for b in bs:
        v = front.metric(b.metric)
        if np.all(np.isnan(v)):
            available = sorted({k for e in front.entries for k in e.metrics})
            raise ConfigError(f"budget on {b.metric!r}: the front has no such metric; available: {available}")
        if b.max is not None:
            ok &= v <= b.max
        if b.min is not None:
            ok &= v >= b.min
    if not ok.any():
        limits = ", ".join(f"{b.metric} in [{np.nanmin(front.metric(b.metric)):.6g}, {np.nanmax(front.metric(b.metric)):.6g}]"
                           for b in bs)
        raise ConfigError(f"no arch of the front fits the budget {dict(budgets)}; the front spans {limits}")
    score = target.to_min(target.values({target.metric: front.metric(target.metric)}))
    score = np.where(ok, score, np.inf)
    return int(np.argmin(score))
