"""Task specialization decided on the validation split (never on test), measured against the plain
baseline (BN recalibrated on every class, logits restricted): on a tiny supernet *trained* for a
few seconds on digits at 8 px, so the accuracies mean something."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from nni_eas.config import ConfigError
from nni_eas.eas import Scenario, specialize
from nni_eas.eas.specialize import BN_MODES, bn_calibration_set, specialize_subnet
from nni_eas.encodings import arch_to_genome
from nni_eas.spaces.arch import max_arch, min_arch, sample_arch

# the small space cut down so that training takes seconds (as tests/test_training.py's TINY_SPACE)
TINY_SPACE = {"num_classes": 10, "resolutions": [8], "kernel_sizes": [3, 5], "expand_ratios": [2, 3],
              "depths": [1, 2], "final_expand": 64, "head": 64}
TASKS = [(0, 1), (4, 9), (3, 5, 8), (1, 3, 5, 7, 9), tuple(range(10))]


@pytest.fixture(autouse=True)
def _one_thread():
    """Tiny nets gain nothing from a second thread, and on a shared machine it costs a lot."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def trained_supernet(tmp_path_factory):
    """EAS's recipe (sandwich + task dropout) on 768 digits at 8 px for 4 epochs: about 12 s on
    one core; its largest subnet reaches about 0.9 top-1."""
    from nni_eas.training import load_recipe, train_supernet

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        recipe = load_recipe("eas_small_digits", space_overrides=TINY_SPACE, batch_size=32, bn_calibration_images=64,
                             data={"dataset": "digits", "resolution": 8, "limit_train": 768, "limit_val": 64},
                             **{"policy.epochs": 4, "optimizer.lr": 0.05})
        res = train_supernet(recipe, tmp_path_factory.mktemp("trained"), progress=False, logger=False)
    finally:
        torch.set_num_threads(threads)
    assert res.metrics["top1_max"] > 0.7, res.metrics      # trained, not random
    return res.supernet_path


@pytest.fixture(scope="module")
def loaded(trained_supernet):
    from nni_eas.checkpoint import load_supernet
    from nni_eas.search.subnet_eval import load_eval_data

    supernet, _ = load_supernet(trained_supernet)
    cfg = supernet.config
    splits = {s: load_eval_data("digits", s, 8, cfg.in_chans) for s in ("train", "val", "test")}
    return supernet, splits


def _archs(cfg):
    return [max_arch(cfg), sample_arch(cfg, np.random.default_rng(1)), min_arch(cfg)]


def _two_archs(cfg, i):
    return _archs(cfg)[:2] if i % 2 else _archs(cfg)[1:]


def test_specialization_is_never_below_the_baseline_on_validation(loaded):
    supernet, d = loaded
    cfg = supernet.config
    chosen = set()
    for i, classes in enumerate(TASKS):
        n_val = int(torch.isin(d["val"][1], torch.tensor(classes)).sum())
        n_test = int(torch.isin(d["test"][1], torch.tensor(classes)).sum())
        for arch in _two_archs(cfg, i):
            s = Scenario("s", classes, {"macs": 1e9})
            out = specialize(supernet, s, arch_to_genome(cfg, arch), d["train"], d["test"], calib_images=200, val=d["val"])
            # by construction: the chosen subnet is at least the baseline on validation, exactly
            assert out["val_top1"] >= out["val_baseline_top1"], out["val_scores"]
            assert out["bn"] in BN_MODES and out["head"] in ("supernet", "tuned")
            assert out["decided_on"] == "val" or len(classes) == 10
            assert out["val_scores"]["all"] == out["val_baseline_top1"]
            if len(classes) < 10:
                assert {"all", "mix", "task"} <= set(out["val_scores"])
            # the numbers come from the task's images of each split
            assert out["val_images"] == n_val and out["test_images"] == n_test
            if out["bn"] == "all" and out["head"] == "supernet":
                assert out["top1"] == out["baseline_top1"]
            chosen.add((out["bn"], out["head"]))
            if i > 1:
                continue
            # the decision never looks at test: another test set, the same decision and val scores
            other = specialize(supernet, s, arch_to_genome(cfg, arch), d["train"], (d["test"][0][:40], d["test"][1][:40]),
                               calib_images=200, val=d["val"])
            assert (other["bn"], other["head"], other["val_scores"]) == (out["bn"], out["head"], out["val_scores"])
    assert chosen  # (which modes win depends on the supernet; the tests above hold for any)


