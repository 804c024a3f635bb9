"""Trial entry point: evaluate subnets of a trained supernet and report them to NNI.

Used three ways, all through :class:`nni_eas.search.SubnetEvaluation` (supernet and data are
loaded once per process):

* ``python -m nni_eas.trial`` as an nnictl ``trialCommand``: the tuner's parameters say which
  genomes to measure and how (``{"genomes": [[...], ...], "evaluation": {...}}``); one trial
  may carry several archs, so the ~8 s of process start-up is paid once per batch.
* :func:`evaluate_model` as the function of a NAS ``FunctionalEvaluator`` (one arch per trial).
* ``python -m nni_eas.trial --supernet net.pt --genome 0,1,2,...`` by hand, without NNI.

The final metric is ``{'default': top1, 'top1', 'macs', 'params'[, 'latency_ms']}`` (always built
with :func:`nni_eas.compat.with_default_metric`). For a batch, the top-level keys describe the
batch's best arch and ``'archs'`` lists every arch's metrics (or its ``'error'``) in order.
"""

from __future__ import annotations

import argparse
import functools
import json
import logging
import sys
import time
from typing import Any, Mapping, Sequence

import numpy as np

from .compat import with_default_metric

__all__ = ["evaluate_genomes", "evaluate_model", "batch_metric", "main"]

_logger = logging.getLogger(__name__)


@functools.lru_cache(maxsize=4)
def _evaluation(config_json: str):
    from .search.subnet_eval import SubnetEvaluation

    return SubnetEvaluation(json.loads(config_json))


def evaluate_genomes(genomes: Sequence[Sequence[int]], evaluation: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Metrics of each genome (``{'error': ...}`` for one that failed)."""
    ev = _evaluation(json.dumps(dict(evaluation), sort_keys=True))
    return ev.evaluate(np.asarray(genomes, dtype=np.int64))


def batch_metric(results: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The metric dict NNI receives for a trial of one or more archs (see module doc)."""
    ok = [r for r in results if "error" not in r]
    if not ok:
        raise RuntimeError("every arch of this trial failed: " + "; ".join(str(r.get("error")) for r in results))
    best = max(ok, key=lambda r: r["top1"])
    metric = with_default_metric(best, "top1")
    if len(results) > 1:
        metric["archs"] = [dict(r) for r in results]
    return metric


def evaluate_model(model: Any, evaluation: Mapping[str, Any]) -> None:
    """NAS ``FunctionalEvaluator`` function: measure the frozen subnet's arch, report the dict.

    The model's own weights are ignored: a trial process rebuilds the space with fresh weights,
    the trained ones are in ``evaluation['supernet']``.
    """
    import nni

    from .encodings import arch_to_genome

    arch = _arch_of(model)
    ev = _evaluation(json.dumps(dict(evaluation), sort_keys=True))
    genome = arch_to_genome(ev.cfg, arch)
    (result,) = ev.evaluate(genome[None])
    if "error" in result:
        raise RuntimeError(f"evaluation of {arch} failed: {result['error']}")
    nni.report_final_result(with_default_metric(result, "top1"))


def _arch_of(model: Any) -> Any:
    """The arch of a frozen nni-eas model: a subnet, or a space whose ``net`` became one."""
    from .spaces.ofa_mbv3 import MobileNetV3Subnet

    modules = model.modules() if hasattr(model, "modules") else [model]
    for m in modules:
        if isinstance(m, MobileNetV3Subnet):
            return m.arch
    raise TypeError(f"evaluate_model needs a frozen nni-eas space or subnet, got {type(model).__name__}")


def _parse(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m nni_eas.trial", description=__doc__.split("\n\n")[0])
    p.add_argument("--supernet", help="supernet checkpoint (overrides the tuner's evaluation.supernet)")
    p.add_argument("--dataset", help="dataset name (digits, cifar10, ...)")
    p.add_argument("--genome", action="append", default=[],
                   help="comma-separated genome to evaluate without NNI (repeatable)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="other evaluation fields, e.g. --set calib_images=200 --set latency=measured")
    return p.parse_args(argv)


def _overrides(args: argparse.Namespace) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if args.supernet:
        out["supernet"] = args.supernet
    if args.dataset:
        out["dataset"] = args.dataset
    for item in args.set:
        key, sep, value = item.partition("=")
        if not sep:
            raise SystemExit(f"--set expects KEY=VALUE, got {item!r}")
        try:
            out[key] = json.loads(value)
        except json.JSONDecodeError:
            out[key] = value
    return out


def main(argv: Sequence[str] | None = None) -> int:
    args = _parse(argv)
    overrides = _overrides(args)
    t0 = time.perf_counter()
    if args.genome:  # by hand, no NNI
        genomes = [[int(v) for v in g.split(",")] for g in args.genome]
        results = evaluate_genomes(genomes, overrides)
        print(json.dumps(results, indent=2))
        return 0 if all("error" not in r for r in results) else 1
    import nni

    params = nni.get_next_parameter() or {}
    genomes = params.get("genomes")
    if not genomes:
        raise SystemExit("no genomes in the trial parameters; run this under an nni-eas tuner or pass --genome")
    evaluation = {**params.get("evaluation", {}), **overrides}
    results = evaluate_genomes(genomes, evaluation)
    metric = batch_metric(results)
    metric["seconds"] = round(time.perf_counter() - t0, 3)
    nni.report_final_result(metric)
    _logger.info("evaluated %d archs in %.2f s", len(genomes), metric["seconds"])
    return 0


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="[%(asctime)s] %(levelname)s %(name)s: %(message)s")
    sys.exit(main())
