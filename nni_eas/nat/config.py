"""NAT's settings as data (the ``nat`` classArgs of strategies/tuners, ``benchmarks/nat.py`` configs).

One :class:`NATConfig` says how big the archive starts, how many archs each iteration measures,
how the surrogate is chosen, how the surrogate search runs and how the supernet is adapted to
the target data. Validated with :func:`nni_eas.config.validate`, so a bad value names its field.
"""

from __future__ import annotations

from typing import Any, Literal, Union

from pydantic import Field, field_validator, model_validator

from ..config import ConfigError, StrictModel
from ..predictors.surrogates import SURROGATES
from ..search.objectives import BudgetsField, parse_objectives

__all__ = ["NATConfig", "SurrogateConfig", "AdaptConfig", "SURROGATE_CHOICES"]

SURROGATE_CHOICES = ("adaptive", *SURROGATES)


class SurrogateConfig(StrictModel):
    """The accuracy surrogate refitted on the archive every iteration."""

    model: str = Field(default="adaptive", description="adaptive (pick by cross-validated Kendall tau) or one model")
    candidates: list[str] = Field(default_factory=lambda: ["rbf", "gp", "rf", "mlp"], min_length=1)
    folds: int = Field(default=5, ge=2)

    @field_validator("model")
    @classmethod
    def _model(cls, v: str) -> str:
        if v not in SURROGATE_CHOICES:
            raise ValueError(f"unknown surrogate {v!r}; allowed: {', '.join(SURROGATE_CHOICES)}")
        return v

    @field_validator("candidates")
    @classmethod
    def _candidates(cls, v: list[str]) -> list[str]:
        bad = [c for c in v if c not in SURROGATES]
        if bad:
            raise ValueError(f"unknown surrogate candidates {bad}; allowed: {', '.join(SURROGATES)}")
        return v


class AdaptConfig(StrictModel):
    """Supernet adaptation on the target data (NAT's online transfer).

    ``warmup_epochs`` run once before the initial archive is measured, sampling subnets uniformly
    (a new task's classifier starts from random weights); ``epochs`` run after every iteration,
    sampling subnets from the distribution of the archive's best archs. ``head_only`` trains the
    classifier alone (the backbone keeps the source weights): the "no adaptation" baseline.
    """

    enabled: bool = True
    epochs: int = Field(default=1, ge=0, description="epochs per iteration")
    warmup_epochs: int = Field(default=1, ge=0, description="epochs before the initial archive")
    head_only: bool = False
    subnets: int = Field(default=2, ge=1, description="subnets per training step")
    top: int = Field(default=10, ge=1, description="best archive archs (non-dominated ranks) the distribution is built from")
    smoothing: float = Field(default=0.1, ge=0, le=1, description="probability mass spread uniformly over every choice")
    include_largest: bool = Field(default=False, description="also train the largest subnet every step")
    optimizer: str = "sgd"
    lr: float = Field(default=0.01, gt=0)
    weight_decay: float = Field(default=3e-5, ge=0)
    label_smoothing: float = Field(default=0.1, ge=0, lt=1)
    batch_size: int = Field(default=64, gt=0)
    resolution: int | None = Field(default=None, gt=0, description="data resolution (default: the space's largest)")
    limit_train: int | None = Field(default=None, gt=0, description="use only the first N training images")
    limit_val: int | None = Field(default=None, gt=0, description="validate each epoch on the first N validation images")
    bn_calibration_images: int = Field(default=500, gt=0)
    seed: int = 0


class NATConfig(StrictModel):
    """Neural architecture transfer: archive, surrogate, many-objective search, adaptation."""

    objectives: list[str] = Field(default_factory=lambda: ["top1", "macs"], min_length=2)
    budgets: BudgetsField = Field(default_factory=dict)
    iterations: int = Field(default=5, ge=0, description="surrogate-search iterations after the initial archive")
    initial_archs: int = Field(default=20, ge=4, description="initial archive: smallest, largest and random archs")
    archs_per_iteration: int = Field(default=8, ge=1, description="candidates measured per iteration")
    algorithm: Literal["auto", "nsga2", "nsga3", "smsemoa"] = Field(
        default="auto", description="auto: NSGA-II for two objectives, NSGA-III for three or more")
    pop_size: int = Field(default=40, ge=4)
    generations: int = Field(default=30, ge=1, description="generations of the search on the surrogate")
    surrogate: SurrogateConfig = SurrogateConfig()
    adapt: AdaptConfig = AdaptConfig()
    reevaluate: bool = Field(default=True, description="re-measure the whole archive after every adaptation")
    ref_point: list[float] | None = Field(default=None, description="hypervolume reference, in objective values")
    seed: int = 0

    @field_validator("objectives")
    @classmethod
    def _objectives(cls, v: list[str]) -> list[str]:
        try:
            objs = parse_objectives(v)
        except ConfigError as e:
            raise ValueError(str(e)) from None
        acc = [o.name for o in objs if o.metric == "top1"]
        if len(acc) != 1:
            raise ValueError(f"objectives need exactly one accuracy objective (top1 or error_pct), got {v}")
        return v

    @model_validator(mode="after")
    def _checks(self) -> "NATConfig":
        if self.algorithm == "nsga3" and len(self.objectives) < 3:
            raise ValueError(f"algorithm nsga3 is for 3 or more objectives; got {self.objectives} (use auto or nsga2)")
        if self.ref_point is not None and len(self.ref_point) != len(self.objectives):
            raise ValueError(f"ref_point needs {len(self.objectives)} values ({self.objectives}), got {self.ref_point}")
        return self

    @property
    def algorithm_name(self) -> str:
        if self.algorithm != "auto":
            return self.algorithm
        return "nsga2" if len(self.objectives) == 2 else "nsga3"

    @property
    def adapts(self) -> bool:
        return self.adapt.enabled and self.adapt.epochs > 0

    def steps(self) -> list[tuple[str, int]]:
        """The run as (kind, iteration) steps: ``adapt`` / ``evaluate`` / ``reevaluate``."""
        out: list[tuple[str, int]] = []
        if self.adapt.enabled and self.adapt.warmup_epochs > 0:
            out.append(("adapt", 0))
        out.append(("evaluate", 0))
        for it in range(1, self.iterations + 1):
            out.append(("evaluate", it))
            if self.adapts:
                out.append(("adapt", it))
                if self.reevaluate:
                    out.append(("reevaluate", it))
        return out

    def archive_size(self, iteration: int) -> int:
        """Archs in the archive once ``iteration`` has been measured."""
        return self.initial_archs + iteration * self.archs_per_iteration

    def planned_batch_sizes(self) -> list[int]:
        sizes = []
        for kind, it in self.steps():
            sizes.append(1 if kind == "adapt" else self.initial_archs if (kind, it) == ("evaluate", 0)
                         else self.archs_per_iteration if kind == "evaluate" else self.archive_size(it))
        return sizes

    def planned_evaluations(self) -> int:
        """Trials of a full run: every measured arch, every adaptation step."""
        return sum(self.planned_batch_sizes())


def nat_config(data: Any) -> NATConfig:
    from ..config import validate

    return data if isinstance(data, NATConfig) else validate(NATConfig, data or {}, "nat")
