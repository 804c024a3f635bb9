"""One validation before anything runs: experiment configs, tuner arguments, strategy arguments.

Every way of starting a search or the EAS pipeline goes through here first, so a mistake fails
the same way, at once, naming the field and the allowed values, with nothing started and
nothing deleted:

* ``nni-eas nnictl create --config X.yml`` and ``python -m nni_eas.demo`` call
  :func:`check_experiment` on the YAML before NNI starts (exit code 2 on a bad config);
* the nnictl tuners (``nni_eas.tuners``) call :func:`check_tuner_args` in their constructor,
  so plain ``nnictl create`` users get the same message in the experiment's error field;
* the ``NasExperiment`` strategies (``nni_eas.strategies``) call it in theirs.

What is checked: unknown or mistyped keys (every config model forbids extra keys); unknown
recipe, dataset, class, objective or budget metric; budgets that no subnet of the space can
meet (non-positive, below the smallest subnet, ``min > max``, on a metric the space has no
cost for); single-class tasks (refused: a one-class classifier always answers that class);
the trial count NNI needs (``maxTrialNumber``) and the trial command of each tuner.

Nothing here imports torch, Lightning, timm, onnxruntime or pymoo: NNI gives a tuner 10 s to
connect, and the space comes from a recipe or a supernet file's header
(:func:`nni_eas.checkpoint.read_header`), the costs from analytic tables.
"""

from __future__ import annotations

import math
import os
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from .config import ConfigError, load_yaml, validate
from .data.sources import check_dataset

__all__ = ["TunerPlan", "ExperimentPlan", "TUNERS", "check_tuner_args", "check_experiment", "check_evaluation",
           "check_budgets", "split_tuner_args"]

# className -> (kind, module a trial runs)
TUNERS: dict[str, tuple[str, str]] = {
    "nni_eas.tuners.EASTuner": ("eas", "nni_eas.eas.trial"),
    "nni_eas.tuners.NSGA2Tuner": ("nsga2", "nni_eas.trial"),
    "nni_eas.tuners.SMSEMOATuner": ("smsemoa", "nni_eas.trial"),
    "nni_eas.tuners.NSGA3Tuner": ("nsga3", "nni_eas.trial"),
    "nni_eas.tuners.NATTuner": ("nat", "nni_eas.nat.trial"),
}
ADAPTER_KEYS = ("evaluation", "archs_per_trial", "workdir", "resume")
COST_METRICS = ("macs", "params", "latency_ms")


@dataclass
class TunerPlan:
    """A validated tuner: its settings and the trials a complete run needs."""

    kind: str
    config: Any                       # EASConfig, SearchConfig or NATConfig
    evaluation: Any = None            # EvaluationConfig (searches) or None (EAS)
    archs_per_trial: int = 1
    workdir: str | None = None
    resume: bool = True
    batch_sizes: list[int] = field(default_factory=list)
    scenarios: list[Any] = field(default_factory=list)

    @property
    def planned_trials(self) -> int:
        return sum(math.ceil(n / self.archs_per_trial) for n in self.batch_sizes)


@dataclass
class ExperimentPlan:
    """A validated nnictl experiment config (``data`` is the YAML as a dict)."""

    path: Path | None
    data: dict[str, Any]
    tuner: TunerPlan
    trial_module: str


# --------------------------------------------------------------------------------------------
# pieces
# --------------------------------------------------------------------------------------------
def _resolve(base: str | os.PathLike | None, value: str) -> str:
    return str((Path(base or os.getcwd()) / Path(value).expanduser()).resolve())


def _check_classes(classes: list[int] | None, names: list[str], where: str) -> None:
    if classes is None:
        return
    n = len(names)
    bad = [c for c in classes if not 0 <= c < n]
    if bad:
        raise ConfigError(f"{where}: unknown class indices {bad}; allowed: 0..{n - 1} ({', '.join(names[:12])}"
                          f"{', ...' if n > 12 else ''})")
    if len(set(classes)) != len(classes):
        raise ConfigError(f"{where}: classes repeat: {classes}")
    if len(classes) < 2:
        raise ConfigError(f"{where}: a task needs at least 2 classes, got {classes} (a one-class classifier "
                          "always answers that class)")


