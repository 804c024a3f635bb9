"""nnictl tuners for the multi-objective searches (NSGA-II, SMS-EMOA, NSGA-III).

``strategies/ofa-nsga2.yml``::

    tuner:
      codeDirectory: ..
      className: nni_eas.tuners.NSGA2Tuner
      classArgs:
        evaluation: {supernet: supernet.pt, dataset: digits}
        archs_per_trial: 8
        pop_size: 8
        generations: 3
        objectives: [top1, macs]
    trialCommand: python -m nni_eas.trial
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

from ..config import validate
from ..search.config import SearchConfig, build_emo_driver
from ..spaces.config import OFAMobileNetV3Config
from .base import SearchTuner

__all__ = ["MultiObjectiveTuner", "NSGA2Tuner", "SMSEMOATuner", "NSGA3Tuner"]


class MultiObjectiveTuner(SearchTuner):
    """A pymoo EMO search as an nnictl tuner; other ``classArgs`` are :class:`SearchConfig` fields."""

    algorithm = "nsga2"

    def __init__(self, evaluation: Mapping[str, Any], archs_per_trial: int = 1, workdir: str | None = None,
                 resume: bool = True, **search: Any):
        self.search = validate(SearchConfig, {"algorithm": self.algorithm, **search}, "tuner classArgs")
        super().__init__(evaluation, archs_per_trial=archs_per_trial, workdir=workdir, resume=resume)

    def build_core(self, cfg: OFAMobileNetV3Config, workdir: Path):
        return build_emo_driver(self.search, cfg, self.evaluation, workdir=workdir, resume=self.resume)


class NSGA2Tuner(MultiObjectiveTuner):
    algorithm = "nsga2"


class SMSEMOATuner(MultiObjectiveTuner):
    algorithm = "smsemoa"


class NSGA3Tuner(MultiObjectiveTuner):
    algorithm = "nsga3"
