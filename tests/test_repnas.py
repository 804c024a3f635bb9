"""RepNAS: exact fusion of diverse branch blocks, the branch budget, search, NNI adapters, presets."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import randomize_
from nni_eas.config import ConfigError
from nni_eas.repnas import (
    BranchSearch,
    RepNASNet,
    budget_size,
    list_repnas_presets,
    load_recipe,
    load_repnas_config,
    topk_mask,
    validate_sample,
)
from nni_eas.spaces.dbb import BRANCHES, SPATIAL_BRANCHES, BNAndPad, DiverseBranchBlock, available_branches, fuse

# a two-layer space: one stride-2 layer (6 candidates), one equal-shape layer (7, identity too)
TINY = {"name": "tiny", "in_chans": 3, "num_classes": 10, "resolution": 16,
        "stages": [{"channels": 8, "depth": 2, "stride": 2}], "budget": 0.5}


def _randomize_bn(module: nn.Module, seed: int) -> nn.Module:
    """Random BN affine parameters *and* statistics (large shifts, so padding mistakes show)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in module.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.weight.copy_(0.5 + torch.rand(m.weight.shape, generator=g))
                m.bias.copy_(torch.randn(m.bias.shape, generator=g))
                m.running_mean.copy_(torch.randn(m.running_mean.shape, generator=g))
                m.running_var.copy_(0.25 + 2 * torch.rand(m.running_var.shape, generator=g))
    return module


def _check_fused(block: DiverseBranchBlock, x: torch.Tensor) -> None:
    block.eval()
    with torch.no_grad():
        expected = block(x)
        fused = fuse(block)
        got = fused(x)
    assert isinstance(fused.conv, nn.Conv2d) and fused.conv.bias is not None
    assert got.shape == expected.shape
    scale = max(1.0, expected.abs().max().item())
    assert (got - expected).abs().max().item() <= 1e-5 * scale, block.active_branches


# --------------------------------------------------------------------------------------------
# fusion
# --------------------------------------------------------------------------------------------
@settings(max_examples=60, deadline=None)
@given(
    per_group_in=st.integers(1, 4), per_group_out=st.integers(1, 4), groups=st.sampled_from([1, 2, "dw"]),
    kernel=st.sampled_from([3, 5]), stride=st.sampled_from([1, 2]), size=st.tuples(st.integers(3, 11), st.integers(3, 11)),
    subset=st.integers(0, 2 ** len(BRANCHES) - 1), seed=st.integers(0, 2 ** 16), equal=st.booleans(),
)
def test_fused_equals_unfused_random_shapes(per_group_in, per_group_out, groups, kernel, stride, size, subset, seed, equal):
    torch.manual_seed(seed)
    if groups == "dw":
        in_chs = out_chs = g = per_group_in * 3
    else:
        g = groups
        in_chs, out_chs = per_group_in * g, (per_group_in if equal else per_group_out) * g
    block = _randomize_bn(DiverseBranchBlock(in_chs, out_chs, kernel, stride, g, act_layer=None), seed)
    block.set_mask([(subset >> i) & 1 == 1 for i in range(len(block.branch_names))])
    _check_fused(block, torch.randn(2, in_chs, *size))


