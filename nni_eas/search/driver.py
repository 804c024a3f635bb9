"""The search core every front-end shares: a pymoo algorithm driven through ask/tell.

:class:`SearchDriver` owns one pymoo problem and algorithm and runs generations::

    batch = driver.ask()                 # a generation's genomes; in-process metrics filled in
    for i in batch.pending:              # the ones an outside evaluator must measure
        driver.report(batch, i, metrics) # or driver.report(batch, i, None, error="...")
    driver.tell(batch)                   # survival, hypervolume, checkpoint, result files

so evaluation can happen anywhere: in this process (:meth:`SearchDriver.run`), in NNI trials
launched by a ``Strategy`` (:mod:`nni_eas.strategies`) or by an ``nnictl`` tuner
(:mod:`nni_eas.tuners`). Every finished generation is checkpointed atomically (population with
pymoo's per-individual attributes, RNG state, archive, hypervolume history), and every
external evaluation is appended to ``evaluations.jsonl`` as it arrives: a resumed search
continues exactly where it stopped and does not re-measure what was already measured. A
failed evaluation is recorded as failed (constraint-violating) and the search goes on.
"""

from __future__ import annotations

import io
import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np
from pymoo.core.algorithm import Algorithm
from pymoo.core.population import Population
from pymoo.core.problem import Problem
from pymoo.core.termination import NoTermination
from pymoo.indicators.hv import HV

from ..config import ConfigError
from ..encodings import genomes_to_archs
from ..io import atomic_write_bytes, atomic_write_json, check_state_format
from .front import Front, FrontEntry, non_dominated
from .objectives import finite_float
from .operators import GenomeDuplicateElimination
from .problem import ArchProblem

__all__ = ["SearchDriver", "Batch", "SearchResult", "STATE_FILE", "EVALUATIONS_FILE"]

_logger = logging.getLogger(__name__)

STATE_FILE = "search_state.npz"
EVALUATIONS_FILE = "evaluations.jsonl"
STATE_FORMAT = "nni-eas-search-state/1"
_STATE_KEYS = ("signature", "generation", "n_iter", "n_eval", "n_evals", "n_failed", "seconds", "terminated", "rng",
               "hv_history", "ref_min", "archive")

_NOT_METRICS = {"default", "archs", "seconds", "error"}  # bookkeeping keys of NNI metric dicts

Evaluate = Callable[[np.ndarray], Sequence[Mapping[str, Any] | None]]


@dataclass
class Batch:
    """One generation's genomes and their metrics, filled in as evaluations arrive."""

    generation: int
    genomes: np.ndarray
    metrics: dict[str, np.ndarray]
    pending: set[int]
    errors: dict[int, str] = field(default_factory=dict)
    pop: Any = None
    F: np.ndarray | None = None  # generic (non-architecture) problems: evaluated at ask()
    G: np.ndarray | None = None

    @property
    def complete(self) -> bool:
        return not self.pending

    def __len__(self) -> int:
        return len(self.genomes)


@dataclass
class SearchResult:
    front: Front | None
    hv_history: list[float]
    generations: int
    n_evals: int
    n_failed: int
    seconds: float
    F: np.ndarray  # final optimum of the algorithm (pymoo's convention, minimised)
    X: np.ndarray
    workdir: Path | None = None


class _Archive:
    """Every network evaluated: canonical key -> genome, metrics, error, generation."""

    def __init__(self) -> None:
        self.records: dict[bytes, dict[str, Any]] = {}

    def __len__(self) -> int:
        return len(self.records)

    def __contains__(self, key: bytes) -> bool:
        return key in self.records

    def add(self, key: bytes, genome: np.ndarray, metrics: Mapping[str, Any], generation: int, error: str | None) -> None:
        self.records[key] = {"genome": [int(g) for g in genome], "metrics": {k: finite_float(v) for k, v in metrics.items()},
                             "generation": int(generation), "error": error}

    def get(self, key: bytes) -> dict[str, Any] | None:
        return self.records.get(key)


