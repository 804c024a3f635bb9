"""Latency: onnxruntime measurement, layer enumeration, lookup tables of three sources, OFA²'s numbers.

No test asserts an absolute timing (the machine is shared); timing targets live in
``benchmarks/latency.py``.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
import torch.nn as nn
import yaml

from nni_eas.config import ConfigError
from nni_eas.encodings import arch_from_ofa2, archs_to_genomes
from nni_eas.export import (
    LatencyTable,
    LatencyTableError,
    arch_layers,
    build_latency_table,
    describe_device,
    layer_keys,
    load_latency_table,
    measure_latency,
    onnx_bytes,
    space_layers,
)
from nni_eas.io import safe_pickle_load
from nni_eas.spaces import Arch, build_subnet, load_space_config, max_arch, min_arch, sample_arch

W10 = load_space_config("ofa_mbv3_w1.0")
W12 = load_space_config("ofa_mbv3_w1.2")
NAT = load_space_config("nat_mbv3")

# a tiny space (one SE stage, 2 kernels, 1 expand ratio, depth 1..2) whose table builds in seconds
TINY = load_space_config(
    "ofa_mbv3_small", name="tiny", num_classes=5, kernel_sizes=[3, 5], expand_ratios=[3], depths=[1, 2],
    width_mults=[1.0], resolutions=[16, 20],
    stages=[{"channels": 24, "stride": 2, "act": "hswish", "se": True}],
    final_expand=48, head=64,
)


# --------------------------------------------------------------------------------------------
# OFA²'s published population, predicted from OFA's Note10 tables
# --------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def ofa2_population(reference_dir):
    rows = list(safe_pickle_load(reference_dir / "ofa2/res_nsga2_results.pkl"))
    assert len(rows) == 100
    return rows


@pytest.fixture(scope="module")
def note10(reference_dir) -> LatencyTable:
    return load_latency_table(reference_dir / "ofa/note10")


def test_ofa2_latencies_equal_note10_table_predictions(ofa2_population, note10):
    """OFA² evaluated each genome as a subnet of OFA's *w1.2* network (OFA's tutorial
    ``LatencyTable(device='note10')``): the table of the genome's resolution, keys with w1.2
    channels. The genome carries no width; decoded in the w1.0 space, it is moved to w = 1.2."""
    assert note10.scheme == "ofa" and note10.resolutions == (160, 176, 192, 208, 224)
    assert note10.space.name == "ofa_mbv3_w1.2"
    archs = [dataclasses.replace(arch_from_ofa2(W10, genome), w=1.2) for _, _, genome in ofa2_population]
    expected = np.array([lat for lat, _, _ in ofa2_population], dtype=np.float64)
    per_arch = np.array([note10.predict(a) for a in archs])
    vectorised = note10.predict_genomes(archs_to_genomes(W12, archs))
    np.testing.assert_allclose(per_arch, expected, rtol=0, atol=1e-6)
    np.testing.assert_allclose(vectorised, expected, rtol=0, atol=1e-6)
    assert len({round(x, 6) for x in expected}) > 50  # a real population, not one repeated arch


def test_note10_keys_and_errors(note10):
    arch = max_arch(W12, 224)
    keys = [k for k, _ in note10.breakdown(arch)]
    assert keys[0] == "Conv-input:224x224x3-output:112x112x24"
    assert keys[1] == "expanded_conv-input:112x112x24-output:112x112x24-expand:24-kernel:3-stride:1-idskip:1-se:0-hs:0"
    assert keys[2] == "expanded_conv-input:112x112x24-output:56x56x32-expand:144-kernel:7-stride:2-idskip:0-se:0-hs:0"
    assert keys[-4:] == ["Conv_1-input:7x7x192-output:7x7x1152", "AvgPool2D-input:7x7x1152-output:1x1x1152",
                         "Conv_2-input:1x1x1152-output:1x1x1536", "Logits-input:1x1x1536-output:1000"]
    assert len(keys) == 1 + 1 + 20 + 4
    # every subnet of the w1.2 space at the five table resolutions is covered
    for r in (160, 176, 192, 208, 224):
        archs = [Arch(**{**sample_arch(W12, i).to_dict(), "r": r}) for i in range(20)]
        lat = note10.predict_genomes(archs_to_genomes(W12, archs))
        assert np.all(np.isfinite(lat)) and np.all(lat > note10.predict(min_arch(W12, r)) - 1e-9)
    with pytest.raises(LatencyTableError, match="covers resolutions 160, 176, 192, 208, 224"):
        note10.predict(Arch(**{**max_arch(W12).to_dict(), "r": 200}))
    with pytest.raises(LatencyTableError, match=r"no entry 'Conv-input:224x224x3-output:112x112x16'"):
        note10.predict(max_arch(W10, 224), cfg=W10)  # w1.0 channels are not in OFA's w1.2 tables
    with pytest.raises(LatencyTableError):
        note10.predict_genomes(archs_to_genomes(W10, [max_arch(W10, 224)]), cfg=W10)


def test_nsganetv2_table_covers_the_nat_space(reference_dir):
    table = load_latency_table(reference_dir / "nsganetv2/i7-8700K_lut.yaml")
    assert table.scheme == "nsganetv2" and table.space.name == "nat_mbv3" and table.resolutions == ()
    archs = [sample_arch(NAT, i) for i in range(200)] + [min_arch(NAT, 192), max_arch(NAT, 256)]
    lat = table.predict_genomes(archs_to_genomes(NAT, archs))
    np.testing.assert_allclose(lat, [table.predict(a) for a in archs], rtol=1e-12)
    assert lat[-2] == lat.min() and lat[-1] == lat.max()
    keys = [k for k, _ in table.breakdown(max_arch(NAT, 224))]
    assert keys[0] == "first_conv-input:224x224x3-output:112x112x24"
    assert keys[1] == "MBConv-input:112x112x24-output:112x112x24-expand:1-kernel:3-stride:1-idskip:1-se:0"
    assert keys[-3:] == ["final_expand_layer-input:7x7x192-output:7x7x1152",
                         "feature_mix_layer-input:1x1x1152-output:1x1x1536", "classifier-input:1536-output:1000"]


def test_load_latency_table_errors(tmp_path):
    with pytest.raises(ConfigError, match="latency table not found"):
        load_latency_table(tmp_path / "missing.yaml")
    (tmp_path / "x.yaml").write_text("a: 1\n")
    with pytest.raises(ConfigError, match="not a latency table"):
        load_latency_table(tmp_path / "x.yaml")
    with pytest.raises(ConfigError, match="unknown latency key scheme 'tflite'; allowed: nni-eas, ofa, nsganetv2"):
        layer_keys(arch_layers(TINY, min_arch(TINY))[0], "tflite")


# --------------------------------------------------------------------------------------------
# layers
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("preset,seed", [("ofa_mbv3_small", 0), ("ofa_mbv3_w1.0", 1), ("nat_mbv3", 2)])
def test_arch_layers_match_the_built_modules(preset, seed):
    """The layer list (what tables are keyed by) has the shapes the real subnet runs."""
    cfg = load_space_config(preset)
    arch = sample_arch(cfg, seed)
    layers = arch_layers(cfg, arch)
    sub = build_subnet(cfg, arch).eval()
    shapes: list[tuple] = []
    modules = [nn.Sequential(sub.conv_stem, sub.bn1, sub.act1)] + [b for stage in sub.blocks for b in stage]
    hooks = [m.register_forward_hook(lambda m, i, o: shapes.append((tuple(i[0].shape), tuple(o.shape))))
             for m in modules[1:]]
    with torch.no_grad():
        x = torch.zeros(1, cfg.in_chans, arch.r, arch.r)
        shapes.append(((1, cfg.in_chans, arch.r, arch.r), tuple(modules[0](x).shape)))
        sub(x)
    for h in hooks:
        h.remove()
    assert [layer.kind for layer in layers] == ["stem", "first"] + ["mbconv"] * sum(arch.d) + ["final_expand", "head", "classifier"]
    for layer, (i, o) in zip(layers, shapes):
        assert (i[1], i[2], o[1], o[2]) == (layer.c_in, layer.h_in, layer.c_out, layer.h_out), layer
    for layer, block in zip(layers[2:-3], [b for stage in sub.blocks[1:-1] for b in stage]):
        assert block.conv_dw.weight.shape[0] == layer.mid and block.conv_dw.kernel_size[0] == layer.kernel
        assert block.has_skip == layer.skip
    assert layers[-1].c_out == cfg.num_classes and layers[-2].c_out == sub.conv_head.out_channels


def test_space_layers_are_distinct_and_cover_every_arch():
    layers = space_layers(W10, resolutions=[160])[160]
    assert len(layers) == len(set(layers)) == 2 + 5 * 2 * 9 + 3
    covered = set(layers)
    for i in range(30):
        arch = Arch(**{**sample_arch(W10, i).to_dict(), "r": 160})
        assert set(arch_layers(W10, arch)) <= covered


# --------------------------------------------------------------------------------------------
# measurement and tables built here
# --------------------------------------------------------------------------------------------
def test_measure_latency_reports_median_p90_std_and_device():
    data = onnx_bytes(nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU()), torch.zeros(2, 3, 12, 12), dynamic_batch=True)
    r = measure_latency(data, batch_size=3, threads=1, warmup=2, runs=7)
    assert r.runs == 7 and r.warmup == 2 and r.input_shape == (3, 3, 12, 12)
    assert 0 < r.min_ms <= r.median_ms <= r.p90_ms and r.std_ms >= 0
    assert r.device.batch_size == 3 and r.device.intra_op_threads == 1
    assert "threads 1x1" in r.device.key and "batch 3" in r.device.key and "onnxruntime" in r.device.key
    assert describe_device(threads=2).key != describe_device(threads=1).key
    assert describe_device(batch_size=8).key != describe_device(batch_size=1).key
    static = onnx_bytes(nn.ReLU(), torch.zeros(2, 4))
    with pytest.raises(ConfigError, match="static batch size of 2"):
        measure_latency(static, batch_size=1, runs=1)
    with pytest.raises(ConfigError, match="threads must be a positive integer"):
        measure_latency(data, threads=0, runs=1)


@pytest.fixture(scope="module")
def tiny_table() -> LatencyTable:
    return build_latency_table(TINY, warmup=1, runs=4, rounds=2)


def test_built_table_covers_the_space_and_sums_its_layers(tiny_table):
    t = tiny_table
    assert t.scheme == "nni-eas" and t.resolutions == (16, 20) and t.space == TINY
    assert len(t) == sum(len(v) for v in space_layers(TINY).values())
    assert t.meta["onnx_models"] < len(t)  # one export per structure, timed at every size
    assert t.device.key == describe_device(1, 1, 1).key and t.overhead_ms > 0
    for entries in t.entries.values():
        for e in entries.values():
            assert e["runs"] == 4 and 0 < e["median"] <= e["p90"] and e["std"] >= 0
    rng = np.random.default_rng(0)
    archs = [sample_arch(TINY, rng) for _ in range(40)] + [min_arch(TINY), max_arch(TINY)]
    lat = t.predict_genomes(archs_to_genomes(TINY, archs))
    raw = t.predict_genomes(archs_to_genomes(TINY, archs), calibrated=False)
    for a, ms, plain in zip(archs, lat, raw):
        parts = t.breakdown(a)
        assert len(parts) == len(arch_layers(TINY, a))
        assert plain == pytest.approx(sum(v for _, v in parts) - (len(parts) - 1) * t.overhead_ms, abs=1e-12)
        assert ms == pytest.approx(t.scale[a.r] * plain, abs=1e-12)
        assert ms == pytest.approx(t.predict(a), abs=1e-12) and plain == pytest.approx(t.predict(a, calibrated=False))
    assert t.min_latency()[0] <= lat.min() + 1e-12


def test_built_table_calibration_is_the_geometric_mean_of_its_references(tiny_table):
    refs = tiny_table.meta["calibration_references"]
    assert len(refs) == 2 * 2  # smallest and largest subnet at both resolutions (one width)
    for r in (16, 20):
        mine = [x for x in refs if x["arch"]["r"] == r]
        assert len(mine) == 2 and {tuple(x["arch"]["d"]) for x in mine} == {(1,), (2,)}  # smallest, largest
        for x in mine:
            assert x["measured_ms"] > 0
            assert x["sum_of_layers_ms"] == pytest.approx(tiny_table.predict(x["arch"], calibrated=False), abs=1e-12)
        ratios = [x["measured_ms"] / x["sum_of_layers_ms"] for x in mine]
        assert tiny_table.scale[r] == pytest.approx(float(np.exp(np.mean(np.log(ratios)))), rel=1e-12)


def test_built_table_roundtrips_through_yaml(tiny_table, tmp_path):
    path = tiny_table.save(tmp_path / "tiny.yaml")
    data = yaml.safe_load(path.read_text())
    assert data["format"] == "nni-eas-latency-table/1" and data["device_key"] == tiny_table.device.key
    loaded = load_latency_table(path)
    assert loaded.entries == tiny_table.entries and loaded.device == tiny_table.device
    assert loaded.overhead_ms == tiny_table.overhead_ms and loaded.space == TINY and loaded.meta == tiny_table.meta
    assert loaded.scale == tiny_table.scale and set(loaded.scale) == {16, 20}
    archs = [sample_arch(TINY, i) for i in range(10)]
    g = archs_to_genomes(TINY, archs)
    np.testing.assert_array_equal(loaded.predict_genomes(g), tiny_table.predict_genomes(g))
    # tables of different devices never mix
    other = LatencyTable(loaded.entries, "nni-eas", describe_device(threads=2), TINY, overhead_ms=loaded.overhead_ms)
    with pytest.raises(ConfigError, match="different devices"):
        loaded.merge(other)
    assert len(loaded.merge(loaded)) == len(loaded)


def test_build_rejects_values_outside_the_space():
    with pytest.raises(ConfigError, match=r"resolutions \[224\] are not in space 'tiny'; allowed: \[16, 20\]"):
        build_latency_table(TINY, resolutions=[224])
    with pytest.raises(ConfigError, match=r"widths \[1.2\] are not in space 'tiny'"):
        build_latency_table(TINY, widths=[1.2])
