"""NAT as a ``NasExperiment`` strategy: neural architecture transfer of a trained supernet.

The algorithm is :class:`nni_eas.nat.NATCore` (NNI-free); this adapter only points the
experiment's trials at what each step needs: archs are measured on the step's *current*
(adapted) supernet, and every adaptation step is a trial of its own (its model is a placeholder
arch, its evaluator trains the supernet and reports a learning curve). Example::

    from nni.nas.experiment import NasExperiment
    from nni_eas.spaces import OFAMobileNetV3Space
    from nni_eas.strategies import NAT, subnet_evaluator

    space = OFAMobileNetV3Space("ofa_mbv3_small", num_classes=10)          # the source supernet's space
    evaluator = subnet_evaluator({"supernet": "cifar10.pt", "dataset": "flowers17"})  # target data
    exp = NasExperiment(space, evaluator, NAT(iterations=4, objectives=["top1", "macs"]))
    exp.run()
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

from ..config import ConfigError, validate
from ..nat.config import NATConfig
from ..preflight import check_tuner_args
from ..search.config import EvaluationConfig
from ..spaces.config import OFAMobileNetV3Config
from .base import SearchStrategy, subnet_evaluator

__all__ = ["NAT"]


class NAT(SearchStrategy):
    """Neural architecture transfer (:class:`~nni_eas.nat.NATConfig` fields as keyword arguments).

    Args:
        workdir, resume: see :class:`~nni_eas.strategies.base.SearchStrategy`.
        evaluation: the source ``supernet`` and the target ``dataset`` (EvaluationConfig fields);
            default: the experiment's :func:`~nni_eas.strategies.subnet_evaluator`.
        **nat: ``iterations``, ``objectives``, ``initial_archs``, ``archs_per_iteration``,
            ``surrogate``, ``adapt``, ...
    """

    def __init__(self, *, workdir: str | Path | None = None, resume: bool = True,
                 evaluation: Mapping[str, Any] | None = None, **nat: Any):
        super().__init__(workdir=workdir, resume=resume)
        self.nat = validate(NATConfig, nat, type(self).__name__)
        self.evaluation = dict(evaluation) if evaluation is not None else None
        self._nat_args = nat
        if self.evaluation is not None:  # the same checks as nnictl's tuners, before anything runs
            check_tuner_args("nat", {"evaluation": self.evaluation, **nat}, None, type(self).__name__)
        self._base: EvaluationConfig | None = None

    def extra_repr(self) -> str:
        n = self.nat
        return f"iterations={n.iterations}, objectives={n.objectives}, surrogate={n.surrogate.model!r}"

    def build_core(self, cfg: OFAMobileNetV3Config, workdir: Path | None):
        from ..nat.core import NATCore

        if self._base is None:  # once: afterwards the model space's evaluator follows the batches
            evaluation = self.evaluation or self.evaluation_config()
            if evaluation is None:
                raise ConfigError("NAT needs the source supernet and the target dataset: use "
                                  "subnet_evaluator({'supernet': ..., 'dataset': ...}) as the experiment's evaluator "
                                  "or NAT(evaluation={...})")
            if self.evaluation is None:
                check_tuner_args("nat", {"evaluation": dict(evaluation), **self._nat_args}, None, type(self).__name__)
            self._base = validate(EvaluationConfig, dict(evaluation), "evaluation").resolved()
        return NATCore(cfg, self.nat, self._base, workdir=workdir, resume=self.resume, on_ask=self._point_trials)

    def _point_trials(self, batch: Any) -> None:
        """The trials of ``batch`` measure on its supernet, or run its adaptation job."""
        if batch.kind == "adapt":
            from nni.nas.evaluator import FunctionalEvaluator

            from ..nat.trial import adapt_model

            self.model_space.evaluator = FunctionalEvaluator(adapt_model, job=dict(batch.job))
        else:
            self.model_space.evaluator = subnet_evaluator(
                {**self._base.model_dump(mode="json", exclude_none=True), "supernet": batch.supernet})
