"""Multi-objective evolutionary strategies for ``NasExperiment``: NSGA-II, SMS-EMOA, NSGA-III.

One Pareto front of accuracy against costs per search; pick an arch for any budget afterwards
(``front.json``, :mod:`nni_eas.search.decision`). Example::

    from nni.nas.experiment import NasExperiment
    from nni_eas.spaces import OFAMobileNetV3Space
    from nni_eas.strategies import NSGA2, subnet_evaluator

    space = OFAMobileNetV3Space("ofa_mbv3_small", num_classes=10)
    evaluator = subnet_evaluator({"supernet": "supernet.pt", "dataset": "digits"})
    exp = NasExperiment(space, evaluator, NSGA2(pop_size=8, generations=3, objectives=["top1", "macs"]))
    exp.run(port=8081)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

from ..config import validate
from ..preflight import check_tuner_args
from ..search.config import SearchConfig
from ..spaces.config import OFAMobileNetV3Config
from .base import SearchStrategy

__all__ = ["MultiObjectiveStrategy", "NSGA2", "SMSEMOA", "NSGA3"]


class MultiObjectiveStrategy(SearchStrategy):
    """A pymoo EMO search (:class:`~nni_eas.search.SearchConfig` fields as keyword arguments).

    Args:
        workdir, resume: see :class:`~nni_eas.strategies.base.SearchStrategy`.
        evaluation: how MACs/latency are costed in-process (``latency`` lookup table,
            ``convention``); default: taken from the experiment's :func:`subnet_evaluator`.
        **search: ``pop_size``, ``generations``, ``objectives``, ``budgets``, ``seed``, ...
    """

    algorithm = "nsga2"

    def __init__(self, *, workdir: str | Path | None = None, resume: bool = True,
                 evaluation: Mapping[str, Any] | None = None, **search: Any):
        super().__init__(workdir=workdir, resume=resume)
        self.search = validate(SearchConfig, {"algorithm": self.algorithm, **search}, type(self).__name__)
        self.evaluation = dict(evaluation) if evaluation is not None else None
        self._search_args = search
        if self.evaluation is not None:  # the same checks as nnictl's tuners, before anything runs
            check_tuner_args(self.algorithm, {"evaluation": self.evaluation, **search}, None, type(self).__name__)

    def extra_repr(self) -> str:
        s = self.search
        return f"pop_size={s.pop_size}, generations={s.generations}, objectives={s.objectives}"

    def build_core(self, cfg: OFAMobileNetV3Config, workdir: Path | None):
        from ..search.config import build_emo_driver

        evaluation = self.evaluation or self.evaluation_config()
        if self.evaluation is None and evaluation is not None:
            check_tuner_args(self.algorithm, {"evaluation": evaluation, **self._search_args}, None, type(self).__name__)
        return build_emo_driver(self.search, cfg, evaluation, workdir=workdir, resume=self.resume)


class NSGA2(MultiObjectiveStrategy):
    """NSGA-II (non-dominated sorting + crowding): the default for two objectives."""

    algorithm = "nsga2"


class SMSEMOA(MultiObjectiveStrategy):
    """SMS-EMOA (drops the least hypervolume contribution): best hypervolume for 2-3 objectives."""

    algorithm = "smsemoa"


class NSGA3(MultiObjectiveStrategy):
    """NSGA-III (reference directions): for three or more objectives."""

    algorithm = "nsga3"