def check_evaluation(ev: Any, where: str = "evaluation") -> Any:
    """Check an :class:`~nni_eas.search.config.EvaluationConfig` (paths already absolute);
    returns the supernet's :class:`~nni_eas.checkpoint.SupernetHeader`."""
    from .checkpoint import CheckpointError, read_header

    try:
        head = read_header(ev.supernet)
    except CheckpointError as e:
        raise ConfigError(f"{where}.supernet: {e}") from None
    check_dataset(ev.dataset, f"{where}.dataset")
    _check_classes(ev.classes, head.classes, f"{where}.classes")
    if ev.latency not in ("none", "measured") and not Path(ev.latency).exists():
        raise ConfigError(f"{where}.latency: latency table not found: {ev.latency}; allowed: none, measured, or the "
                          "path of a table (nni-eas latency build)")
    return head


def _fmt(metric: str, value: float) -> str:
    if metric == "latency_ms":
        return f"{value:.3f} ms"
    if metric == "top1":
        return f"{value:.3f}"
    for div, suf in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= div:
            return f"{value / div:.4g}{suf}"
    return f"{value:.0f}"


def check_budgets(budgets: Mapping[str, Any], cfg: Any, where: str, *, num_classes: int | None = None,
                  latency: bool = False, extra_metrics: tuple[str, ...] = ()) -> None:
    """Budgets of a search must be meetable by some subnet of space ``cfg``.

    ``latency``: whether the run has a latency metric (a table, or measured latency).
    ``extra_metrics``: other metrics an evaluator reports (custom ``name:min`` objectives).
    """
    from .costs import CostModel
    from .search.objectives import parse_budgets
    from .spaces.arch import max_arch, min_arch

    allowed = ["top1", "macs", "params", *(["latency_ms"] if latency else []), *extra_metrics]
    cm = None
    for b in parse_budgets(budgets):
        here = f"{where}.{b.metric}"
        if b.metric not in allowed:
            hint = " (latency_ms needs evaluation.latency: a table or measured)" if b.metric == "latency_ms" else ""
            raise ConfigError(f"{here}: no cost or metric {b.metric!r} in this run; allowed: {', '.join(allowed)}{hint}")
        for side, v in (("max", b.max), ("min", b.min)):
            if v is not None and not math.isfinite(v):
                raise ConfigError(f"{here}.{side}: must be a finite number, got {v!r}")
            if v is not None and b.metric in COST_METRICS and v <= 0:
                raise ConfigError(f"{here}.{side}: must be positive, got {v!r}")
            if v is not None and b.metric == "top1" and not 0 <= v <= 1:
                raise ConfigError(f"{here}.{side}: top1 is a fraction in [0, 1], got {v!r}")
        if b.max is not None and b.min is not None and b.min > b.max:
            raise ConfigError(f"{here}: min {_fmt(b.metric, b.min)} > max {_fmt(b.metric, b.max)}")
        if b.metric in ("macs", "params"):
            cm = cm or CostModel(cfg, num_classes=num_classes)
            lo = float(getattr(cm, b.metric)(min_arch(cfg)))
            hi = float(getattr(cm, b.metric)(max_arch(cfg)))
            if b.max is not None and b.max < lo:
                raise ConfigError(f"{here}: max {_fmt(b.metric, b.max)} is below the smallest subnet of space "
                                  f"{cfg.name!r} ({_fmt(b.metric, lo)}); allowed: {_fmt(b.metric, lo)} .. "
                                  f"{_fmt(b.metric, hi)} (the largest subnet)")
            if b.min is not None and b.min > hi:
                raise ConfigError(f"{here}: min {_fmt(b.metric, b.min)} is above the largest subnet of space "
                                  f"{cfg.name!r} ({_fmt(b.metric, hi)}); allowed: {_fmt(b.metric, lo)} .. "
                                  f"{_fmt(b.metric, hi)}")


