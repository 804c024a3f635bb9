"""ONNX export: onnxruntime computes what PyTorch computes, or the export fails loudly; model cards."""

from __future__ import annotations

import json

import numpy as np
import onnx
import pytest
import torch
import torch.nn as nn

from nni_eas.checkpoint import file_sha256, save_supernet
from nni_eas.config import ConfigError
from nni_eas.costs import CostModel
from nni_eas.export import (
    ExportCheckError,
    deploy_subnet,
    export_onnx,
    make_session,
    read_model_card,
    real_images,
)
from nni_eas.export import onnx_export
from nni_eas.spaces import OFAMobileNetV3, load_space_config, min_arch, sample_arch

from conftest import randomize_


def _ort(path, x: torch.Tensor) -> np.ndarray:
    sess = make_session(path)
    return sess.run(None, {sess.get_inputs()[0].name: x.numpy()})[0]


@pytest.mark.parametrize("preset,resolution,seed,dynamic,depth", [
    ("ofa_mbv3_small", 16, 0, True, None),
    ("ofa_mbv3_small", 32, 1, False, None),
    ("ofa_mbv3_w1.0", 128, 2, True, 2),  # depth 2 everywhere: same layers, half the export time
    pytest.param("ofa_mbv3_w1.0", 224, 5, False, None, marks=pytest.mark.slow),
    pytest.param("ofa_mbv3_w1.2", 176, 3, False, None, marks=pytest.mark.slow),
    pytest.param("nat_mbv3", 200, 4, True, None, marks=pytest.mark.slow),
])
def test_onnx_equals_pytorch_on_random_subnets(tmp_path, preset, resolution, seed, dynamic, depth):
    net = randomize_(OFAMobileNetV3(preset), seed).eval()
    cfg = net.config
    a = sample_arch(cfg, seed)
    arch = a.__class__(**{**a.to_dict(), "r": resolution, **({"d": (depth,) * cfg.num_stages} if depth else {})})
    sub = net.extract(arch).eval()
    path = tmp_path / "subnet.onnx"
    report = export_onnx(sub, path, dynamic_batch=dynamic, batch_size=1 if dynamic else 2)
    assert report.max_abs_diff <= 1e-4 and report.check_images >= 2
    assert path.is_file() and report.sha256 == file_sha256(path)

    # independently of the export's own check: fresh real images, another batch size
    model = onnx.load(path)
    onnx.checker.check_model(model)
    assert {o.domain or "ai.onnx": o.version for o in model.opset_import}["ai.onnx"] == 18
    assert "Identity" not in {n.op_type for n in model.graph.node}
    dims = model.graph.input[0].type.tensor_type.shape.dim
    assert [d.dim_param or d.dim_value for d in dims] == (["batch"] if dynamic else [2]) + [3, resolution, resolution]
    x = real_images(3 if dynamic else 2, (3, resolution, resolution), seed=seed + 10)
    with torch.no_grad():
        expected = sub(x).numpy()
    got = _ort(path, x)
    assert got.shape == (len(x), cfg.num_classes)
    assert np.abs(got - expected).max() <= 1e-4
    assert np.abs(expected).max() > 1e-3  # the comparison is not between two zero tensors


