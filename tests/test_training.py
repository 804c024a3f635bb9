"""Supernet training on real digits, sized to seconds: a tiny variant of the small space at 8 px,
128 training images. Each test checks behaviour (loss goes down, dropped classes do not count,
unlabeled images move the weights, resume is bit-exact, errors are clear), not just that it runs."""

from __future__ import annotations

from pathlib import Path

import pytest
import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from torch.nn.modules.batchnorm import _BatchNorm

from nni_eas.checkpoint import CheckpointError, load_supernet
from nni_eas.config import ConfigError
from nni_eas.evaluation import recalibrate_bn
from nni_eas.spaces.arch import max_arch, min_arch
from nni_eas.training import (
    SupernetDataModule,
    SupernetModule,
    TaskDropout,
    list_recipes,
    load_recipe,
    train_supernet,
)

# the small space, cut down so a training step takes milliseconds (every elastic dimension kept)
TINY_SPACE = {"num_classes": 10, "resolutions": [8], "kernel_sizes": [3, 5], "expand_ratios": [2, 3],
              "depths": [1, 2], "final_expand": 64, "head": 64}
TINY_DATA = {"dataset": "digits", "resolution": 8, "limit_train": 256, "limit_val": 64}
TINY_PS = {"kind": "progressive_shrinking", "distill": True, "phases": [
    {"name": "full", "epochs": 2},
    {"name": "kernel", "epochs": 1, "choices": {"kernel": [3, 5]}},
    {"name": "depth", "epochs": 1, "choices": {"kernel": [3, 5], "depth": [1, 2]}, "subnets": 2},
    {"name": "expand", "epochs": 2, "choices": {"kernel": [3, 5], "depth": [1, 2], "expand": [2, 3]},
     "subnets": 2, "sort_channels": True},
]}


# augmentation and label smoothing off: a few dozen steps must show learning (resume tests turn them on)
AUGMENT = {"augment": {"crop_padding": 0.125, "flip": True}, "label_smoothing": 0.1}


def tiny(recipe: str = "sandwich_small_digits", **overrides):
    base = {"space_overrides": TINY_SPACE, "data": TINY_DATA, "batch_size": 16, "bn_calibration_images": 64,
            "scheduler.warmup_epochs": 0, "optimizer.lr": 0.05, "augment": {"crop_padding": 0.0, "flip": False},
            "label_smoothing": 0.0}
    return load_recipe(recipe, **{**base, **overrides})