def _check_objectives(objectives: list[str], where: str, *, latency: bool) -> None:
    from .search.objectives import parse_objectives

    for o in parse_objectives(objectives):
        if o.metric == "latency_ms" and not latency:
            raise ConfigError(f"{where}: objective {o.name!r} needs a latency metric; set evaluation.latency to a "
                              "latency table or 'measured'")


def split_tuner_args(kind: str, class_args: Mapping[str, Any] | None, source: str) -> tuple[dict, dict]:
    """``(adapter arguments, algorithm settings)`` of a tuner's ``classArgs``."""
    if class_args is None:
        class_args = {}
    if not isinstance(class_args, Mapping):
        raise ConfigError(f"{source}: expected a mapping of keys to values, got {type(class_args).__name__}")
    keys = ("workdir", "resume") if kind == "eas" else ADAPTER_KEYS
    adapter = {k: class_args[k] for k in keys if k in class_args}
    rest = {k: v for k, v in class_args.items() if k not in keys}
    return adapter, rest


# --------------------------------------------------------------------------------------------
# tuners and strategies
# --------------------------------------------------------------------------------------------
def check_tuner_args(kind: str, class_args: Mapping[str, Any] | None, base: str | os.PathLike | None = None,
                     source: str = "tuner classArgs") -> TunerPlan:
    """Validate the arguments of a tuner (or strategy) of ``kind`` (``eas``, ``nsga2``,
    ``smsemoa``, ``nsga3``, ``nat``); relative paths are relative to ``base``.

    Raises :class:`~nni_eas.config.ConfigError` naming the field and the allowed values.
    """
    adapter, rest = split_tuner_args(kind, class_args, source)
    workdir = adapter.get("workdir")
    resume = adapter.get("resume", True)
    if not isinstance(resume, bool):
        raise ConfigError(f"{source}.resume: expected true or false, got {resume!r}")
    if workdir is not None and not isinstance(workdir, (str, os.PathLike)):
        raise ConfigError(f"{source}.workdir: expected a path, got {workdir!r}")
    if kind == "eas":
        from .eas.config import eas_config
        from .eas.plan import plan_eas

        data = dict(rest)
        for key in ("supernet", "latency_table"):
            if isinstance(data.get(key), str) and data[key]:
                data[key] = _resolve(base, data[key])
        cfg = eas_config(data, source)
        plan = plan_eas(cfg, source)
        stages = ([] if cfg.supernet else ["supernet"]) + ["generator", "scenarios"]
        sizes = [len(plan.scenarios) if s == "scenarios" else 1 for s in stages]
        return TunerPlan("eas", cfg, None, 1, workdir, resume, sizes, plan.scenarios)

    from .search.config import EvaluationConfig

    apt = adapter.get("archs_per_trial", 1)
    if isinstance(apt, bool) or not isinstance(apt, int) or apt < 1:
        raise ConfigError(f"{source}.archs_per_trial: expected an integer >= 1, got {apt!r}")
    if "evaluation" not in adapter:
        raise ConfigError(f"{source}: missing key 'evaluation' (how subnets are measured; keys: "
                          f"{', '.join(EvaluationConfig.model_fields)}; 'supernet' is required)")
    ev = validate(EvaluationConfig, adapter["evaluation"], f"{source}.evaluation").resolved(base)
    head = check_evaluation(ev, f"{source}.evaluation")
    k = len(ev.classes) if ev.classes else head.space.num_classes
    latency = ev.latency != "none"
    if kind == "nat":
        from .nat.config import NATConfig

        nat = validate(NATConfig, rest, source)
        _check_objectives(nat.objectives, f"{source}.objectives", latency=latency)
        check_budgets(nat.budgets, head.space, f"{source}.budgets", num_classes=k, latency=latency)
        return TunerPlan("nat", nat, ev, apt, workdir, resume, list(nat.planned_batch_sizes()))
    if kind not in ("nsga2", "smsemoa", "nsga3"):
        raise ConfigError(f"{source}: unknown search kind {kind!r}; allowed: eas, nat, nsga2, smsemoa, nsga3")
    from .search.config import SearchConfig

    if "algorithm" in rest and rest["algorithm"] != kind:
        raise ConfigError(f"{source}.algorithm: this tuner runs {kind}; drop 'algorithm' or use the tuner for "
                          f"{rest['algorithm']!r}")
    search = validate(SearchConfig, {**rest, "algorithm": kind}, source)
    _check_objectives(search.objectives, f"{source}.objectives", latency=latency)
    check_budgets(search.budgets, head.space, f"{source}.budgets", num_classes=k, latency=latency,
                  extra_metrics=tuple(o.split(":")[0] for o in search.objectives if ":" in o))
    return TunerPlan(kind, search, ev, apt, workdir, resume, search.planned_batch_sizes())


