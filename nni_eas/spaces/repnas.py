"""NNI adapter: the RepNAS branch space as an ``nni.nas.nn.pytorch.ModelSpace``.

Thin by design (like :mod:`nni_eas.spaces.nni_space`): :class:`~nni_eas.repnas.RepNASNet` and
:class:`~nni_eas.repnas.BranchSearch` do the work; this module names the choices as NNI
mutables and plugs one mixed module into NNI's one-shot strategies through
``extra_oneshot_hooks``:

* :class:`BranchSupernet` (a ``MutableModule``) carries one ``CategoricalMultiple`` per layer,
  labelled ``branches_<i>`` (values: the layer's candidate branches; prior inclusion probability
  1 for the space's ``always_on`` branches, the budget fraction for the others; default: the
  always-on branches, i.e. the plain ``conv_kxk`` net), and :class:`BranchBudget`, a constraint
  that requires the always-on branches, allows at most ``k`` searchable layer-branches in all and
  asks ``min_branches_per_layer`` branches and ``min_spatial_branches`` spatial ones per layer.
  ``freeze(sample)`` gives the multi-branch net with the chosen branches and inherited weights.
* :class:`MixedBranchSupernet` (a ``BaseSuperNetModule``) is what one-shot strategies train. It
  owns the importance parameters; ``resample`` draws a mask: a uniformly random top-k under the
  budget (``RandomOneShot``), or the current phase's mask when :class:`nni_eas.strategies.repnas.RepNAS`
  drives it (warm-up, noisy top-k with straight-through gates, fixed); ``export`` is the top-k of
  the importance.

So ``NasExperiment(RepNASSpace(), evaluator, RepNAS())`` searches, ``space.freeze(sample)`` is
the searched multi-branch net and ``space.freeze(sample).fuse()`` the deployed one.
"""

from __future__ import annotations

from typing import Any, Callable, Iterable, Sequence

import torch
import torch.nn as nn
from nni.mutable import CategoricalMultiple, Constraint, LabeledMutable, Mutable
from nni.mutable.exception import ConstraintViolation, SampleValidationError
from nni.nas.nn.pytorch import ModelSpace, MutableModule
from nni.nas.oneshot.pytorch.supermodule.base import BaseSuperNetModule

from ..repnas.config import LayerSpec, RepNASConfig, SpaceLike, load_repnas_config
from ..repnas.net import RepNASNet, layer_label, validate_sample
from ..repnas.search import BranchSearch, Phase
from .dbb import SPATIAL_BRANCHES

__all__ = ["RepNASSpace", "BranchSupernet", "MixedBranchSupernet", "BranchBudget",
           "RepNASConfig", "RepNASNet", "load_repnas_config"]


class BranchBudget(Constraint):
    """At most ``k`` searchable layer-branches in all; per layer its always-on branches, ``min_per_layer``
    branches and ``min_spatial`` spatial ones (always-on ones count for both minimums)."""

    def __init__(self, layers: list[CategoricalMultiple], k: int, min_per_layer: int = 1,
                 always_on: Sequence[Sequence[str]] | None = None, min_spatial: int = 0,
                 label: str = "branch_budget"):
        self.label = label
        self.layers = layers
        self.k = k
        self.min_per_layer = min_per_layer
        self.min_spatial = min_spatial
        self.always_on = [tuple(a) for a in always_on] if always_on is not None else [()] * len(layers)

    def leaf_mutables(self, is_leaf: Callable[[Mutable], bool]) -> Iterable[LabeledMutable]:
        for layer in self.layers:
            yield from layer.leaf_mutables(is_leaf)
        yield self

    def check_contains(self, sample: dict[str, Any]) -> SampleValidationError | None:
        searched = 0
        for layer, fixed in zip(self.layers, self.always_on):
            exc = layer.check_contains(sample)
            if exc is not None:
                return exc
            chosen = list(layer.freeze(sample))
            missing = [b for b in fixed if b not in chosen]
            if missing:
                return ConstraintViolation(f"{layer.label} misses {missing[0]!r}, which is always on")
            if len(chosen) < self.min_per_layer:
                return ConstraintViolation(f"{layer.label} keeps fewer than {self.min_per_layer} branches")
            if sum(b in SPATIAL_BRANCHES for b in chosen) < self.min_spatial:
                return ConstraintViolation(f"{layer.label} keeps fewer than {self.min_spatial} spatial branches")
            searched += sum(b not in fixed for b in chosen)
        if searched > self.k:
            return ConstraintViolation(f"{searched} searchable layer-branches kept, over the budget of {self.k}")
        return None

    def extra_repr(self) -> str:
        return (f"k={self.k}, min_per_layer={self.min_per_layer}, min_spatial={self.min_spatial}, "
                f"label={self.label!r}")


def _default(layer: LayerSpec) -> list[str]:
    """The always-on branches plus what the layer must keep besides (spatial first): within every budget."""
    free = list(layer.searchable)
    pick = [b for b in free if b in SPATIAL_BRANCHES][:layer.forced_spatial]
    pick += [b for b in free if b not in pick][:layer.forced - len(pick)]
    return [b for b in layer.branches if b in layer.always_on or b in pick]


def _choices(net: RepNASNet) -> dict[str, CategoricalMultiple]:
    # default: the always-on branches (conv_kxk: the plain net), which every budget allows
    cfg = net.config
    return {
        layer_label(i): CategoricalMultiple(list(layer.branches),
                                            weights=[1.0 if b in layer.always_on else cfg.budget for b in layer.branches],
                                            default=_default(layer), label=layer_label(i))
        for i, layer in enumerate(cfg.layers)
    }


