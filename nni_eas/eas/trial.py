"""EAS trials: run one job of the pipeline (supernet training, generator training, one scenario).

* ``python -m nni_eas.eas.trial``: the ``trialCommand`` of ``strategies/eas.yml``; the tuner's
  parameters are ``{"eas_job": {...}}``;
* :func:`eas_model`: the function of the NAS ``FunctionalEvaluator`` the :class:`~nni_eas.strategies.EAS`
  strategy submits (the frozen model is only a placeholder arch);
* :func:`run_job`: the same, in-process (:meth:`nni_eas.eas.EASCore.run`: scripts, tests, benchmarks).

Metrics (always with ``'default'``):

* supernet: per-epoch intermediate results (top-1 of the largest / smallest subnet), final
  ``{'default': top1_max, 'top1_max', 'top1_min', ...}``;
* generator: intermediate results every ``val_every`` steps and final
  ``{'default': task_top1, 'task_top1', 'budget_use', ...}`` of the generated archs on fixed
  validation scenarios;
* scenario: ``{'default': task top-1, 'top1', 'baseline_top1', 'bn', 'val_top1',
  'val_baseline_top1', 'macs', 'params', 'latency_ms', 'classes', 'budget', 'scenario'}``:
  ``top1`` is the specialized subnet's task top-1 on test, ``baseline_top1`` the same arch with
  BN recalibrated on every class (logits restricted too); ``bn`` is the BN mode chosen on the
  validation split (:func:`~nni_eas.eas.specialize.specialize_subnet`) and ``val_*`` the two
  validation scores (``classes``, ``budget`` and ``bn`` as text, so the web UI lists them).
"""

from __future__ import annotations

import functools
import logging
import sys
import time
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from ..compat import with_default_metric

__all__ = ["run_job", "eas_model", "main"]

_logger = logging.getLogger(__name__)


def recipe_with_epochs(recipe: Any, epochs: int | None):
    """``recipe`` trained for about ``epochs`` epochs: sandwich / uniform set ``policy.epochs``;
    progressive shrinking scales OFA's phases together (each keeps at least one epoch)."""
    from ..config import ConfigError
    from ..training.recipe import load_recipe

    r = load_recipe(recipe)
    if not epochs:
        return r
    if r.policy.kind != "progressive_shrinking":
        return load_recipe(r, **{"policy.epochs": int(epochs)})
    if r.policy.phases:
        raise ConfigError(f"epochs: recipe {r.name!r} lists its progressive-shrinking phases; set their epochs there")
    from ..spaces.config import load_space_config
    from ..training.policies import ofa_phases

    full = sum(p.epochs for p in ofa_phases(load_space_config(r.space, **r.space_overrides), 1.0))
    return load_recipe(r, **{"policy.epoch_scale": float(epochs) / full})


def _train_supernet(job: Mapping[str, Any], progress: bool, nni_report: bool | None) -> dict[str, Any]:
    from ..training.run import train_supernet

    recipe = recipe_with_epochs(job["recipe"], job.get("epochs"))
    res = train_supernet(recipe, job["out_dir"], resume=True, progress=progress, nni_report=nni_report)
    metrics = {k: float(v) for k, v in res.metrics.items() if isinstance(v, (int, float))}
    return with_default_metric(metrics, "top1_max" if "top1_max" in metrics else next(iter(metrics)))


def _train_generator(job: Mapping[str, Any], progress: bool, nni_report: bool | None) -> dict[str, Any]:
    from .train import train_generator

    res = train_generator(job["supernet"], job["generator"], job["out_dir"], dataset=job.get("dataset"),
                          latency_table=job.get("latency_table"), resume=True, progress=progress,
                          nni_report=nni_report, threads=job.get("threads"))
    metrics = {k: float(v) for k, v in res.metrics.items()}
    metrics["seconds"] = round(res.seconds, 1)
    return with_default_metric(metrics, "task_top1")


@functools.lru_cache(maxsize=2)
def _supernet(path: str):
    from ..checkpoint import load_supernet

    return load_supernet(path)


@functools.lru_cache(maxsize=4)
def _data(dataset: str, split: str, resolution: int, channels: int):
    from ..search.subnet_eval import load_eval_data

    return load_eval_data(dataset, split, resolution, channels)


def _choose_arch(job: Mapping[str, Any], supernet: Any, scen: Any) -> tuple[list[int], dict[str, Any]]:
    """The scenario's arch: the best of its candidates on the task's validation images
    (:mod:`nni_eas.eas.propose`), or the generator's arch when there is only one."""
    candidates = [list(map(int, g)) for g in (job.get("candidates") or [job["genome"]])]
    origin = list(job.get("origin") or ["argmax"] * len(candidates))
    if len(candidates) == 1:
        return candidates[0], {"candidate": origin[0], "candidates": 1}
    from .propose import choose, val_scorer

    ev, cfg = job["evaluation"], supernet.config
    t0 = time.perf_counter()
    res = max(cfg.resolutions)
    calib = _data(ev["dataset"], ev.get("calib_split", "train"), res, cfg.in_chans)
    val = _data(ev["dataset"], ev.get("val_split", "val"), res, cfg.in_chans)
    from ..costs import CostModel

    macs = CostModel(cfg).costs(np.asarray(candidates, dtype=np.int64)).macs
    k, scores = choose(candidates, val_scorer(supernet, scen.classes, calib, val, int(ev.get("calib_images", 500))),
                       prefer=macs)
    return candidates[k], {"candidate": origin[k], "candidates": len(candidates),
                           "candidate_val_top1": float(scores[k]), "argmax_val_top1": float(scores[0]),
                           "choose_seconds": round(time.perf_counter() - t0, 3), "genome": candidates[k]}