# --------------------------------------------------------------------------------------------
# whole nnictl experiment configs
# --------------------------------------------------------------------------------------------
def _trial_module(command: str) -> str | None:
    try:
        parts = shlex.split(command)
    except ValueError:
        return None
    for i, p in enumerate(parts[:-1]):
        if p == "-m":
            return parts[i + 1]
    return None


def check_experiment(config: str | os.PathLike | Mapping[str, Any], *, check_trials: bool = True) -> ExperimentPlan:
    """Validate an nnictl experiment config that runs an nni-eas tuner, before NNI starts.

    Checks NNI's own schema (``nni.experiment.config.ExperimentConfig``), the tuner's
    ``classArgs`` (:func:`check_tuner_args`, paths relative to ``tuner.codeDirectory``), that the
    trial command runs the tuner's trial module, and ``maxTrialNumber`` against the trials the
    run plans (NNI reports DONE only after exactly that many).
    """
    path = None
    if isinstance(config, Mapping):
        data, source, base_dir = dict(config), "experiment config", Path.cwd()
    else:
        path = Path(config)
        data = load_yaml(path)
        source, base_dir = str(path), path.resolve().parent
        if not isinstance(data, Mapping):
            raise ConfigError(f"{source}: an experiment config must be a mapping of keys to values")
        data = dict(data)
    tuner = data.get("tuner")
    if not isinstance(tuner, Mapping):
        raise ConfigError(f"{source}: tuner: missing; an nni-eas experiment sets tuner.className to one of "
                          f"{', '.join(TUNERS)}")
    name = tuner.get("className")
    if name not in TUNERS:
        raise ConfigError(f"{source}: tuner.className: unknown nni-eas tuner {name!r}; allowed: {', '.join(TUNERS)}")
    unknown = sorted(set(tuner) - {"className", "codeDirectory", "classArgs", "name", "gpuIndices", "classFileName",
                                   "codeDir"})
    if unknown:
        raise ConfigError(f"{source}: tuner: unknown keys {unknown}; allowed: className, codeDirectory, classArgs")
    kind, module = TUNERS[name]
    code_dir = (base_dir / str(tuner.get("codeDirectory") or ".")).resolve()
    if not code_dir.is_dir():
        raise ConfigError(f"{source}: tuner.codeDirectory: not a folder: {code_dir}")
    try:  # NNI's schema: unknown top-level keys, types, trainingService ...
        from nni.experiment.config import ExperimentConfig

        schema = {k: v for k, v in data.items()}
        schema.setdefault("trialConcurrency", 1)
        ExperimentConfig(**schema)
    except ConfigError:
        raise
    except Exception as e:  # NNI raises ValueError / AttributeError / TypeError with its own text
        raise ConfigError(f"{source}: not a valid NNI experiment config: {type(e).__name__}: {e}") from None
    plan = check_tuner_args(kind, tuner.get("classArgs"), code_dir, f"{source}: tuner.classArgs")
    got = _trial_module(str(data.get("trialCommand", "")))
    if got != module:
        raise ConfigError(f"{source}: trialCommand: {name} trials run 'python -m {module}', got "
                          f"{data.get('trialCommand')!r}")
    if check_trials:
        want, have = plan.planned_trials, data.get("maxTrialNumber")
        if have != want:
            raise ConfigError(f"{source}: maxTrialNumber: this run plans {want} trials, got {have!r} (NNI reports "
                              f"DONE only after maxTrialNumber trials); set maxTrialNumber: {want}")
    return ExperimentPlan(path, data, plan, module)
