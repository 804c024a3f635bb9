"""The ``nni-eas`` command line: bad input exits non-zero with a clear message; one export end to end."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

import numpy as np
import pytest
import torch

from nni_eas.checkpoint import file_sha256, save_supernet
from nni_eas.cli import build_parser, main, parse_arch, parse_size
from nni_eas.costs import CostModel
from nni_eas.encodings import arch_to_genome, arch_to_ofa2
from nni_eas.export import make_session, read_model_card, real_images
from nni_eas.spaces import Arch, OFAMobileNetV3, load_space_config, max_arch, min_arch, sample_arch

from conftest import randomize_

SMALL = load_space_config("ofa_mbv3_small", num_classes=10)


@pytest.fixture(scope="module")
def supernet_file(tmp_path_factory):
    torch.manual_seed(0)
    net = randomize_(OFAMobileNetV3("ofa_mbv3_small", num_classes=10), 3)
    return save_supernet(tmp_path_factory.mktemp("ckpt") / "supernet.pt", net,
                         classes=["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"])


@pytest.fixture(scope="module")
def front_file(tmp_path_factory):
    small = Arch(**{**min_arch(SMALL, 16).to_dict(), "w": 1.0})  # not the space minimum (w 0.75)
    mid = Arch(**{**sample_arch(SMALL, 1).to_dict(), "r": 24, "w": 0.75})
    big = max_arch(SMALL, 32)
    entries = [{"arch": a.to_dict(), "genome": arch_to_genome(SMALL, a).tolist(),
                "metrics": {"top1": acc, "macs": int(CostModel(SMALL).macs(a))}, "classes": None}
               for a, acc in ((small, 0.61), (mid, 0.72), (big, 0.80))]
    path = tmp_path_factory.mktemp("front") / "front.json"
    path.write_text(json.dumps({"format": "nni-eas-front/1", "space": SMALL.model_dump(mode="json"),
                                "supernet_sha256": None, "objectives": ["top1", "macs"], "entries": entries}))
    return path, [small, mid, big]


def run(capsys, *argv) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out = capsys.readouterr()
    return code, out.out, out.err


# --------------------------------------------------------------------------------------------
# parsing
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("text,value", [("150M", 150e6), ("1.2G", 1.2e9), ("3e8", 3e8), ("500k", 5e5),
                                        ("2.5m", 2.5e6), ("42", 42.0), (" 7 M ", 7e6)])
def test_parse_size(text, value):
    assert parse_size(text) == pytest.approx(value)


@pytest.mark.parametrize("text", ["15X", "-3M", "", "M", "1.2.3G", "0"])
def test_parse_size_rejects(text):
    with pytest.raises(argparse.ArgumentTypeError):
        parse_size(text)


def test_help_documents_every_option(capsys):
    parser = build_parser()
    stack = [parser]
    seen = 0
    while stack:
        p = stack.pop()
        for action in p._actions:
            if isinstance(action, argparse._SubParsersAction):
                stack += list(action.choices.values())
                continue
            assert action.help, f"{p.prog}: option {action.option_strings or action.dest} has no help"
            seen += 1
    assert seen > 40
    code, out, _ = run(capsys, "specialize", "--help")
    assert code == 0 and "--latency-ms" in out and "--classes" in out and "150M" in out


# --------------------------------------------------------------------------------------------
# bad input: non-zero exit, a message naming the option
# --------------------------------------------------------------------------------------------
def test_unknown_option_and_command(capsys, supernet_file):
    code, _, err = run(capsys, "export", "--supernet", supernet_file, "--arch", "x", "-o", "m.onnx", "--bogus")
    assert code == 2 and "unrecognized arguments: --bogus" in err
    code, _, err = run(capsys, "deploy")
    assert code == 2 and "invalid choice: 'deploy'" in err
    # the installed entry point behaves the same
    proc = subprocess.run([sys.executable, "-m", "nni_eas.cli", "latency", "build", "--space", "ofa_mbv3_small",
                           "-o", "t.yaml", "--bogus-option"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "unrecognized arguments: --bogus-option" in proc.stderr


def test_missing_checkpoint(capsys, tmp_path):
    code, _, err = run(capsys, "export", "--supernet", tmp_path / "nope.pt", "--arch", "1", "-o", tmp_path / "m.onnx")
    assert code == 2 and "--supernet: checkpoint not found" in err and "nope.pt" in err
    (tmp_path / "broken.pt").write_bytes(b"not a checkpoint")
    code, _, err = run(capsys, "export", "--supernet", tmp_path / "broken.pt", "--arch", "1", "-o", tmp_path / "m.onnx")
    assert code == 2 and "cannot read supernet checkpoint" in err
    assert not (tmp_path / "m.onnx").exists()


@pytest.mark.parametrize("arch,message", [
    ('{"ks": [3]}', "missing keys ['e', 'd', 'r']"),
    ('{"ks": [3', "not valid JSON"),
    ("hello", "cannot read 'hello' as an architecture"),
    ("1,2,3", "has 47 choice indices"),
    ("0" * 23, "NAT encoding stage 0 = 0000: active layers must be a prefix"),
])
def test_malformed_arch(capsys, supernet_file, tmp_path, arch, message):
    code, _, err = run(capsys, "export", "--supernet", supernet_file, "--arch", arch, "-o", tmp_path / "m.onnx")
    assert code == 2 and "--arch" in err and message in err, err
    assert not (tmp_path / "m.onnx").exists()


def test_arch_values_outside_the_space(capsys, supernet_file, tmp_path):
    bad = {**max_arch(SMALL).to_dict(), "r": 224}
    code, _, err = run(capsys, "export", "--supernet", supernet_file, "--arch", json.dumps(bad), "-o", tmp_path / "m.onnx")
    assert code == 2 and "arch field 'r' = 224 is not in the space" in err and "allowed resolutions: 16..32" in err


def test_impossible_budget(capsys, supernet_file, front_file, tmp_path):
    front, _ = front_file
    smallest = CostModel(SMALL, num_classes=3).macs(min_arch(SMALL))
    code, _, err = run(capsys, "specialize", "--supernet", supernet_file, "--front", front, "--macs", "1M",
                       "--classes", "3,5,7", "-o", tmp_path / "m.onnx")
    assert code == 2 and "--macs 1M: below the smallest subnet of space 'ofa_mbv3_small'" in err
    assert f"allowed: --macs >= {smallest / 1e6:.4g}M" in err
    code, _, err = run(capsys, "specialize", "--supernet", supernet_file, "--front", front, "--params", "10k",
                       "-o", tmp_path / "m.onnx")
    assert code == 2 and "--params 10K: below the smallest subnet" in err
    # feasible for the space, but no entry of the front fits
    code, _, err = run(capsys, "specialize", "--supernet", supernet_file, "--front", front,
                       "--macs", str(int(smallest * 1.01)), "--classes", "3,5,7", "-o", tmp_path / "m.onnx")
    assert code == 2 and "no architecture of" in err and "cheapest entries" in err
    assert not (tmp_path / "m.onnx").exists()


@pytest.mark.parametrize("args,message", [
    ([], "give a budget: --macs SIZE, --params SIZE and/or --latency-ms MS"),
    (["--latency-ms", "5"], "--latency-ms needs --lut"),
    (["--macs", "15X"], "argument --macs: cannot parse '15X' as a size"),
    (["--macs", "1G", "--classes", "3,cat"], "--classes: 'cat' is neither a class name nor an index in 0..9"),
    (["--macs", "1G", "--metric", "f1"], "--metric: no front entry has metric 'f1'; available: macs, top1"),
])
def test_specialize_usage_errors(capsys, supernet_file, front_file, tmp_path, args, message):
    code, _, err = run(capsys, "specialize", "--supernet", supernet_file, "--front", front_file[0], *args,
                       "-o", tmp_path / "m.onnx")
    assert code == 2 and message in err, err


def test_front_index_out_of_range(capsys, supernet_file, front_file, tmp_path):
    code, _, err = run(capsys, "export", "--supernet", supernet_file, "--front", front_file[0], "--index", "9",
                       "-o", tmp_path / "m.onnx")
    assert code == 2 and "--index: 9 is out of range" in err and "(0..2)" in err


# --------------------------------------------------------------------------------------------
# happy paths
# --------------------------------------------------------------------------------------------
def test_export_end_to_end(capsys, supernet_file, tmp_path):
    arch = Arch(**{**sample_arch(SMALL, 4).to_dict(), "r": 24})
    out = tmp_path / "models" / "task.onnx"
    code, stdout, err = run(capsys, "export", "--supernet", supernet_file, "--arch", json.dumps(arch.to_dict()),
                            "--classes", "three,5,seven", "--dynamic-batch", "--runs", "5", "--warmup", "1", "-o", out)
    assert code == 0, err
    assert f"wrote {out}" in stdout and "latency" in stdout
    card = read_model_card(out)
    assert card.classes.names == ["three", "five", "seven"] and card.classes.indices == [3, 5, 7]
    assert card.arch.arch == arch.to_dict() and card.arch.genome == arch_to_genome(SMALL, arch).tolist()
    assert card.costs.macs == CostModel(SMALL, num_classes=3).macs(arch)
    assert card.source.supernet_sha256 == file_sha256(supernet_file) and card.source.supernet == str(supernet_file)
    assert card.onnx["dynamic_batch"] and card.onnx["check"]["max_abs_diff"] <= 1e-4
    assert card.latency.runs == 5 and card.latency.device.batch_size == 1 and card.accuracy is None
    assert card.costs.params == CostModel(SMALL, num_classes=3).params(arch)
    assert card.onnx["sha256"] == file_sha256(out) and json.loads(out.with_name("task.card.json").read_text())["format"] \
        == "nni-eas-model-card/1"
    # the card (or a front entry) is itself an accepted --arch, e.g. to re-export another way
    assert parse_arch(f"@{out.with_name('task.card.json')}", SMALL) == arch
    assert parse_arch(",".join(map(str, card.arch.genome)), SMALL) == arch
    # the ONNX file computes the supernet's subnet, restricted to the three classes
    from nni_eas.checkpoint import load_supernet

    net, _ = load_supernet(supernet_file)
    x = real_images(5, (3, 24, 24), seed=7)
    with torch.no_grad():
        expected = net.extract(arch).eval()(x)[:, [3, 5, 7]].numpy()
    sess = make_session(out)
    got = sess.run(None, {"input": x.numpy()})[0]
    assert got.shape == (5, 3) and np.abs(got - expected).max() <= 1e-4


def test_specialize_picks_the_best_entry_within_budget(capsys, supernet_file, front_file, tmp_path):
    front, (small, mid, big) = front_file
    cm = CostModel(SMALL, num_classes=2)
    budget = (cm.macs(mid) + cm.macs(big)) / 2  # mid fits, big does not
    assert cm.macs(small) < cm.macs(mid) < budget < cm.macs(big)
    code, stdout, err = run(capsys, "specialize", "--supernet", supernet_file, "--front", front, "--macs", f"{budget:.0f}",
                            "--classes", "1,2", "--no-latency", "-o", tmp_path / "s.onnx")
    assert code == 0, err
    assert "chose entry 1" in stdout
    card = read_model_card(tmp_path / "s.onnx")
    assert card.arch.arch == mid.to_dict() and card.source.front_index == 1 and card.latency is None
    assert card.extra["budget"] == {"macs": pytest.approx(budget)} and card.costs.macs <= budget


def test_latency_predict_reproduces_ofa2_with_note10(capsys, reference_dir):
    from nni_eas.io import safe_pickle_load

    rows = list(safe_pickle_load(reference_dir / "ofa2/res_nsga2_results.pkl"))
    lat, _, genome = rows[17]
    code, stdout, err = run(capsys, "latency", "predict", "--lut", reference_dir / "ofa/note10",
                            "--arch", ",".join(map(str, genome)), "--json")
    assert code == 0, err
    (pred,) = json.loads(stdout)["predictions"]
    assert abs(pred["latency_ms"] - lat) < 1e-6 and pred["arch"]["w"] == 1.2
    code, stdout, _ = run(capsys, "latency", "show", reference_dir / "ofa/note10")
    assert code == 0 and "160, 176, 192, 208, 224" in stdout and "Samsung Note10" in stdout
    code, _, err = run(capsys, "latency", "predict", "--lut", reference_dir / "ofa/note10",
                       "--arch", json.dumps({**max_arch(load_space_config("ofa_mbv3_w1.2")).to_dict(), "r": 200}))
    assert code == 2 and "covers resolutions 160, 176, 192, 208, 224" in err
    assert arch_to_ofa2(load_space_config("ofa_mbv3_w1.2"), Arch.from_dict(pred["arch"])).tolist() == list(genome)


@pytest.mark.slow
def test_latency_build_show_predict(capsys, tmp_path):
    import yaml

    from test_latency import TINY

    space = tmp_path / "tiny.yml"
    space.write_text(yaml.safe_dump(TINY.model_dump(mode="json")))
    table = tmp_path / "tiny_table.yaml"
    code, stdout, err = run(capsys, "latency", "build", "--space", space, "--resolutions", "16", "--runs", "3",
                            "--rounds", "1", "--warmup", "1", "-o", table)
    assert code == 0, err
    assert f"wrote {table}" in stdout and "threads 1x1" in stdout
    code, stdout, _ = run(capsys, "latency", "show", table)
    assert code == 0 and "scheme      nni-eas" in stdout and "resolutions 16" in stdout
    arch = min_arch(TINY, 16)
    code, stdout, err = run(capsys, "latency", "predict", "--lut", table, "--arch", json.dumps(arch.to_dict()), "--json")
    assert code == 0, err
    from nni_eas.export import load_latency_table

    assert json.loads(stdout)["predictions"][0]["latency_ms"] == pytest.approx(load_latency_table(table).predict(arch))


def test_nnictl_passthrough_keeps_nnictls_own_options():
    """``nni-eas nnictl ...`` hands every argument to nnictl (with the loopback fix in its env)."""
    import subprocess
    import sys
    from pathlib import Path

    exe = Path(sys.executable).with_name("nni-eas")
    out = subprocess.run([str(exe), "nnictl", "--version"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and out.stdout.strip() == "3.0", out
    assert "pkg_resources" not in out.stderr