@pytest.fixture(autouse=True)
def _one_thread():
    """Tiny nets gain nothing from a second thread, and on a shared machine it costs a lot."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _train(recipe, out: Path, **kwargs):
    return train_supernet(recipe, out, progress=False, logger=False, **kwargs)


@pytest.fixture(scope="module")
def digits8():
    """(x, y) of the first 256 training images at 8 px, as the tiny recipes see them."""
    dm = SupernetDataModule(TINY_DATA, batch_size=32)
    dm.setup()
    return dm.calibration_data(256)


def _loss(supernet, arch, data) -> float:
    """Cross-entropy of ``arch`` (BN recalibrated) on fixed images: comparable across policies and phases."""
    sub = recalibrate_bn(supernet.extract(arch), data, resolution=arch.r)
    with torch.no_grad():
        return float(F.cross_entropy(sub.eval()(data[0]), data[1]))


# ---- recipes ----------------------------------------------------------------------------------
def test_recipes_load_and_errors_name_the_field():
    names = list_recipes()
    assert {"ofa_small_digits", "sandwich_small_digits", "eas_small_digits", "tofa_small_digits"} <= set(names)
    for name in names:
        load_recipe(name)
    with pytest.raises(ConfigError, match="policy"):
        load_recipe("sandwich_small_digits", **{"policy.kind": "random"})
    with pytest.raises(ConfigError, match="rate"):
        load_recipe("eas_small_digits", **{"task_dropout.rate": 1.5})
    with pytest.raises(ConfigError, match="available recipes: .*eas_small_digits"):
        load_recipe("no_such_recipe")


# ---- each policy trains -----------------------------------------------------------------------
class _TeacherWatch(pl.Callback):
    """Teacher weights and BN statistics when it is made and when training ends (must not move)."""

    def __init__(self):
        self.first = None

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
        if module.teacher is not None and self.first is None:
            self.first = {k: v.clone() for k, v in module.teacher.state_dict().items()}


@pytest.mark.parametrize("policy", ["progressive_shrinking", "sandwich", "uniform"])
def test_policy_trains_and_lowers_the_loss(policy, tmp_path, digits8):
    overrides = {"progressive_shrinking": {"policy": TINY_PS},
                 "sandwich": {"policy": {"kind": "sandwich", "epochs": 4, "num_random": 1}},
                 "uniform": {"policy": {"kind": "uniform", "epochs": 6, "subnets": 2}}}[policy]
    recipe = tiny(**overrides)
    pl.seed_everything(recipe.seed, verbose=False)
    untrained = SupernetModule(recipe).supernet       # the weights train_supernet starts from
    cfg = untrained.config
    before = {n: _loss(untrained, a, digits8) for n, a in (("max", max_arch(cfg)), ("min", min_arch(cfg)))}
    watch = _TeacherWatch()
    result = _train(recipe, tmp_path, extra_callbacks=[watch])
    trained = result.module.supernet
    after = {n: _loss(trained, a, digits8) for n, a in (("max", max_arch(cfg)), ("min", min_arch(cfg)))}
    assert after["max"] < 0.8 * before["max"], (before, after)
    # progressive shrinking reaches the smallest subnet only in its last phase
    assert after["min"] < (before["min"] - 0.05 if policy == "progressive_shrinking" else 0.9 * before["min"]), (before, after)
    assert [h["epoch"] for h in result.history] == list(range(result.module.policy.total_epochs))
    if policy == "progressive_shrinking":
        # the full net became a frozen teacher: eval mode, no gradient, BN statistics never updated
        teacher = result.module.teacher
        assert teacher is not None and watch.first is not None
        assert not any(p.requires_grad for p in teacher.parameters())
        assert all(torch.equal(v, watch.first[k]) for k, v in teacher.state_dict().items())
        assert [h["train/phase"] for h in result.history] == [0.0, 0.0, 1.0, 2.0, 3.0, 3.0]


# ---- task dropout -----------------------------------------------------------------------------
def test_task_dropout_loss_ignores_dropped_classes():
    module = SupernetModule(tiny("eas_small_digits"))
    torch.manual_seed(0)
    logits = torch.randn(6, 10)
    labels = torch.tensor([0, 3, 3, 7, 9, 1])
    kept = TaskDropout.keep(labels, [1, 3, 7])            # drops classes 0, 2, 4, 5, 6, 8, 9
    assert kept.sample_mask.tolist() == [False, True, True, True, False, True]
    base = module._label_loss(logits, labels, kept)
    target = torch.randn(6, 10)
    base_kd = module._kd(logits, target, kept)

    changed = logits.clone()
    changed[:, [0, 2, 4, 5, 6, 8, 9]] += 10 * torch.randn(6, 7)  # logits of dropped classes
    changed[[0, 4]] = 5 * torch.randn(2, 10)                       # images of dropped classes
    assert torch.allclose(module._label_loss(changed, labels, kept), base)
    assert torch.allclose(module._kd(changed, target, kept), base_kd)

    for cls in (1, 3, 7):                                        # every kept class counts
        moved = logits.clone()
        moved[:, cls] += 3.0
        assert not torch.allclose(module._label_loss(moved, labels, kept), base)
    # without task dropout the same change does count
    assert not torch.allclose(module._label_loss(changed, labels, None), module._label_loss(logits, labels, None))


def test_task_dropout_sampling_rate_min_kept_and_groups():
    import numpy as np

    rng = np.random.default_rng(0)
    labels = torch.arange(10).repeat(4)
    td = TaskDropout(10, rate=0.5, min_kept=3)
    kept = [td.sample(labels, rng).classes.tolist() for _ in range(400)]
    assert min(len(k) for k in kept) >= 3
    assert 0.4 < np.mean([len(k) for k in kept]) / 10 < 0.65
    groups = [[0, 1, 2], [3, 4], [5, 6, 7], [8, 9]]           # super-classes drop together
    td = TaskDropout(10, rate=0.5, min_kept=2, groups=groups)
    for _ in range(100):
        k = set(td.sample(labels, rng).classes.tolist())
        assert all(set(g) <= k or not set(g) & k for g in groups)
    with pytest.raises(ValueError, match="partition"):
        TaskDropout(10, rate=0.3, groups=[[0, 1], [1, 2]])


def test_task_dropout_training_runs(tmp_path):
    result = _train(tiny("eas_small_digits", **{"policy.epochs": 1, "policy.num_random": 1}), tmp_path)
    assert 0.0 <= result.metrics["top1_max"] <= 1.0 and (tmp_path / "supernet.pt").is_file()


# ---- semi-supervised --------------------------------------------------------------------------
def _ssl_weights(tmp_path: Path, noise_unlabeled: bool, weight: float) -> dict[str, torch.Tensor]:
    """Parameters after one semi-supervised step; unlabeled images optionally replaced by noise."""
    from torch.utils.data import TensorDataset

    from nni_eas.training.data import _split

    dm = SupernetDataModule(TINY_DATA, batch_size=32)
    dm.setup()
    x, y = dm.calibration_data(256)
    labeled, _ = _split(TensorDataset(x, y), 0.25, seed=0)
    if noise_unlabeled:
        mask = torch.ones(len(x), dtype=torch.bool)
        mask[list(labeled.indices)] = False
        x = x.clone()
        x[mask] = torch.randn(int(mask.sum()), *x.shape[1:], generator=torch.Generator().manual_seed(1))
    recipe = tiny("tofa_small_digits", **{"policy.epochs": 1, "semi_supervised.labeled_fraction": 0.25,
                                          "semi_supervised.threshold": 0.0, "semi_supervised.weight": weight})
    data = SupernetDataModule(recipe.data, recipe.batch_size, recipe.seed, recipe.semi_supervised,
                              train=TensorDataset(x, y), val=TensorDataset(x[:32], y[:32]), classes=dm.classes)
    result = _train(recipe, tmp_path / f"{noise_unlabeled}-{weight}", datamodule=data, max_steps=1,
                    limit_val_batches=0)
    return {k: v.detach().clone() for k, v in result.module.supernet.named_parameters()}


def test_semi_supervised_term_uses_unlabeled_data(tmp_path):
    real, noise = _ssl_weights(tmp_path, False, 1.0), _ssl_weights(tmp_path, True, 1.0)
    moved = [k for k in real if not torch.equal(real[k], noise[k])]
    assert len(moved) > len(real) // 2, "the unlabeled images did not reach the weights"
    # with the consistency weight at 0 the unlabeled images change nothing
    real0, noise0 = _ssl_weights(tmp_path, False, 0.0), _ssl_weights(tmp_path, True, 0.0)
    assert all(torch.equal(real0[k], noise0[k]) for k in real0)


def test_semi_supervised_split_is_stratified():
    dm = SupernetDataModule(TINY_DATA, batch_size=16, semi_supervised=load_recipe("tofa_small_digits").semi_supervised)
    dm.setup()
    lab = torch.as_tensor([int(dm.labeled_set[i][1]) for i in range(len(dm.labeled_set))])
    assert len(dm.labeled_set) + len(dm.unlabeled_set) == 256
    assert set(lab.tolist()) == set(range(10))          # every class has labels
    assert not set(dm.labeled_set.indices) & set(dm.unlabeled_set.indices)
    loaders = dm.train_dataloader().iterables
    assert loaders["unlabeled"].batch_size == 2 * loaders["labeled"].batch_size  # unlabeled_ratio: 2


# ---- resume -----------------------------------------------------------------------------------
class _Kill(pl.Callback):
    """Simulates a kill in the middle of an epoch (after the previous epoch's checkpoint)."""

    def __init__(self, epoch: int, batch: int):
        self.epoch, self.batch = epoch, batch

    def on_train_batch_start(self, trainer, module, batch, batch_idx):
        if trainer.current_epoch == self.epoch and batch_idx == self.batch:
            raise RuntimeError("simulated kill")


def test_resume_after_kill_reproduces_uninterrupted_run(tmp_path):
    recipe = tiny("eas_small_digits", **{"policy.epochs": 3, "policy.num_random": 1, "scheduler.warmup_epochs": 1,
                                         "data.limit_train": 96}, **AUGMENT)
    straight = _train(recipe, tmp_path / "straight").module.supernet.state_dict()
    with pytest.raises(RuntimeError, match="simulated kill"):
        _train(recipe, tmp_path / "killed", extra_callbacks=[_Kill(epoch=2, batch=2)])
    assert (tmp_path / "killed" / "checkpoints" / "last.ckpt").is_file()
    assert not (tmp_path / "killed" / "supernet.pt").exists()
    resumed = _train(recipe, tmp_path / "killed")
    assert resumed.history[-1]["epoch"] == 2
    state = resumed.module.supernet.state_dict()
    assert state.keys() == straight.keys()
    different = [k for k in state if not torch.equal(state[k], straight[k])]
    assert not different, f"resumed run differs in {len(different)} tensors, e.g. {different[:3]}"


def test_progressive_shrinking_resume_across_phases(tmp_path):
    """Resuming inside a later phase restores teacher and schedule (sorted channels included)."""
    recipe = tiny(policy=TINY_PS, **{"data.limit_train": 96}, **AUGMENT)
    straight = _train(recipe, tmp_path / "straight").module.supernet.state_dict()
    with pytest.raises(RuntimeError):
        _train(recipe, tmp_path / "killed", extra_callbacks=[_Kill(epoch=4, batch=1)])
    state = _train(recipe, tmp_path / "killed").module.supernet.state_dict()
    assert all(torch.equal(state[k], straight[k]) for k in straight)


# ---- BN recalibration -------------------------------------------------------------------------
def test_bn_recalibration_changes_only_bn_buffers(digits8):
    module = SupernetModule(tiny())
    sub = module.supernet.extract(min_arch(module.config))
    params = {k: v.clone() for k, v in sub.named_parameters()}
    buffers = {k: v.clone() for k, v in sub.named_buffers()}
    bn_buffers = {f"{n}.{b}" for n, m in sub.named_modules() if isinstance(m, _BatchNorm)
                  for b in ("running_mean", "running_var")}
    recalibrate_bn(sub, digits8, resolution=8)
    assert all(torch.equal(v, params[k]) for k, v in sub.named_parameters())
    changed = {k for k, v in sub.named_buffers() if not torch.equal(v, buffers[k])}
    assert changed - {k for k in changed if k.endswith("num_batches_tracked")} == bn_buffers
    # and the statistics are those of the data: recalibrating twice gives the same numbers
    again = {k: v.clone() for k, v in sub.named_buffers()}
    recalibrate_bn(sub, digits8, resolution=8)
    assert all(torch.allclose(v, again[k], atol=1e-5) for k, v in sub.named_buffers() if k in bn_buffers)


# ---- checkpoint errors ------------------------------------------------------------------------
@pytest.fixture(scope="module")
def trained_run(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("run")
    _train(tiny(**{"policy.epochs": 1, "policy.num_random": 1}), out)
    return out


def test_corrupted_checkpoint_is_a_clear_error(trained_run, tmp_path):
    import shutil

    out = tmp_path / "run"
    shutil.copytree(trained_run, out)
    last = out / "checkpoints" / "last.ckpt"
    data = last.read_bytes()
    last.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match=r"(?s)cannot read checkpoint .*last\.ckpt.*truncated"):
        _train(tiny(**{"policy.epochs": 2, "policy.num_random": 1}), out)
    with pytest.raises(CheckpointError, match="cannot read supernet checkpoint"):
        load_supernet(last)


def test_mismatched_recipe_checkpoint_is_a_clear_error(trained_run, tmp_path):
    import shutil

    out = tmp_path / "run"
    shutil.copytree(trained_run, out)
    with pytest.raises(CheckpointError, match="another subnet-sampling policy"):
        _train(tiny(policy={"kind": "uniform", "epochs": 2}), out)
    with pytest.raises(CheckpointError, match="different settings"):
        _train(tiny(**{"policy.epochs": 1, "policy.num_random": 1,
                       "space_overrides": {**TINY_SPACE, "kernel_sizes": [3, 5, 7]}}), out)
    # the trained supernet file and the Lightning checkpoint load as the same weights
    a, info = load_supernet(trained_run / "supernet.pt")
    b, _ = load_supernet(trained_run / "checkpoints" / "last.ckpt")
    assert info["meta"]["recipe"] == "sandwich_small_digits" and info["classes"][:3] == ["0", "1", "2"]
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))


