"""Deployment scenarios: a task (subset of classes) and resource budgets, checked against the space.

:func:`resolve_scenarios` turns the config's :class:`~nni_eas.eas.config.ScenarioSpec` list
and :class:`~nni_eas.eas.config.ScenarioRule` into :class:`Scenario` objects with class indices
and absolute budgets. Mistakes fail here, before any work, with messages that name the scenario,
the field and what is allowed: an unknown class name, a metric the run does not budget, a
budget below the smallest subnet of the space.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import numpy as np

from ..config import ConfigError, size_value
from ..data.tasks import Task, TaskSampler
from .budget import CostTable
from .config import ScenarioRule, ScenarioSpec

__all__ = ["Scenario", "resolve_scenarios", "parse_budget", "format_budget"]


@dataclass(frozen=True)
class Scenario:
    """A task and its budgets (absolute units: MACs, parameters, milliseconds)."""

    name: str
    classes: tuple[int, ...]
    budgets: dict[str, float] = field(hash=False)
    class_names: tuple[str, ...] = ()

    @property
    def task(self) -> Task:
        return Task(list(self.classes), name=self.name)

    def budget_text(self) -> str:
        return ", ".join(f"{m}<={format_budget(m, v)}" for m, v in self.budgets.items())

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "classes": list(self.classes), "class_names": list(self.class_names),
                "budget": dict(self.budgets)}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "Scenario":
        return cls(d["name"], tuple(int(c) for c in d["classes"]), {k: float(v) for k, v in d["budget"].items()},
                   tuple(d.get("class_names") or ()))


def format_budget(metric: str, value: float) -> str:
    if metric == "latency_ms":
        return f"{value:.3f}ms"
    for div, suf in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if value >= div:
            return f"{value / div:.3g}{suf}"
    return f"{value:.0f}"


def parse_budget(value: Any, metric: str, table: CostTable, where: str) -> float:
    """An absolute budget from ``1.5M`` / ``2e6`` / ``"25%"`` (of the space's min..max range)."""
    lo, hi = table.minmax()
    text = str(value).strip()
    if text.endswith("%"):
        try:
            frac = float(text[:-1]) / 100
        except ValueError:
            raise ConfigError(f"{where}: cannot parse {value!r}; use a percentage like '25%'") from None
        if not 0 <= frac <= 1:
            raise ConfigError(f"{where}: {value!r} must be between 0% (smallest subnet) and 100% (largest)")
        return lo + frac * (hi - lo)
    if text.startswith("-") or text in ("0", "0.0"):
        raise ConfigError(f"{where}: a budget must be positive, got {value!r}; use e.g. 1.5M, 2e6, 800k"
                          " or '25%' of the space's range")
    budget = size_value(text)
    if budget is None:
        raise ConfigError(f"{where}: cannot parse {value!r} as a budget; use e.g. 1.5M, 2e6, 800k"
                          + (", 0.25 (ms)" if metric == "latency_ms" else "") + " or '25%' of the space's range")
    if budget < lo * (1 - 1e-9):
        raise ConfigError(f"{where}: budget {format_budget(metric, budget)} is infeasible: the smallest subnet of the "
                          f"space needs {metric} = {format_budget(metric, lo)} (largest: {format_budget(metric, hi)})")
    return budget


def _class_indices(classes: Any, class_names: Sequence[str], where: str) -> list[int]:
    if classes == "all":
        return list(range(len(class_names)))
    out = []
    for c in classes:
        if isinstance(c, str) and c in class_names:
            out.append(class_names.index(c))
        elif isinstance(c, int) and not isinstance(c, bool) and 0 <= c < len(class_names):
            out.append(c)
        else:
            raise ConfigError(f"{where}: unknown class {c!r}; allowed: the names {', '.join(class_names)} "
                              f"or indices 0..{len(class_names) - 1}")
    if len(set(out)) != len(out):
        raise ConfigError(f"{where}: classes are repeated: {list(classes)}")
    if len(out) < 2:
        raise ConfigError(f"{where}: a task needs at least 2 classes, got {list(classes)} (a one-class classifier "
                          "always answers that class)")
    return sorted(out)


def resolve_scenarios(specs: Sequence[ScenarioSpec], rule: ScenarioRule | None, class_names: Sequence[str],
                      tables: Mapping[str, CostTable]) -> list[Scenario]:
    """Concrete scenarios: explicit ones first, then the rule's (deterministic for its seed)."""
    names = [str(c) for c in class_names]
    out: list[Scenario] = []
    for i, spec in enumerate(specs):
        where = f"scenarios[{i}]" + (f" ({spec.name!r})" if spec.name else "")
        classes = _class_indices(spec.classes, names, f"{where}.classes")
        budgets = {}
        for metric, value in spec.budget.items():
            if metric not in tables:
                raise ConfigError(f"{where}.budget: metric {metric!r} is not budgeted by this run; allowed: "
                                  f"{', '.join(tables)} (generator.metrics)")
            budgets[metric] = parse_budget(value, metric, tables[metric], f"{where}.budget.{metric}")
        label = spec.name or f"{'+'.join(names[c] for c in classes)} @ " + ", ".join(
            f"{m} {format_budget(m, b)}" for m, b in budgets.items())
        out.append(Scenario(label, tuple(classes), budgets, tuple(names[c] for c in classes)))
    if rule is not None:
        if rule.metric not in tables:
            raise ConfigError(f"scenario_rule.metric: {rule.metric!r} is not budgeted by this run; allowed: {', '.join(tables)}")
        hi_cls = min(rule.max_classes or len(names), len(names))
        if rule.min_classes > hi_cls:
            raise ConfigError(f"scenario_rule: min_classes {rule.min_classes} > max_classes {hi_cls}")
        sampler = TaskSampler(len(names), min_classes=rule.min_classes, max_classes=hi_cls, seed=rule.seed)
        lo, hi = tables[rule.metric].minmax()
        fracs = np.linspace(rule.fractions[0], rule.fractions[1], rule.count)
        np.random.default_rng(rule.seed).shuffle(fracs)
        for j, (task, frac) in enumerate(zip(sampler.sample_many(rule.count), fracs)):
            classes = list(task.classes)
            budget = lo + float(frac) * (hi - lo)
            out.append(Scenario(f"rule-{j}: {'+'.join(names[c] for c in classes)} @ {format_budget(rule.metric, budget)}",
                                tuple(classes), {rule.metric: budget}, tuple(names[c] for c in classes)))
    seen: dict[str, int] = {}
    for i, s in enumerate(out):
        if s.name in seen:
            raise ConfigError(f"scenario names must be unique: {s.name!r} is used by scenarios {seen[s.name]} and {i}")
        seen[s.name] = i
    return out
