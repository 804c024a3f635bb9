"""NAT's trials: measure archs on the current supernet, or run one supernet adaptation step.

* ``python -m nni_eas.nat.trial``, the ``trialCommand`` of ``strategies/nat.yml``: the tuner's
  parameters either list genomes (measured exactly as ``python -m nni_eas.trial`` does, on
  ``evaluation.supernet``, the run's current supernet) or carry ``nat_adapt``, an adaptation
  job: the trial trains the supernet, reports every epoch's validation metrics as NNI
  intermediate results (the trial's learning curve in the web UI) and the final metrics.
* :func:`adapt_model`: the same adaptation as the function of a NAS ``FunctionalEvaluator``
  (the :class:`~nni_eas.strategies.NAT` strategy submits one per adaptation step).

Every metric dict carries ``'default'`` (top-1 of the measured arch, or of the archive's best
arch after adaptation).
"""

from __future__ import annotations

import logging
import sys
import time
from typing import Any, Mapping, Sequence

from ..compat import with_default_metric

__all__ = ["adapt_model", "run_adaptation", "main"]

_logger = logging.getLogger(__name__)


def run_adaptation(job: Mapping[str, Any]) -> dict[str, Any]:
    """Run an adaptation job inside an NNI trial; returns the final metric dict (with ``default``)."""
    from .adapt import adapt_supernet

    metrics = adapt_supernet(job, nni_report=True, threads=job.get("threads"))
    return with_default_metric(metrics, "default")


def adapt_model(model: Any, job: Mapping[str, Any]) -> None:
    """NAS ``FunctionalEvaluator`` function: run adaptation ``job`` (the model is only a placeholder arch)."""
    import nni

    nni.report_final_result(run_adaptation(job))


def main(argv: Sequence[str] | None = None) -> int:
    import nni

    from ..trial import batch_metric, evaluate_genomes

    t0 = time.perf_counter()
    params = nni.get_next_parameter() or {}
    if params.get("nat_adapt"):
        metric = run_adaptation(params["nat_adapt"])
    else:
        genomes = params.get("genomes")
        if not genomes:
            raise SystemExit("no genomes and no nat_adapt job in the trial parameters; run this under nni_eas.tuners.NATTuner")
        metric = batch_metric(evaluate_genomes(genomes, params.get("evaluation", {})))
    metric["seconds"] = round(time.perf_counter() - t0, 3)
    nni.report_final_result(metric)
    return 0


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="[%(asctime)s] %(levelname)s %(name)s: %(message)s")
    sys.exit(main())