# ---- NNI ----------------------------------------------------------------------------------------
def test_nni_report_dicts_with_default():
    from nni_eas.training.callbacks import NNIReportCallback

    cb = NNIReportCallback(enabled=False)
    trainer = pl.Trainer(logger=False, enable_progress_bar=False, enable_checkpointing=False, max_epochs=1,
                         callbacks=[cb], limit_train_batches=1, num_sanity_val_steps=0, enable_model_summary=False)
    recipe = tiny(**{"policy.epochs": 1, "policy.num_random": 1})
    dm = SupernetDataModule(recipe.data, recipe.batch_size)
    trainer.fit(SupernetModule(recipe), datamodule=dm)
    assert len(cb.reported) == 1
    assert cb.reported[0]["default"] == cb.reported[0]["top1_max"] and "top1_min" in cb.reported[0]


def test_nas_experiment_trains_supernet_and_saves_it(tmp_path, monkeypatch):
    import nni
    from nni.nas.experiment import NasExperiment

    from nni_eas.encodings import arch_to_sample
    from nni_eas.spaces import OFAMobileNetV3Space
    from nni_eas.strategies import SandwichTraining, SupernetTraining, supernet_evaluator

    monkeypatch.setattr("nni.trial._params", None)  # restored after the test: later tests run outside NNI
    sent = []
    original = nni.report_intermediate_result
    monkeypatch.setattr(nni, "report_intermediate_result", lambda m: (sent.append(m), original(m)))
    recipe = tiny(**{"policy.epochs": 1, "policy.num_random": 1})
    space = OFAMobileNetV3Space(recipe.space, **TINY_SPACE)
    before = {k: v.clone() for k, v in space.supernet.state_dict().items()}
    evaluator = supernet_evaluator(recipe, tmp_path / "out", progress=False, logger=False)
    exp = NasExperiment(space, evaluator, SandwichTraining(epochs=2, num_random=1))
    exp.config.experiment_working_directory = str(tmp_path / "exp")
    try:
        exp.run()
    finally:
        exp.stop()
    changed = [k for k, v in space.supernet.state_dict().items() if not torch.equal(v, before[k])]
    assert len(changed) > 0.9 * len(before), "the strategy did not train the space's supernet"
    # two epochs (the strategy's policy, not the recipe's one): two intermediate results, dicts with 'default'
    assert len(sent) == 2 and all(isinstance(m, dict) and m["default"] == m["top1_max"] for m in sent)
    # the trained supernet is saved, loads, and equals the space's weights; so does the Lightning checkpoint
    for path in (tmp_path / "out" / "supernet.pt", tmp_path / "out" / "checkpoints" / "last.ckpt"):
        loaded, info = load_supernet(path)
        assert all(torch.equal(v, space.supernet.state_dict()[k]) for k, v in loaded.state_dict().items())
    # the exported top model is the largest subnet, with the trained weights
    [sample] = exp.export_top_models(formatter="dict")
    assert sample == arch_to_sample(space.config, max_arch(space.config))
    with pytest.raises(ConfigError, match="allowed: progressive_shrinking, sandwich, uniform"):
        SupernetTraining(policy={"kind": "ofa"})