def test_export_failure_is_loud_and_leaves_no_file(tmp_path, monkeypatch):
    net = randomize_(OFAMobileNetV3("ofa_mbv3_small"), 0).eval()
    sub = net.extract(sample_arch(net.config, 0)).eval()
    traced = []

    def exported(*args, **kwargs):  # the real exporter, traced once for the whole test
        if not traced:
            traced.append(real(*args, **kwargs))
        proto = onnx.ModelProto()
        proto.CopyFrom(traced[0])
        return proto

    def corrupted(*args, **kwargs):  # an exporter bug: one weight comes out wrong
        proto = exported(*args, **kwargs)
        init = max(proto.graph.initializer, key=lambda t: np.prod(t.dims))
        w = onnx.numpy_helper.to_array(init).copy()
        w.flat[: w.size // 2] += 0.5
        init.CopyFrom(onnx.numpy_helper.from_array(w, init.name))
        return proto

    real = onnx_export.onnx_model_proto
    monkeypatch.setattr(onnx_export, "onnx_model_proto", corrupted)
    path = tmp_path / "bad.onnx"
    with pytest.raises(ExportCheckError, match=r"max \|onnxruntime - torch\| = .* > atol 0.0001.*nothing was written"):
        export_onnx(sub, path)
    assert not path.exists() and list(tmp_path.iterdir()) == []

    with pytest.raises(ExportCheckError, match="bad.onnx.rejected"):
        export_onnx(sub, path, keep_failed=True)
    assert not path.exists() and (tmp_path / "bad.onnx.rejected").is_file()

    # an existing good export is not replaced by a failed one
    monkeypatch.setattr(onnx_export, "onnx_model_proto", exported)
    assert export_onnx(sub, path).max_abs_diff <= 1e-4
    before = path.read_bytes()
    monkeypatch.setattr(onnx_export, "onnx_model_proto", corrupted)
    with pytest.raises(ExportCheckError):
        export_onnx(sub, path)
    assert path.read_bytes() == before


def test_export_any_module_and_input_errors(tmp_path):
    model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.AdaptiveAvgPool2d(1),
                          nn.Flatten(), nn.Linear(8, 4))
    randomize_(model, 1)
    with pytest.raises(ConfigError, match="input_shape is needed"):
        export_onnx(model, tmp_path / "m.onnx")
    with pytest.raises(ConfigError, match="must end in .onnx"):
        export_onnx(model, tmp_path / "m.pt", input_shape=(3, 20, 20))
    model.train()
    report = export_onnx(model, tmp_path / "m.onnx", input_shape=(3, 20, 20), dynamic_batch=True)
    assert model.training  # mode restored
    assert report.max_abs_diff <= 1e-4 and report.to_dict()["input_shape"] == ["batch", 3, 20, 20]
    x = torch.randn(5, 3, 20, 20)
    with torch.no_grad():
        expected = model.eval()(x).numpy()
    assert np.abs(_ort(tmp_path / "m.onnx", x) - expected).max() <= 1e-4


@pytest.mark.slow  # the same path runs end to end, faster, in tests/test_cli.py::test_export_end_to_end
def test_deploy_writes_a_consistent_model_card(tmp_path):
    torch.manual_seed(0)
    net = randomize_(OFAMobileNetV3("ofa_mbv3_small", num_classes=10), 2)
    ckpt = save_supernet(tmp_path / "supernet.pt", net, classes=[f"c{i}" for i in range(10)])
    cfg = net.config
    arch = sample_arch(cfg, 5)
    classes = [7, 2, 4]
    res = deploy_subnet(net.eval(), arch, tmp_path / "out" / "task.onnx", classes=classes,
                        class_names=[f"c{i}" for i in range(10)], supernet_path=ckpt,
                        supernet_sha256=file_sha256(ckpt), runs=5, warmup=1, dynamic_batch=True)
    card = read_model_card(tmp_path / "out" / "task.onnx")
    assert res.card_path == tmp_path / "out" / "task.card.json" and card == res.card
    assert card.classes.names == ["c7", "c2", "c4"] and card.classes.indices == classes and card.classes.num_outputs == 3
    cm = CostModel(cfg, num_classes=3)
    assert card.costs.macs == cm.macs(arch) and card.costs.params == cm.params(arch)
    assert card.arch.arch == arch.to_dict() and card.arch.space == cfg.name
    assert card.source.supernet_sha256 == file_sha256(ckpt)
    assert card.onnx["sha256"] == file_sha256(tmp_path / "out" / "task.onnx")
    assert card.latency.runs == 5 and card.latency.median_ms > 0 and "threads 1x1" in card.latency.device_key
    assert card.accuracy is None  # no data given: no accuracy claimed
    # the file serves exactly the task's logits, in the given order
    x = real_images(4, (3, arch.r, arch.r))
    with torch.no_grad():
        full = net.extract(arch).eval()(x).numpy()
    assert np.abs(_ort(tmp_path / "out" / "task.onnx", x) - full[:, classes]).max() <= 1e-4
    # the card on disk is plain JSON with the documented format
    data = json.loads((tmp_path / "out" / "task.card.json").read_text())
    assert data["format"] == "nni-eas-model-card/1" and data["onnx"]["file"] == "task.onnx"


