"""The EAS pipeline as an ask/tell core (no NNI): supernet -> generator -> one trial per scenario.

:class:`EASCore` follows :class:`~nni_eas.search.core.SearchCore`, so the same NNI adapters
that run the Pareto searches run it (``strategies/eas.yml`` through
:class:`~nni_eas.tuners.EASTuner`, ``NasExperiment`` through :class:`~nni_eas.strategies.EAS`)::

    step 0  supernet   one job: train the supernet with task dropout (learning curve per epoch)
    step 1  generator  one job: train the architecture generator against the frozen supernet
    step 2  scenarios  the core runs the generator once for every scenario (one batched forward
                       pass + budget repair, in this process: milliseconds), then one job per
                       scenario: extract, BN recalibration mode decided on the validation
                       split, task-restricted classifier, task top-1 (and the all-class-BN
                       baseline's), ONNX + model card + onnxruntime latency

A job is a plain dict (``batch.jobs[i]``) that :func:`nni_eas.eas.trial.run_job` executes
anywhere: an nnictl trial, a NAS ``FunctionalEvaluator``, or this process (:meth:`EASCore.run`).
State is checkpointed atomically to ``eas_state.json`` after every step, so a stopped run
resumes at the step it was in (training steps also resume from their own Lightning checkpoints).

Results (``write_results``): ``scenarios.json`` (every scenario: task, budgets, arch, costs,
``budget_use``, top-1 and the baseline's ``baseline_top1``, the chosen ``bn`` mode, latency,
files), ``front.json`` / ``.csv`` (front-compatible: one entry per scenario with its classes)
and ``scenarios.png``.
"""

from __future__ import annotations

import json
import logging
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np

from ..config import ConfigError
from ..encodings import arch_from_genome, arch_to_genome
from ..io import atomic_write_json, check_state_format, read_json_state, save_figure
from ..spaces.arch import max_arch
from ..spaces.config import OFAMobileNetV3Config
from .config import EASConfig, eas_config
from .plan import plan_eas, space_of_recipe  # noqa: F401  (space_of_recipe: re-exported)
from .scenario import Scenario, format_budget

__all__ = ["EASCore", "EASBatch", "STATE_FILE", "space_of_recipe"]

_logger = logging.getLogger(__name__)

STATE_FILE = "eas_state.json"
STATE_FORMAT = "nni-eas-eas-state/1"
STAGES = ("supernet", "generator", "scenarios")


@dataclass
class EASBatch:
    """One step: ``jobs[i]`` is what measuring ``genomes[i]`` means (a training job or a scenario)."""

    step: int
    kind: str
    genomes: np.ndarray
    jobs: list[dict[str, Any]]
    pending: set[int]
    results: dict[int, dict[str, Any]] = field(default_factory=dict)
    errors: dict[int, str] = field(default_factory=dict)

    @property
    def generation(self) -> int:
        return self.step + 1

    def __len__(self) -> int:
        return len(self.genomes)


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("_")[:60] or "scenario"


