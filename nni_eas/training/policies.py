"""Which subnets a training step trains: progressive shrinking, sandwich, uniform.

A policy is a pure function of (epoch, random generator) -> list of (arch, role). Roles:

* ``"label"``   trained on the labels (plus the frozen teacher's soft labels in PS phases > full);
* ``"teacher"`` the largest subnet of a sandwich step: trained on labels, its logits (detached)
  are the soft targets of the step's students (in-place distillation);
* ``"student"`` trained on the teacher's soft targets (sandwich).

Because the generator is seeded by (seed, global step), a resumed run samples exactly the same
subnets as an uninterrupted one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence, Union

import numpy as np

from ..config import ConfigError
from ..spaces.arch import Arch, max_arch, min_arch
from ..spaces.config import OFAMobileNetV3Config
from .recipe import OFA_PHASE_EPOCHS, PhaseConfig, ProgressiveShrinkingConfig, SandwichConfig, UniformConfig

__all__ = ["SubnetPolicy", "ProgressiveShrinking", "Sandwich", "Uniform", "build_policy", "Phase", "ofa_phases"]

_DIMS = ("kernel", "expand", "depth", "width", "resolution")


@dataclass(frozen=True)
class Phase:
    index: int
    name: str
    first_epoch: int
    epochs: int
    choices: dict
    subnets: int
    lr: float | None
    sort_channels: bool
    distill_from_teacher: bool


def _space_choices(cfg: OFAMobileNetV3Config) -> dict[str, tuple]:
    return {"kernel": cfg.kernel_sizes, "expand": cfg.expand_ratios, "depth": cfg.depths,
            "width": cfg.width_mults, "resolution": cfg.resolutions}


def _sample(cfg: OFAMobileNetV3Config, choices: dict[str, Sequence], rng: np.random.Generator, r: int) -> Arch:
    full = _space_choices(cfg)
    pick = {d: list(choices.get(d, [max(full[d])])) for d in ("kernel", "expand", "depth", "width")}
    n, s = cfg.num_slots, cfg.num_stages
    return Arch(
        ks=tuple(rng.choice(pick["kernel"], n)), e=tuple(rng.choice(np.array(pick["expand"], dtype=object), n)),
        d=tuple(rng.choice(pick["depth"], s)), r=r, w=float(rng.choice(pick["width"])),
    )


def ofa_phases(cfg: OFAMobileNetV3Config, epoch_scale: float = 1.0) -> list[PhaseConfig]:
    """OFA's progressive shrinking for ``cfg``: full -> kernel -> depth (2 steps) -> expand (2 steps)
    [-> width, for spaces with several width multipliers]. Epochs = OFA's, times ``epoch_scale``."""
    ks, es, ds = list(cfg.kernel_sizes), list(cfg.expand_ratios), list(cfg.depths)
    ep = lambda name: max(1, round(OFA_PHASE_EPOCHS[name] * epoch_scale))  # noqa: E731
    phases = [PhaseConfig(name="full", epochs=ep("full"), choices={}, subnets=1)]
    if len(ks) > 1:
        phases.append(PhaseConfig(name="kernel", epochs=ep("kernel"), choices={"kernel": ks}, subnets=1))
    if len(ds) > 1:
        if len(ds) > 2:
            phases.append(PhaseConfig(name="depth_1", epochs=ep("depth_1"), choices={"kernel": ks, "depth": ds[-2:]}, subnets=2))
        phases.append(PhaseConfig(name="depth_2", epochs=ep("depth_2"), choices={"kernel": ks, "depth": ds}, subnets=2))
    if len(es) > 1:
        if len(es) > 2:
            phases.append(PhaseConfig(name="expand_1", epochs=ep("expand_1"),
                                      choices={"kernel": ks, "depth": ds, "expand": es[-2:]}, subnets=4, sort_channels=True))
        phases.append(PhaseConfig(name="expand_2", epochs=ep("expand_2"),
                                  choices={"kernel": ks, "depth": ds, "expand": es}, subnets=4, sort_channels=True))
    if len(cfg.width_mults) > 1:
        phases.append(PhaseConfig(name="width", epochs=ep("expand_2"),
                                  choices={"kernel": ks, "depth": ds, "expand": es, "width": list(cfg.width_mults)}, subnets=4))
    return phases


