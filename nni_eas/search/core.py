"""The contract between a search algorithm and the NNI adapters (strategies, tuners).

Any search that can say "measure these archs" and learn from the answers fits: the
multi-objective driver (:class:`~nni_eas.search.driver.SearchDriver`), NAT's surrogate-assisted
search (:class:`~nni_eas.nat.NATCore`) and the EAS pipeline (:class:`~nni_eas.eas.core.EASCore`,
whose "archs" are jobs: supernet training, generator training, one specialization per scenario). The adapters in
:mod:`nni_eas.strategies.base` and :mod:`nni_eas.tuners.base` only talk to this protocol, so a
new search gets a ``NasExperiment`` strategy and an ``nnictl`` tuner by writing one
``build_core`` method.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Protocol, runtime_checkable

import numpy as np

from ..spaces.config import OFAMobileNetV3Config

__all__ = ["SearchCore", "BatchLike"]


@runtime_checkable
class BatchLike(Protocol):
    """A group of archs to measure together (a generation)."""

    genomes: np.ndarray   # [n, L] integer genomes (nni_eas.encodings layout)
    pending: set[int]     # indices still waiting for a measurement


@runtime_checkable
class SearchCore(Protocol):
    """What strategies and tuners drive."""

    @property
    def done(self) -> bool:
        """No more batches will be asked."""

    def ask(self) -> BatchLike | None:
        """The next batch (``None`` when done); in-process metrics already filled in."""

    def report(self, batch: Any, index: int, metrics: Mapping[str, Any] | None, error: str | None = None) -> None:
        """One measured arch of ``batch`` (``None`` / ``error``: the measurement failed)."""

    def tell(self, batch: Any) -> None:
        """Every arch of ``batch`` is reported: learn from it, checkpoint, write results."""

    def planned_evaluations(self) -> int:
        """Archs a complete run measures (sets NNI's trial budget)."""

    def write_results(self, plot: bool = True) -> dict[str, Path]:
        """Write the run's result files (front.json, ...) into its working directory."""


def core_space(core: Any) -> OFAMobileNetV3Config:
    """The space a core searches (``core.problem.cfg`` for the driver, ``core.cfg`` otherwise)."""
    problem = getattr(core, "problem", None)
    return getattr(problem, "cfg", None) or core.cfg