class EASCore:
    """The EAS pipeline (see the module docstring).

    Args:
        config: :class:`~nni_eas.eas.config.EASConfig` (or its fields as a dict).
        workdir: checkpoints and results.
        resume: continue from ``workdir/eas_state.json`` if present.
    """

    def __init__(self, config: EASConfig | Mapping[str, Any], workdir: str | Path, resume: bool = True,
                 on_ask: Callable[[EASBatch], None] | None = None):
        self.config = eas_config(config if isinstance(config, EASConfig) else dict(config))
        self.workdir = Path(workdir).resolve()
        self.on_ask = on_ask
        c = self.config
        # fail before any training: unknown recipe, dataset or classes, unbudgeted metrics, infeasible budgets
        plan = plan_eas(c)
        self.cfg, self.class_names, self.dataset = plan.cfg, plan.class_names, plan.dataset
        self.tables, self.scenarios = plan.tables, plan.scenarios
        self.step = 0
        self.supernet_path: str | None = str(Path(c.supernet).resolve()) if c.supernet else None
        self.generator_path: str | None = None
        self.stage_metrics: dict[str, dict[str, Any]] = {}
        self.generated: list[dict[str, Any]] = []
        self.results: list[dict[str, Any] | None] = [None] * len(self.scenarios)
        self.generate_seconds: float | None = None
        self._batch: EASBatch | None = None
        if resume and (self.workdir / STATE_FILE).exists():
            self.load_checkpoint()

    # ---- plan ------------------------------------------------------------------------------------
    @property
    def stages(self) -> list[str]:
        return [s for s in STAGES if not (s == "supernet" and self.config.supernet)]

    @property
    def done(self) -> bool:
        return self.step >= len(self.stages)

    @property
    def generation(self) -> int:
        return self.step

    def planned_batch_sizes(self) -> list[int]:
        return [len(self.scenarios) if s == "scenarios" else 1 for s in self.stages]

    def planned_evaluations(self) -> int:
        return sum(self.planned_batch_sizes())

    def remaining_evaluations(self) -> int:
        """Jobs still to run (a resumed run needs fewer trials than a fresh one)."""
        sizes = self.planned_batch_sizes()[self.step:]
        if self.stages[self.step:self.step + 1] == ["scenarios"]:
            sizes[0] = sum(r is None for r in self.results)
        return sum(sizes)

    # ---- ask / report / tell ---------------------------------------------------------------------
    def ask(self) -> EASBatch | None:
        if self.done:
            return None
        kind = self.stages[self.step]
        placeholder = arch_to_genome(self.cfg, max_arch(self.cfg))[None]
        c = self.config
        if kind == "supernet":
            job = {"kind": "supernet", "recipe": c.recipe if isinstance(c.recipe, str) else dict(c.recipe),
                   "epochs": c.epochs, "out_dir": str(self.workdir / "supernet"), "threads": c.train_threads,
                   "class_names": self.class_names}
            batch = EASBatch(self.step, kind, placeholder, [job], {0})
        elif kind == "generator":
            job = {"kind": "generator", "supernet": self.supernet_path, "generator": c.generator.model_dump(mode="json"),
                   "out_dir": str(self.workdir / "generator"), "dataset": self.dataset,
                   "latency_table": c.latency_table, "threads": c.train_threads}
            batch = EASBatch(self.step, kind, placeholder, [job], {0})
        else:
            genomes = self._generate()
            ev = c.evaluation.model_dump(mode="json")
            ev["dataset"] = self.dataset
            jobs = [{"kind": "scenario", "supernet": self.supernet_path, "scenario": s.to_dict(), "evaluation": ev,
                     "genome": [int(v) for v in g], "candidates": self.generated[i].get("candidates"),
                     "origin": self.generated[i].get("origin"),
                     "onnx": str(self.workdir / "models" / f"{i:02d}_{_slug(s.name)}.onnx")}
                    for i, (s, g) in enumerate(zip(self.scenarios, genomes))]
            pending = {i for i, r in enumerate(self.results) if r is None}
            batch = EASBatch(self.step, kind, genomes, jobs, pending)
            for i, r in enumerate(self.results):
                if r is not None:
                    batch.results[i] = r
        self._batch = batch
        if self.on_ask is not None:
            self.on_ask(batch)
        return batch

    def _generate(self) -> np.ndarray:
        """One batched generator pass for every scenario (+ repair); timed and recorded."""
        if self.generated:
            return np.asarray([g["genome"] for g in self.generated], dtype=np.int64)
        from .generator import load_generator
        from .specialize import generate

        from .propose import pool_by_task, propose

        gen, _ = load_generator(self.generator_path)
        generate(gen, self.tables, self.scenarios[:1])      # warm-up: torch's first call allocates
        t0 = time.perf_counter()
        out = generate(gen, self.tables, self.scenarios)
        self.generate_seconds = time.perf_counter() - t0
        n = self.config.evaluation.candidates
        props = pool_by_task(self.scenarios, propose(gen, self.tables, self.scenarios, samples=n), self.tables) if n else None
        self.generated = [{"genome": [int(v) for v in g.genome], "costs": g.costs, "argmax_costs": g.argmax_costs,
                           "repair_steps": g.repair_steps, "log_prob": g.log_prob,
                           **({"candidates": props[i].genomes, "origin": props[i].origin} if props else {})}
                          for i, g in enumerate(out)]
        _logger.info("generated %d archs in %.1f ms (one generator pass + repair)", len(out), 1e3 * self.generate_seconds)
        self.save_checkpoint()
        return np.asarray([g["genome"] for g in self.generated], dtype=np.int64)

    def report(self, batch: EASBatch, index: int, metrics: Mapping[str, Any] | None, error: str | None = None) -> None:
        if index not in batch.pending:
            return
        batch.pending.discard(index)
        if metrics is None or error:
            batch.errors[index] = error or "no metrics"
            _logger.warning("EAS %s job %d failed: %s", batch.kind, index, batch.errors[index])
            return
        batch.results[index] = dict(metrics)
        if batch.kind == "scenarios":
            self.results[index] = dict(metrics)

    def tell(self, batch: EASBatch) -> None:
        if batch.kind in ("supernet", "generator"):
            if 0 in batch.errors:
                raise RuntimeError(f"EAS {batch.kind} training failed: {batch.errors[0]}; fix it and resume "
                                   "(nnictl resume / run again with resume=True)")
            self.stage_metrics[batch.kind] = {k: v for k, v in batch.results[0].items() if not isinstance(v, (list, dict))}
            path = Path(batch.jobs[0]["out_dir"]) / ("supernet.pt" if batch.kind == "supernet" else "generator.pt")
            if not path.exists():
                raise RuntimeError(f"EAS {batch.kind} job reported success but {path} does not exist")
            if batch.kind == "supernet":
                self.supernet_path = str(path)
            else:
                self.generator_path = str(path)
        self.step += 1
        self._batch = None
        self.save_checkpoint()
        if batch.kind == "scenarios":
            self.write_results()

    # ---- in-process run ------------------------------------------------------------------------
    def run(self, runner: Callable[[dict], Mapping[str, Any]] | None = None) -> list[dict[str, Any] | None]:
        """Run every remaining step in this process (``runner(job) -> metrics``; default:
        :func:`nni_eas.eas.trial.run_job`)."""
        if runner is None:
            from .trial import run_job

            runner = run_job
        while not self.done:
            batch = self.ask()
            for i in sorted(batch.pending):
                try:
                    self.report(batch, i, runner(batch.jobs[i]))
                except (KeyboardInterrupt, SystemExit):
                    raise
                except Exception as e:
                    if batch.kind != "scenarios":
                        raise
                    self.report(batch, i, None, error=f"{type(e).__name__}: {e}")
            self.tell(batch)
        return self.results

    # ---- results ---------------------------------------------------------------------------------
    def rows(self) -> list[dict[str, Any]]:
        """One row per scenario (task, budgets, generated arch, measured metrics).

        ``budget_use``: the chosen arch's cost / budget (exact cost tables, the costs the budget
        is enforced on; the largest ratio when there are several budgets), <= 1 after repair.
        ``top1`` / ``baseline_top1`` / ``bn``: the specialized subnet's task top-1 on test, the
        same arch's with BN recalibrated on every class, and the BN mode chosen on validation.
        """
        rows = []
        for i, s in enumerate(self.scenarios):
            gen = self.generated[i] if i < len(self.generated) else {}
            res = self.results[i] or {}
            genome = res.get("genome") or gen.get("genome")      # the candidate chosen on val, if any
            costs = ({m: float(t.exact(np.asarray(genome)[None])[0]) for m, t in self.tables.items()} if genome
                     else gen.get("costs") or {})
            use = (max(costs[m] / b for m, b in s.budgets.items()) if s.budgets and all(m in costs for m in s.budgets)
                   else None)
            row = {"scenario": s.name, "classes": list(s.classes), "class_names": list(s.class_names),
                   "budget": dict(s.budgets), "budget_text": s.budget_text(), "genome": genome,
                   "arch": arch_from_genome(self.cfg, genome).to_dict() if genome else None,
                   "candidate": res.get("candidate"), "generator_genome": gen.get("genome"), "predicted": costs,
                   "repair_steps": gen.get("repair_steps"), "budget_use": use,
                   "top1": res.get("top1"), "baseline_top1": res.get("baseline_top1"), "bn": res.get("bn"),
                   "head": res.get("head"),
                   "metrics": {k: v for k, v in res.items() if k not in ("classes", "budget", "scenario", "genome")} or None}
            rows.append(row)
        return rows

    def front(self):
        """The scenarios' subnets as a front file (one entry per measured scenario, with classes)."""
        from ..search.front import Front, FrontEntry, objective_list

        entries = []
        for row in self.rows():
            m = row["metrics"]
            if not m or row["genome"] is None:
                continue
            metrics = {k: v for k, v in m.items() if isinstance(v, (int, float)) and k != "default"}
            metrics["scenario"] = row["scenario"]
            entries.append(FrontEntry(arch=row["arch"], genome=row["genome"], metrics=metrics, classes=row["classes"]))
        return Front(objective_list(["top1", "macs"]), entries, self.cfg.model_dump(mode="json"), None)

    def summary(self) -> dict[str, Any]:
        return {"format": "nni-eas-eas/1", "space": self.cfg.name, "dataset": self.dataset,
                "supernet": self.supernet_path, "generator": self.generator_path,
                "stage_metrics": self.stage_metrics, "generate_seconds": self.generate_seconds,
                "scenarios": self.rows()}

    def write_results(self, plot: bool = True) -> dict[str, Path]:
        files = {"scenarios": atomic_write_json(self.workdir / "scenarios.json", self.summary())}
        files.update(self.front().save(self.workdir, "front"))
        if plot:
            try:
                files["png"] = self._plot()
            except Exception as e:  # a plot never fails a run
                _logger.warning("could not plot scenarios: %s", e)
        return files

    def _plot(self) -> Path:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt


        rows = [r for r in self.rows() if r["metrics"]]
        fig, ax = plt.subplots(figsize=(7.5, 4.2))
        for r in rows:
            m = r["metrics"]
            ax.scatter(m.get("macs", np.nan) / 1e6, m.get("top1", np.nan), s=40)
            if isinstance(m.get("baseline_top1"), (int, float)) and m["baseline_top1"] != m.get("top1"):
                ax.scatter(m.get("macs", np.nan) / 1e6, m["baseline_top1"], s=40, facecolors="none", edgecolors="gray")
            if "macs" in r["budget"]:
                ax.plot([m.get("macs") / 1e6, r["budget"]["macs"] / 1e6], [m.get("top1")] * 2, color="gray", lw=0.8)
                ax.scatter(r["budget"]["macs"] / 1e6, m.get("top1"), marker="|", color="gray", s=80)
            ax.annotate(r["scenario"][:28], (m.get("macs", 0) / 1e6, m.get("top1", 0)), fontsize=7,
                        xytext=(3, 3), textcoords="offset points")
        ax.set(xlabel="MACs of the generated subnet (M); | = budget",
               ylabel="task top-1 (test; o = all-class-BN baseline)",
               title=f"EAS: {len(rows)} scenarios, {self.cfg.name}, {self.dataset}")
        return save_figure(fig, self.workdir / "scenarios.png", dpi=110)

    def table(self) -> str:
        """The scenarios as a text table (what ``make demo`` prints; fits 100 columns).

        ``top-1``: the specialized subnet on the task's test images; ``baseline``: the same arch
        with BN recalibrated on every class; ``bn``: the mode chosen on validation (``+h``: its
        classifier was fitted to the task, also kept on validation);
        ``budget use``: cost / budget of the chosen arch (the largest ratio of its budgets)."""
        def num(v: Any, fmt: str, missing: str = "-") -> str:
            return format(v, fmt) if isinstance(v, (int, float)) else missing

        head = (f"{'scenario':<19} {'classes':<9} {'budget':<13} {'MACs':>6} {'params':>6} {'latency':>7} "
                f"{'top-1':>6} {'baseline':>8} {'bn':<6} {'budget use':>10}")
        lines = [head, "-" * len(head)]
        for r in self.rows():
            m = r["metrics"] or {}
            lat = m.get("latency_ms")
            lat = (f"{lat:.3f}ms" if lat < 10 else f"{lat:.1f}ms") if isinstance(lat, (int, float)) else "-"
            cls = ",".join(r["class_names"]) if len(r["class_names"]) <= 5 else f"{len(r['classes'])} cls"
            use = f"{100 * r['budget_use']:.0f}%" if isinstance(r.get("budget_use"), (int, float)) else "-"
            bn = str(m.get("bn") or "-") + ("+h" if m.get("head") == "tuned" else "")
            lines.append(f"{r['scenario'][:19]:<19} {cls[:9]:<9} {r['budget_text'][:13]:<13} "
                         f"{format_budget('macs', m['macs']) if 'macs' in m else '-':>6} "
                         f"{format_budget('params', m['params']) if 'params' in m else '-':>6} {lat[:7]:>7} "
                         f"{num(m.get('top1'), '.3f', 'failed'):>6} {num(m.get('baseline_top1'), '.3f'):>8} "
                         f"{bn[:6]:<6} {use:>10}")
        return "\n".join(lines)

    # ---- checkpoint --------------------------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        return {"format": STATE_FORMAT, "step": self.step, "supernet": self.supernet_path,
                "generator": self.generator_path, "stage_metrics": self.stage_metrics, "generated": self.generated,
                "generate_seconds": self.generate_seconds, "results": self.results,
                "scenarios": [s.to_dict() for s in self.scenarios],
                "config": self.config.model_dump(mode="json")}

    def save_checkpoint(self) -> Path:
        return atomic_write_json(self.workdir / STATE_FILE, self.state())

    def load_checkpoint(self) -> None:
        path = self.workdir / STATE_FILE
        fix = "delete it to start over, or choose another workdir (or resume=False)"
        st = check_state_format(read_json_state(path, "EAS state", fix), path, "EAS state", STATE_FORMAT, fix)
        keys = ("step", "supernet", "generator", "stage_metrics", "generated", "generate_seconds", "results", "scenarios")
        missing = [k for k in keys if k not in st]
        bad = [k for k, t in (("step", int), ("stage_metrics", dict), ("generated", list), ("results", list),
                              ("scenarios", list)) if k not in missing and not isinstance(st[k], t)]
        if missing or bad or (not bad and len(st["results"]) != len(st["scenarios"])):
            raise ConfigError(f"{path} is an incomplete nni-eas EAS state (missing or malformed: "
                              f"{', '.join(missing + bad) or 'results'}); {fix}")
        if st["scenarios"] != [s.to_dict() for s in self.scenarios]:
            raise ConfigError(f"{path}: the checkpoint was written for other scenarios; use another workdir or resume=False")
        self.step, self.supernet_path, self.generator_path = st["step"], st["supernet"], st["generator"]
        self.stage_metrics, self.generated = st["stage_metrics"], st["generated"]
        self.generate_seconds, self.results = st["generate_seconds"], st["results"]
        _logger.info("EAS resumed at step %d (%s)", self.step, self.stages[self.step] if not self.done else "done")
