"""EAS as an nnictl tuner (``strategies/eas.yml``); trials run ``python -m nni_eas.eas.trial``.

The tuner hands out the pipeline's jobs in order: one supernet-training trial, one
generator-training trial, then one trial per deployment scenario (the generator runs in the
tuner, once, for all scenarios). ``classArgs`` are :class:`~nni_eas.eas.EASConfig` fields plus
``workdir`` and ``resume``; relative paths (``supernet``, ``latency_table``, ``workdir``) are
relative to the tuner's ``codeDirectory``.
"""

from __future__ import annotations

from typing import Any

from .base import SearchTuner

__all__ = ["EASTuner"]


class EASTuner(SearchTuner):
    """Train once, specialize every scenario (see :mod:`nni_eas.eas`)."""

    kind = "eas"

    @property
    def eas(self):
        """The validated :class:`~nni_eas.eas.EASConfig` (paths absolute)."""
        return self.plan.config

    def _ensure_core(self) -> Any:
        if self.core is None:
            from ..eas.core import EASCore

            self.core = EASCore(self.eas, self.workdir, resume=self.resume)
            self._check_trial_budget()
        return self.core

    def _params(self, batch: Any, idx: list[int]) -> dict:
        (i,) = idx
        return {"eas_job": batch.jobs[i], "stage": batch.kind, "generation": int(batch.generation)}