def test_baseline_is_all_class_bn_with_restricted_logits_on_test(loaded):
    """``baseline_top1`` recomputed by hand: extract, BN on every class, keep the task's logits,
    top-1 over the task's test images."""
    from nni_eas.evaluation import accuracy, recalibrate_bn

    supernet, d = loaded
    arch = _archs(supernet.config)[1]
    classes = [3, 5, 8]
    out = specialize_subnet(supernet, arch, classes, d["train"], d["test"], d["val"], calib_images=200)
    sub = supernet.extract(arch)
    recalibrate_bn(sub, bn_calibration_set(*d["train"], classes, "all", 200), resolution=arch.r, max_images=None)
    assert out["baseline_top1"] == pytest.approx(accuracy(sub, d["test"], classes=classes, resolution=arch.r))
    # a fixed mode is not decided: no tuning, no alternatives
    fixed = specialize_subnet(supernet, arch, classes, d["train"], d["test"], d["val"], bn="task", calib_images=200)
    assert fixed["bn"] == "task" and fixed["decided_on"] == "fixed" and fixed["head"] == "supernet"
    assert set(fixed["val_scores"]) == {"all", "task"} and fixed["baseline_top1"] == out["baseline_top1"]
    # min_z=0: the plain "best on validation" rule, ties to the baseline; still never below it
    plain = specialize_subnet(supernet, arch, classes, d["train"], d["test"], d["val"], min_z=0.0, calib_images=200)
    assert plain["val_top1"] >= plain["val_baseline_top1"]
    best = max(v for k, v in plain["val_scores"].items() if "+" not in k)
    assert plain["val_scores"][plain["bn"]] == best
    if plain["bn"] != "all":
        assert plain["val_scores"][plain["bn"]] > plain["val_scores"]["all"]


def test_bn_calibration_sets():
    x = torch.arange(100, dtype=torch.float32)[:, None, None, None].expand(100, 1, 2, 2)
    y = torch.arange(100) % 10
    xa, ya = bn_calibration_set(x, y, [1, 2], "all", 30)
    assert len(ya) == 30 and len(set(ya.tolist())) > 2
    assert torch.equal(xa, bn_calibration_set(x, y, [1, 2], "all", 30)[0])       # seeded
    xt, yt = bn_calibration_set(x, y, [1, 2], "task", 15)
    assert len(yt) == 15 and set(yt.tolist()) == {1, 2}
    xm, ym = bn_calibration_set(x, y, [1, 2], "mix", 16)
    inside = torch.isin(ym, torch.tensor([1, 2]))
    assert len(ym) == 16 and int(inside.sum()) == 8
    assert len(bn_calibration_set(x, y, None, "task", 30)[1]) == 30                  # no task: every class
    with pytest.raises(ConfigError, match="allowed: all, mix, task"):
        bn_calibration_set(x, y, [1, 2], "half", 30)
    with pytest.raises(ConfigError, match="no images of classes"):
        bn_calibration_set(x, y % 5, [7, 8], "task", 30)


def test_deploy_uses_the_decision_and_records_it(loaded, trained_supernet, tmp_path):
    """``deploy_subnet(bn="auto")``: the exported model is the one specialize_subnet chose (same
    data at the arch's resolution, same top-1), and the card says what was done."""
    from nni_eas.export.card import card_path
    from nni_eas.export.deploy import deploy_subnet, load_task_data

    supernet, _ = loaded
    cfg = supernet.config
    arch = _archs(cfg)[0]
    classes = [4, 9]
    dep = deploy_subnet(supernet, arch, tmp_path / "m.onnx", classes=classes, data="digits", calib_images=200,
                        bn="auto", measure=False, atol=1e-3)
    data = {s: load_task_data("digits", s, arch.r, cfg.in_chans)[:2] for s in ("train", "val", "test")}
    ref = specialize_subnet(supernet, arch, classes, data["train"], data["test"], data["val"], calib_images=200)
    spec = dep.specialization
    assert spec["bn"] == ref["bn"] and spec["head"] == ref["head"] and spec["val_scores"] == ref["val_scores"]
    assert dep.card.accuracy.top1 == ref["top1"] and spec["baseline_top1"] == ref["baseline_top1"]
    card = json.loads(card_path(tmp_path / "m.onnx").read_text())
    assert card["extra"]["specialization"]["bn"] == ref["bn"]
    assert card["extra"]["specialization"]["val_top1"] >= card["extra"]["specialization"]["val_baseline_top1"]
    assert card["accuracy"]["bn_recalibration"]["mode"] == ref["bn"]
    # old callers: task_calibration=True is bn="task"; the default is every class
    old = deploy_subnet(supernet, arch, tmp_path / "t.onnx", classes=classes, data="digits", calib_images=200,
                        task_calibration=True, measure=False, atol=1e-3)
    assert old.specialization["bn"] == "task" and old.card.accuracy.bn_recalibration["task_only"] is True
    plain = deploy_subnet(supernet, arch, tmp_path / "a.onnx", classes=classes, data="digits", calib_images=200,
                          measure=False, atol=1e-3)
    assert plain.specialization["bn"] == "all" and plain.card.accuracy.top1 == ref["baseline_top1"]
    with pytest.raises(ConfigError, match="contradicts"):
        deploy_subnet(supernet, arch, tmp_path / "x.onnx", classes=classes, data="digits", bn="mix",
                      task_calibration=True, measure=False)
    with pytest.raises(ConfigError, match="also the evaluation split"):
        deploy_subnet(supernet, arch, tmp_path / "x.onnx", classes=classes, data="digits", bn="auto",
                      val_split="test", measure=False)