def _scenario(job: Mapping[str, Any]) -> dict[str, Any]:
    import torch

    from ..costs import CostModel
    from ..encodings import arch_from_genome
    from .scenario import Scenario
    from .specialize import specialize

    ev = job["evaluation"]
    torch.set_num_threads(int(ev.get("threads") or 1))
    supernet, info = _supernet(job["supernet"])
    cfg = supernet.config
    scen = Scenario.from_dict(job["scenario"])
    genome, metrics = _choose_arch(job, supernet, scen)
    arch = arch_from_genome(cfg, genome)
    cm = CostModel(cfg)
    metrics.update(macs=float(cm.macs(arch)), params=float(cm.params(arch)))
    if ev.get("onnx", True):
        from ..export.deploy import deploy_subnet

        dep = deploy_subnet(supernet, arch, job["onnx"], classes=list(scen.classes), class_names=info["classes"],
                            data=ev["dataset"], calib_split=ev.get("calib_split", "train"),
                            eval_split=ev.get("test_split", "test"), calib_images=int(ev.get("calib_images", 500)),
                            eval_images=ev.get("test_images"), runs=int(ev.get("latency_runs", 30)),
                            threads=int(ev.get("threads") or 1), supernet_path=job["supernet"],
                            supernet_sha256=info["sha256"], bn="auto", val_split=ev.get("val_split", "val"),
                            atol=float(ev.get("onnx_atol", 1e-3)),
                            extra={"scenario": scen.name, "budget": scen.budgets})
        card = dep.card
        spec = dep.specialization or {}
        metrics["top1"] = float(card.accuracy.top1)
        metrics["test_images"] = int(card.accuracy.images)
        out = {k: spec.get(k) for k in ("bn", "head", "baseline_top1", "val_top1", "val_baseline_top1", "val_images")}
        metrics["macs"] = float(card.costs.macs)       # measured on the exported (task-restricted) model
        metrics["params"] = float(card.costs.params)
        if card.latency is not None:
            metrics["latency_ms"] = float(card.latency.median_ms)
        metrics["onnx"] = str(dep.onnx_path)
        metrics["card"] = str(dep.card_path)
    else:
        res = max(cfg.resolutions)
        calib = _data(ev["dataset"], ev.get("calib_split", "train"), res, cfg.in_chans)
        val = _data(ev["dataset"], ev.get("val_split", "val"), res, cfg.in_chans)
        test = _data(ev["dataset"], ev.get("test_split", "test"), res, cfg.in_chans)
        if ev.get("test_images") and len(test[1]) > int(ev["test_images"]):   # the subset deploy_subnet measures
            keep = torch.randperm(len(test[1]), generator=torch.Generator().manual_seed(0))[:int(ev["test_images"])]
            test = (test[0][keep.sort().values], test[1][keep.sort().values])
        out = specialize(supernet, scen, genome, calib, test, calib_images=int(ev.get("calib_images", 500)),
                         val=val)
        metrics["top1"] = out["top1"]
        metrics["test_images"] = out["test_images"]
    # the specialization decided on validation (never on test) and the plain baseline beside it
    metrics["baseline_top1"] = float(out["baseline_top1"])
    metrics["bn"] = str(out["bn"])
    metrics["head"] = str(out.get("head") or "supernet")     # "tuned": classifier fitted to the task (kept on val)
    for k in ("val_top1", "val_baseline_top1", "val_images"):
        if out.get(k) is not None:
            metrics[k] = float(out[k]) if k != "val_images" else int(out[k])
    metrics["classes"] = ",".join(scen.class_names or map(str, scen.classes))
    metrics["budget"] = scen.budget_text()
    metrics["scenario"] = scen.name
    return with_default_metric(metrics, "top1")


def run_job(job: Mapping[str, Any], progress: bool = True, nni_report: bool | None = None) -> dict[str, Any]:
    """Execute one EAS job; returns its final metric dict (with ``'default'``)."""
    import torch

    t0 = time.perf_counter()
    kind = job.get("kind")
    threads = job.get("threads") or (job.get("evaluation") or {}).get("threads")
    if threads:  # one thread per trial: oversubscribed OpenMP threads spin and slow a CPU run tenfold
        torch.set_num_threads(int(threads))
    if kind == "supernet":
        metrics = _train_supernet(job, progress, nni_report)
    elif kind == "generator":
        metrics = _train_generator(job, progress, nni_report)
    elif kind == "scenario":
        metrics = _scenario(job)
    else:
        raise ValueError(f"unknown EAS job kind {kind!r}; allowed: supernet, generator, scenario")
    metrics.setdefault("seconds", round(time.perf_counter() - t0, 2))
    return metrics


def eas_model(model: Any, job: Mapping[str, Any]) -> None:
    """NAS ``FunctionalEvaluator`` function: run ``job`` (the model is a placeholder), report the dict."""
    import nni

    nni.report_final_result(run_job(job, progress=False, nni_report=True))


def main(argv: Sequence[str] | None = None) -> int:
    import nni

    params = nni.get_next_parameter() or {}
    job = params.get("eas_job")
    if not job:
        raise SystemExit("no 'eas_job' in the trial parameters; run this under nni_eas.tuners.EASTuner")
    nni.report_final_result(run_job(job, progress=False, nni_report=True))
    return 0


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="[%(asctime)s] %(levelname)s %(name)s: %(message)s")
    for _name in ("onnx_ir", "onnxscript", "torch.onnx"):  # the exporter's pass-by-pass INFO lines
        logging.getLogger(_name).setLevel(logging.WARNING)
    sys.exit(main())
