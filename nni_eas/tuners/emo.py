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

from ..spaces.config import OFAMobileNetV3Config
from .base import SearchTuner

__all__ = ["MultiObjectiveTuner", "NSGA2Tuner", "SMSEMOATuner", "NSGA3Tuner"]


class MultiObjectiveTuner(SearchTuner):
    """A pymoo EMO search as an nnictl tuner; other ``classArgs`` are :class:`SearchConfig` fields."""

    kind = "nsga2"

    @property
    def search(self):
        """The validated :class:`~nni_eas.search.SearchConfig`."""
        return self.plan.config

    def build_core(self, cfg: OFAMobileNetV3Config, workdir: Path):
        from ..search.config import build_emo_driver

        return build_emo_driver(self.search, cfg, self.evaluation, workdir=workdir, resume=self.resume)


class NSGA2Tuner(MultiObjectiveTuner):
    kind = "nsga2"


class SMSEMOATuner(MultiObjectiveTuner):
    kind = "smsemoa"


class NSGA3Tuner(MultiObjectiveTuner):
    kind = "nsga3"