class SearchDriver:
    """Ask/tell driver of a pymoo algorithm with archive, hypervolume history and checkpoints.

    Args:
        problem: an :class:`~nni_eas.search.problem.ArchProblem` (or any pymoo problem, then
            evaluated in-process at :meth:`ask`; used to check the driver against pymoo itself).
        algorithm: a pymoo algorithm (see :func:`~nni_eas.search.algorithms.make_algorithm`).
        n_gen: generations, counting the initial population as the first (pymoo's ``n_gen``).
        seed: seeds the algorithm's random generator (as ``pymoo.optimize.minimize(seed=...)``).
        workdir: where checkpoints, the evaluation log and result files go (None: nowhere).
        ref_point: hypervolume reference, in objective values as a person reads them (e.g.
            ``[0.0, 6e8]`` for top1/macs); default: the first generation's nadir plus 10 %.
        resume: continue from ``workdir``'s checkpoint when there is one.
        dedup_archive: offspring never repeat a network evaluated earlier (fixed trials per
            generation, no wasted measurements); default on for architecture problems.
        fill_offspring: top a short generation up with random new genomes so every generation
            has exactly ``n_offsprings`` evaluations (trial counts are known in advance).
        keep_archive: remember every evaluation (default: when evaluations are expensive).
        checkpoint_every: generations between checkpoints (0 = never).
        results_every: generations between front/plot files (0 = only at the end).
        meta: extra fields for the front (``space``, ``supernet_sha256``) and ``search.json``.
    """

    def __init__(self, problem: Problem, algorithm: Algorithm, n_gen: int, *, seed: int = 0,
                 workdir: str | Path | None = None, ref_point: Sequence[float] | None = None, resume: bool = True,
                 dedup_archive: bool | None = None, fill_offspring: bool | None = None,
                 keep_archive: bool | None = None, checkpoint_every: int = 1, results_every: int = 1,
                 plot: bool = True, meta: Mapping[str, Any] | None = None, name: str | None = None):
        if n_gen < 1:
            raise ConfigError(f"n_gen must be >= 1 (the initial population is generation 1), got {n_gen}")
        self.problem, self.algorithm, self.n_gen, self.seed = problem, algorithm, int(n_gen), int(seed)
        self.arch = isinstance(problem, ArchProblem)
        self.workdir = Path(workdir) if workdir is not None else None
        self.keep_archive = (self.arch and problem.expensive) if keep_archive is None else keep_archive
        self.fill_offspring = self.arch if fill_offspring is None else fill_offspring
        self.checkpoint_every, self.results_every, self.plot = checkpoint_every, results_every, plot
        self.meta = dict(meta or {})
        self.name = name or type(algorithm).__name__
        self.archive = _Archive()
        self.seen: set[bytes] = set()       # networks told to the algorithm (dedup set)
        self.hv_history: list[float] = []
        self.front_history: list[np.ndarray] = []   # objective values of each generation's front
        self.generation = 0
        self.n_evals = self.n_failed = 0
        self.seconds = 0.0
        self._t0: float | None = None
        self._ref_user = None if ref_point is None else np.asarray(ref_point, dtype=np.float64)
        self._ref_min: np.ndarray | None = None
        self._hv: HV | None = None
        self._terminated = False
        self._written = -1

        algorithm.setup(problem, seed=self.seed, termination=NoTermination(), verbose=False)
        dup = getattr(algorithm, "eliminate_duplicates", None)
        if isinstance(dup, GenomeDuplicateElimination) and (dedup_archive if dedup_archive is not None else self.arch):
            dup.archive = self.seen
        if self._ref_user is not None:
            self._set_ref(self._ref_user)
        if self.workdir is not None and resume and (self.workdir / STATE_FILE).is_file():
            self.load_checkpoint()
        if self.workdir is not None and self.arch:
            self._load_evaluation_log()

    # ------------------------------------------------------------------------------------------
    # ask / report / tell
    # ------------------------------------------------------------------------------------------
    @property
    def done(self) -> bool:
        return self._terminated or self.generation >= self.n_gen

    @property
    def n_offsprings(self) -> int:
        return int(getattr(self.algorithm, "n_offsprings", None) or getattr(self.algorithm, "pop_size", 0))

    def planned_evaluations(self) -> int:
        """Evaluations of a full run: the initial population plus every generation's offspring."""
        pop_size = int(getattr(self.algorithm, "pop_size"))
        return pop_size + (self.n_gen - 1) * self.n_offsprings

    def planned_batch_sizes(self) -> list[int]:
        """Size of every generation of a full run (NNI tuners turn these into trial counts)."""
        return [int(getattr(self.algorithm, "pop_size"))] + [self.n_offsprings] * (self.n_gen - 1)

    def ask(self) -> Batch | None:
        """The next generation's genomes (``None`` when the search is done)."""
        if self.done:
            return None
        if self._t0 is None:
            self._t0 = time.perf_counter()
        pop = self.algorithm.ask()
        if pop is None:  # mating could not produce a single new network
            self._terminated = True
            return None
        generation = self.generation + 1
        if self.fill_offspring:
            want = self.algorithm.pop_size if generation == 1 else self.n_offsprings
            pop = self._fill(pop, want)
        if not self.arch:
            X = np.asarray(pop.get("X"))
            out = self.problem.evaluate(X, return_as_dictionary=True)
            return Batch(generation, X, {}, set(), pop=pop, F=out["F"], G=out.get("G"))
        X = np.asarray(pop.get("X"), dtype=np.int64)
        external = self.problem.external_metrics
        keys = self.problem.layout.keys(X)
        use_cache = self.problem.expensive
        cached = [i for i, k in enumerate(keys) if use_cache and k in self.archive]
        fresh = [i for i in range(len(X)) if i not in set(cached)]
        metrics = {m: np.full(len(X), np.nan) for m in (*self.problem.local_metrics, *external)}
        if fresh:
            for m, v in self.problem.evaluate_metrics(X[fresh]).items():
                metrics.setdefault(m, np.full(len(X), np.nan))[fresh] = v
        batch = Batch(generation, X, metrics, set(), pop=pop)
        for i in cached:
            self._fill_from_record(batch, i, self.archive.get(keys[i]))
        for i in fresh:
            if external:
                batch.pending.add(i)
            elif self.keep_archive:
                self.archive.add(keys[i], X[i], {k: v[i] for k, v in metrics.items()}, generation, None)
                if use_cache and self.workdir is not None:
                    self._append_log(self.archive.get(keys[i]))
        return batch

    def report(self, batch: Batch, index: int, metrics: Mapping[str, Any] | None, error: str | None = None) -> None:
        """Record the outside evaluation of ``batch.genomes[index]`` (``None`` or ``error`` = failed)."""
        if index not in batch.pending:
            _logger.debug("ignoring a second report for genome %d of generation %d", index, batch.generation)
            return
        failed = metrics is None or error is not None
        values = {} if metrics is None else dict(metrics)
        for m in self.problem.external_metrics:
            v = finite_float(values.get(m))
            if v is None:
                failed = True
                error = error or f"metric {m!r} missing or not finite in {sorted(values)}"
            batch.metrics[m][index] = np.nan if v is None else v
        if failed:
            for m in self.problem.external_metrics:
                batch.metrics[m][index] = np.nan
            batch.errors[index] = error or "evaluation failed"
        batch.pending.discard(index)
        key = self.problem.layout.keys(batch.genomes[index:index + 1])[0]
        record_metrics = {k: v[index] for k, v in batch.metrics.items()}
        record_metrics.update({k: v for k, v in values.items()  # other numbers the trial measured
                               if k not in record_metrics and k not in _NOT_METRICS and finite_float(v) is not None})
        self.archive.add(key, batch.genomes[index], record_metrics, batch.generation, batch.errors.get(index))
        if self.workdir is not None:
            self._append_log(self.archive.get(key))

    def tell(self, batch: Batch) -> None:
        """Finish a generation: survival, hypervolume, checkpoint and result files."""
        if batch.generation != self.generation + 1:
            raise ConfigError(f"tell() got generation {batch.generation}, the search is at generation {self.generation + 1}")
        if batch.pending:
            raise ConfigError(f"generation {batch.generation} still waits for {len(batch.pending)} evaluations "
                              "(report them, or report them as failed)")
        pop = batch.pop
        if self.arch:
            F, G = self.problem.encode(batch.metrics, len(batch))
            failed = G[:, -1] > 0
            self.n_failed += int(failed.sum())
        else:
            F, G = batch.F, batch.G
        n = len(batch)
        H = np.zeros((n, 0))
        G = np.zeros((n, 0)) if G is None else G
        pop.set("F", np.asarray(F, dtype=np.float64), "G", np.asarray(G, dtype=np.float64), "H", H)
        pop.apply(lambda ind: ind.evaluated.update(("F", "G", "H")))
        self.algorithm.evaluator.n_eval += n
        self.n_evals += n
        if self.arch:
            self.seen.update(self.problem.layout.keys(batch.genomes))
        self.algorithm.tell(infills=pop)
        self.generation += 1
        self._record_generation()
        if self._t0 is not None:
            self.seconds += time.perf_counter() - self._t0
            self._t0 = time.perf_counter()
        if self.workdir is not None:
            if self.checkpoint_every and (self.generation % self.checkpoint_every == 0 or self.done):
                self.save_checkpoint()
            if self.arch and (self.done or (self.results_every and self.generation % self.results_every == 0)):
                self.write_results(plot=self.plot and self.done)
                self._written = self.generation

    def run(self, evaluate: Evaluate | None = None, callback: Callable[["SearchDriver"], None] | None = None) -> SearchResult:
        """Run to the end, measuring external metrics with ``evaluate(genomes) -> [metrics | None]``."""
        while not self.done:
            batch = self.ask()
            if batch is None:
                break
            if batch.pending:
                if evaluate is None:
                    raise ConfigError(f"metrics {list(self.problem.external_metrics)} need an evaluate function "
                                      "(or an in-process evaluator that provides them)")
                idx = sorted(batch.pending)
                try:
                    results = list(evaluate(batch.genomes[idx]))
                except Exception as e:  # the whole batch failed: record it and go on
                    _logger.warning("evaluation of generation %d failed: %s", batch.generation, e)
                    results = [None] * len(idx)
                    for i in idx:
                        batch.errors[i] = f"{type(e).__name__}: {e}"
                if len(results) != len(idx):
                    raise ConfigError(f"evaluate() returned {len(results)} results for {len(idx)} genomes")
                for i, r in zip(idx, results):
                    err = r.get("error") if isinstance(r, Mapping) and r.get("error") else batch.errors.get(i)
                    self.report(batch, i, r if not err else None, error=err)
            self.tell(batch)
            if callback is not None:
                callback(self)
        if self.workdir is not None and self.arch and self.generation > 0 and self._written != self.generation:
            self.write_results(plot=self.plot)
            self._written = self.generation
        return self.result()

    # ------------------------------------------------------------------------------------------
    # helpers
    # ------------------------------------------------------------------------------------------
    def _fill(self, pop: Population, want: int) -> Population:
        """Top ``pop`` up to ``want`` new, distinct networks with random genomes."""
        if len(pop) >= want:
            return pop
        layout = self.problem.layout
        X = np.asarray(pop.get("X"), dtype=np.int64) if len(pop) else np.zeros((0, layout.length), np.int64)
        taken = self.seen | set(layout.keys(X))
        extra = []
        rng = self.algorithm.random_state
        for _ in range(1000):
            if len(X) + len(extra) >= want:
                break
            g = layout.random(1, rng)
            k = layout.keys(g)[0]
            if k not in taken:
                taken.add(k)
                extra.append(g[0])
        if extra:
            _logger.info("generation %d: topped up %d offspring with random new networks", self.generation + 1, len(extra))
            pop = Population.merge(pop, Population.new("X", np.stack(extra)))
        return pop

    def _fill_from_record(self, batch: Batch, i: int, record: Mapping[str, Any]) -> None:
        for m, arr in batch.metrics.items():
            v = record["metrics"].get(m)
            arr[i] = np.nan if v is None else v
        if record.get("error"):
            batch.errors[i] = record["error"]

    def _set_ref(self, ref_user: np.ndarray) -> None:
        if self.arch:
            objs = self.problem.objectives
            if len(ref_user) != len(objs):
                raise ConfigError(f"ref_point needs {len(objs)} values ({[o.name for o in objs]}), got {list(ref_user)}")
            self._ref_min = np.array([o.to_min(v) for o, v in zip(objs, ref_user)], dtype=np.float64)
        else:
            self._ref_min = np.asarray(ref_user, dtype=np.float64)
        self._hv = HV(ref_point=self._ref_min)

    def _optimum(self) -> tuple[np.ndarray, np.ndarray]:
        """Non-dominated feasible members of the current population (X, minimised F)."""
        pop = self.algorithm.pop
        if pop is None or len(pop) == 0:
            return np.zeros((0, self.problem.n_var), np.int64), np.zeros((0, self.problem.n_obj))
        feas = np.asarray(pop.get("feas"), dtype=bool).reshape(-1)
        X, F = np.asarray(pop.get("X"))[feas], np.asarray(pop.get("F"), dtype=np.float64)[feas]
        keep = non_dominated(F)
        return X[keep], F[keep]

    def to_objective_values(self, F: np.ndarray) -> np.ndarray:
        """pymoo's minimised ``F`` -> objective values as a person reads them (top-1, error %, MACs)."""
        if not self.arch or len(F) == 0:
            return np.asarray(F, dtype=np.float64)
        return np.column_stack([o.from_min(F[:, i]) for i, o in enumerate(self.problem.objectives)])

    def _record_generation(self) -> None:
        _, F = self._optimum()
        if self._hv is None and len(F):
            lo, hi = F.min(axis=0), F.max(axis=0)
            span = np.maximum(hi - lo, np.maximum(np.abs(hi) * 0.01, 1e-12))
            self._ref_min = hi + 0.1 * span
            self._hv = HV(ref_point=self._ref_min)
        hv = float(self._hv(F)) if self._hv is not None and len(F) else 0.0
        self.hv_history.append(hv)
        self.front_history.append(self.to_objective_values(F))

    @property
    def ref_point(self) -> np.ndarray | None:
        """Hypervolume reference point in objective values as a person reads them."""
        if self._ref_min is None:
            return None
        return self.to_objective_values(self._ref_min[None])[0]

    # ------------------------------------------------------------------------------------------
    # results
    # ------------------------------------------------------------------------------------------
    def front(self) -> Front | None:
        """Non-dominated, feasible, successfully evaluated archs: final population and archive."""
        if not self.arch:
            return None
        X, _ = self._optimum()
        layout, cfg = self.problem.layout, self.problem.cfg
        rows: dict[bytes, dict[str, Any]] = {}
        for key in layout.keys(X):
            rec = self.archive.get(key)
            if rec is not None:
                rows[key] = rec
        if len(X) and len(rows) < len(X):
            # cheap problems keep no archive: recompute the (cheap) metrics of the final optimum
            metrics = self.problem.evaluate_metrics(X)
            for i, key in enumerate(layout.keys(X)):
                rows.setdefault(key, {"genome": X[i].tolist(), "metrics": {k: finite_float(v[i]) for k, v in metrics.items()},
                                      "error": None})
        for key, rec in self.archive.records.items():
            if rec["error"] is None:
                rows.setdefault(key, rec)
        recs = [r for r in rows.values() if r["error"] is None
                and all(r["metrics"].get(m) is not None for m in self.problem.required_metrics)]
        recs = [r for r in recs if all(b.satisfied(r["metrics"]) for b in self.problem.budgets)]
        if recs:
            metrics = {m: np.array([r["metrics"][m] for r in recs], dtype=np.float64) for m in self.problem.required_metrics}
            F, _ = self.problem.encode(metrics, len(recs))
            keep = non_dominated(F)
            keep = keep[np.lexsort(F[keep].T[::-1])]
            recs = [recs[i] for i in keep]
        archs = genomes_to_archs(cfg, np.array([r["genome"] for r in recs], dtype=np.int64)) if recs else []
        entries = []
        for r, a in zip(recs, archs):
            m = dict(r["metrics"])
            for o in self.problem.objectives:  # derived objectives (error_pct) next to the metrics
                if o.name not in m:
                    m[o.name] = float(o.values({o.metric: np.array([m[o.metric]])})[0])
            entries.append(FrontEntry(arch=a.to_dict(), genome=list(r["genome"]), metrics=m))
        return Front(list(self.problem.objectives), entries, space=self.meta.get("space") or cfg.model_dump(mode="json"),
                     supernet_sha256=self.meta.get("supernet_sha256"))

    def result(self) -> SearchResult:
        X, F = self._optimum()
        return SearchResult(front=self.front(), hv_history=list(self.hv_history), generations=self.generation,
                            n_evals=self.n_evals, n_failed=self.n_failed, seconds=self.seconds, F=F, X=X,
                            workdir=self.workdir)

    def summary(self) -> dict[str, Any]:
        """What ``search.json`` records: settings, progress, hypervolume per generation."""
        return {
            "format": "nni-eas-search/1",
            "algorithm": self.name,
            "objectives": [o.name for o in self.problem.objectives] if self.arch else None,
            "budgets": [vars(b) for b in getattr(self.problem, "budgets", [])],
            "pop_size": int(getattr(self.algorithm, "pop_size", 0)),
            "n_offsprings": self.n_offsprings,
            "n_gen": self.n_gen,
            "generation": self.generation,
            "seed": self.seed,
            "n_evals": self.n_evals,
            "n_failed": self.n_failed,
            "seconds": round(self.seconds, 3),
            "ref_point": None if self.ref_point is None else self.ref_point.tolist(),
            "hypervolume": self.hv_history,
            **{k: v for k, v in self.meta.items() if k not in ("space",)},
        }

    def write_results(self, plot: bool = True) -> dict[str, Path]:
        """``front.json``, ``front.csv``, ``search.json`` and (``plot``) ``front.png`` in ``workdir``."""
        if self.workdir is None:
            raise ConfigError("write_results() needs a workdir")
        front = self.front()
        paths = front.save(self.workdir) if front is not None else {}
        paths["search"] = atomic_write_json(self.workdir / "search.json", self.summary())
        if plot and front is not None and len(front) and len(front.objectives) >= 2:
            from .decision import knee_point
            from .plot import plot_fronts

            V = front.values()
            chosen = {"knee": V[knee_point(front.minimised())]}
            paths["png"] = plot_fronts(self.workdir / "front.png", front.objective_names, self.front_history,
                                       final=V, chosen=chosen, title=f"{self.name}: {self.generation} generations")
        return paths

    # ------------------------------------------------------------------------------------------
    # checkpoints
    # ------------------------------------------------------------------------------------------
    def _signature(self) -> dict[str, Any]:
        sig = {"algorithm": type(self.algorithm).__name__, "pop_size": int(getattr(self.algorithm, "pop_size", 0)),
               "n_var": int(self.problem.n_var), "n_obj": int(self.problem.n_obj),
               "n_ieq_constr": int(self.problem.n_ieq_constr), "seed": self.seed}
        if self.arch:
            sig["objectives"] = [o.name for o in self.problem.objectives]
            sig["space"] = self.problem.cfg.name
        return sig

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue: JSON-able state plus numeric arrays (``arrays``)."""
        algo = self.algorithm
        pop = algo.pop
        arrays: dict[str, np.ndarray] = {}
        if pop is not None and len(pop):
            arrays["pop_X"] = np.asarray(pop.get("X"))
            for k in ("F", "G", "H", "CV"):
                arrays[f"pop_{k}"] = np.asarray(pop.get(k), dtype=np.float64)
            data_keys = sorted({k for ind in pop for k in ind.data})
            for k in data_keys:
                v = np.asarray(pop.get(k))
                if v.dtype.kind in "biuf":
                    arrays[f"data_{k}"] = v
            opt_ids = {id(ind) for ind in (algo.opt if algo.opt is not None else [])}
            arrays["opt_index"] = np.array([i for i, ind in enumerate(pop) if id(ind) in opt_ids], dtype=np.int64)
        norm = getattr(getattr(algo, "survival", None), "norm", None)
        if norm is not None:
            for k in ("ideal_point", "worst_point", "nadir_point", "extreme_points"):
                v = getattr(norm, k, None)
                if v is not None:
                    arrays[f"norm_{k}"] = np.asarray(v, dtype=np.float64)
        if self.seen:
            arrays["seen"] = np.frombuffer(b"".join(sorted(self.seen)), dtype=np.uint8).reshape(len(self.seen), -1)
        if self.front_history:
            arrays["fh_values"] = np.concatenate([f.reshape(-1, self.problem.n_obj) for f in self.front_history])
            arrays["fh_gen"] = np.concatenate([np.full(len(f), g) for g, f in enumerate(self.front_history)])
        state = {
            "format": STATE_FORMAT,
            "signature": self._signature(),
            "generation": self.generation,
            "n_iter": algo.n_iter,
            "n_eval": algo.evaluator.n_eval,
            "n_evals": self.n_evals,
            "n_failed": self.n_failed,
            "seconds": self.seconds,
            "terminated": self._terminated,
            "rng": algo.random_state.bit_generator.state,
            "hv_history": self.hv_history,
            "ref_min": None if self._ref_min is None else self._ref_min.tolist(),
            "archive": list(self.archive.records.values()) if self.keep_archive else [],
        }
        return {"state": state, "arrays": arrays}

    def save_checkpoint(self) -> Path:
        """Write ``search_state.npz`` atomically (one file: arrays + the JSON state)."""
        if self.workdir is None:
            raise ConfigError("save_checkpoint() needs a workdir")
        sd = self.state_dict()
        buf = io.BytesIO()
        np.savez(buf, state=np.array(json.dumps(sd["state"])), **sd["arrays"])
        return atomic_write_bytes(self.workdir / STATE_FILE, buf.getvalue())

    def load_checkpoint(self, path: str | Path | None = None) -> None:
        """Restore the state written by :meth:`save_checkpoint` (arrays only: nothing is unpickled)."""
        path = Path(path) if path is not None else self.workdir / STATE_FILE  # type: ignore[operator]
        fix = "delete it to start the search over, or choose another workdir (or resume=False)"
        if not path.is_file():
            raise ConfigError(f"search state not found: {path} (expected a {STATE_FILE} written by nni-eas)")
        try:
            with np.load(path, allow_pickle=False) as z:
                arrays = {k: z[k] for k in z.files}
        except Exception as e:  # BadZipFile, EOFError, a pickle or a plain .npy, an unreadable file...
            raise ConfigError(f"{path} is not a readable nni-eas search state (truncated or not written by nni-eas): "
                              f"{type(e).__name__}: {e}; {fix}") from None
        try:
            state = json.loads(str(arrays.pop("state")))
        except (KeyError, ValueError) as e:
            raise ConfigError(f"{path} is not an nni-eas search state (expected an npz with a JSON 'state' entry; "
                              f"{type(e).__name__}: {e}); {fix}") from None
        state = check_state_format(state, path, "search state", STATE_FORMAT, fix)
        missing = [k for k in _STATE_KEYS if k not in state]
        if missing:
            raise ConfigError(f"{path} is an incomplete nni-eas search state (missing {', '.join(missing)}); {fix}")
        if state["signature"] != self._signature():
            raise ConfigError(f"{path} belongs to another search: checkpoint {state['signature']}, "
                              f"this search {self._signature()}; use another workdir or resume=False")
        try:
            self._restore(state, arrays)
        except (KeyError, ValueError, TypeError, IndexError, AttributeError) as e:
            raise ConfigError(f"{path} is an inconsistent nni-eas search state ({type(e).__name__}: {e}); {fix}") from None
        _logger.info("resumed %s at generation %d/%d from %s", self.name, self.generation, self.n_gen, path)

    def _restore(self, state: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
        algo = self.algorithm
        if "pop_X" in arrays:
            n = len(arrays["pop_X"])
            pop = Population.new("X", arrays["pop_X"].astype(np.int64) if self.arch else arrays["pop_X"])
            pop.set("F", arrays["pop_F"], "G", arrays["pop_G"].reshape(n, -1), "H", arrays["pop_H"].reshape(n, -1))
            pop.set("CV", arrays["pop_CV"].reshape(n, -1))
            for k, v in arrays.items():
                if k.startswith("data_"):
                    pop.set(k[5:], v)
            pop.apply(lambda ind: ind.evaluated.update(("F", "G", "H")))
            algo.pop = pop
            algo.opt = pop[arrays["opt_index"]] if "opt_index" in arrays else None
            survival = getattr(algo, "survival", None)
            if survival is not None and hasattr(survival, "opt"):
                survival.opt = algo.opt
            algo.is_initialized = True
        norm = getattr(getattr(algo, "survival", None), "norm", None)
        if norm is not None:
            for k in ("ideal_point", "worst_point", "nadir_point", "extreme_points"):
                if f"norm_{k}" in arrays:
                    setattr(norm, k, arrays[f"norm_{k}"])
        algo.n_iter = state["n_iter"]
        algo.evaluator.n_eval = state["n_eval"]
        algo.random_state.bit_generator.state = state["rng"]
        algo.start_time = time.time()
        self.generation = state["generation"]
        self.n_evals, self.n_failed = state["n_evals"], state["n_failed"]
        self.seconds, self._terminated = state["seconds"], state["terminated"]
        self.hv_history = list(state["hv_history"])
        if state["ref_min"] is not None:
            self._ref_min = np.asarray(state["ref_min"], dtype=np.float64)
            self._hv = HV(ref_point=self._ref_min)
        self.seen.clear()
        if "seen" in arrays:
            self.seen.update(row.tobytes() for row in np.ascontiguousarray(arrays["seen"], dtype=np.uint8))
        self.archive = _Archive()
        for rec in state["archive"]:
            key = self.problem.layout.keys(np.asarray([rec["genome"]], dtype=np.int64))[0]
            self.archive.records[key] = rec
        self.front_history = []
        if "fh_values" in arrays:
            for g in range(self.generation):
                self.front_history.append(arrays["fh_values"][arrays["fh_gen"] == g])

    def _append_log(self, record: Mapping[str, Any] | None) -> None:
        if record is None:
            return
        self.workdir.mkdir(parents=True, exist_ok=True)  # type: ignore[union-attr]
        with open(self.workdir / EVALUATIONS_FILE, "a", encoding="utf-8") as f:  # type: ignore[operator]
            f.write(json.dumps(record) + "\n")
            f.flush()

    def _load_evaluation_log(self) -> None:
        """Evaluations logged after the last checkpoint (a crash mid-generation) become cache hits."""
        path = self.workdir / EVALUATIONS_FILE  # type: ignore[operator]
        if not path.is_file():
            return
        n = 0
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                rec = json.loads(line)
                key = self.problem.layout.keys(np.asarray([rec["genome"]], dtype=np.int64))[0]
            except (json.JSONDecodeError, KeyError, ValueError):
                continue  # a line cut by a crash
            if key not in self.archive:
                self.archive.records[key] = rec
                n += 1
        if n:
            _logger.info("loaded %d logged evaluations from %s", n, path)
