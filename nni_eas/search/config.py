"""Search settings as data (the ``search`` section of strategy/tuner configs) and one builder.

:func:`build_driver` turns a :class:`SearchConfig`, a space and in-process evaluators into a
:class:`~nni_eas.search.driver.SearchDriver`; the Python strategies, the nnictl tuners and the
benchmark all build their search through it.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Mapping, Sequence, Union

from pydantic import Field, field_validator, model_validator

from ..config import ConfigError, StrictModel, validate
from ..spaces.config import OFAMobileNetV3Config
from .objectives import OBJECTIVES, BudgetsField, parse_objectives

if TYPE_CHECKING:  # the builders import pymoo and torch; the config models need neither
    from .driver import SearchDriver
    from .evaluators import MetricEvaluator

__all__ = ["SearchConfig", "EvaluationConfig", "build_driver", "build_emo_driver", "emo_evaluators"]


class SearchConfig(StrictModel):
    """A multi-objective search: algorithm, population, objectives, budgets, operators."""

    algorithm: Literal["nsga2", "smsemoa", "nsga3"] = "nsga2"
    pop_size: int = Field(default=20, ge=2)
    n_offsprings: int | None = Field(default=None, ge=1)
    generations: int = Field(default=10, ge=1, description="counting the initial population as generation 1")
    seed: int = 0
    objectives: list[str] = Field(default_factory=lambda: ["top1", "macs"], min_length=1)
    budgets: BudgetsField = Field(default_factory=dict)
    crossover: Literal["uniform", "two_point"] = Field(default="two_point", description="two_point keeps neighbouring genes together; beat uniform on OFA²'s problem")
    crossover_prob: float = Field(default=0.9, ge=0, le=1)
    mutation_prob: float | None = Field(default=None, gt=0, le=1, description="per gene; default 1 / genome length")
    extremes: bool = Field(default=True, description="seed the smallest and largest subnets into generation 1")
    ref_point: list[float] | None = Field(default=None, description="hypervolume reference, in objective values")
    n_partitions: int | None = Field(default=None, ge=1, description="NSGA-III reference directions")
    dedup_archive: bool = True

    @field_validator("objectives")
    @classmethod
    def _objectives(cls, v: list[str]) -> list[str]:
        try:
            parse_objectives(v)
        except ConfigError as e:
            raise ValueError(str(e)) from None
        return v

    @model_validator(mode="after")
    def _nsga3_objectives(self) -> "SearchConfig":
        if self.algorithm == "nsga3" and len(self.objectives) < 3:
            raise ValueError(f"algorithm nsga3 is for 3 or more objectives; got {self.objectives} "
                             "(use nsga2 or smsemoa for two)")
        return self

    def planned_evaluations(self) -> int:
        """Subnet evaluations of a full run (what an nnictl experiment's trials must cover)."""
        return sum(self.planned_batch_sizes())

    def planned_batch_sizes(self) -> list[int]:
        """Evaluations of every generation: the population, then the offspring."""
        return [self.pop_size] + [self.n_offsprings or self.pop_size] * (self.generations - 1)


SearchLike = Union[SearchConfig, Mapping[str, Any]]


class EvaluationConfig(StrictModel):
    """How subnets are measured (the ``evaluation`` section of strategies and tuners)."""

    supernet: str = Field(description="path of the trained supernet (nni_eas.checkpoint.save_supernet)")
    dataset: str = "digits"
    calib_split: str = "train"
    val_split: str = "val"
    calib_images: int = Field(default=500, gt=0)
    val_images: int | None = Field(default=None, gt=0)
    resolution: int | None = Field(default=None, gt=0, description="data resolution (default: largest of the space)")
    batch_size: int = Field(default=256, gt=0)
    latency: Literal["none", "measured"] | str = "none"
    latency_repeats: int = Field(default=5, gt=0)
    convention: Literal["ofa", "nat"] = "ofa"
    classes: list[int] | None = None
    threads: int | None = Field(default=None, gt=0)

    def resolved(self, base: str | os.PathLike | None = None) -> "EvaluationConfig":
        """Copy with ``supernet`` (and a latency table path) made absolute against ``base``."""
        base = Path(base or os.getcwd())
        changes: dict[str, Any] = {"supernet": str((base / Path(self.supernet).expanduser()).resolve())}
        if self.latency not in ("none", "measured"):
            changes["latency"] = str((base / Path(self.latency).expanduser()).resolve())
        return self.model_copy(update=changes)


def build_driver(search: SearchLike, cfg: OFAMobileNetV3Config, evaluators: Sequence[MetricEvaluator] = (), *,
                 workdir: str | Path | None = None, resume: bool = True, meta: Mapping[str, Any] | None = None,
                 **driver_kwargs: Any) -> SearchDriver:
    """Problem + algorithm + driver for ``search`` over space ``cfg``.

    Metrics the ``evaluators`` do not provide (usually ``top1``) are measured outside the
    driver (trials) and handed to :meth:`SearchDriver.report`.
    """
    from .algorithms import make_algorithm
    from .driver import SearchDriver
    from .problem import ArchProblem

    sc = search if isinstance(search, SearchConfig) else validate(SearchConfig, search, "search")
    problem = ArchProblem(cfg, sc.objectives, evaluators, sc.budgets)
    algorithm = make_algorithm(sc.algorithm, cfg, pop_size=sc.pop_size, n_obj=problem.n_obj,
                               n_offsprings=sc.n_offsprings, crossover=sc.crossover, crossover_prob=sc.crossover_prob,
                               mutation_prob=sc.mutation_prob, extremes=sc.extremes, n_partitions=sc.n_partitions)
    info = {"search": sc.model_dump(mode="json"), **(meta or {})}
    return SearchDriver(problem, algorithm, sc.generations, seed=sc.seed, workdir=workdir, ref_point=sc.ref_point,
                        resume=resume, dedup_archive=sc.dedup_archive, meta=info, name=sc.algorithm,
                        **driver_kwargs)


def known_objectives() -> list[str]:
    return list(OBJECTIVES)


def emo_evaluators(cfg: OFAMobileNetV3Config, evaluation: Any | None = None) -> list[MetricEvaluator]:
    """In-process evaluators of an NNI-driven search: analytic MACs/params always, latency too
    when it comes from a lookup table; accuracy (and measured latency) come from trials."""
    from .evaluators import CostEvaluator, LatencyEvaluator
    from .subnet_eval import load_latency_model

    ev = None if evaluation is None else (evaluation if isinstance(evaluation, EvaluationConfig)
                                          else validate(EvaluationConfig, evaluation, "evaluation"))
    out: list[MetricEvaluator] = [CostEvaluator(cfg, ev.convention if ev else "ofa")]
    if ev is not None and ev.latency not in ("none", "measured"):
        out.append(LatencyEvaluator(load_latency_model(ev.latency, cfg), cfg))
    return out


def build_emo_driver(search: SearchLike, cfg: OFAMobileNetV3Config, evaluation: Any | None = None, *,
                     workdir: str | Path | None = None, resume: bool = True,
                     evaluators: Sequence[MetricEvaluator] | None = None, **kwargs: Any) -> SearchDriver:
    """The driver NNI strategies and tuners run: :func:`emo_evaluators` in-process, the rest in trials."""
    meta: dict[str, Any] = {"space": cfg.model_dump(mode="json")}
    sup = None if evaluation is None else (evaluation.get("supernet") if isinstance(evaluation, Mapping)
                                           else getattr(evaluation, "supernet", None))
    if sup and Path(sup).is_file():
        from ..checkpoint import file_sha256

        meta["supernet_sha256"] = file_sha256(sup)
        meta["supernet"] = str(sup)
    evs = list(evaluators) if evaluators is not None else emo_evaluators(cfg, evaluation)
    return build_driver(search, cfg, evs, workdir=workdir, resume=resume, meta=meta, **kwargs)
