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

Subclasses set :attr:`SearchTuner.kind` (how :mod:`nni_eas.preflight` validates their
``classArgs``) and implement :meth:`SearchTuner.build_core` (see :mod:`nni_eas.search.core`).

Start-up: NNI's manager gives the dispatcher process 10 s to construct the tuner and connect. The
constructor therefore only validates (:func:`nni_eas.preflight.check_tuner_args`: no torch,
Lightning, timm or pymoo is imported); the core, which needs them, is built on the first request
for trials, after the connection. A config error found in the constructor is sent to the
manager (:func:`report_startup_error`), which ends the experiment in ERROR at once, and then
raised; an error inside a tuner callback is reported the same way (:func:`report_runtime_error`)
instead of leaving the experiment RUNNING with a dead dispatcher.
"""

from __future__ import annotations

import base64
import functools
import json
import logging
import os
import sys
import threading
from collections import deque
from pathlib import Path
from typing import Any, Callable, Mapping

from nni.tuner import Tuner

from ..config import ConfigError
from ..preflight import TunerPlan, check_tuner_args
from ..spaces.config import OFAMobileNetV3Config

__all__ = ["SearchTuner", "experiment_params", "report_startup_error", "report_runtime_error"]

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


def report_startup_error(message: str, timeout: float = 5.0) -> bool:
    """Tell NNI's manager that this tuner cannot start, so the experiment ends in ERROR at once
    (instead of "Tuner did not connect in 10 seconds"). Returns whether it was delivered.

    The manager registers its error listener only after the tuner connected and was sent
    Initialize, so this connects, waits for that command, then sends the error. NNI 3.0's
    manager logs the text (``nnimanager.log``: "Dispatcher error: ...") and shows a fixed
    "Dispatcher stream error" in the experiment's status; ``nni-eas nnictl`` prints the text.
    """
    url = os.environ.get("NNI_TUNER_COMMAND_CHANNEL")
    if not url or url.startswith("ws://_unittest_"):
        return False
    delivered = threading.Event()

    def send() -> None:
        from nni.runtime.tuner_command_channel.channel import TunerCommandChannel
        from nni.runtime.tuner_command_channel.command_type import CommandType

        channel = TunerCommandChannel(url)
        try:
            channel.connect()
            channel._receive()  # Initialize
            channel._send(CommandType.Error, message)
            delivered.set()
            channel.disconnect()
        except Exception as e:  # pragma: no cover - the manager went away
            _logger.warning("could not report the error to NNI's manager: %s", e)

    worker = threading.Thread(target=send, daemon=True, name="nni-eas-report-error")
    worker.start()
    worker.join(timeout)
    return delivered.is_set()


def report_runtime_error(message: str) -> bool:
    """Report an error raised inside a tuner callback to NNI's manager (experiment -> ERROR).

    NNI 3.0's dispatcher stops on such an error without telling the manager, which then shows
    the experiment RUNNING forever. Callbacks run in the dispatcher's command-queue worker
    thread, whose target is a bound method of the dispatcher: that is how it is found here.
    """
    target = getattr(threading.current_thread(), "_target", None)
    dispatcher = getattr(target, "__self__", None)
    if dispatcher is None or not callable(getattr(dispatcher, "report_error", None)):
        return False
    dispatcher.report_error(message)
    return True


def _reported(method: Callable) -> Callable:
    """Tuner callback that reports its exception to NNI's manager before raising it."""

    @functools.wraps(method)
    def wrapper(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return method(self, *args, **kwargs)
        except Exception as e:
            if not getattr(e, "_nni_eas_reported", False):
                report_runtime_error(f"{type(self).__name__}.{method.__name__}: {type(e).__name__}: {e}")
                try:
                    e._nni_eas_reported = True  # type: ignore[attr-defined]
                except AttributeError:  # pragma: no cover
                    pass
            raise

    return wrapper


class SearchTuner(Tuner):
    """Drive a search core from an nnictl experiment; ``archs_per_trial`` archs per trial.

    ``classArgs`` (validated by :func:`nni_eas.preflight.check_tuner_args` for :attr:`kind`):

    * ``evaluation``: :class:`~nni_eas.search.EvaluationConfig` fields; ``supernet`` (and a
      latency table) may be relative to the tuner's ``codeDirectory``;
    * ``archs_per_trial``: archs measured by one trial process;
    * ``workdir``: checkpoints and results (default: ``<experiment dir>/nni_eas``);
    * ``resume``: continue from ``workdir``'s checkpoint (``nnictl resume``);
    * the algorithm's own settings (``SearchConfig``, ``NATConfig`` or ``EASConfig`` fields).
    """

    kind: str = ""

    def __init__(self, **class_args: Any):
        super().__init__()
        # NNI starts the tuner in the experiment's log folder: relative paths mean codeDirectory
        base = self.code_directory()
        try:
            self.plan: TunerPlan = check_tuner_args(self.kind, class_args, base, f"{type(self).__name__} classArgs")
        except ConfigError as e:
            report_startup_error(str(e))
            raise
        self.evaluation = self.plan.evaluation
        self.archs_per_trial = self.plan.archs_per_trial
        workdir = self.plan.workdir
        self.workdir = (Path(base) / workdir).resolve() if workdir else self._default_workdir()
        self.resume = self.plan.resume
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
        return self.plan.planned_trials

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

    @_reported
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

    @_reported
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

    @_reported
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