def test_generator_reward_uses_all_class_bn_statistics(loaded):
    """Generator training scores the task's images with BN statistics of an all-class reference
    part of the batch: a task image's logits do not depend on which other task images ride along."""
    from nni_eas.eas.budget import cost_tables
    from nni_eas.eas.config import GeneratorConfig
    from nni_eas.eas.generator import ArchGenerator, GeneratorModule, _bn_stats_of_first, with_reference
    from nni_eas.spaces.ofa_mbv3 import resize_input

    supernet, d = loaded
    cfg = supernet.config
    x, y = d["train"][0][:96], d["train"][1][:96]
    xs, ys = with_reference(x, y, [3, 5], 32, 20)
    assert torch.equal(xs[:32], x[:32])
    assert int(torch.isin(ys, torch.tensor([3, 5])).sum()) == 20                 # those in the reference count
    assert bool(torch.isin(ys[32:], torch.tensor([3, 5])).all())
    tables = cost_tables(cfg, ["macs"])
    gen = ArchGenerator(cfg, 10, ["macs"], {"macs": tables["macs"].minmax()}, hidden=8)
    module = GeneratorModule(gen, supernet, tables, GeneratorConfig(steps=1))
    genome = arch_to_genome(cfg, _archs(cfg)[1])
    r1 = module.task_reward(genome, xs, ys, [3, 5], n_ref=32)
    r2 = module.task_reward(genome, torch.cat([xs[:32], xs[32:].flip(0)]), torch.cat([ys[:32], ys[32:].flip(0)]),
                            [3, 5], n_ref=32)
    assert r1 == pytest.approx(r2, rel=1e-4, abs=1e-5)   # the task images in another order: the same reward
    net = module.supernet
    net.set_active(_archs(cfg)[1])
    with torch.no_grad(), _bn_stats_of_first(net, 32):
        a = net(resize_input(xs, 8))[32:33]
        b = net(resize_input(torch.cat([xs[:32], xs[32:33]]), 8))[32:33]
    assert torch.allclose(a, b, atol=1e-5)
    assert all("forward" not in m.__dict__ for m in net.modules())              # the patch is undone


def test_core_table_has_baseline_and_budget_use(trained_supernet, tmp_path):
    """The pipeline's results: every scenario row has the baseline's top-1, the BN mode chosen on
    validation and its budget use (<= 1: budgets hold after repair); the table fits 100 columns."""
    from test_eas import small_eas_args

    from nni_eas.eas.core import EASCore

    args = small_eas_args(trained_supernet, scenario_rule={"count": 3, "seed": 1, "min_classes": 2, "max_classes": 5})
    args["evaluation"].update(onnx=False)
    core = EASCore(args, tmp_path / "run", resume=False)
    core.run()
    rows = json.loads((tmp_path / "run" / "scenarios.json").read_text())["scenarios"]
    assert len(rows) == 5
    for row in rows:
        m = row["metrics"]
        assert {"top1", "baseline_top1", "bn", "head", "val_top1", "val_baseline_top1"} <= set(m)
        assert row["baseline_top1"] == m["baseline_top1"] and row["bn"] == m["bn"] in BN_MODES
        assert m["val_top1"] >= m["val_baseline_top1"]
        assert 0 < row["budget_use"] <= 1 + 1e-9
        assert row["budget_use"] == pytest.approx(max(row["predicted"][k] / b for k, b in row["budget"].items()))
    table = core.table()
    assert "baseline" in table.splitlines()[0] and "budget use" in table.splitlines()[0]
    assert all(len(line) <= 100 for line in table.splitlines()), table
    assert len(table.splitlines()) == 2 + len(rows)
