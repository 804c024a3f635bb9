"""The NAT loop as an ask/tell core (no NNI): archive, surrogate, many-objective search, adaptation.

Neural Architecture Transfer (Lu et al., 2021; NSGANetV2 is close) brings a trained supernet to
a new dataset. :class:`NATCore` runs it as a sequence of *steps*, each one a batch that
somebody outside measures (this process, an NNI trial, an nnictl trial)::

    adapt 0      warm-up: train the supernet on the target data, subnets drawn uniformly
    evaluate 0   the initial archive: smallest, largest and random archs, measured
    evaluate t   fit the surrogate on the archive (adaptive: best cross-validated Kendall tau),
                 run NSGA-II / NSGA-III on it seeded with the archive's best archs, measure a
                 small diverse subset of its front
    adapt t      train the supernet on subnets drawn from the archive's good archs
    reevaluate t re-measure the archive on the adapted supernet

It follows :class:`~nni_eas.search.core.SearchCore` (``ask`` / ``report`` / ``tell`` / ``done``
/ ``planned_evaluations`` / ``write_results``), so the NNI adapters drive it like the EMO
driver. After every step the whole state (archive, surrogate choice, history, current supernet)
is checkpointed atomically to ``nat_state.json`` (JSON, nothing pickled); every measurement is
also appended to ``evaluations.jsonl`` as it arrives, so a run stopped mid-step resumes at that
step without measuring again. The surrogate itself is refitted from the archive on resume: its
fit is deterministic, so the resumed run proposes the same archs.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np
from pymoo.indicators.hv import HV
from pymoo.util.nds.non_dominated_sorting import NonDominatedSorting

from ..config import ConfigError, validate
from ..encodings import arch_to_genome
from ..io import atomic_write_json, check_state_format, read_json_state
from ..predictors.base import Predictor, kendall_tau
from ..predictors.surrogates import AdaptiveSurrogate, make_surrogate
from ..search.algorithms import make_algorithm
from ..search.driver import SearchDriver
from ..search.evaluators import MetricEvaluator, PredictorEvaluator, evaluate_all
from ..search.front import Front
from ..search.genome import GenomeLayout
from ..search.objectives import finite_float
from ..search.operators import GenomeSampling
from ..search.problem import ArchProblem
from ..search.subnet_eval import EvaluationConfig
from ..spaces.arch import max_arch
from ..spaces.config import OFAMobileNetV3Config
from .archive import Archive
from .config import NATConfig, nat_config

__all__ = ["NATCore", "NATBatch", "LocalEvaluator", "select_diverse", "STATE_FILE", "EVALUATIONS_FILE"]

_logger = logging.getLogger(__name__)

STATE_FILE = "nat_state.json"
EVALUATIONS_FILE = "evaluations.jsonl"
STATE_FORMAT = "nni-eas-nat-state/1"
_STATE_KEYS = ("space", "config", "step", "adaptations", "supernet", "archive", "history", "ref_min", "seconds")
_NOT_METRICS = {"default", "archs", "seconds", "error", "supernet"}
# settings a resumed run must share with the checkpoint (iterations may grow: a run can be extended)
_FIXED = ("objectives", "budgets", "initial_archs", "archs_per_iteration", "algorithm", "pop_size", "generations",
          "surrogate", "adapt", "reevaluate", "seed")

Evaluate = Callable[[np.ndarray, "str | None"], Sequence[Mapping[str, Any] | None]]
Adapt = Callable[[dict], Mapping[str, Any]]


@dataclass
class NATBatch:
    """One step: archs to measure (``evaluate`` / ``reevaluate``) or one adaptation job (``adapt``).

    ``supernet`` is the checkpoint the archs are measured on; ``job`` the adaptation to run
    (its ``genomes[0]`` is a representative arch, so adapters that submit archs can submit it).
    """

    step: int
    kind: str
    iteration: int
    genomes: np.ndarray
    pending: set[int]
    supernet: str | None
    local: dict[str, np.ndarray] = field(default_factory=dict)   # in-process metrics (costs)
    job: dict[str, Any] | None = None
    predicted: np.ndarray | None = None                          # surrogate's top-1 (evaluate t >= 1)
    results: dict[int, dict[str, Any]] = field(default_factory=dict)
    errors: dict[int, str] = field(default_factory=dict)

    @property
    def generation(self) -> int:
        return self.step + 1

    @property
    def complete(self) -> bool:
        return not self.pending

    def __len__(self) -> int:
        return len(self.genomes)


def select_diverse(F: np.ndarray, k: int, covered: np.ndarray | None = None, rank: np.ndarray | None = None) -> np.ndarray:
    """Indices of ``k`` rows of ``F`` (minimised objectives) that spread over the front.

    Candidates are taken by non-dominated rank (all of rank 0, then rank 1, ... until at least
    ``k``), then picked greedily, each the farthest (normalised objective space) from
    everything already ``covered`` (the archive's front) and already picked: the subset fills
    the gaps of the measured front instead of crowding one region.
    """
    F = np.asarray(F, dtype=np.float64)
    n = len(F)
    if k >= n:
        return np.arange(n)
    rank = np.zeros(n, dtype=np.int64) if rank is None else np.asarray(rank)
    pool = np.zeros(0, dtype=np.int64)
    for r in np.unique(rank):
        pool = np.concatenate([pool, np.flatnonzero(rank == r)])
        if len(pool) >= k:
            break
    ref = F if covered is None or len(covered) == 0 else np.vstack([F, covered])
    lo, hi = ref.min(axis=0), ref.max(axis=0)
    scale = np.where(hi - lo > 0, hi - lo, 1.0)
    Z = (F - lo) / scale
    if covered is not None and len(covered):
        C = (np.asarray(covered, dtype=np.float64) - lo) / scale
        dist = np.sqrt(((Z[pool, None, :] - C[None]) ** 2).sum(-1)).min(axis=1)
    else:
        dist = np.full(len(pool), np.inf)
    chosen: list[int] = []
    for _ in range(k):
        # ties (e.g. nothing covered yet): lower rank, then the extremes of the first objective
        tie = np.lexsort((Z[pool, 0], rank[pool], -dist))
        j = int(tie[0])
        chosen.append(int(pool[j]))
        dist = np.minimum(dist, np.sqrt(((Z[pool] - Z[pool[j]]) ** 2).sum(-1)))
        dist[j] = -np.inf
    return np.asarray(chosen, dtype=np.int64)


class LocalEvaluator:
    """Measures genomes on a supernet file in this process (one :class:`SubnetEvaluation` per file).

    ``device``: where subnets run (e.g. ``"cuda"``; default: the CPU, as loaded).
    """

    def __init__(self, evaluation: EvaluationConfig, device: str | None = None):
        self.base, self.device = evaluation, device
        self._path: str | None = None
        self._ev: Any = None

    def __call__(self, genomes: np.ndarray, supernet: str | None) -> list[dict[str, Any]]:
        from ..search.subnet_eval import SubnetEvaluation

        if supernet is None:
            raise ConfigError("LocalEvaluator needs a supernet path")
        if supernet != self._path:
            self._ev = SubnetEvaluation(self.base.model_copy(update={"supernet": str(supernet)}))
            if self.device is not None:
                self._ev.supernet.to(self.device)   # subnets are extracted from it, data follows
            self._path = supernet
        return self._ev.evaluate(genomes)


class NATCore:
    """Neural architecture transfer as an ask/tell search core.

    Args:
        cfg: the space (of the source supernet; the class count follows the target data).
        config: :class:`~nni_eas.nat.config.NATConfig` (or its fields as a mapping).
        evaluation: how archs are measured (:class:`~nni_eas.search.EvaluationConfig`): its
            ``supernet`` is the *source* supernet, its ``dataset`` the *target* data. ``None``
            searches without a supernet (accuracy from ``evaluate`` callbacks; tests, synthetic).
        workdir: checkpoints, adapted supernets and results (needed with ``evaluation``).
        evaluators: in-process metrics besides accuracy (default: analytic MACs/params, plus
            latency when ``evaluation.latency`` is a lookup table).
        classes: target class names (default: the dataset's).
        on_ask: called with every batch before :meth:`ask` returns it (an NNI strategy points its
            trials at the batch's supernet or adaptation job there).
    """

    def __init__(self, cfg: OFAMobileNetV3Config, config: NATConfig | Mapping[str, Any] | None = None,
                 evaluation: EvaluationConfig | Mapping[str, Any] | None = None, *, workdir: str | Path | None = None,
                 resume: bool = True, evaluators: Sequence[MetricEvaluator] | None = None,
                 classes: Sequence[str] | None = None, meta: Mapping[str, Any] | None = None,
                 on_ask: Callable[[NATBatch], None] | None = None):
        self.config = nat_config(config)
        self.on_ask = on_ask
        self.evaluation = None if evaluation is None else (
            evaluation if isinstance(evaluation, EvaluationConfig) else validate(EvaluationConfig, evaluation, "evaluation"))
        self.workdir = None if workdir is None else Path(workdir)
        if self.evaluation is not None:
            if self.workdir is None:
                raise ConfigError("NATCore with an evaluation (a supernet to adapt) needs a workdir for its supernets")
            if self.evaluation.latency == "measured":
                raise ConfigError("evaluation.latency: NAT's surrogate search needs latency in-process; "
                                  "allowed: none or a lookup table (measured latency is not available to it)")
            from .adapt import target_classes

            classes = list(classes) if classes is not None else target_classes(self.evaluation.dataset)
            cfg = cfg.model_copy(update={"num_classes": len(classes)})
        self.cfg, self.classes = cfg, None if classes is None else [str(c) for c in classes]
        self.layout = GenomeLayout(cfg)
        if evaluators is None:
            from ..search.config import emo_evaluators

            evaluators = emo_evaluators(cfg, self.evaluation)
        self.evaluators = list(evaluators)
        c = self.config
        self.problem = ArchProblem(cfg, c.objectives, self.evaluators, c.budgets)
        external = [m for m in self.problem.external_metrics if m != "top1"]
        if external:
            raise ConfigError(f"objectives/budgets use metrics {external} that no in-process evaluator provides; "
                              "NAT's surrogate search needs every metric but top1 in-process "
                              "(macs, params, or latency_ms from a lookup table)")
        self.archive = Archive(ArchProblem(cfg, c.objectives, [], c.budgets))
        self.plan = c.steps()
        self.meta = dict(meta or {})
        self.step = 0
        self.adaptations = 0
        self.supernet: str | None = None
        self.history: list[dict[str, Any]] = []
        self.surrogate: Predictor | None = None
        self.selection: dict[str, Any] = {}
        self.seconds = 0.0
        self._t0: float | None = None
        self._ref_min: np.ndarray | None = None
        self._stale: list[Path] = []
        if c.ref_point is not None:
            self._ref_min = np.array([o.to_min(v) for o, v in zip(self.problem.objectives, c.ref_point)], dtype=np.float64)
        resumed = self.workdir is not None and resume and (self.workdir / STATE_FILE).is_file()
        if resumed:
            self.load_checkpoint()
        elif self.workdir is not None and not resume:
            (self.workdir / EVALUATIONS_FILE).unlink(missing_ok=True)  # a fresh run: old measurements do not apply
        if not resumed and self.evaluation is not None:
            from .adapt import prepare_target_supernet

            self.supernet = str(prepare_target_supernet(self.evaluation.supernet, self.classes,
                                                        self.workdir / "supernets" / "target_init.pt"))
        self._logged: dict[int, dict[bytes, dict[str, Any]]] = self._read_log() if self.workdir is not None else {}

    # ------------------------------------------------------------------------------------------
    # SearchCore protocol
    # ------------------------------------------------------------------------------------------
    @property
    def done(self) -> bool:
        return self.step >= len(self.plan)

    @property
    def generation(self) -> int:
        return self.step

    @property
    def iteration(self) -> int:
        """The iteration the next step belongs to (the last one when done)."""
        return self.plan[min(self.step, len(self.plan) - 1)][1]

    def planned_evaluations(self) -> int:
        return self.config.planned_evaluations()

    def planned_batch_sizes(self) -> list[int]:
        return self.config.planned_batch_sizes()

    def ask(self) -> NATBatch | None:
        """The next step's batch (``None`` when the run is done)."""
        if self.done:
            return None
        if self._t0 is None:
            self._t0 = time.perf_counter()
        kind, it = self.plan[self.step]
        predicted = None
        job = None
        if kind == "adapt":
            job = self._adapt_job(it)
            genomes = np.asarray([job["best"] if job["best"] is not None else arch_to_genome(self.cfg, max_arch(self.cfg))],
                                 dtype=np.int64)
        elif kind == "reevaluate":
            genomes = self.archive.genomes(ok_only=False)
        elif it == 0:
            genomes = self._initial_genomes()
        else:
            genomes, predicted = self._propose(it)
        local = {}
        if kind != "adapt" and len(genomes):
            local = evaluate_all(self.evaluators, genomes)
        batch = NATBatch(self.step, kind, it, genomes, set(range(len(genomes))), self.supernet, local, job, predicted)
        self._replay_log(batch)
        if self.on_ask is not None:
            self.on_ask(batch)
        _logger.info("NAT step %d/%d: %s (iteration %d), %d %s", self.step + 1, len(self.plan), kind, it, len(batch.pending),
                     "job" if kind == "adapt" else "archs to measure")
        return batch

    def report(self, batch: NATBatch, index: int, metrics: Mapping[str, Any] | None, error: str | None = None) -> None:
        """One measured arch of ``batch`` (or the outcome of its adaptation job)."""
        if self._accept(batch, index, metrics, error) and self.workdir is not None:
            values = {} if metrics is None else dict(metrics)
            self._append_log({"step": batch.step, "kind": batch.kind, "genome": [int(g) for g in batch.genomes[index]],
                              "metrics": {k: v for k, v in values.items() if isinstance(v, (int, float, str)) or v is None},
                              "error": batch.errors.get(index)})

    def _accept(self, batch: NATBatch, index: int, metrics: Mapping[str, Any] | None, error: str | None) -> bool:
        if index not in batch.pending:
            return False
        batch.pending.discard(index)
        values = {} if metrics is None else dict(metrics)
        if batch.kind != "adapt" and error is None and finite_float(values.get("top1")) is None:
            error = f"metric 'top1' missing or not finite in {sorted(values)}"
        if metrics is None or error is not None:
            batch.errors[index] = error or "evaluation failed"
        else:
            batch.results[index] = values
        return True

    def tell(self, batch: NATBatch) -> None:
        """Learn from a finished step: archive / supernet update, hypervolume, checkpoint, results."""
        if batch.step != self.step:
            raise ConfigError(f"tell() got step {batch.step + 1}, NAT is at step {self.step + 1}")
        if batch.pending:
            raise ConfigError(f"step {batch.step + 1} still waits for {len(batch.pending)} measurements "
                              "(report them, or report them as failed)")
        it = batch.iteration
        entry = self._history(it)
        if batch.kind == "adapt":
            self._tell_adapt(batch, entry)
        else:
            n_ok = 0
            for i, g in enumerate(batch.genomes):
                metrics = {k: float(v[i]) for k, v in batch.local.items() if np.isfinite(v[i])}
                extra = batch.results.get(i, {})
                if i in batch.results:
                    metrics["top1"] = float(extra["top1"])
                    metrics.update({k: float(v) for k, v in extra.items()
                                    if k not in metrics and k not in _NOT_METRICS and finite_float(v) is not None})
                pred = None if batch.predicted is None else float(batch.predicted[i])
                rec = self.archive.record(g, metrics if i in batch.results else None, it, batch.errors.get(i),
                                          measured_on=self.adaptations, predicted=pred)
                n_ok += rec.error is None
            key = "reevaluated" if batch.kind == "reevaluate" else "measured"
            entry[key] = {"archs": len(batch), "failed": len(batch) - n_ok}
            if batch.kind == "evaluate" and batch.predicted is not None:
                ok = [i for i in batch.results if i not in batch.errors]
                measured = [float(batch.results[i]["top1"]) for i in ok]
                entry["tau_new"] = kendall_tau(measured, batch.predicted[ok]) if len(ok) >= 2 else None
                entry["predicted_top1"] = [float(batch.predicted[i]) for i in ok]
                entry["measured_top1"] = measured
            self._record_front(entry, after=batch.kind)
        self.step += 1
        if self._t0 is not None:
            self.seconds += time.perf_counter() - self._t0
            self._t0 = time.perf_counter()
        entry["seconds"] = round(self.seconds, 3)
        if self.workdir is not None:
            self.save_checkpoint()
            self.write_results(plot=self.done)

    # ------------------------------------------------------------------------------------------
    # steps
    # ------------------------------------------------------------------------------------------
    def _history(self, it: int) -> dict[str, Any]:
        while len(self.history) <= it:
            self.history.append({"iteration": len(self.history)})
        return self.history[it]

    def _sample(self, n: int, exclude: set[bytes], seed: Sequence[int], extremes: bool = False) -> np.ndarray:
        """``n`` distinct random genomes not in ``exclude`` (smallest and largest first with ``extremes``)."""
        if n <= 0:
            return np.zeros((0, self.layout.length), np.int64)
        rng = np.random.default_rng(list(seed))
        pop = GenomeSampling(self.cfg, extremes=extremes).do(self.problem, n + len(exclude), random_state=rng)
        X = np.asarray(pop.get("X"), dtype=np.int64)
        keep = [i for i, k in enumerate(self.layout.keys(X)) if k not in exclude]
        return X[keep[:n]]

    def _initial_genomes(self) -> np.ndarray:
        return self._sample(self.config.initial_archs, set(), (self.config.seed, 0), extremes=True)

    def make_surrogate(self) -> Predictor:
        s = self.config.surrogate
        if s.model == "adaptive":
            return AdaptiveSurrogate(self.cfg, s.candidates, folds=s.folds, seed=self.config.seed)
        return make_surrogate(s.model, seed=self.config.seed)

    def fit_surrogate(self) -> Predictor:
        """A surrogate of top-1 fitted on the archive; ``selection`` records which model and its tau."""
        G, y = self.archive.genomes(), self.archive.metric("top1")
        if len(y) < 4:
            raise ConfigError(f"the archive has {len(y)} successful measurements; a surrogate needs at least 4 "
                              "(raise initial_archs or fix the failing evaluations)")
        model = self.make_surrogate().fit_genomes(self.cfg, G, y)
        if isinstance(model, AdaptiveSurrogate):
            sel = dict(model.selection)
        else:  # one fixed model: its cross-validated tau, for the same report
            probe = AdaptiveSurrogate(self.cfg, {self.config.surrogate.model: self.make_surrogate},
                                      folds=self.config.surrogate.folds, seed=self.config.seed)
            taus = probe.cross_validate(G, y)
            sel = {"chosen": self.config.surrogate.model, "tau": taus[self.config.surrogate.model], "taus": taus,
                   "folds": min(self.config.surrogate.folds, len(y)), "n": int(len(y))}
        self.surrogate, self.selection = model, sel
        return model

    def _propose(self, it: int) -> tuple[np.ndarray, np.ndarray]:
        """Fit the surrogate, search on it, pick a diverse subset of its front to measure."""
        c = self.config
        t0 = time.perf_counter()
        surrogate = self.fit_surrogate()
        fit_s = time.perf_counter() - t0
        problem = ArchProblem(self.cfg, c.objectives, [*self.evaluators, PredictorEvaluator(surrogate, self.cfg)], c.budgets)
        seeds = np.array([r.genome for r in self.archive.ranked(c.pop_size)], dtype=np.int64)
        algorithm = make_algorithm(c.algorithm_name, self.cfg, pop_size=c.pop_size, n_obj=problem.n_obj,
                                   initial=seeds if len(seeds) else None, extremes=False)
        driver = SearchDriver(problem, algorithm, c.generations, seed=c.seed * 1000 + it, plot=False,
                              name=f"nat-{c.algorithm_name}")
        driver.run()
        pop = driver.algorithm.pop
        X = np.asarray(pop.get("X"), dtype=np.int64)
        F = np.asarray(pop.get("F"), dtype=np.float64)
        feas = np.asarray(pop.get("feas"), dtype=bool).reshape(-1)
        archive_keys = self.archive.keys()
        new = np.array([k not in archive_keys for k in self.layout.keys(X)], dtype=bool)
        rank = np.full(len(X), len(X), dtype=np.int64)
        for r, idx in enumerate(NonDominatedSorting().do(F)):
            rank[idx] = r
        rank[~feas] += len(X)
        cand = np.flatnonzero(new)
        k = c.archs_per_iteration
        F_front, _ = self.archive.objectives(self.archive.front_records())
        pick = cand[select_diverse(F[cand], k, covered=F_front, rank=rank[cand])] if len(cand) else np.zeros(0, np.int64)
        chosen = X[pick]
        if len(chosen) < k:  # the surrogate's front had too few new networks: random new ones
            exclude = archive_keys | set(self.layout.keys(chosen))
            chosen = np.concatenate([chosen, self._sample(k - len(chosen), exclude, (c.seed, it, 1))])
        predicted = np.asarray(surrogate.predict_genomes(self.cfg, chosen), dtype=np.float64)
        entry = self._history(it)
        entry["surrogate"] = {**self.selection, "fit_seconds": round(fit_s, 3)}
        entry["search"] = {"algorithm": c.algorithm_name, "pop_size": c.pop_size, "generations": c.generations,
                           "candidates_new": int(new.sum()), "seconds": round(time.perf_counter() - t0, 3)}
        _logger.info("NAT iteration %d: surrogate %s (cross-validated Kendall tau %.3f; %s), %d archs proposed",
                     it, self.selection.get("chosen"), self.selection.get("tau", float("nan")),
                     ", ".join(f"{n} {t:.3f}" for n, t in self.selection.get("taus", {}).items()), len(chosen))
        return chosen, predicted

    def _adapt_job(self, it: int) -> dict[str, Any]:
        c = self.config
        good = self.archive.ranked(c.adapt.top) if it > 0 else []
        out_dir = (self.workdir or Path(".")) / "adapt" / f"iter_{it:03d}"
        return {
            "iteration": it, "epochs": c.adapt.warmup_epochs if it == 0 else c.adapt.epochs,
            "input": self.supernet,
            "output": str((self.workdir or Path(".")) / "supernets" / f"iter_{it:03d}.pt"),
            "work_dir": str(out_dir),
            "dataset": None if self.evaluation is None else self.evaluation.dataset,
            "genomes": [r.genome for r in good],
            "best": good[0].genome if good else None,
            "adapt": c.adapt.model_dump(mode="json"),
            "threads": None if self.evaluation is None else self.evaluation.threads,
        }

    def _tell_adapt(self, batch: NATBatch, entry: dict[str, Any]) -> None:
        job = batch.job or {}
        metrics = batch.results.get(0)
        error = batch.errors.get(0)
        output = job.get("output")
        if metrics is not None and self.evaluation is not None and not (output and Path(output).is_file()):
            error, metrics = f"the adaptation reported success but wrote no supernet at {output}", None
        key = "warmup" if batch.iteration == 0 else "adaptation"
        if metrics is None:
            _logger.warning("NAT adaptation of iteration %d failed (%s); the supernet stays as it was", batch.iteration, error)
            entry[key] = {"error": error or "adaptation failed"}
            return
        previous = self.supernet
        self.supernet = output
        self.adaptations += 1
        entry[key] = {k: v for k, v in metrics.items() if k not in ("archs",) and (finite_float(v) is not None or isinstance(v, str))}
        if previous and previous != output and self.workdir is not None \
                and Path(previous).resolve().parent == (self.workdir / "supernets").resolve():
            self._stale.append(Path(previous))  # deleted once the checkpoint points past it

    def _record_front(self, entry: dict[str, Any], after: str) -> None:
        recs = self.archive.front_records()
        F, _ = self.archive.objectives(recs)
        if self._ref_min is None and len(F) and after == "evaluate":
            lo, hi = F.min(axis=0), F.max(axis=0)
            span = np.maximum(hi - lo, np.maximum(np.abs(hi) * 0.01, 1e-12))
            self._ref_min = hi + 0.1 * span
            for j, o in enumerate(self.problem.objectives):
                if o.metric == "top1":  # adaptation moves accuracies: reference at the worst possible (top-1 0)
                    self._ref_min[j] = float(o.to_min(o.values({"top1": np.zeros(1)}))[0])
        hv = float(HV(ref_point=self._ref_min)(F)) if self._ref_min is not None and len(F) else 0.0
        key = "hv_after_adaptation" if after == "reevaluate" else "hv"
        entry[key] = hv
        entry["front_after_adaptation" if after == "reevaluate" else "front"] = self.archive.front_values().tolist()
        entry["archive"] = len(self.archive)
        entry["best_top1"] = float(np.nanmax(self.archive.metric("top1"))) if self.archive.ok() else None

    # ------------------------------------------------------------------------------------------
    # in-process run
    # ------------------------------------------------------------------------------------------
    def run(self, evaluate: Evaluate | None = None, adapt: Adapt | None = None,
            callback: Callable[["NATCore", NATBatch], None] | None = None) -> Front:
        """Run every remaining step here: ``evaluate(genomes, supernet_path) -> [metrics | None]``
        (default: BN-recalibrated top-1 on ``evaluation``), ``adapt(job) -> metrics`` (default:
        :func:`~nni_eas.nat.adapt.adapt_supernet`). Returns the final front."""
        if evaluate is None:
            if self.evaluation is None:
                raise ConfigError("NATCore.run() without an evaluation needs an evaluate(genomes, supernet) function")
            evaluate = LocalEvaluator(self.evaluation)
        if adapt is None and self.evaluation is not None:
            from .adapt import adapt_supernet

            adapt = lambda job: adapt_supernet(job, threads=job.get("threads"))  # noqa: E731
        while not self.done:
            batch = self.ask()
            if batch is None:
                break
            if batch.kind == "adapt" and batch.pending:
                if adapt is None:
                    self.report(batch, 0, None, error="no adapt function given")
                else:
                    try:
                        self.report(batch, 0, adapt(batch.job or {}))
                    except Exception as e:  # a failed adaptation must not end the search
                        _logger.exception("adaptation failed")
                        self.report(batch, 0, None, error=f"{type(e).__name__}: {e}")
            elif batch.pending:
                idx = sorted(batch.pending)
                try:
                    results = list(evaluate(batch.genomes[idx], batch.supernet))
                except Exception as e:
                    results = [{"error": f"{type(e).__name__}: {e}"}] * len(idx)
                for i, r in zip(idx, results):
                    if r is None or (isinstance(r, Mapping) and r.get("error")):
                        self.report(batch, i, None, error=None if r is None else str(r["error"]))
                    else:
                        self.report(batch, i, r)
            if callback is not None:
                callback(self, batch)
            self.tell(batch)
        return self.front()

    # ------------------------------------------------------------------------------------------
    # results
    # ------------------------------------------------------------------------------------------
    @property
    def hv_history(self) -> list[float]:
        return [h.get("hv_after_adaptation", h.get("hv", 0.0)) for h in self.history if "hv" in h]

    @property
    def ref_point(self) -> np.ndarray | None:
        if self._ref_min is None:
            return None
        return np.array([o.from_min(v) for o, v in zip(self.problem.objectives, self._ref_min)], dtype=np.float64)

    def supernet_sha256(self) -> str | None:
        if self.supernet and Path(self.supernet).is_file():
            from ..checkpoint import file_sha256

            return file_sha256(self.supernet)
        return None

    def front(self) -> Front:
        """The archive's non-dominated, feasible, measured archs (on the current supernet)."""
        return self.archive.to_front(space=self.cfg.model_dump(mode="json"), supernet_sha256=self.supernet_sha256())

    def summary(self) -> dict[str, Any]:
        """What ``nat.json`` records: settings, progress, per-iteration surrogate choice, tau, HV."""
        return {
            "format": "nni-eas-nat/1",
            "objectives": [o.name for o in self.problem.objectives],
            "config": self.config.model_dump(mode="json"),
            "space": self.cfg.name,
            "classes": self.classes,
            "step": self.step,
            "steps": [list(s) for s in self.plan],
            "done": self.done,
            "adaptations": self.adaptations,
            "archive": len(self.archive),
            "supernet": self.supernet,
            "source_supernet": None if self.evaluation is None else self.evaluation.supernet,
            "dataset": None if self.evaluation is None else self.evaluation.dataset,
            "ref_point": None if self.ref_point is None else self.ref_point.tolist(),
            "hypervolume": self.hv_history,
            "seconds": round(self.seconds, 3),
            "iterations": self.history,
            **self.meta,
        }

    def write_results(self, plot: bool = True) -> dict[str, Path]:
        """``front.json`` / ``front.csv`` / ``nat.json`` (+ ``front.png``, ``nat.png``), and
        ``supernet.pt``: the adapted supernet the front was measured on (for ``nni-eas specialize``)."""
        if self.workdir is None:
            raise ConfigError("write_results() needs a workdir")
        front = self.front()
        paths = front.save(self.workdir)
        paths["nat"] = atomic_write_json(self.workdir / "nat.json", self.summary())
        if self.supernet and Path(self.supernet).is_file() and self.done:
            target = self.workdir / "supernet.pt"
            tmp = target.with_name(f".supernet.pt.tmp-{os.getpid()}")
            shutil.copyfile(self.supernet, tmp)
            os.replace(tmp, target)
            paths["supernet"] = target
        if plot and len(front) and len(front.objectives) >= 2:
            from ..search.decision import knee_point
            from ..search.plot import plot_fronts
            from .plot import plot_progress

            fronts = [np.asarray(h.get("front_after_adaptation", h.get("front", [])), dtype=np.float64).reshape(-1, len(front.objectives))
                      for h in self.history if "front" in h]
            V = front.values()
            paths["png"] = plot_fronts(self.workdir / "front.png", front.objective_names, fronts, final=V,
                                       chosen={"knee": V[knee_point(front.minimised())]},
                                       title=f"NAT: {len(fronts) - 1} iterations, {len(self.archive)} archs measured")
            paths["progress"] = plot_progress(self.workdir / "nat.png", self.history)
        return paths

    # ------------------------------------------------------------------------------------------
    # checkpoints
    # ------------------------------------------------------------------------------------------
    def _rel(self, path: str | None) -> str | None:
        if path is None or self.workdir is None:
            return path
        try:
            return str(Path(path).resolve().relative_to(self.workdir.resolve()))
        except ValueError:
            return str(path)

    def _abs(self, path: str | None) -> str | None:
        if path is None or self.workdir is None or Path(path).is_absolute():
            return path
        return str(self.workdir / path)

    def state(self) -> dict[str, Any]:
        return {
            "format": STATE_FORMAT,
            "space": self.cfg.model_dump(mode="json"),
            "config": self.config.model_dump(mode="json"),
            "step": self.step,
            "adaptations": self.adaptations,
            "supernet": self._rel(self.supernet),
            "archive": self.archive.to_json(),
            "history": self.history,
            "selection": self.selection,
            "ref_min": None if self._ref_min is None else self._ref_min.tolist(),
            "seconds": self.seconds,
        }

    def save_checkpoint(self) -> Path:
        """``nat_state.json``, atomically; then supernets the checkpoint no longer needs are deleted."""
        if self.workdir is None:
            raise ConfigError("save_checkpoint() needs a workdir")
        path = atomic_write_json(self.workdir / STATE_FILE, self.state())
        for p in self._stale:
            if str(p) != str(self.supernet):
                p.unlink(missing_ok=True)
        self._stale.clear()
        return path

    def load_checkpoint(self, path: str | Path | None = None) -> None:
        path = Path(path) if path is not None else self.workdir / STATE_FILE  # type: ignore[operator]
        fix = "delete it to start the NAT run over, or choose another workdir (or resume=False)"
        state = check_state_format(read_json_state(path, "NAT state", fix), path, "NAT state", STATE_FORMAT, fix)
        missing = [k for k in _STATE_KEYS if k not in state]
        if missing or not isinstance(state["config"], dict) or not isinstance(state["space"], dict):
            raise ConfigError(f"{path} is an incomplete nni-eas NAT state (missing or malformed: "
                              f"{', '.join(missing) or 'config/space'}); {fix}")
        try:
            self._restore(path, state)
        except (KeyError, ValueError, TypeError, IndexError, AttributeError) as e:
            raise ConfigError(f"{path} is an inconsistent nni-eas NAT state ({type(e).__name__}: {e}); {fix}") from None
        _logger.info("resumed NAT at step %d/%d (archive %d archs) from %s", self.step, len(self.plan), len(self.archive), path)

    def _restore(self, path: Path, state: dict[str, Any]) -> None:
        mine = self.config.model_dump(mode="json")
        differ = [k for k in _FIXED if state["config"].get(k) != mine.get(k)]
        if differ:
            raise ConfigError(f"{path} belongs to a NAT run with other settings ({', '.join(differ)} differ); "
                              "use another workdir or resume=False (only 'iterations' may change to extend a run)")
        if state["space"] != self.cfg.model_dump(mode="json"):
            raise ConfigError(f"{path} belongs to a NAT run on another space or task ({state['space'].get('name')!r}, "
                              f"{state['space'].get('num_classes')} classes)")
        self.step = int(state["step"])
        self.adaptations = int(state["adaptations"])
        self.supernet = self._abs(state["supernet"])
        self.archive.load_json(state["archive"])
        self.history = list(state["history"])
        self.selection = dict(state.get("selection") or {})
        self._ref_min = None if state["ref_min"] is None else np.asarray(state["ref_min"], dtype=np.float64)
        self.seconds = float(state["seconds"])
        if self.step > len(self.plan):
            raise ConfigError(f"{path} is at step {self.step}, past this run's {len(self.plan)} steps (fewer iterations?)")

    def _append_log(self, record: Mapping[str, Any]) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)  # type: ignore[union-attr]
        with open(self.workdir / EVALUATIONS_FILE, "a", encoding="utf-8") as f:  # type: ignore[operator]
            f.write(json.dumps(record) + "\n")
            f.flush()

    def _read_log(self) -> dict[int, dict[bytes, dict[str, Any]]]:
        """Measurements of steps not yet told (a run stopped mid-step), by step and network."""
        path = self.workdir / EVALUATIONS_FILE  # type: ignore[operator]
        out: dict[int, dict[bytes, dict[str, Any]]] = {}
        if not path.is_file():
            return out
        try:
            raw = path.read_bytes()
        except OSError as e:
            raise ConfigError(f"cannot read the NAT evaluation log {path}: {e.strerror or e}") from None
        for n, line in enumerate(raw.splitlines(), 1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line.decode("utf-8"))
            except ValueError:  # JSONDecodeError, UnicodeDecodeError
                # A crash can cut a record (a prefix of a JSON object, followed by the next run's
                # records); anything else is not this log.
                if line.lstrip().startswith(b'{"'):
                    continue
                raise ConfigError(f"{path} is not an nni-eas NAT evaluation log (line {n} is neither a JSON record nor "
                                  f"one cut by a crash); delete it (measurements not yet checkpointed are taken again) "
                                  "or choose another workdir") from None
            try:
                step = int(rec["step"])
                genome = np.asarray([rec["genome"]], dtype=np.int64)
                if genome.shape != (1, self.layout.length) or (genome < self.layout.lower).any() \
                        or (genome > self.layout.upper).any():
                    raise ValueError(f"genome {rec['genome']} is not one of space {self.cfg.name!r}")
                if not isinstance(rec.get("metrics"), dict):
                    raise TypeError("no 'metrics' dict")
                key = self.layout.keys(genome)[0]
            except (KeyError, ValueError, TypeError, IndexError) as e:
                raise ConfigError(f"{path} is not an nni-eas NAT evaluation log of this space (line {n}: expected a "
                                  f"record with 'step', 'metrics' and a {self.layout.length}-gene 'genome'; "
                                  f"{type(e).__name__}: {e}); "
                                  "delete it (measurements not yet checkpointed are taken again) or choose another "
                                  "workdir") from None
            if step >= self.step:
                out.setdefault(step, {})[key] = rec
        return out

    def _replay_log(self, batch: NATBatch) -> None:
        logged = self._logged.get(batch.step)
        if not logged:
            return
        n = 0
        for i, key in enumerate(self.layout.keys(batch.genomes)):
            rec = logged.get(key)
            if rec is None or rec.get("error") is not None:
                continue  # failures are measured again
            if batch.kind == "adapt" and not Path(str((batch.job or {}).get("output"))).is_file() and self.evaluation is not None:
                continue
            self._accept(batch, i, rec["metrics"], None)
            n += 1
        if n:
            _logger.info("step %d: %d measurements taken from %s", batch.step + 1, n, EVALUATIONS_FILE)
