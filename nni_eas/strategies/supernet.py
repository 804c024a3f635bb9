"""NNI adapter: supernet training (OFA / BigNAS / EAS / TOFA) as a one-shot strategy for ``NasExperiment``.

The training itself is :class:`~nni_eas.training.SupernetModule` (NNI-free apart from its base
class); this module only fits it into NNI's one-shot machinery, the way ``RandomOneShot`` does:

* :func:`supernet_evaluator` builds NNI's ``Lightning`` evaluator from a training recipe (the
  module, a traced ``Trainer`` with atomic checkpoints / TensorBoard / curves / NNI reports, and
  the recipe's data);
* :class:`SupernetTraining` (an ``OneShotStrategy``) mutates the space into its one-shot form
  (weights shared, nothing copied) and wraps the module in :class:`SupernetTrainingModule`,
  which lets the module's policy pick the subnets of every step. The strategy may replace the
  recipe's policy; :class:`ProgressiveShrinkingTraining`, :class:`SandwichTraining` and
  :class:`UniformTraining` say which in their name.

Example::

    from nni.nas.experiment import NasExperiment
    from nni_eas.checkpoint import load_supernet
    from nni_eas.spaces import OFAMobileNetV3Space
    from nni_eas.strategies import SupernetTraining, supernet_evaluator

    space = OFAMobileNetV3Space("ofa_mbv3_small", num_classes=10, resolutions=[12, 14, 16])
    evaluator = supernet_evaluator("eas_small_digits", out_dir="runs/eas")
    exp = NasExperiment(space, evaluator, SupernetTraining())
    exp.run()                                   # trains space.supernet in place
    supernet, info = load_supernet("runs/eas/supernet.pt")

Per-epoch top-1 of the largest and smallest subnet go to NNI as intermediate results, the last
one as the final result (dicts with ``'default'`` = largest subnet's top-1). The exported "top
model" is the largest subnet: choosing a subnet for a budget is a search over the trained
supernet (``NSGA2`` & co. with :func:`~nni_eas.strategies.subnet_evaluator`).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Mapping, Optional, Union

from nni.nas.evaluator.pytorch import Lightning, Trainer
from nni.nas.oneshot.pytorch.base_lightning import BaseOneShotLightningModule
from nni.nas.oneshot.pytorch.strategy import OneShotStrategy, no_default_hook

from ..config import ConfigError, validate
from ..encodings import arch_to_sample
from ..training.callbacks import SaveSupernetCallback
from ..training.data import SupernetDataModule
from ..training.module import SupernetModule
from ..training.policies import SubnetPolicy, build_policy
from ..training.recipe import ProgressiveShrinkingConfig, SandwichConfig, TrainingRecipe, UniformConfig, load_recipe
from ..training.run import build_trainer

__all__ = ["supernet_evaluator", "SupernetTraining", "SupernetTrainingModule", "ProgressiveShrinkingTraining",
           "SandwichTraining", "UniformTraining"]

_logger = logging.getLogger(__name__)

PolicyConfig = Union[ProgressiveShrinkingConfig, SandwichConfig, UniformConfig]
_POLICY_CONFIGS = {"progressive_shrinking": ProgressiveShrinkingConfig, "sandwich": SandwichConfig, "uniform": UniformConfig}
_PREFIX = "training_module."


def supernet_evaluator(recipe: TrainingRecipe | str | Mapping[str, Any], out_dir: str | Path = "nni_eas_training", *,
                       datamodule: Optional[SupernetDataModule] = None, resume: bool = True, progress: bool = True,
                       **trainer_kwargs: Any) -> Lightning:
    """NNI's ``Lightning`` evaluator that trains a supernet as ``recipe`` says.

    Args:
        recipe: recipe name (``search_spaces/recipes``), path, mapping or object.
        out_dir: checkpoints (``checkpoints/last.ckpt``), ``supernet.pt`` (written when training
            ends), ``metrics.json``, ``curves.png`` and TensorBoard logs.
        datamodule: the data (default: the recipe's dataset, :class:`~nni_eas.training.SupernetDataModule`).
        resume: continue from ``out_dir/checkpoints/last.ckpt`` when it exists.
        **trainer_kwargs: ``Trainer`` arguments (``accelerator``, ``devices``, ``limit_train_batches``...).

    The number of epochs is the policy's schedule (:class:`SupernetTraining` adjusts it when it
    replaces the policy).
    """
    recipe = load_recipe(recipe)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    dm = datamodule or SupernetDataModule(recipe.data, recipe.batch_size, recipe.seed, recipe.semi_supervised)
    dm.setup()
    module = SupernetModule(recipe, num_classes=dm.num_classes, classes=dm.classes)
    extra = list(trainer_kwargs.pop("extra_callbacks", None) or []) + [SaveSupernetCallback(out_dir / "supernet.pt")]
    trainer = build_trainer(out_dir, module.policy.total_epochs, recipe.val_every_n_epochs, progress,
                            trainer_cls=Trainer, report_final=True, extra_callbacks=extra, **trainer_kwargs)
    last = out_dir / "checkpoints" / "last.ckpt"
    fit_kwargs = {"ckpt_path": str(last)} if resume and last.exists() else {}
    return Lightning(module, trainer, datamodule=dm, fit_kwargs=fit_kwargs)


def _policy_config(policy: Any) -> PolicyConfig | SubnetPolicy | None:
    if policy is None or isinstance(policy, (SubnetPolicy, *_POLICY_CONFIGS.values())):
        return policy
    if not isinstance(policy, Mapping):
        raise ConfigError(f"policy: expected a mapping with 'kind', a policy config or a SubnetPolicy, got {type(policy).__name__}")
    kind = policy.get("kind")
    if kind not in _POLICY_CONFIGS:
        raise ConfigError(f"policy.kind: got {kind!r}; allowed: {', '.join(_POLICY_CONFIGS)}")
    return validate(_POLICY_CONFIGS[kind], {k: v for k, v in policy.items() if v is not None}, "policy")


class SupernetTrainingModule(BaseOneShotLightningModule):
    """One-shot wrapper around :class:`~nni_eas.training.SupernetModule`.

    The module samples and trains its own subnets (policy), so the wrapper has nothing to
    resample: it forwards the steps and hooks NNI's base class does not, and keeps checkpoints
    in the module's own format (``supernet.*`` keys), so ``load_supernet`` reads them and
    ``train_supernet`` can resume them.
    """

    def __init__(self, training_module: SupernetModule):
        if not isinstance(training_module, SupernetModule):
            raise TypeError("SupernetTraining needs the evaluator of nni_eas.strategies.supernet_evaluator "
                            f"(a SupernetModule), got {type(training_module).__name__}")
        super().__init__(training_module)

    def training_step(self, batch: Any, batch_idx: int):
        return self.training_module.training_step(batch, batch_idx)

    def validation_step(self, batch: Any, batch_idx: int):
        return self.training_module.validation_step(batch, batch_idx)

    def on_validation_epoch_start(self) -> None:
        self.training_module.on_validation_epoch_start()

    def on_validation_epoch_end(self) -> None:
        self.training_module.on_validation_epoch_end()

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        self.training_module.on_save_checkpoint(checkpoint)
        checkpoint["state_dict"] = {k[len(_PREFIX):] if k.startswith(_PREFIX) else k: v
                                    for k, v in checkpoint["state_dict"].items()}

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        self.training_module.on_load_checkpoint(checkpoint)
        checkpoint["state_dict"] = {k if k.startswith(_PREFIX) else _PREFIX + k: v
                                    for k, v in checkpoint["state_dict"].items()}

    def export(self) -> dict[str, Any]:
        """The largest subnet: supernet training does not choose a subnet (a search does)."""
        module = self.training_module
        return arch_to_sample(module.config, module.policy.eval_archs()["max"])

    def export_probs(self) -> dict[str, Any]:
        return {}


class SupernetTraining(OneShotStrategy):
    """Train an elastic supernet (``OFAMobileNetV3Space``) once, for every subnet.

    Args:
        policy: subnet sampling; ``None``: the recipe's. A mapping with ``kind``
            (``progressive_shrinking``, ``sandwich``, ``uniform``) and that policy's fields, a
            policy config, or a :class:`~nni_eas.training.policies.SubnetPolicy` object. The
            training runs for the policy's schedule (the evaluator's ``max_epochs`` follows it).
        **kwargs: :class:`~nni.nas.oneshot.pytorch.strategy.OneShotStrategy` arguments.

    The evaluator must come from :func:`supernet_evaluator`.
    """

    def __init__(self, policy: Mapping[str, Any] | PolicyConfig | SubnetPolicy | None = None, **kwargs: Any):
        super().__init__(**kwargs)
        self.policy = _policy_config(policy)

    def default_mutation_hooks(self) -> list:
        # OFAMobileNetV3Space brings its own hook (MixedElasticSupernet); anything else is an error
        return [no_default_hook]

    def configure_oneshot_module(self, training_module: SupernetModule) -> SupernetTrainingModule:
        wrapper = SupernetTrainingModule(training_module)
        if isinstance(self.policy, SubnetPolicy):
            training_module.policy = self.policy
        elif self.policy is not None:
            training_module.policy = build_policy(training_module.config, self.policy)
        return wrapper

    def mutate_evaluator(self, evaluator: Lightning) -> Lightning:
        mutated = super().mutate_evaluator(evaluator)
        epochs = mutated.module.training_module.policy.total_epochs
        if mutated.trainer.max_epochs != epochs:
            _logger.info("supernet training runs the policy's %d epochs (the trainer had max_epochs=%s)",
                         epochs, mutated.trainer.max_epochs)
            mutated.trainer.fit_loop.max_epochs = epochs
        return mutated

    def extra_repr(self) -> str:
        return f"policy={getattr(self.policy, 'kind', type(self.policy).__name__ if self.policy else 'recipe')}"


class ProgressiveShrinkingTraining(SupernetTraining):
    """OFA's progressive shrinking (full net, then elastic kernel, depth, expand; distillation from
    the full net). ``phases`` or OFA's schedule scaled by ``epoch_scale``."""

    def __init__(self, *, phases: Optional[list] = None, epoch_scale: float = 1.0, distill: bool = True, **kwargs: Any):
        super().__init__({"kind": "progressive_shrinking", "phases": phases, "epoch_scale": epoch_scale,
                          "distill": distill}, **kwargs)


class SandwichTraining(SupernetTraining):
    """BigNAS / AttentiveNAS sandwich rule: largest, smallest and ``num_random`` random subnets per
    step, students distilled in place from the largest."""

    def __init__(self, *, epochs: int, num_random: int = 2, distill: bool = True, **kwargs: Any):
        super().__init__({"kind": "sandwich", "epochs": epochs, "num_random": num_random, "distill": distill}, **kwargs)


class UniformTraining(SupernetTraining):
    """Single-path uniform sampling (SPOS): ``subnets`` random subnets per step."""

    def __init__(self, *, epochs: int, subnets: int = 1, **kwargs: Any):
        super().__init__({"kind": "uniform", "epochs": epochs, "subnets": subnets}, **kwargs)
