"""NNI ``Tuner`` adapter around any search core, for ``nnictl create --config ...``.

``nnictl`` runs HPO-style experiments: a tuner hands out parameters, trials report a metric.
:class:`SearchTuner` hands out *archs*: each trial gets ``archs_per_trial`` genomes of the
core's current batch (``{"genomes": [...], "evaluation": {...}}``) and runs
``python -m nni_eas.trial``, which measures them and reports ``{'default': top1, 'top1',
'macs', 'params', ..., 'archs': [...]}``. Parameter requests that arrive while a generation is
still being measured are parked and answered later through NNI's ``st_callback`` (the
mechanism NNI's own evolution tuner uses), so generations never overlap and the number of
trials is known in advance: :meth:`SearchTuner.planned_trials`. NNI reports an experiment DONE
only when ``maxTrialNumber`` trials ran, so set it to that number (the tuner checks).

Why batches: a trial process re-imports torch and NNI and reloads the supernet (~8 s here)
while measuring one small subnet takes well under a second; ``archs_per_trial`` amortises the
start-up over many archs.

Subclasses implement :meth:`SearchTuner.build_core` (see :mod:`nni_eas.search.core`).
"""

from __future__ import annotations

import base64
import json
import logging
import math
import os
import sys
from collections import deque
from pathlib import Path
from typing import Any, Mapping

from nni.tuner import Tuner

from ..config import ConfigError, validate
from ..search.subnet_eval import EvaluationConfig
from ..spaces.config import OFAMobileNetV3Config

__all__ = ["SearchTuner", "experiment_params"]

_logger = logging.getLogger(__name__)


def experiment_params(argv: list[str] | None = None) -> dict[str, Any]:
    """The experiment config NNI passes to its dispatcher process (``--exp_params`` base64 JSON)."""
    argv = sys.argv if argv is None else argv
    for i, a in enumerate(argv):
        value = a.split("=", 1)[1] if a.startswith("--exp_params=") else (argv[i + 1] if a == "--exp_params" and i + 1 < len(argv) else None)
        if value:
            try:
                return json.loads(base64.b64decode(value).decode("utf-8"))
            except (ValueError, UnicodeDecodeError):
                return {}
    return {}


