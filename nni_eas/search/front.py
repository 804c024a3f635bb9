"""The result of a search a person (and ``nni-eas specialize``) uses: a Pareto front of archs.

``front.json`` follows ``docs/architecture.md`` (format ``nni-eas-front/1``); ``front.csv`` has
one row per arch with every metric and the genome, for spreadsheets. Both are written
atomically. Objective names are those of :mod:`nni_eas.search.objectives`; a custom objective
is stored as ``name:min`` / ``name:max`` so a reader knows which way is better.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
from pymoo.util.nds.non_dominated_sorting import NonDominatedSorting

from ..config import ConfigError, atomic_write_text
from ..io import atomic_write_json
from .objectives import OBJECTIVES, Objective, parse_objectives

__all__ = ["FrontEntry", "Front", "FORMAT", "non_dominated", "objective_spec"]

FORMAT = "nni-eas-front/1"


def objective_spec(o: Objective) -> str:
    """How an objective is written in ``front.json``."""
    return o.name if o.name in OBJECTIVES else f"{o.name}:{o.sense}"


def non_dominated(F: np.ndarray) -> np.ndarray:
    """Indices of the non-dominated rows of a minimisation matrix ``F``."""
    if len(F) == 0:
        return np.zeros(0, dtype=int)
    return np.asarray(NonDominatedSorting().do(np.asarray(F, dtype=np.float64), only_non_dominated_front=True), dtype=int)


def _clean(v: Any) -> Any:
    if isinstance(v, (np.floating, float)):
        f = float(v)
        return f if math.isfinite(f) else None
    if isinstance(v, np.integer):
        return int(v)
    return v


@dataclass
class FrontEntry:
    """One arch of the front: its OFA arch dict, genome, metrics and (optional) task classes."""

    arch: dict[str, Any]
    genome: list[int]
    metrics: dict[str, Any]
    classes: list[int] | None = None

    def to_json(self) -> dict[str, Any]:
        return {"arch": self.arch, "genome": [int(g) for g in self.genome],
                "metrics": {k: _clean(v) for k, v in self.metrics.items()}, "classes": self.classes}


@dataclass
class Front:
    """A Pareto front; ``objectives`` say what each entry trades off."""

    objectives: list[Objective]
    entries: list[FrontEntry]
    space: dict[str, Any] = field(default_factory=dict)
    supernet_sha256: str | None = None

    # ---- views ---------------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.entries)

    @property
    def objective_names(self) -> list[str]:
        return [o.name for o in self.objectives]

    def metric(self, name: str) -> np.ndarray:
        return np.array([_nan(e.metrics.get(name)) for e in self.entries], dtype=np.float64)

    def values(self) -> np.ndarray:
        """``[n, n_obj]`` objective values as a person reads them."""
        if not self.entries:
            return np.zeros((0, len(self.objectives)))
        return np.column_stack([self._objective_values(o) for o in self.objectives])

    def _objective_values(self, o: Objective) -> np.ndarray:
        # the objective's own value if stored (custom metrics), else computed from its metric
        direct = self.metric(o.name)
        if np.all(np.isfinite(direct)):
            return direct
        return o.values({o.metric: self.metric(o.metric)})

    def minimised(self) -> np.ndarray:
        """``[n, n_obj]`` values in pymoo's convention (every objective minimised)."""
        V = self.values()
        return np.column_stack([o.to_min(V[:, i]) for i, o in enumerate(self.objectives)]) if len(V) else V

    # ---- files ---------------------------------------------------------------------------------
    def to_json(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "space": self.space,
            "supernet_sha256": self.supernet_sha256,
            "objectives": [objective_spec(o) for o in self.objectives],
            "entries": [e.to_json() for e in self.entries],
        }

    def save(self, directory: str | os.PathLike, stem: str = "front") -> dict[str, Path]:
        """Write ``<stem>.json`` and ``<stem>.csv`` into ``directory`` (atomically)."""
        d = Path(directory)
        paths = {"json": atomic_write_json(d / f"{stem}.json", self.to_json()),
                 "csv": atomic_write_text(d / f"{stem}.csv", self.to_csv())}
        return paths

    def to_csv(self) -> str:
        metric_names: list[str] = []
        for e in self.entries:
            metric_names += [k for k in e.metrics if k not in metric_names]
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(["index", *metric_names, "r", "w", "d", "ks", "e", "genome"])
        for i, e in enumerate(self.entries):
            a = e.arch
            w.writerow([i, *[_clean(e.metrics.get(k)) for k in metric_names], a.get("r"), a.get("w"),
                        " ".join(map(str, a.get("d", []))), " ".join(map(str, a.get("ks", []))),
                        " ".join(map(str, a.get("e", []))), " ".join(map(str, e.genome))])
        return buf.getvalue()

    @classmethod
    def from_json(cls, data: Mapping[str, Any], source: str = "front") -> "Front":
        if data.get("format") != FORMAT:
            raise ConfigError(f"{source}: not an nni-eas front (format {data.get('format')!r}, expected {FORMAT!r})")
        try:
            objectives = parse_objectives(list(data["objectives"]))
            entries = [FrontEntry(arch=dict(e["arch"]), genome=list(e["genome"]), metrics=dict(e["metrics"]),
                                  classes=e.get("classes")) for e in data["entries"]]
        except KeyError as e:
            raise ConfigError(f"{source}: front is missing key {e}; expected format, space, objectives, entries") from None
        return cls(objectives, entries, dict(data.get("space") or {}), data.get("supernet_sha256"))

    @classmethod
    def load(cls, path: str | os.PathLike) -> "Front":
        path = Path(path)
        if path.is_dir():
            path = path / "front.json"
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError(f"front file not found: {path}") from None
        except json.JSONDecodeError as e:
            raise ConfigError(f"{path}: not valid JSON: {e}") from None
        return cls.from_json(data, str(path))

    # ---- a-posteriori decisions (see nni_eas.search.decision) ----------------------------------
    def best_for_budget(self, objective: str | None = None, **budgets: float | Mapping[str, float]) -> FrontEntry:
        from .decision import best_for_budget

        return self.entries[best_for_budget(self, objective, **budgets)]

    def knee(self) -> FrontEntry:
        from .decision import knee_point

        return self.entries[knee_point(self.minimised())]


def _nan(v: Any) -> float:
    return float("nan") if v is None else float(v)


def entries_from_genomes(cfg, genomes: np.ndarray, metrics: Sequence[Mapping[str, Any]]) -> list[FrontEntry]:
    """Front entries of ``genomes`` (decoded to OFA arch dicts) with their metrics."""
    from ..encodings import genomes_to_archs

    archs = genomes_to_archs(cfg, np.asarray(genomes, dtype=np.int64))
    return [FrontEntry(arch=a.to_dict(), genome=[int(x) for x in g], metrics=dict(m))
            for a, g, m in zip(archs, genomes, metrics)]


def objective_list(objectives: Sequence[str | Objective]) -> list[Objective]:
    return parse_objectives(list(objectives))