def test_deploy_rejects_bad_classes(tmp_path):
    net = OFAMobileNetV3("ofa_mbv3_small", num_classes=10).eval()
    with pytest.raises(ConfigError, match=r"distinct class indices in 0..9"):
        deploy_subnet(net, sample_arch(net.config, 0), tmp_path / "x.onnx", classes=[3, 3], measure=False)
    assert not (tmp_path / "x.onnx").exists()


def test_deploy_commits_the_onnx_file_and_its_card_together(tmp_path, monkeypatch):
    """A kill (or failure) after the new model exists but before its card does leaves the old
    pair intact and consistent, and no temporary file; a card never describes another model."""
    from nni_eas.export import deploy as deploy_module
    from nni_eas.export.card import verify_model_card

    tiny = load_space_config("ofa_mbv3_small", name="tiny", num_classes=5, kernel_sizes=[3], expand_ratios=[3],
                             depths=[1], width_mults=[1.0], resolutions=[16], final_expand=32, head=32,
                             stages=[{"channels": 16, "stride": 2, "act": "relu", "se": False}])  # fast to export
    net = randomize_(OFAMobileNetV3(tiny), 1).eval()
    arch = min_arch(tiny)
    traced: dict[int, onnx.ModelProto] = {}
    real = onnx_export.onnx_model_proto

    def exported(model, *args, **kwargs):  # the real exporter, traced once per number of classes
        if model.num_classes not in traced:
            traced[model.num_classes] = real(model, *args, **kwargs)
        proto = onnx.ModelProto()
        proto.CopyFrom(traced[model.num_classes])
        return proto

    monkeypatch.setattr(onnx_export, "onnx_model_proto", exported)
    out = tmp_path / "task.onnx"
    card_file = tmp_path / "task.card.json"
    deploy_subnet(net, arch, out, classes=[0, 1], measure=False)
    old_onnx, old_card = out.read_bytes(), card_file.read_bytes()
    assert verify_model_card(out).classes.indices == [0, 1]

    def files():
        return sorted(p.name for p in tmp_path.iterdir())

    assert files() == ["task.card.json", "task.onnx"]

    class Killed(BaseException):  # like SIGTERM / Ctrl-C: not an Exception, nothing may swallow it
        pass

    def killed(*args, **kwargs):
        raise Killed

    # killed while the new 3-class model is timed, then while its card is written
    for step in ("measure_latency", "model_card_json"):
        with monkeypatch.context() as m, pytest.raises(Killed):
            m.setattr(deploy_module, step, killed)
            deploy_subnet(net, arch, out, classes=[0, 1, 2], measure=True, runs=2, warmup=0)
        assert out.read_bytes() == old_onnx and card_file.read_bytes() == old_card, step
        assert verify_model_card(out).classes.num_outputs == 2
        assert files() == ["task.card.json", "task.onnx"], step

    # a failed check: the message names the destination, and the old pair stays
    with monkeypatch.context() as m, pytest.raises(ExportCheckError) as err:
        m.setattr(onnx_export, "check_onnx", lambda *args, **kwargs: 1.0)
        deploy_subnet(net, arch, out, classes=[0, 1, 2], measure=False)
    assert f"nothing was written at {out}" in str(err.value) and ".tmp-" not in str(err.value)
    assert out.read_bytes() == old_onnx and card_file.read_bytes() == old_card and files() == ["task.card.json", "task.onnx"]

    # a completed deploy replaces both; the card names the file and its sha256
    res = deploy_subnet(net, arch, out, classes=[0, 1, 2], measure=False)
    card = verify_model_card(out)
    assert card.classes.indices == [0, 1, 2] and card.onnx["file"] == "task.onnx" and res.report.path == out
    assert card.onnx["sha256"] == file_sha256(out) and files() == ["task.card.json", "task.onnx"]
    # a model replaced without its card is caught
    out.write_bytes(old_onnx)
    with pytest.raises(ConfigError, match=r"task.card.json does not describe .*task.onnx: the card records sha256"):
        verify_model_card(out)


def test_real_images_are_images():
    x = real_images(6, (3, 24, 24))
    assert x.shape == (6, 3, 24, 24) and torch.isfinite(x).all()
    assert torch.equal(x[:, 0], x[:, 2])  # gray digits repeated over channels
    # neighbouring pixels of a real image are correlated, unlike noise
    a, b = x[:, 0, :, :-1].flatten(), x[:, 0, :, 1:].flatten()
    assert torch.corrcoef(torch.stack([a, b]))[0, 1] > 0.8