@pytest.mark.parametrize("kernel,stride,groups", list(itertools.product([3, 5], [1, 2], [1, 2, "dw"])))
def test_fused_equals_unfused_every_branch_subset(kernel, stride, groups):
    g = 6 if groups == "dw" else groups
    block = _randomize_bn(DiverseBranchBlock(6, 6, kernel, stride, g, act_layer=None), seed=kernel * 10 + stride).eval()
    n = len(block.branch_names)
    assert ("identity" in block.branch_names) == (stride == 1)
    x = torch.randn(2, 6, 9, 8)
    with torch.no_grad():
        for subset in itertools.product([False, True], repeat=n):  # the empty one too: an all-zero conv
            block.set_mask(subset)
            expected = block(x)
            w, b = block.fuse_kernel()
            got = F.conv2d(x, w, b, stride, kernel // 2, groups=g)
            assert (got - expected).abs().max().item() <= 1e-5 * max(1.0, expected.abs().max().item()), subset


def test_bias_padding_is_what_makes_sequential_branches_exact(monkeypatch):
    """With zero padding between 1x1 and kxk, border pixels of the fused conv would be wrong."""
    block = _randomize_bn(DiverseBranchBlock(4, 4, 3, 1, branches=["conv_1x1_kxk", "avg_kxk"], act_layer=None), 3).eval()
    x = torch.randn(2, 4, 7, 7)
    _check_fused(block, x)
    monkeypatch.setattr(BNAndPad, "pad_values", lambda self, x=None: torch.zeros_like(self.bias))
    with torch.no_grad():
        diff = (block(x) - fuse(block)(x)).abs()
    assert diff[..., 1:-1, 1:-1].max() <= 1e-5 and diff.max() > 1e-2


def test_reparameterize_in_place_and_state_dict():
    block = _randomize_bn(DiverseBranchBlock(8, 8, 3, 1, groups=2), 1).eval()
    block.set_mask([True, False, True, True, False, True, True])
    x = torch.randn(1, 8, 6, 6)
    with torch.no_grad():
        expected = block(x)
        state = block.state_dict()
        block.reparameterize()
        assert not hasattr(block, "branches") and set(block.state_dict()) == {"reparam.weight", "reparam.bias"}
        assert torch.allclose(block(x), expected, atol=1e-5)
    fresh = DiverseBranchBlock(8, 8, 3, 1, groups=2)
    fresh.load_state_dict(state)
    assert fresh.active_branches == ("conv_kxk", "avg_kxk", "conv_1x1_kxk", "conv_kx1", "identity")


def test_block_errors_name_the_field():
    with pytest.raises(ConfigError, match=r"branches: 'identity' needs in_chs == out_chs and stride 1.*allowed values"):
        DiverseBranchBlock(4, 8, 3, 1, branches=["identity"])
    with pytest.raises(ConfigError, match=r"branches: unknown branch 'conv_7x7'; allowed values: conv_kxk"):
        DiverseBranchBlock(4, 4, 3, 1, branches=["conv_7x7"])
    with pytest.raises(ConfigError, match=r"groups: must divide in_chs \(4\) and out_chs \(6\)"):
        DiverseBranchBlock(4, 6, 3, 1, groups=4)
    with pytest.raises(ConfigError, match=r"kernel_size: must be odd and >= 3"):
        DiverseBranchBlock(4, 4, 4, 1)
    assert available_branches(4, 4, 2) == BRANCHES[:-1]


# --------------------------------------------------------------------------------------------
# networks and ONNX
# --------------------------------------------------------------------------------------------
def test_fused_net_onnx_has_one_conv_per_block_and_no_branch_adds(tmp_path):
    from nni_eas.repnas.deploy import export_onnx, onnx_op_counts

    net = _randomize_bn(RepNASNet("repnas_small", num_classes=10), 0).eval()
    search = BranchSearch(net, net.config.budget)
    search.fix(search.random_mask(), reset_bn=False)
    searched = net.select(search.to_sample())
    fused = searched.fuse()
    x = torch.randn(4, 3, 32, 32)
    with torch.no_grad():
        assert (fused(x) - searched.eval()(x)).abs().max() <= 1e-4
    # export_onnx also checks onnxruntime against PyTorch (atol 1e-4) before writing the file
    ops = onnx_op_counts(export_onnx(fused, tmp_path / "fused.onnx", (3, 32, 32)))
    assert ops["Conv"] == net.config.num_layers
    assert "Add" not in ops and "BatchNormalization" not in ops and "Pad" not in ops and "Sum" not in ops
    # the multi-branch twin of the same (tiny) space does add its branches
    tiny = RepNASNet(TINY).eval()
    tiny_ops = onnx_op_counts(export_onnx(tiny, tmp_path / "tiny.onnx", (3, 16, 16)))
    assert tiny_ops.get("Add", 0) >= sum(len(b.branch_names) - 1 for b in tiny.blocks)
    assert tiny_ops["Conv"] > tiny.config.num_layers


def test_select_inherits_weights_and_baselines():
    net = randomize_(RepNASNet(TINY), 2).eval()
    sample = {"branches_0": ["conv_1x1", "conv_1xk"], "branches_1": ["identity", "conv_kxk"]}
    chosen = net.select(sample)
    assert chosen.sample() == {"branches_0": ["conv_1x1", "conv_1xk"], "branches_1": ["conv_kxk", "identity"]}
    own = net.state_dict()
    for k, v in chosen.state_dict().items():
        if not k.endswith(".mask"):
            assert torch.equal(v, own[k]), k
    net.set_sample(sample)
    x = torch.randn(2, 3, 16, 16)
    with torch.no_grad():
        assert torch.equal(net(x), chosen.eval()(x))
    plain = RepNASNet(TINY, branches=["conv_kxk"])
    assert [b.branch_names for b in plain.blocks] == [("conv_kxk",), ("conv_kxk",)]
    with pytest.raises(ConfigError, match=r"branches_0: 'identity' is not a branch of layer 0; allowed values"):
        net.select({"branches_0": ["identity"], "branches_1": ["conv_kxk"]})


# --------------------------------------------------------------------------------------------
# the budget and the search
# --------------------------------------------------------------------------------------------
@settings(max_examples=60, deadline=None)
@given(sizes=st.lists(st.integers(1, 7), min_size=1, max_size=12), frac=st.floats(0.0, 1.0),
       min_per_layer=st.integers(0, 2), min_spatial=st.integers(0, 1), seed=st.integers(0, 2 ** 16))
def test_topk_mask_keeps_exactly_k_and_is_the_best_choice(sizes, frac, min_per_layer, min_spatial, seed):
    g = torch.Generator().manual_seed(seed)
    layer = torch.tensor([i for i, n in enumerate(sizes) for _ in range(n)])
    n = len(layer)
    spatial = torch.rand(n, generator=g) < 0.6
    for i in range(len(sizes)):  # every layer has a spatial entry (as every space must)
        spatial[(layer == i).nonzero()[0]] = True
    need = [min(min_per_layer, c) for c in sizes]
    lo = sum(max(m, min_spatial) for m in need)
    k = lo + round(frac * (n - lo))
    scores = torch.randn(n, generator=g)
    mask = topk_mask(scores, layer, k, need, spatial, min_spatial)
    assert int(mask.sum()) == k
    forced = torch.zeros(n, dtype=torch.bool)
    for i in range(len(sizes)):
        idx = (layer == i).nonzero().flatten()
        assert int(mask[idx].sum()) >= need[i]
        assert int((mask & spatial)[idx].sum()) >= min_spatial
        order = idx[scores[idx].argsort(descending=True)]
        picks = [j for j in order.tolist() if spatial[j]][:min_spatial]
        picks += [j for j in order.tolist() if j not in picks][:max(0, need[i] - len(picks))]
        forced[picks] = True
    assert mask[forced].all()
    free = mask & ~forced
    if free.any() and (~mask).any():  # no unchosen score beats a freely chosen one
        assert scores[~mask].max() <= scores[free].min()
    with pytest.raises(ConfigError, match=r"budget: keeps \d+ layer-branches; allowed: \d+ \.\. \d+"):
        topk_mask(scores, layer, n + 1, need, spatial, min_spatial)


def _kept(net: RepNASNet) -> list[list[str]]:
    """The branches each block runs in its next forward pass (gated or masked)."""
    out = []
    for b in net.blocks:
        on = b._gate_active if b._gates is not None else b._active
        if b._gates is not None and b._gate_active is None:  # dense: gates are exactly 0 or 1 forward
            on = [bool(v) for v in b._gates.detach().tolist()]
        out.append([n for n, a in zip(b.branch_names, on) if a])
    return out


@pytest.mark.parametrize("dense", [False, True])
def test_searched_mask_respects_the_budget_exactly(dense):
    cfg = load_repnas_config("repnas_repvgg_a0")
    assert cfg.num_layers == 22 and cfg.budget == 0.34  # RepVGG-A0: depths 1, 2, 4, 14, 1
    n_identity = sum("identity" in layer.branches for layer in cfg.layers)
    assert cfg.num_layer_branches == 6 * cfg.num_layers + n_identity
    # the base 3x3 conv is always on and outside the budget: 34 % of the other 127 branches
    assert cfg.always_on == ("conv_kxk",) and cfg.num_searchable == cfg.num_layer_branches - cfg.num_layers
    net = RepNASNet(cfg)
    search = BranchSearch(net, cfg.budget, always_on=cfg.always_on, min_per_layer=cfg.min_branches_per_layer,
                          min_spatial=cfg.min_spatial_branches, dense_gradients=dense, warmup="random", seed=1)
    assert search.num_slots == cfg.num_searchable and search.k == budget_size(0.34, cfg.num_searchable) == cfg.budget_k
    with torch.no_grad():
        search.alpha.normal_()
    for phase in ("warmup", "warmup", "search", "search", "search"):
        hard = search.step(phase, training=True)
        assert int(hard.sum()) == search.k
        kept = _kept(net)
        assert all(branches[0] == "conv_kxk" for branches in kept)  # the base conv runs in every layer
        assert sum(len(b) - 1 for b in kept) == search.k  # ... and exactly k searched branches besides
    sample = search.to_sample()
    assert sum(len(v) for v in sample.values()) == search.k + cfg.num_layers
    assert torch.equal(search.from_sample(sample), search.mask())
    validate_sample(cfg, sample)  # within the budget, base conv everywhere
    search.fix(reset_bn=False)
    assert [list(b.active_branches) for b in net.blocks] == list(sample.values())
    over = dict(sample)
    extra = next(i for i, layer in enumerate(cfg.layers) if len(sample[f"branches_{i}"]) < len(layer.branches))
    over[f"branches_{extra}"] = list(cfg.layers[extra].branches)
    with pytest.raises(ConfigError, match=rf"over the budget of {cfg.budget_k} \(34% of 127; always_on"):
        validate_sample(cfg, over)
    no_base = {**sample, "branches_0": [b for b in sample["branches_0"] if b != "conv_kxk"] or ["conv_1xk"]}
    with pytest.raises(ConfigError, match=r"branches_0: misses 'conv_kxk', which always_on keeps in every layer"):
        validate_sample(cfg, no_base)


def test_without_always_on_every_layer_keeps_a_spatial_branch():
    cfg = load_repnas_config("repnas_small", always_on=[], budget=0.2)
    assert cfg.num_searchable == cfg.num_layer_branches == 38 and cfg.budget_k == 8
    assert all(layer.forced == layer.forced_spatial == 1 for layer in cfg.layers)
    net = RepNASNet(cfg)
    search = BranchSearch(net, cfg.budget, always_on=(), min_spatial=cfg.min_spatial_branches, seed=2)
    with torch.no_grad():  # the search would rather keep 1x1 and identity branches only
        search.alpha.copy_(torch.tensor([5.0 if n in ("conv_1x1", "identity") else -5.0 for _, n in search.slots]))
    for _ in range(20):
        sample = search.to_sample(search.random_mask())
        assert sum(map(len, sample.values())) == cfg.budget_k
        assert all(any(b in SPATIAL_BRANCHES for b in v) for v in sample.values()), sample
    sample = search.to_sample()
    assert all(any(b in SPATIAL_BRANCHES for b in v) for v in sample.values())
    validate_sample(cfg, sample)
    with pytest.raises(ConfigError, match=r"branches_0: keeps 0 spatial branches .*min_spatial_branches is 1"):
        validate_sample(cfg, {**sample, "branches_0": ["conv_1x1"]})


def test_straight_through_gradient_prefers_the_branch_that_lowers_the_loss():
    """d loss / d alpha has the sign that keeps a helpful branch and drops a harmful one (kept or not)."""
    torch.manual_seed(0)
    block = _randomize_bn(DiverseBranchBlock(4, 4, 3, 1, branches=["conv_kxk", "conv_1x1"], act_layer=None), 0).eval()
    x = torch.randn(8, 4, 6, 6)
    with torch.no_grad():
        base = block.branches["conv_kxk"](x)
        extra = block.branches["conv_1x1"](x)
    for target, sign in ((base - extra, 1.0), (base + 2 * extra, -1.0)):  # 1x1 harmful, then helpful
        # (dense gradients: the off branch runs at gate 0, so its importance learns too)
        for on in (True, False):
            search = BranchSearch([block], 1 if on else 0, min_spatial=0, min_per_layer=0, noise_scale=0.0)
            search.alpha.data.fill_(3.0 if on else -3.0)
            hard = search.step("search", training=True)
            assert bool(hard[0]) == on
            F.mse_loss(block(x), target).backward()
            assert float(search.alpha.grad[0]) * sign > 0, (on, sign)


def test_straight_through_gates_forward_the_hard_mask_and_train_importance():
    torch.manual_seed(0)
    net = RepNASNet(TINY).eval()
    x = torch.randn(2, 3, 16, 16)
    for dense in (False, True):
        search = BranchSearch(net, 0.5, dense_gradients=dense, seed=3)
        hard = search.step("search", training=True)
        out = net(x)
        out.square().mean().backward()
        grad = search.alpha.grad
        assert grad is not None and (grad[hard] != 0).all()
        assert (grad[~hard] != 0).all() if dense else (grad[~hard] == 0).all()
        assert isinstance(net.fuse(), RepNASNet)  # copies drop the gates (and their autograd graph)
        search.fix(hard, reset_bn=False)
        with torch.no_grad():
            assert torch.allclose(net(x), out.detach(), atol=1e-6)  # gates were exactly 0/1 forward


# --------------------------------------------------------------------------------------------
# presets and errors
# --------------------------------------------------------------------------------------------
def test_presets_load():
    assert {"repnas_small", "repnas_repvgg_a0"} <= set(list_repnas_presets())
    small = load_repnas_config("repnas_small")
    assert small.resolution == 32 and small.num_classes == 10
    assert (small.num_layer_branches, small.num_searchable, small.budget_k) == (38, 32, budget_size(0.34, 32)) == (38, 32, 11)
    assert load_repnas_config("repnas_small", budget=0.5).budget_k == 16


@pytest.mark.parametrize("override,pattern", [
    ({"branches": ["conv_kxk", "conv_7x7"]}, r"branches\.1: Input should be 'conv_kxk', 'conv_1x1', 'avg_kxk'"),
    ({"kernel_size": 4}, r"kernel_size: .*must be odd and >= 3"),
    ({"budget": 0.05, "always_on": []}, r"budget 0\.05 keeps 2 of 38 searchable layer-branches, fewer than the 6 .*"
                                         r"allowed: budget >= 0\.145"),
    ({"always_on": ["conv_kxk", "conv_7x7"]}, r"always_on\.1: Input should be 'conv_kxk'"),
    ({"branches": ["conv_kxk", "conv_1x1"], "always_on": ["identity"]},
     r"always_on: 'identity' is not one of the branches; allowed values: conv_kxk, conv_1x1"),
    ({"branches": ["conv_kxk", "conv_1x1"], "min_spatial_branches": 2}, r"min_spatial_branches must be <= 1"),
    ({"budget": 1.5}, r"budget: Input should be less than or equal to 1"),
    ({"stages": [{"channels": 10, "depth": 2, "stride": 1, "groups": 4}]}, r"stages\.0\.groups: 4 does not divide channels 10"),
    ({"stages": [{"channels": 8, "depth": 1, "stride": 3}]}, r"stages\.0\.stride: Input should be 1 or 2"),
    ({"act": "tanh"}, r"act: Input should be 'relu', 'relu6'"),
    ({"widths": [8]}, r"unknown key 'widths'; allowed keys: act, always_on, bn, branches, budget"),
    ({"min_branches_per_layer": 8}, r"min_branches_per_layer must be <= 6"),
])
def test_bad_preset_input_names_the_field(override, pattern):
    with pytest.raises(ConfigError, match=pattern):
        load_repnas_config("repnas_small", **override)


def test_bad_preset_files_and_recipes(tmp_path):
    with pytest.raises(ConfigError, match=r"unknown RepNAS preset 'repnas_nope'; available presets: .*repnas_small"):
        load_repnas_config("repnas_nope")
    bad = tmp_path / "bad.yml"
    bad.write_text("name: bad\nstages: [{channels: 8, depth: 0, stride: 1}]\n")
    with pytest.raises(ConfigError, match=r"bad\.yml: stages\.0\.depth: Input should be greater than or equal to 1"):
        load_repnas_config(bad)
    with pytest.raises(ConfigError, match=r"recipe: warmup_mode: Input should be 'random' or 'all'"):
        load_recipe(warmup_mode="none")
    with pytest.raises(ConfigError, match=r"unknown key 'epochs'; allowed keys: arch_lr"):
        load_recipe({"epochs": 3})


# --------------------------------------------------------------------------------------------
# end to end
# --------------------------------------------------------------------------------------------
def _digits(split: str, n: int | None = None):
    from nni_eas.data import load_dataset

    x, y = load_dataset("digits", split=split, resolution=16, channels=3).tensors()
    return (x[:n], y[:n]) if n else (x, y)


def test_search_runs_end_to_end_on_digits():
    import pytorch_lightning as pl
    from torch.utils.data import DataLoader, TensorDataset

    from nni_eas.repnas import RepNASModule

    recipe = {"warmup_epochs": 1, "search_epochs": 1, "retrain_epochs": 1, "batch_size": 32, "bn_recalibration_batches": 2}
    module = RepNASModule(RepNASNet("repnas_small", num_classes=10), recipe)
    alpha0 = module.search.alpha.detach().clone()
    trainer = pl.Trainer(max_epochs=3, limit_train_batches=3, limit_val_batches=1, logger=False, enable_checkpointing=False,
                         enable_progress_bar=False, enable_model_summary=False, num_sanity_val_steps=0)
    trainer.fit(module, DataLoader(TensorDataset(*_digits("train", 256)), batch_size=32, shuffle=True),
                DataLoader(TensorDataset(*_digits("val", 64)), batch_size=64))
    assert not torch.equal(module.search.alpha.detach(), alpha0), "importance did not train in the search phase"
    assert bool(module.search.is_fixed)
    sample = module.searched_sample()
    cfg = module.net.config
    assert module.search.k == cfg.budget_k == 11  # 34 % of the 32 searchable branches (conv_kxk always on)
    assert sum(len(v) for v in sample.values()) == cfg.budget_k + cfg.num_layers
    assert all(v[0] == "conv_kxk" for v in sample.values())
    validate_sample(cfg, sample)
    searched, fused = module.searched_net().eval(), module.fused()
    x, _ = _digits("test", 64)
    with torch.no_grad():
        assert (fused(x) - searched(x)).abs().max() <= 1e-4
        assert (module.net.eval()(x) - searched(x)).abs().max() <= 1e-5
    assert {type(m) for m in fused.features.modules()} <= {nn.Sequential, nn.Conv2d, nn.ReLU}


# --------------------------------------------------------------------------------------------
# NNI adapters
# --------------------------------------------------------------------------------------------
def test_nni_space_labels_budget_and_freeze():
    from nni.nas.space import model_context

    from nni_eas.spaces.repnas import MixedBranchSupernet, RepNASSpace
    from nni_eas.strategies.repnas import RepNAS

    space = RepNASSpace(TINY)
    simplified = space.simplify()
    assert list(simplified) == ["branches_0", "branches_1", "branch_budget"]
    assert simplified["branches_1"].values == list(available_branches(8, 8, 1))
    k = space.config.budget_k
    assert k == 6 and space.config.num_searchable == 11  # 5 + 6 searchable beside the always-on conv_kxk
    over = {"branches_0": ["conv_kxk", "conv_1x1", "avg_kxk", "conv_1x1_kxk", "conv_1xk", "conv_kx1"],
            "branches_1": ["conv_kxk", "conv_1x1", "identity"]}  # 7 searchable
    assert space.check_contains(over) is not None
    with pytest.raises(ConfigError, match=rf"over the budget of {k}"):
        space.freeze(over)
    no_base = {"branches_0": ["conv_1x1", "avg_kxk"], "branches_1": ["identity"]}
    assert "always on" in str(space.check_contains(no_base))
    with pytest.raises(ConfigError, match=r"misses 'conv_kxk'"):
        space.freeze(no_base)
    for seed in range(5):  # NNI's own sampling keeps the always-on branch (inclusion probability 1)
        assert "conv_kxk" in simplified["branches_1"].random(random_state=np.random.RandomState(seed))
    memo = {}
    assert isinstance(space.default(memo), RepNASNet)
    assert {k: v for k, v in memo.items() if k.startswith("branches")} == {"branches_0": ["conv_kxk"],
                                                                          "branches_1": ["conv_kxk"]}
    ok = {"branches_0": ["conv_kxk", "conv_1x1", "avg_kxk"], "branches_1": ["conv_kxk", "identity"]}
    assert space.check_contains(ok) is None
    frozen = space.freeze(ok)
    assert isinstance(frozen, RepNASNet) and frozen.sample() == ok
    with model_context(ok):
        fixed = RepNASSpace(TINY)
    assert isinstance(fixed.net, RepNASNet) and fixed.net.sample() == ok

    strategy = RepNAS()
    strategy.mutate_model(space)
    mixed = space.net
    assert isinstance(mixed, MixedBranchSupernet)
    exported = mixed.export({})
    assert sum(map(len, exported.values())) == k + 2 and space.check_contains(exported) is None
    probs = mixed.export_probs({})
    assert set(probs) == {"branches_0", "branches_1"} and probs["branches_0"]["conv_kxk"] == 1.0


def test_nni_experiment_with_repnas_strategy(tmp_path):
    from nni.nas.evaluator.pytorch import Classification, DataLoader
    from nni.nas.experiment import NasExperiment
    from torch.utils.data import TensorDataset

    from nni_eas.spaces.repnas import RepNASSpace
    from nni_eas.strategies.repnas import RepNAS

    space = RepNASSpace("repnas_small", num_classes=10)
    evaluator = Classification(
        train_dataloaders=DataLoader(TensorDataset(*_digits("train", 256)), batch_size=32, shuffle=True),
        val_dataloaders=DataLoader(TensorDataset(*_digits("val", 64)), batch_size=64), num_classes=10,
        learning_rate=0.05, max_epochs=3, limit_train_batches=3, limit_val_batches=1, enable_progress_bar=False,
        logger=False, enable_checkpointing=False,
    )
    strategy = RepNAS(warmup_epochs=1, search_epochs=1, bn_recalibration_batches=2)
    exp = NasExperiment(space, evaluator, strategy)
    exp.config.experiment_working_directory = str(tmp_path)
    try:
        exp.run()
    finally:
        exp.stop()
    (sample,) = exp.export_top_models(formatter="dict")
    mixed = strategy.oneshot_module._mixed()[0]
    assert bool(mixed.search.is_fixed) and mixed.search.alpha.abs().sum() > 0
    assert sum(map(len, sample.values())) == space.config.budget_k + space.config.num_layers
    assert space.check_contains(sample) is None
    net = space.freeze(sample).eval()
    x, _ = _digits("test", 32)
    with torch.no_grad():
        assert (space.fuse(sample)(x) - net(x)).abs().max() <= 1e-4


@pytest.mark.slow
def test_trial_entry_point_writes_result(tmp_path, capsys):
    import json

    from nni_eas.repnas.trial import main

    rc = main(["--resolution", "16", "--out", str(tmp_path), "--max-train-images", "256", "--latency-runs", "10",
               "--set", "warmup_epochs=1", "--set", "search_epochs=1", "--set", "retrain_epochs=1"])
    assert rc == 0
    result = json.loads((tmp_path / "result.json").read_text())
    metrics = result["metrics"]
    assert metrics["searched_kept"] == metrics["budget_k"] == 11 and metrics["branches_kept"] == 11 + 6
    assert metrics["onnx_ops"]["Conv"] == 6 and "Add" not in metrics["onnx_ops"]
    assert "'default'" in capsys.readouterr().out
    assert main(["--set", "budget=2"]) == 2  # a bad recipe value is an error, not a traceback
