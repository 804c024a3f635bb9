"""EAS as a ``NasExperiment`` strategy: supernet training, generator training, one trial per scenario.

The pipeline is :class:`nni_eas.eas.EASCore` (NNI-free); this adapter submits each of its jobs
as a trial whose evaluator runs the job (the submitted model is a placeholder arch of the
space). Example::

    from nni.nas.experiment import NasExperiment
    from nni_eas.spaces import OFAMobileNetV3Space
    from nni_eas.strategies import EAS

    strategy = EAS(recipe="eas_tiny_digits",
                   scenarios=[{"name": "0 vs 1", "classes": ["0", "1"], "budget": {"macs": "10%"}}])
    space = OFAMobileNetV3Space(**strategy.space_arguments())
    exp = NasExperiment(space, strategy.placeholder_evaluator(), strategy)
    exp.run()
    print(strategy.core.table())
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..config import ConfigError
from ..preflight import check_tuner_args
from ..spaces.config import OFAMobileNetV3Config
from .base import SearchStrategy

__all__ = ["EAS"]


class EAS(SearchStrategy):
    """EAS pipeline (:class:`~nni_eas.eas.EASConfig` fields as keyword arguments)."""

    def __init__(self, *, workdir: str | Path | None = None, resume: bool = True, **eas: Any):
        super().__init__(workdir=workdir, resume=resume)
        # the same checks as nnictl's EASTuner: recipe, dataset, classes, budgets, before anything runs
        self.eas = check_tuner_args("eas", eas, None, type(self).__name__).config
        self._space: OFAMobileNetV3Config | None = None

    def extra_repr(self) -> str:
        return f"recipe={self.eas.recipe!r}, scenarios={len(self.eas.scenarios)}"

    def space_config(self) -> OFAMobileNetV3Config:
        """The space the pipeline trains (from the recipe or the given supernet)."""
        if self._space is None:
            if self.eas.supernet:
                from ..checkpoint import load_supernet

                self._space = load_supernet(self.eas.supernet)[0].config
            else:
                from ..eas.plan import space_of_recipe

                self._space = space_of_recipe(self.eas.recipe)[0]
        return self._space

    def space_arguments(self) -> dict[str, Any]:
        """Arguments of :class:`~nni_eas.spaces.OFAMobileNetV3Space` for the model space."""
        cfg = self.space_config()
        return {"space": cfg.name, **_overrides(cfg)}

    @staticmethod
    def placeholder_evaluator():
        """An evaluator for ``NasExperiment``'s signature; every trial's evaluator is replaced by
        the job's own before it is submitted."""
        from nni.nas.evaluator import FunctionalEvaluator

        from ..eas.trial import eas_model

        return FunctionalEvaluator(eas_model, job={"kind": "placeholder"})

    def build_core(self, cfg: OFAMobileNetV3Config, workdir: Path | None):
        from ..eas.core import EASCore

        core = EASCore(self.eas, workdir, resume=self.resume)
        if (cfg.name, cfg.num_classes, cfg.num_slots) != (core.cfg.name, core.cfg.num_classes, core.cfg.num_slots):
            raise ConfigError(f"the model space is {cfg.name!r} with {cfg.num_classes} classes, but the EAS recipe trains "
                              f"{core.cfg.name!r} with {core.cfg.num_classes}: build it with "
                              "OFAMobileNetV3Space(**strategy.space_arguments())")
        return core

    def evaluator_for(self, batch: Any, index: int) -> None:
        from nni.nas.evaluator import FunctionalEvaluator

        from ..eas.trial import eas_model

        self.model_space.evaluator = FunctionalEvaluator(eas_model, job=dict(batch.jobs[index]))


def _overrides(cfg: OFAMobileNetV3Config) -> dict[str, Any]:
    """Space fields that differ from the named preset (so the NNI space matches the recipe's)."""
    from ..spaces.config import load_space_config

    base = load_space_config(cfg.name).model_dump(mode="json")
    mine = cfg.model_dump(mode="json")
    return {k: v for k, v in mine.items() if base.get(k) != v and k != "name"}
