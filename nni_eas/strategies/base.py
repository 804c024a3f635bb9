"""NNI ``Strategy`` adapter around any search core (:class:`nni_eas.search.core.SearchCore`).

:class:`SearchStrategy` turns the core's ask/report/tell into NNI's multi-trial protocol:
every arch of a batch becomes one frozen model submitted to the execution engine; the metric
dict its trial reports (``{'default': top1, 'top1', 'macs', ...}``) is handed back to the core;
a trial that fails or ends without a metric is reported as failed and the search goes on.

Subclasses only say how to build their core::

    class MySearch(SearchStrategy):
        def build_core(self, cfg, workdir):
            return MyCore(cfg, ..., workdir=workdir)   # EAS, NAT, ...

Engine events arrive on NNI's listener thread; they are only stored there (under a lock) and
the strategy's own thread reports them to the core, so cores need no locking.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Any, Mapping

from nni.nas.execution import ExecutionEngine
from nni.nas.execution.event import FinalMetricEvent, ModelEventType, TrainingEndEvent
from nni.nas.space import ExecutableModelSpace, ModelStatus
from nni.nas.strategy import Strategy

from ..config import ConfigError
from ..encodings import arch_from_genome, arch_to_sample, sample_labels
from ..spaces.config import OFAMobileNetV3Config, load_space_config

__all__ = ["SearchStrategy", "space_config_of", "subnet_evaluator"]

_logger = logging.getLogger(__name__)


def subnet_evaluator(evaluation: Mapping[str, Any]):
    """The NAS evaluator that measures subnets of a trained supernet (:func:`nni_eas.trial.evaluate_model`).

    ``evaluation``: :class:`~nni_eas.search.EvaluationConfig` fields (``supernet`` path, dataset...).
    Relative paths are resolved now, since trials may run in another directory.
    """
    from nni.nas.evaluator import FunctionalEvaluator

    from ..search.subnet_eval import EvaluationConfig
    from ..config import validate
    from ..trial import evaluate_model

    ev = validate(EvaluationConfig, dict(evaluation), "evaluation").resolved()
    return FunctionalEvaluator(evaluate_model, evaluation=ev.model_dump(mode="json", exclude_none=True))


def space_config_of(model_space: ExecutableModelSpace) -> OFAMobileNetV3Config:
    """The nni-eas space config behind an NNI executable model space (from its traced arguments)."""
    from ..spaces.nni_space import OFAMobileNetV3Space

    model = getattr(model_space, "model", model_space)
    symbol = getattr(model, "trace_symbol", None)
    if symbol is None and isinstance(model, OFAMobileNetV3Space):
        return model.config
    if symbol is None or not (isinstance(symbol, type) and issubclass(symbol, OFAMobileNetV3Space)):
        raise ConfigError(f"this strategy searches OFAMobileNetV3Space model spaces, got {symbol or type(model).__name__}")
    # OFAMobileNetV3Space(space, num_classes, kernel_transform, **overrides), as NNI traced it
    kwargs = dict(model.trace_kwargs)
    for name, value in zip(("space", "num_classes", "kernel_transform"), model.trace_args):
        kwargs.setdefault(name, value)
    kwargs.pop("kernel_transform", None)
    space = kwargs.pop("space", "ofa_mbv3_small")
    if kwargs.get("num_classes") is None:
        kwargs.pop("num_classes", None)
    return load_space_config(space, **kwargs)


class SearchStrategy(Strategy):
    """Multi-trial NNI strategy that runs a search core; one trial per arch.

    Args:
        workdir: where the core checkpoints and writes ``front.json`` & co. Default: the
            experiment's folder (``<working dir>/<experiment id>/nni_eas``), else ``./nni_eas_search``.
        resume: continue from ``workdir``'s checkpoint if there is one.
    """

    def __init__(self, *, workdir: str | Path | None = None, resume: bool = True):
        super().__init__()
        self.workdir = None if workdir is None else Path(workdir)
        self.resume = resume
        self.core: Any = None
        self._lock = threading.Lock()
        self._metrics: dict[int, Any] = {}     # id(model) -> final metric reported by its trial
        self._ended: dict[int, ModelStatus] = {}
        self._running: dict[int, ExecutableModelSpace] = {}

    # ---- to override -------------------------------------------------------------------------
    def build_core(self, cfg: OFAMobileNetV3Config, workdir: Path | None) -> Any:
        """The search core for space ``cfg`` (see :class:`nni_eas.search.core.SearchCore`)."""
        raise NotImplementedError(f"{type(self).__name__} must implement build_core(cfg, workdir)")

    def evaluator_for(self, batch: Any, index: int) -> None:
        """Hook before arch ``index`` of ``batch`` is frozen and submitted: a core whose items
        are different jobs (EAS) points ``self.model_space.evaluator`` at this one's."""

    def evaluation_config(self) -> dict[str, Any] | None:
        """The evaluation settings of the experiment's evaluator (supernet path, ...), if ours."""
        evaluator = getattr(self.model_space, "evaluator", None)
        args = getattr(evaluator, "arguments", None) or {}
        return args.get("evaluation")

    # ---- NNI strategy protocol ---------------------------------------------------------------
    def _initialize(self, model_space: ExecutableModelSpace, engine: ExecutionEngine) -> ExecutableModelSpace:
        engine.register_model_event_callback(ModelEventType.FinalMetric, self._on_final_metric)
        engine.register_model_event_callback(ModelEventType.TrainingEnd, self._on_training_end)
        return model_space

    def _cleanup(self) -> None:
        self.engine.unregister_model_event_callback(ModelEventType.FinalMetric, self._on_final_metric)
        self.engine.unregister_model_event_callback(ModelEventType.TrainingEnd, self._on_training_end)

    def _on_final_metric(self, event: FinalMetricEvent) -> None:
        with self._lock:
            if id(event.model) in self._running:
                self._metrics[id(event.model)] = event.metric

    def _on_training_end(self, event: TrainingEndEvent) -> None:
        with self._lock:
            if id(event.model) in self._running:
                self._ended[id(event.model)] = event.status

    def _experiment(self) -> Any:
        """The NasExperiment when the engine talks to NNI's manager (training-service engine)."""
        return getattr(self.engine, "nodejs_binding", None)

    def _default_workdir(self) -> Path:
        exp = self._experiment()
        try:
            config = exp.config.canonical_copy()
            return Path(config.experiment_working_directory) / exp.id / "nni_eas"
        except Exception:
            return Path("nni_eas_search").resolve()

    def _set_trial_budget(self, planned: int) -> None:
        """NNI reports DONE only when ``max_trial_number`` trials ran: match it to the plan."""
        exp = self._experiment()
        if exp is None:
            return
        current = getattr(exp.config, "max_trial_number", None)
        if current is None:
            try:
                exp.update_max_trial_number(planned)
                _logger.info("max_trial_number set to the %d evaluations this search plans", planned)
            except Exception as e:  # pragma: no cover - depends on the REST server
                _logger.warning("could not set max_trial_number to %d: %s", planned, e)
        elif current != planned:
            _logger.warning("max_trial_number is %d but the search plans %d evaluations; NNI %s", current, planned,
                            "will stop it early" if current < planned else "will not report DONE")

    def _run(self) -> None:
        cfg = space_config_of(self.model_space)
        labels = sample_labels(cfg)
        mutables = getattr(self.model_space, "mutables", {})
        missing = [k for k in labels if k not in mutables]
        if mutables and missing:
            raise ConfigError(f"the model space lacks labels {missing[:5]} of space {cfg.name!r}")
        workdir = self.workdir or self._default_workdir()
        self.workdir = workdir
        core = self.core = self.build_core(cfg, workdir)
        self._set_trial_budget(core.planned_evaluations())
        stopped = False
        while not core.done and not stopped:
            batch = core.ask()
            if batch is None:
                break
            submitted: dict[int, int] = {}
            for i in sorted(batch.pending):
                if not self.wait_for_resource():
                    stopped = True
                    break
                sample = arch_to_sample(cfg, arch_from_genome(cfg, batch.genomes[i]))
                self.evaluator_for(batch, i)
                model = self.model_space.freeze(sample)
                with self._lock:
                    self._running[id(model)] = model
                submitted[id(model)] = i
                self.engine.submit_models(model)
            if submitted:
                self.engine.wait_models(*[self._running[m] for m in submitted])
            with self._lock:
                for mid, i in submitted.items():
                    metric = self._metrics.pop(mid, None)
                    status = self._ended.pop(mid, None)
                    self._running.pop(mid, None)
                    if isinstance(metric, Mapping):
                        core.report(batch, i, metric)
                    elif metric is not None:
                        core.report(batch, i, {"top1": float(metric)})
                    else:
                        core.report(batch, i, None, error=f"trial ended ({getattr(status, 'value', status)}) without a metric")
            for i in sorted(batch.pending):  # not submitted: the experiment's budget ran out
                core.report(batch, i, None, error="not evaluated: NNI's trial budget is exhausted")
            core.tell(batch)
        core.write_results()
        _logger.info("search finished: results in %s", workdir)

    # ---- checkpoints: the core checkpoints itself into workdir every generation ------------------
    def state_dict(self) -> dict:
        return {"workdir": None if self.workdir is None else str(self.workdir),
                "generation": getattr(self.core, "generation", 0)}

    def load_state_dict(self, state_dict: dict) -> None:
        if state_dict.get("workdir"):
            self.workdir = Path(state_dict["workdir"])
            self.resume = True

    def front(self):
        """The result front (after :meth:`run`)."""
        if self.core is None:
            raise RuntimeError("the strategy has not run yet")
        return self.core.front()
