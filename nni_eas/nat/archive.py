"""NAT's archive: every arch measured so far, with its metrics on the *current* supernet.

The archive is what the surrogate learns from, what seeds the surrogate search (its
non-dominated set), what the supernet adaptation samples from (the distribution of its best
archs) and what becomes the result front. After the supernet is adapted the archive is
re-measured, so its accuracies always describe the supernet in hand.

Plain data only (genomes, numbers, strings): it is saved as JSON inside NAT's checkpoint.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import numpy as np
from pymoo.util.nds.non_dominated_sorting import NonDominatedSorting

from ..encodings import genomes_to_archs
from ..search.front import Front, FrontEntry, non_dominated
from ..search.genome import GenomeLayout
from ..search.objectives import finite_float
from ..search.problem import ArchProblem
from ..spaces.config import OFAMobileNetV3Config

__all__ = ["Archive", "ArchiveRecord"]


@dataclass
class ArchiveRecord:
    genome: list[int]
    metrics: dict[str, float]
    iteration: int                    # when it entered the archive
    error: str | None = None
    measured_on: int = 0              # adaptation step of the supernet that measured it
    predicted: float | None = None    # the surrogate's top-1 when it was proposed
    history: list[float | None] = field(default_factory=list)  # top-1 on every supernet it was measured on

    def to_json(self) -> dict[str, Any]:
        return {"genome": self.genome, "metrics": self.metrics, "iteration": self.iteration, "error": self.error,
                "measured_on": self.measured_on, "predicted": self.predicted, "history": self.history}

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> "ArchiveRecord":
        return cls(list(d["genome"]), dict(d["metrics"]), int(d["iteration"]), d.get("error"),
                   int(d.get("measured_on", 0)), d.get("predicted"), list(d.get("history", [])))


class Archive:
    """Measured archs of one space, keyed by network (canonical genome).

    ``problem`` (an :class:`~nni_eas.search.ArchProblem` without evaluators) says what the
    objectives and budgets are; the archive uses it to turn metrics into pymoo's ``F`` / ``G``.
    """

    def __init__(self, problem: ArchProblem):
        self.problem = problem
        self.cfg: OFAMobileNetV3Config = problem.cfg
        self.layout = GenomeLayout(self.cfg)
        self.records: dict[bytes, ArchiveRecord] = {}

    def __len__(self) -> int:
        return len(self.records)

    def __contains__(self, key: bytes) -> bool:
        return key in self.records

    def keys(self) -> set[bytes]:
        return set(self.records)

    def key(self, genome: Sequence[int]) -> bytes:
        return self.layout.keys(np.asarray([genome], dtype=np.int64))[0]

    # ---- updates ----------------------------------------------------------------------------
    def record(self, genome: Sequence[int], metrics: Mapping[str, Any] | None, iteration: int, error: str | None = None,
               measured_on: int = 0, predicted: float | None = None) -> ArchiveRecord:
        """Add an arch, or replace the measurement of one already there (re-evaluation)."""
        key = self.key(genome)
        clean = {k: v for k, v in ((k, finite_float(v)) for k, v in (metrics or {}).items()) if v is not None}
        if error is None and any(m not in clean for m in self.problem.required_metrics):
            missing = [m for m in self.problem.required_metrics if m not in clean]
            error = f"metrics {missing} missing or not finite in {sorted(clean)}"
        old = self.records.get(key)
        rec = ArchiveRecord([int(g) for g in genome], clean, old.iteration if old else int(iteration), error,
                            int(measured_on), old.predicted if old and predicted is None else predicted,
                            (old.history if old else []) + [clean.get("top1")])
        self.records[key] = rec
        return rec

    # ---- views ------------------------------------------------------------------------------
    def ok(self) -> list[ArchiveRecord]:
        """Successfully measured records, in insertion order."""
        return [r for r in self.records.values() if r.error is None]

    def genomes(self, ok_only: bool = True) -> np.ndarray:
        recs = self.ok() if ok_only else list(self.records.values())
        return np.array([r.genome for r in recs], dtype=np.int64).reshape(len(recs), self.layout.length)

    def metric(self, name: str) -> np.ndarray:
        return np.array([r.metrics.get(name, np.nan) for r in self.ok()], dtype=np.float64)

    def objectives(self, recs: Sequence[ArchiveRecord] | None = None) -> tuple[np.ndarray, np.ndarray]:
        """pymoo ``(F, G)`` of ``recs`` (default: every successful record)."""
        recs = self.ok() if recs is None else list(recs)
        if not recs:
            return np.zeros((0, self.problem.n_obj)), np.zeros((0, self.problem.n_ieq_constr))
        metrics = {m: np.array([r.metrics[m] for r in recs], dtype=np.float64) for m in self.problem.required_metrics}
        return self.problem.encode(metrics, len(recs))

    def feasible(self) -> list[ArchiveRecord]:
        return [r for r in self.ok() if all(b.satisfied(r.metrics) for b in self.problem.budgets)]

    def front_records(self) -> list[ArchiveRecord]:
        """Non-dominated feasible records, sorted by the first objective."""
        recs = self.feasible()
        if not recs:
            return []
        F, _ = self.objectives(recs)
        keep = non_dominated(F)
        keep = keep[np.lexsort(F[keep].T[::-1])]
        return [recs[i] for i in keep]

    def ranked(self, n: int | None = None) -> list[ArchiveRecord]:
        """Records by non-dominated rank (feasible first), ties by accuracy: NAT's "good archs"."""
        recs = self.ok()
        if not recs:
            return []
        F, G = self.objectives(recs)
        infeasible = (G[:, :-1] > 0).any(axis=1) if G.shape[1] > 1 else np.zeros(len(recs), bool)
        fronts = NonDominatedSorting().do(F) if len(F) > 1 else [np.array([0])]
        rank = np.empty(len(recs), dtype=np.int64)
        for r, idx in enumerate(fronts):
            rank[idx] = r
        top1 = np.array([r.metrics["top1"] for r in recs])
        order = np.lexsort((-top1, rank, infeasible))
        out = [recs[i] for i in order]
        return out if n is None else out[:n]

    def front_values(self) -> np.ndarray:
        """``[k, n_obj]`` objective values (as a person reads them) of :meth:`front_records`."""
        recs = self.front_records()
        if not recs:
            return np.zeros((0, self.problem.n_obj))
        metrics = {m: np.array([r.metrics[m] for r in recs]) for m in self.problem.required_metrics}
        return self.problem.objective_values(metrics)

    def to_front(self, space: Mapping[str, Any] | None = None, supernet_sha256: str | None = None) -> Front:
        """The result front (``front.json`` format), derived objectives next to the metrics."""
        recs = self.front_records()
        archs = genomes_to_archs(self.cfg, np.array([r.genome for r in recs], dtype=np.int64)) if recs else []
        entries = []
        for r, a in zip(recs, archs):
            m = dict(r.metrics)
            for o in self.problem.objectives:
                if o.name not in m:
                    m[o.name] = float(o.values({o.metric: np.array([m[o.metric]])})[0])
            entries.append(FrontEntry(arch=a.to_dict(), genome=list(r.genome), metrics=m))
        return Front(list(self.problem.objectives), entries, space=dict(space or self.cfg.model_dump(mode="json")),
                     supernet_sha256=supernet_sha256)

    # ---- persistence ------------------------------------------------------------------------
    def to_json(self) -> list[dict[str, Any]]:
        return [r.to_json() for r in self.records.values()]

    def load_json(self, rows: Sequence[Mapping[str, Any]]) -> None:
        self.records = {}
        for row in rows:
            rec = ArchiveRecord.from_json(row)
            self.records[self.key(rec.genome)] = rec