class BranchSupernet(MutableModule):
    """Every branch choice of a :class:`RepNASNet`, as labelled NNI mutables plus the budget."""

    def __init__(self, net: RepNASNet):
        super().__init__()
        self.net = net
        self.choices = {label: self.add_mutable(m) for label, m in _choices(net).items()}
        cfg = net.config
        self.budget = self.add_mutable(BranchBudget(list(self.choices.values()), cfg.budget_k,
                                                    cfg.min_branches_per_layer, [layer.always_on for layer in cfg.layers],
                                                    cfg.min_spatial_branches))

    @classmethod
    def create_fixed_module(cls, sample: dict, net: RepNASNet) -> RepNASNet:
        # inside nni.nas.space.model_context(sample): build the chosen multi-branch net directly
        return net.select(_branch_sample(net.config, sample))

    def freeze(self, sample: dict[str, Any]) -> RepNASNet:
        """The multi-branch net of ``sample`` with weights inherited from the supernet."""
        return self.net.select(_branch_sample(self.net.config, sample))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def _branch_sample(cfg: RepNASConfig, sample: dict[str, Any]) -> dict[str, list[str]]:
    """The ``branches_<i>`` entries of an NNI sample, validated (budget included)."""
    own = {k: v for k, v in sample.items() if k.startswith("branches_")}
    return {layer_label(i): list(b) for i, b in enumerate(validate_sample(cfg, own))}


class MixedBranchSupernet(BaseSuperNetModule):
    """One-shot version of :class:`BranchSupernet`: importance parameters and phase-dependent masks.

    Args:
        net: the supernet (shared, not copied).
        choices, budget: the mutables of the :class:`BranchSupernet` it replaces.
        **search_kwargs: :class:`~nni_eas.repnas.BranchSearch` options (``noise_scale``, ``tau``,
            ``dense_gradients``, ``warmup``, ``seed``), passed by the strategy's mutation hook.
    """

    def __init__(self, net: RepNASNet, choices: dict[str, CategoricalMultiple], budget: BranchBudget,
                 **search_kwargs: Any):
        super().__init__()
        self.net = net
        self.choices = choices
        for mutable in choices.values():
            self.add_mutable(mutable)
        self.budget = self.add_mutable(budget)
        cfg = net.config
        self.search = BranchSearch(net, budget.k, always_on=cfg.always_on, min_per_layer=cfg.min_branches_per_layer,
                                   min_spatial=cfg.min_spatial_branches, **search_kwargs)
        self.phase: Phase | None = None  # None: uniform random top-k paths (RandomOneShot); RepNAS sets it

    def arch_parameters(self) -> list[nn.Parameter]:
        return [self.search.alpha]

    def resample(self, memo: dict[str, Any]) -> dict[str, Any]:
        if all(label in memo for label in self.choices):
            self.search.apply(self.search.from_sample(memo))
            return {}
        if self.phase is None:
            hard = self.search.random_mask() if self.training else self.search.mask()
            self.search.apply(hard)
        else:
            hard = self.search.step(self.phase, training=self.training)
        return {k: v for k, v in self.search.to_sample(hard).items() if k not in memo}

    def export(self, memo: dict[str, Any]) -> dict[str, Any]:
        """Top-k of the importance: exactly ``k`` layer-branches."""
        return {k: v for k, v in self.search.to_sample().items() if k not in memo}

    def export_probs(self, memo: dict[str, Any]) -> dict[str, Any]:
        """``sigmoid(alpha / tau)`` per branch; always-on branches have probability 1."""
        probs = dict(zip(self.search.slots, self.search.probabilities().tolist()))
        out: dict[str, dict[str, float]] = {}
        for i, layer in enumerate(self.net.config.layers):
            out[layer_label(i)] = {b: probs.get((i, b), 1.0) for b in layer.branches}
        return {k: v for k, v in out.items() if k not in memo}

    def freeze(self, sample: dict[str, Any]) -> RepNASNet:
        return self.net.select(_branch_sample(self.net.config, sample))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    @classmethod
    def mutate(cls, module, name, memo, mutate_kwargs):
        """NNI mutation hook: replace a :class:`BranchSupernet` (weights are shared, not copied)."""
        if type(module) is BranchSupernet:
            return cls(module.net, module.choices, module.budget, **mutate_kwargs.get("repnas", {}))
        return None


class RepNASSpace(ModelSpace):
    """The RepNAS branch space as an NNI model space.

    Args:
        space: preset name (``repnas_small``, ``repnas_repvgg_a0``), YAML path or mapping.
        num_classes: overrides the preset's number of classes.
        **overrides: other preset keys (e.g. ``budget=0.5``).

    ``freeze(sample)`` returns the multi-branch :class:`RepNASNet` with the sample's branches and
    the supernet's weights; ``fuse(sample)`` its deployed single-conv form.
    """

    def __init__(self, space: SpaceLike = "repnas_small", num_classes: int | None = None, **overrides: Any):
        super().__init__()
        self.net = BranchSupernet(RepNASNet(space, num_classes=num_classes, **overrides))

    @property
    def supernet(self) -> RepNASNet:
        return self.net.net

    @property
    def config(self) -> RepNASConfig:
        return self.supernet.config

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def freeze(self, sample: dict[str, Any]) -> RepNASNet:
        """The multi-branch net of ``sample`` (validated: budget, labels, branch names)."""
        return self.net.freeze(sample)

    def fuse(self, sample: dict[str, Any]) -> nn.Module:
        """The deployed net of ``sample``: one ``Conv2d`` + activation per layer."""
        return self.freeze(sample).fuse()

    @classmethod
    def extra_oneshot_hooks(cls, strategy) -> list:
        return [MixedBranchSupernet.mutate]