class SearchTuner(Tuner):
    """Drive a search core from an nnictl experiment; ``archs_per_trial`` archs per trial.

    Args:
        evaluation: :class:`~nni_eas.search.EvaluationConfig` fields; ``supernet`` (and a latency
            table) may be relative to the tuner's ``codeDirectory``.
        archs_per_trial: archs measured by one trial process.
        workdir: checkpoints and results (default: ``<experiment dir>/nni_eas``).
        resume: continue from ``workdir``'s checkpoint (``nnictl resume``).
    """

    def __init__(self, evaluation: Mapping[str, Any] | None, archs_per_trial: int = 1, workdir: str | None = None,
                 resume: bool = True):
        super().__init__()
        if int(archs_per_trial) < 1:
            raise ConfigError(f"archs_per_trial must be >= 1, got {archs_per_trial}")
        # NNI starts the tuner in the experiment's log folder: relative paths mean codeDirectory
        base = self.code_directory()
        self.evaluation = (None if evaluation is None else  # None: the subclass builds its own core (EAS)
                           validate(EvaluationConfig, dict(evaluation), "tuner classArgs.evaluation").resolved(base))
        self.archs_per_trial = int(archs_per_trial)
        self.workdir = (Path(base) / workdir).resolve() if workdir else self._default_workdir()
        self.resume = resume
        self.core: Any = None
        self._batch: Any = None
        self._queue: deque = deque()          # (batch, [indices]) chunks still to hand out
        self._parked: deque = deque()         # parameter ids NNI asked for while we waited
        self._inflight: dict[int, tuple[Any, list[int]]] = {}
        self._send: Any = None

    @staticmethod
    def code_directory() -> str:
        """The tuner's ``codeDirectory`` (relative paths in ``classArgs`` are relative to it)."""
        return (experiment_params().get("tuner") or {}).get("codeDirectory") or os.getcwd()

    # ---- to override -------------------------------------------------------------------------
    def build_core(self, cfg: OFAMobileNetV3Config, workdir: Path) -> Any:
        raise NotImplementedError(f"{type(self).__name__} must implement build_core(cfg, workdir)")

    # ---- setup ----------------------------------------------------------------------------------
    @staticmethod
    def _default_workdir() -> Path:
        log_dir = os.environ.get("NNI_LOG_DIRECTORY")
        return (Path(log_dir).parent if log_dir else Path.cwd()) / "nni_eas"

    def _ensure_core(self) -> Any:
        if self.core is None:
            from ..checkpoint import load_supernet

            supernet, _ = load_supernet(self.evaluation.supernet)
            self.core = self.build_core(supernet.config, self.workdir)
            del supernet
            self._check_trial_budget()
        return self.core

    def planned_trials(self) -> int:
        """Trials of a complete run: each batch is split into ``archs_per_trial`` chunks."""
        core = self._ensure_core()
        sizes = core.planned_batch_sizes() if hasattr(core, "planned_batch_sizes") else [core.planned_evaluations()]
        return sum(math.ceil(n / self.archs_per_trial) for n in sizes)

    def _check_trial_budget(self) -> None:
        planned = self.planned_trials()
        params = experiment_params()
        current = params.get("maxTrialNumber")
        _logger.info("search plans %d trials (%d archs per trial)", planned, self.archs_per_trial)
        if params and current != planned:
            _logger.warning("maxTrialNumber is %s, but this search runs %d trials: set maxTrialNumber: %d "
                            "(NNI reports DONE only after maxTrialNumber trials)", current, planned, planned)

    # ---- NNI tuner protocol ---------------------------------------------------------------------
    def update_search_space(self, search_space: Any) -> None:
        """The space comes from the supernet checkpoint; NNI's search space is informative only."""

    def generate_multiple_parameters(self, parameter_id_list: list[int], **kwargs: Any) -> list[dict]:
        self._send = kwargs.get("st_callback", self._send)
        self._ensure_core()
        out = []
        for n, pid in enumerate(parameter_id_list):
            params = self._next(pid)
            if params is None:  # wait for this generation's results; answer later via st_callback
                self._parked.extend(parameter_id_list[n:])
                break
            out.append(params)
        return out

    def generate_parameters(self, parameter_id: int, **kwargs: Any) -> dict:
        import nni

        params = self.generate_multiple_parameters([parameter_id], **kwargs)
        if not params:
            raise nni.NoMoreTrialError("waiting for the current generation's results")
        return params[0]

    def receive_trial_result(self, parameter_id: int, parameters: Any, value: Any, **kwargs: Any) -> None:
        entry = self._inflight.pop(parameter_id, None)
        if entry is None:
            return
        batch, idx = entry
        results = value.get("archs") if isinstance(value, Mapping) and "archs" in value else [value]
        if not isinstance(results, list) or len(results) != len(idx):
            for i in idx:
                self.core.report(batch, i, None, error=f"trial reported {value!r}, expected {len(idx)} arch results")
        else:
            for i, r in zip(idx, results):
                if isinstance(r, Mapping) and not r.get("error"):
                    self.core.report(batch, i, r)
                elif isinstance(r, (int, float)):
                    self.core.report(batch, i, {"top1": float(r)})
                else:
                    self.core.report(batch, i, None, error=str(r.get("error") if isinstance(r, Mapping) else r))
        self._after_result(batch)

    def trial_end(self, parameter_id: int, success: bool, **kwargs: Any) -> None:
        entry = self._inflight.pop(parameter_id, None)
        if entry is None:
            return
        batch, idx = entry  # ended without a final metric: a crashed or killed trial
        for i in idx:
            self.core.report(batch, i, None, error="trial " + ("ended without a metric" if success else "failed"))
        self._after_result(batch)

    def import_data(self, data: list) -> None:
        """Resumed experiments restore from the core's own checkpoint and evaluation log."""

    # ---- batching -------------------------------------------------------------------------------
    def _params(self, batch: Any, idx: list[int]) -> dict:
        return {"genomes": batch.genomes[idx].tolist(), "generation": int(getattr(batch, "generation", 0)),
                "evaluation": self.evaluation.model_dump(mode="json", exclude_none=True)}

    def _next(self, pid: int) -> dict | None:
        if not self._queue:
            self._advance()
        if not self._queue:
            return None
        batch, idx = self._queue.popleft()
        self._inflight[pid] = (batch, idx)
        return self._params(batch, idx)

    def _advance(self) -> None:
        """Ask the core for the next batch once the current one is fully told."""
        core = self.core
        while self._batch is None and not core.done:
            batch = core.ask()
            if batch is None:
                break
            pending = sorted(batch.pending)
            if not pending:       # everything came from the cache or in-process evaluators
                core.tell(batch)
                continue
            self._batch = batch
            for k in range(0, len(pending), self.archs_per_trial):
                self._queue.append((batch, pending[k:k + self.archs_per_trial]))

    def _after_result(self, batch: Any) -> None:
        if batch is not self._batch or batch.pending:
            return
        self.core.tell(batch)
        self._batch = None
        self._advance()
        while self._parked and self._queue and self._send is not None:
            pid = self._parked.popleft()
            self._send(pid, self._next(pid))
        if self.core.done:
            _logger.info("search finished: results in %s", self.workdir)
