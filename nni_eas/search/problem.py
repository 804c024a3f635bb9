"""The pymoo problem of an architecture search: integer genomes -> objectives and budgets.

Like any pymoo problem it only says *what* is evaluated (``_evaluate`` fills ``F`` and ``G`` for
a whole population); how archs are produced is the algorithm's business and who evaluates them
is the driver's (:mod:`nni_eas.search.driver`). Metrics come from pluggable evaluators
(:mod:`nni_eas.search.evaluators`); metrics that no in-process evaluator provides are
*external*: an outside loop (an NNI trial) measures them and hands them to :meth:`encode`.

Constraint columns ``G`` are the budgets (relative violation, feasible when <= 0) plus one last
column that is 1 for a genome whose evaluation failed, so pymoo ranks failed archs behind every
evaluated one without special cases.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np
from pymoo.core.problem import Problem

from ..config import ConfigError
from ..encodings import genome_bounds, genome_length
from ..spaces.config import OFAMobileNetV3Config
from .evaluators import MetricEvaluator, evaluate_all
from .genome import GenomeLayout
from .objectives import Budget, Objective, ObjectiveLike, parse_budgets, parse_objectives

__all__ = ["ArchProblem"]


class ArchProblem(Problem):
    """Multi-objective search over the genomes of one space.

    Args:
        cfg: the space.
        objectives: e.g. ``["top1", "macs"]`` or ``["error_pct", "latency_ms"]``.
        evaluators: in-process metric evaluators (costs, lookup tables, predictors, supernet).
        budgets: constraints, e.g. ``{"macs": 3e8}`` (a maximum) or ``{"top1": {"min": 0.9}}``.
    """

    def __init__(self, cfg: OFAMobileNetV3Config, objectives: Sequence[ObjectiveLike],
                 evaluators: Sequence[MetricEvaluator] = (), budgets: Mapping[str, Any] | Sequence[Budget] | None = None):
        self.cfg = cfg
        self.layout = GenomeLayout(cfg)
        self.objectives: list[Objective] = parse_objectives(objectives)
        self.budgets: list[Budget] = parse_budgets(budgets)
        self.evaluators = list(evaluators)
        xl, xu = genome_bounds(cfg)
        super().__init__(n_var=genome_length(cfg), n_obj=len(self.objectives),
                         n_ieq_constr=sum(b.n_constr for b in self.budgets) + 1, xl=xl, xu=xu, vtype=int)

    # ---- which metrics come from where ------------------------------------------------------
    @property
    def required_metrics(self) -> tuple[str, ...]:
        names = [o.metric for o in self.objectives] + [b.metric for b in self.budgets]
        return tuple(dict.fromkeys(names))

    @property
    def local_metrics(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(m for ev in self.evaluators for m in ev.provides))

    @property
    def external_metrics(self) -> tuple[str, ...]:
        """Metrics an outside loop must supply (no in-process evaluator provides them)."""
        local = set(self.local_metrics)
        return tuple(m for m in self.required_metrics if m not in local)

    @property
    def expensive(self) -> bool:
        """Whether evaluating a genome costs real time (then the driver caches and logs each one)."""
        return bool(self.external_metrics) or any(ev.expensive for ev in self.evaluators)

    # ---- evaluation -------------------------------------------------------------------------
    def evaluate_metrics(self, genomes: np.ndarray) -> dict[str, np.ndarray]:
        """Every in-process metric of ``genomes`` (``[P, L]``)."""
        return evaluate_all(self.evaluators, np.asarray(genomes, dtype=np.int64))

    def encode(self, metrics: Mapping[str, Any], n: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Metrics -> pymoo ``(F, G)``. A genome with a missing (NaN) required metric is failed."""
        missing = [m for m in self.required_metrics if m not in metrics]
        if missing:
            raise ConfigError(
                f"metrics {missing} are needed by the objectives/budgets but were not evaluated; "
                f"evaluated metrics: {sorted(metrics)}"
            )
        cols = {m: np.asarray(metrics[m], dtype=np.float64).reshape(-1) for m in self.required_metrics}
        n = n if n is not None else len(next(iter(cols.values())))
        failed = np.zeros(n, dtype=bool)
        for v in cols.values():
            failed |= ~np.isfinite(v)
        F = np.column_stack([o.to_min(o.values(cols)) for o in self.objectives]) if self.objectives else np.zeros((n, 0))
        G_cols = [g for b in self.budgets for g in b.violations(cols)]
        G = np.column_stack(G_cols + [np.where(failed, 1.0, -1.0)])
        if failed.any():
            # failed genomes get the batch's worst values: finite, so normalisations stay sane
            ok = ~failed
            fill = np.nanmax(np.where(ok[:, None], F, np.nan), axis=0) if ok.any() else np.zeros(F.shape[1])
            F[failed] = np.nan_to_num(fill, nan=0.0)
            G[failed, :-1] = np.nan_to_num(G[failed, :-1], nan=1.0)
        return F, G

    def _evaluate(self, x, out, *args, **kwargs):
        if self.external_metrics:
            raise ConfigError(
                f"metrics {list(self.external_metrics)} have no in-process evaluator; evaluate them outside "
                "(SearchDriver.ask/tell, an NNI strategy or tuner) or add an evaluator that provides them"
            )
        metrics = self.evaluate_metrics(x)
        out["F"], out["G"] = self.encode(metrics, len(x))

    def objective_values(self, metrics: Mapping[str, Any]) -> np.ndarray:
        """``[P, n_obj]`` objective values as a person reads them (error in %, top-1, MACs...)."""
        return np.column_stack([o.values(metrics) for o in self.objectives])
