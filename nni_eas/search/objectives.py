"""What a search optimises: objectives and budgets over named metrics.

Evaluators produce *metrics* (``top1`` in [0, 1], ``macs``, ``params``, ``latency_ms``, ...);
an :class:`Objective` turns one metric into a value a person reads (``error_pct`` is
``100 * (1 - top1)``) and into the minimised value pymoo sees; a :class:`Budget` is an
inequality constraint ``metric <= max`` / ``metric >= min``. Keeping these apart lets one
problem mix metrics measured in a trial with metrics costed in-process.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, Callable, Literal, Mapping, Sequence, Union

import numpy as np
from pydantic import AfterValidator

from ..config import ConfigError

__all__ = ["Objective", "Budget", "OBJECTIVES", "parse_objectives", "parse_budgets", "DEFAULT_SENSE"]

Sense = Literal["min", "max"]


def _identity(x: np.ndarray) -> np.ndarray:
    return x


def _error_pct(top1: np.ndarray) -> np.ndarray:
    # OFA²'s objective: top-1 error in percent of an accuracy given in [0, 1]
    return 100.0 * (1.0 - top1)


@dataclass(frozen=True)
class Objective:
    """One objective: ``transform(metrics[metric])``, minimised or maximised."""

    name: str
    metric: str
    sense: Sense = "min"
    transform: Callable[[np.ndarray], np.ndarray] = _identity

    def values(self, metrics: Mapping[str, np.ndarray]) -> np.ndarray:
        """The objective as a person reads it (e.g. error in %), one value per genome."""
        return np.asarray(self.transform(np.asarray(metrics[self.metric], dtype=np.float64)), dtype=np.float64)

    def to_min(self, values: np.ndarray | float) -> np.ndarray:
        """Objective values -> what pymoo minimises (maximised objectives are negated)."""
        v = np.asarray(values, dtype=np.float64)
        return -v if self.sense == "max" else v

    def from_min(self, f: np.ndarray | float) -> np.ndarray:
        return self.to_min(f)


# metrics whose better direction is known; anything else must say ``name:min`` / ``name:max``
DEFAULT_SENSE: dict[str, Sense] = {"top1": "max", "macs": "min", "params": "min", "latency_ms": "min"}

OBJECTIVES: dict[str, Objective] = {
    "top1": Objective("top1", "top1", "max"),
    "error_pct": Objective("error_pct", "top1", "min", _error_pct),
    "macs": Objective("macs", "macs", "min"),
    "params": Objective("params", "params", "min"),
    "latency_ms": Objective("latency_ms", "latency_ms", "min"),
}


ObjectiveLike = Union[str, Objective]


def parse_objectives(specs: Sequence[ObjectiveLike]) -> list[Objective]:
    """``["top1", "macs"]``, ``["error_pct", "latency_ms"]`` or ``["energy:min"]`` -> objectives."""
    if not specs:
        raise ConfigError(f"a search needs at least one objective; known objectives: {', '.join(OBJECTIVES)}")
    out: list[Objective] = []
    for spec in specs:
        if isinstance(spec, Objective):
            out.append(spec)
            continue
        name, _, sense = str(spec).partition(":")
        if sense and sense not in ("min", "max"):
            raise ConfigError(f"objective {spec!r}: direction must be 'min' or 'max', got {sense!r}")
        if name in OBJECTIVES:
            obj = OBJECTIVES[name]
            if sense and sense != obj.sense:
                raise ConfigError(f"objective {name!r} is always {obj.sense}imised; drop ':{sense}'")
            out.append(obj)
        elif sense:
            out.append(Objective(name, name, sense))  # a custom metric reported by an evaluator
        else:
            raise ConfigError(
                f"unknown objective {name!r}; known objectives: {', '.join(OBJECTIVES)}, "
                "or any reported metric as 'name:min' / 'name:max'"
            )
    names = [o.name for o in out]
    if len(set(names)) != len(names):
        raise ConfigError(f"objectives repeat a name: {names}")
    return out


@dataclass(frozen=True)
class Budget:
    """Constraint on one metric: ``min <= metrics[metric] <= max`` (either side optional)."""

    metric: str
    max: float | None = None
    min: float | None = None

    def __post_init__(self) -> None:
        if self.max is None and self.min is None:
            raise ConfigError(f"budget on {self.metric!r} needs 'max' and/or 'min'")

    @property
    def n_constr(self) -> int:
        return int(self.max is not None) + int(self.min is not None)

    def violations(self, metrics: Mapping[str, np.ndarray]) -> list[np.ndarray]:
        """pymoo ``G`` columns (feasible when <= 0), relative to the limit so scales do not matter."""
        v = np.asarray(metrics[self.metric], dtype=np.float64)
        cols = []
        if self.max is not None:
            cols.append((v - self.max) / max(abs(self.max), 1e-12))
        if self.min is not None:
            cols.append((self.min - v) / max(abs(self.min), 1e-12))
        return cols

    def satisfied(self, metrics: Mapping[str, Any]) -> bool:
        v = float(metrics[self.metric])
        return (self.max is None or v <= self.max) and (self.min is None or v >= self.min)


def parse_budgets(budgets: Mapping[str, Any] | Sequence[Budget] | None) -> list[Budget]:
    """``{"macs": 3e8, "latency_ms": {"max": 20}, "top1": {"min": 0.9}}`` -> budgets.

    A bare number is a maximum (the usual meaning of a budget).
    """
    if not budgets:
        return []
    if not isinstance(budgets, Mapping):
        return [b if isinstance(b, Budget) else Budget(**b) for b in budgets]
    out = []
    for metric, spec in budgets.items():
        if isinstance(spec, (int, float)):
            out.append(Budget(metric, max=float(spec)))
        elif isinstance(spec, Mapping):
            unknown = sorted(set(spec) - {"max", "min"})
            if unknown:
                raise ConfigError(f"budget {metric!r} has unknown keys {unknown}; allowed keys: max, min")
            out.append(Budget(metric, max=_opt_float(spec.get("max")), min=_opt_float(spec.get("min"))))
        else:
            raise ConfigError(f"budget {metric!r} must be a number (a maximum) or {{max: .., min: ..}}, got {spec!r}")
    return out


def _checked_budgets(v: dict) -> dict:
    try:
        parse_budgets(v)
    except ConfigError as e:
        raise ValueError(str(e)) from None
    return v


# the ``budgets`` field of search configs (SearchConfig, NATConfig): validated by parse_budgets
BudgetsField = Annotated[dict[str, Union[float, dict[str, float]]], AfterValidator(_checked_budgets)]


def finite_float(v: Any) -> float | None:
    """``float(v)`` when it is a finite number, else ``None`` (metric values from trials)."""
    try:
        x = float(v)
    except (TypeError, ValueError):
        return None
    return x if np.isfinite(x) else None


def _opt_float(v: Any) -> float | None:
    return None if v is None else float(v)
