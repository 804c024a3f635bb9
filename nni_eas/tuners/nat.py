"""NAT as an nnictl tuner (``strategies/nat.yml``); trials run ``python -m nni_eas.nat.trial``.

Each trial measures ``archs_per_trial`` archs on the run's current supernet, or runs one
supernet adaptation step (a trial with a learning curve). ``classArgs`` other than
``evaluation``, ``archs_per_trial``, ``workdir`` and ``resume`` are
:class:`~nni_eas.nat.NATConfig` fields; ``evaluation.supernet`` is the *source* supernet and
``evaluation.dataset`` the *target* data.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..spaces.config import OFAMobileNetV3Config
from .base import SearchTuner

__all__ = ["NATTuner"]


class NATTuner(SearchTuner):
    """Neural architecture transfer driven by nnictl (see :mod:`nni_eas.nat`)."""

    kind = "nat"

    @property
    def nat(self):
        """The validated :class:`~nni_eas.nat.NATConfig`."""
        return self.plan.config

    def build_core(self, cfg: OFAMobileNetV3Config, workdir: Path):
        from ..nat.core import NATCore

        return NATCore(cfg, self.nat, self.evaluation, workdir=workdir, resume=self.resume)

    def _params(self, batch: Any, idx: list[int]) -> dict:
        params = super()._params(batch, idx)
        params["evaluation"]["supernet"] = batch.supernet   # the step's (adapted) supernet
        if batch.kind == "adapt":
            params["nat_adapt"] = dict(batch.job)
        return params