class SubnetPolicy:
    """Base class: subnet sampling for one training step."""

    def __init__(self, cfg: OFAMobileNetV3Config, phases: list[Phase]):
        self.cfg = cfg
        self.phases = phases

    @property
    def total_epochs(self) -> int:
        last = self.phases[-1]
        return last.first_epoch + last.epochs

    def phase_at(self, epoch: int) -> Phase:
        for phase in self.phases:
            if epoch < phase.first_epoch + phase.epochs:
                return phase
        return self.phases[-1]

    def archs(self, epoch: int, rng: np.random.Generator) -> list[tuple[Arch, str]]:
        raise NotImplementedError

    def eval_archs(self) -> dict[str, Arch]:
        """Subnets validated every epoch (reported to NNI): the largest and the smallest."""
        return {"max": max_arch(self.cfg), "min": min_arch(self.cfg)}

    def _resolution(self, phase: Phase, rng: np.random.Generator) -> int:
        allowed = phase.choices.get("resolution", self.cfg.resolutions)
        return int(rng.choice(list(allowed)))


def _as_phases(cfg: OFAMobileNetV3Config, configs: Sequence[PhaseConfig], distill: bool) -> list[Phase]:
    full = _space_choices(cfg)
    phases, first = [], 0
    for i, pc in enumerate(configs):
        for dim, values in pc.choices.items():
            bad = [v for v in values if v not in full[dim]]
            if bad or not values:
                raise ConfigError(f"phase {pc.name!r}: choices.{dim} = {values} must be a non-empty subset of {list(full[dim])}")
        phases.append(Phase(i, pc.name, first, pc.epochs, dict(pc.choices), pc.subnets, pc.lr, pc.sort_channels,
                            distill_from_teacher=distill and i > 0))
        first += pc.epochs
    return phases


class ProgressiveShrinking(SubnetPolicy):
    """OFA: train the full net, then let kernel, depth, expand (and width) shrink, phase by phase,
    distilling from the full net (frozen teacher, eval mode)."""

    def __init__(self, cfg: OFAMobileNetV3Config, config: ProgressiveShrinkingConfig):
        configs = config.phases or ofa_phases(cfg, config.epoch_scale)
        super().__init__(cfg, _as_phases(cfg, configs, config.distill))

    def archs(self, epoch: int, rng: np.random.Generator) -> list[tuple[Arch, str]]:
        phase = self.phase_at(epoch)
        r = self._resolution(phase, rng)
        if not any(d in phase.choices for d in ("kernel", "expand", "depth", "width")):
            return [(max_arch(self.cfg, r=r), "label")]
        return [(_sample(self.cfg, phase.choices, rng, r), "label") for _ in range(phase.subnets)]


class Sandwich(SubnetPolicy):
    """BigNAS / AttentiveNAS: largest (max resolution), smallest (min resolution) and N random
    subnets per step, gradients summed; students learn from the largest's logits."""

    def __init__(self, cfg: OFAMobileNetV3Config, config: SandwichConfig):
        phase = PhaseConfig(name="sandwich", epochs=config.epochs, choices={d: list(v) for d, v in _space_choices(cfg).items()},
                            subnets=config.num_random)
        super().__init__(cfg, _as_phases(cfg, [phase], distill=False))
        self.distill = config.distill

    def archs(self, epoch: int, rng: np.random.Generator) -> list[tuple[Arch, str]]:
        phase = self.phases[0]
        student = "student" if self.distill else "label"
        out = [(max_arch(self.cfg), "teacher" if self.distill else "label"), (min_arch(self.cfg), student)]
        out += [(_sample(self.cfg, phase.choices, rng, self._resolution(phase, rng)), student) for _ in range(phase.subnets)]
        return out


class Uniform(SubnetPolicy):
    """Single-path one-shot: N uniformly random subnets per step (SPOS, NNI's RandomOneShot)."""

    def __init__(self, cfg: OFAMobileNetV3Config, config: UniformConfig):
        phase = PhaseConfig(name="uniform", epochs=config.epochs, choices={d: list(v) for d, v in _space_choices(cfg).items()},
                            subnets=config.subnets)
        super().__init__(cfg, _as_phases(cfg, [phase], distill=False))

    def archs(self, epoch: int, rng: np.random.Generator) -> list[tuple[Arch, str]]:
        phase = self.phases[0]
        return [(_sample(self.cfg, phase.choices, rng, self._resolution(phase, rng)), "label") for _ in range(phase.subnets)]


def build_policy(cfg: OFAMobileNetV3Config,
                 config: Union[ProgressiveShrinkingConfig, SandwichConfig, UniformConfig]) -> SubnetPolicy:
    kinds = {"progressive_shrinking": ProgressiveShrinking, "sandwich": Sandwich, "uniform": Uniform}
    return kinds[config.kind](cfg, config)
