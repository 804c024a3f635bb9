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
    assert code == 2 and "--index: 9 is out of range" in err and "(allowed: 0..2)" in err
    # negative indices are refused, not counted from the end
    code, _, err = run(capsys, "export", "--supernet", supernet_file, "--front", front_file[0], "--index", "-1",
                       "-o", tmp_path / "m.onnx")
    assert code == 2 and "--index: -1 is out of range" in err and "has 3 entries (allowed: 0..2)" in err
    code, _, err = run(capsys, "latency", "predict", "--lut", "/nonexistent", "--front", front_file[0], "--index", "-1")
    assert code == 2 and "--lut: latency table not found: /nonexistent" in err
    assert not (tmp_path / "m.onnx").exists()


@pytest.fixture(scope="module")
def task_front(tmp_path_factory, front_file):
    """A front mixing an entry made for classes [4, 5, 7] (the best top-1 by far, as task metrics
    are) with entries made for all 10 classes (classes null, or listed in full)."""
    _, (small, mid, big) = front_file
    rows = [(mid, 0.99, [4, 5, 7]), (small, 0.75, None), (big, 0.70, list(range(10)))]
    entries = [{"arch": a.to_dict(), "genome": arch_to_genome(SMALL, a).tolist(), "metrics": {"top1": acc},
                "classes": classes} for a, acc, classes in rows]
    folder = tmp_path_factory.mktemp("task_front")
    data = {"format": "nni-eas-front/1", "space": SMALL.model_dump(mode="json"), "objectives": ["top1", "macs"]}
    (folder / "mixed.json").write_text(json.dumps({**data, "entries": entries}))
    (folder / "tasks_only.json").write_text(json.dumps({**data, "entries": entries[:1]}))
    return folder / "mixed.json", folder / "tasks_only.json"


def test_specialize_without_classes_ignores_entries_made_for_a_task(capsys, monkeypatch, supernet_file, task_front,
                                                                     tmp_path):
    import nni_eas.cli as cli

    mixed, tasks_only = task_front
    code, stdout, err = run(capsys, "specialize", "--supernet", supernet_file, "--front", mixed, "--macs", "1G",
                            "--no-latency", "-o", tmp_path / "all.onnx")
    assert code == 0, err
    assert "chose entry 1" in stdout and "top1 = 0.75" in stdout
    card = read_model_card(tmp_path / "all.onnx")
    assert card.classes.num_outputs == 10 and card.source.front_index == 1 and card.source.front_metrics == {"top1": 0.75}
    assert card.extra["candidates"] == 2  # the entry listing all 10 classes counts as a full-class entry
    # with --classes, the task's own entry serves it (the export itself is stubbed: it ran above)
    exported = []
    monkeypatch.setattr(cli, "_deploy", lambda args, supernet, info, arch, front, extra: exported.append(front) or 0)
    code, stdout, err = run(capsys, "specialize", "--supernet", supernet_file, "--front", mixed, "--macs", "1G",
                            "--classes", "4,5,7", "-o", tmp_path / "task.onnx")
    assert code == 0 and "chose entry 0" in stdout, err
    assert exported == [{"path": str(mixed), "index": 0, "metrics": {"top1": 0.99}}]
    monkeypatch.undo()
    # a front of task entries only: refused, naming the tasks
    code, _, err = run(capsys, "specialize", "--supernet", supernet_file, "--front", tasks_only, "--macs", "1G",
                       "-o", tmp_path / "refused.onnx")
    assert code == 2 and "--classes: every entry of" in err and "subset of the 10 classes (tasks: 4,5,7)" in err
    code, _, err = run(capsys, "specialize", "--supernet", supernet_file, "--front", tasks_only, "--macs", "1G",
                       "--classes", "1,2", "-o", tmp_path / "refused.onnx")
    assert code == 2 and "--classes: no entry of" in err and "serves classes [1, 2]" in err
    # export --front: an entry made for a task needs its --classes
    code, _, err = run(capsys, "export", "--supernet", supernet_file, "--front", mixed, "--index", "0",
                       "-o", tmp_path / "refused.onnx")
    assert code == 2 and "--index 0: entry 0 of" in err and "made for classes [4, 5, 7]" in err
    assert "--classes 4,5,7" in err
    assert not (tmp_path / "refused.onnx").exists()


def test_unreadable_inputs_name_the_option(capsys, supernet_file, front_file, tmp_path):
    binary = tmp_path / "random.bin"
    binary.write_bytes(bytes(range(256)) * 8)
    out = tmp_path / "m.onnx"
    for command in ("export", "specialize"):
        extra = ["--macs", "1G"] if command == "specialize" else []
        code, _, err = run(capsys, command, "--supernet", supernet_file, "--front", binary, *extra, "-o", out)
        assert code == 2 and f"--front: {binary} is not a text file" in err, err
    code, _, err = run(capsys, "export", "--supernet", tmp_path, "--arch", "1", "-o", out)
    assert code == 2 and f"--supernet: {tmp_path} is a directory, not a supernet checkpoint" in err
    code, _, err = run(capsys, "export", "--supernet", binary, "--arch", "1", "-o", out)
    assert code == 2 and "--supernet: cannot read supernet checkpoint" in err
    code, _, err = run(capsys, "export", "--supernet", supernet_file, "--arch", f"@{binary}", "-o", out)
    assert code == 2 and f"--arch: {binary} is not a text file" in err
    code, _, err = run(capsys, "export", "--supernet", supernet_file, "--front", front_file[0], "-o", tmp_path / "m.pt")
    assert code == 2 and "-o/--output: the model file must end in .onnx" in err
    code, _, err = run(capsys, "export", "--supernet", supernet_file, "--front", front_file[0], "--lut", binary, "-o", out)
    assert code == 2 and f"--lut: {binary} is not a text file" in err
    code, _, err = run(capsys, "latency", "predict", "--lut", binary, "--arch", "1")
    assert code == 2 and f"--lut: {binary} is not a text file" in err
    (tmp_path / "empty").mkdir()
    code, _, err = run(capsys, "latency", "show", tmp_path / "empty")
    assert code == 2 and "TABLE: no OFA latency tables" in err
    code, _, err = run(capsys, "latency", "measure", binary)
    assert code == 2 and f"MODEL.onnx: {binary} is not an ONNX model onnxruntime can load" in err
    code, _, err = run(capsys, "latency", "measure", tmp_path)
    assert code == 2 and "MODEL.onnx:" in err and "is a directory" in err
    assert not out.exists()


def test_eas_bad_inputs_exit_2_naming_the_option(capsys, supernet_file, tmp_path):
    from nni_eas.eas import ArchGenerator, save_generator

    gen = save_generator(tmp_path / "generator.pt",
                         ArchGenerator(SMALL, 10, ["macs", "latency_ms"], {"macs": (1e5, 1e8), "latency_ms": (0.1, 10.0)},
                                       hidden=8), [str(i) for i in range(10)])
    other = save_generator(tmp_path / "other.pt", ArchGenerator(load_space_config("ofa_mbv3_small", num_classes=5), 5,
                                                                ["macs"], {"macs": (1e5, 1e8)}, hidden=8),
                           [str(i) for i in range(5)])
    (tmp_path / "truncated.pt").write_bytes(gen.read_bytes()[:200])
    binary = tmp_path / "random.bin"
    binary.write_bytes(bytes(range(256)) * 8)
    cases = [
        (["--generator", tmp_path / "missing.pt"], "--generator: generator file not found"),
        (["--generator", tmp_path / "truncated.pt"], "--generator: cannot read generator file"),
        (["--generator", binary], "not a readable nni-eas generator (truncated or not written by nni-eas)"),
        (["--generator", tmp_path], "--generator: " + str(tmp_path) + " is a directory, not a generator file"),
        (["--generator", other], "--generator: " + str(other) + " was trained for another space than --supernet"),
        (["--generator", gen], "--latency-table: the generator predicts latency_ms"),
        (["--generator", gen, "--latency-table", binary], f"--latency-table: {binary} is not a text file"),
        (["--generator", gen, "--supernet", binary], "--supernet: cannot read supernet checkpoint"),
        (["--generator", gen, "--latency-table", tmp_path], "--latency-table: no OFA latency tables"),
    ]
    for args, message in cases:
        argv = ["eas", "--supernet", supernet_file, *args, "--macs", "5M"]
        code, _, err = run(capsys, *argv)
        assert code == 2 and message in err, (args, err)
        assert "Traceback" not in err


def test_exit_codes_follow_the_table(capsys, monkeypatch, supernet_file, tmp_path):
    import nni_eas.export
    from nni_eas.export import ExportCheckError

    arch = json.dumps(min_arch(SMALL, 16).to_dict())

    def raising(exc):
        def deploy(*args, **kwargs):
            raise exc
        return deploy

    for exc, code, message in [(KeyboardInterrupt(), 130, "nni-eas export: interrupted"),
                               (ExportCheckError("outputs differ"), 1, "nni-eas export: export failed: outputs differ"),
                               (RuntimeError("disk on fire"), 1, "nni-eas export: failed: RuntimeError: disk on fire")]:
        monkeypatch.setattr(nni_eas.export, "deploy_subnet", raising(exc))
        got, _, err = run(capsys, "export", "--supernet", supernet_file, "--arch", arch, "-o", tmp_path / "m.onnx")
        assert got == code and message in err, err


def test_exit_code_table_is_documented_once_for_every_command():
    import re

    import nni_eas.cli as cli
    from nnictl_helpers import ROOT

    doc = (ROOT / "docs" / "deployment.md").read_text()
    section = doc[doc.index("## 6. Exit codes"):doc.index("## 7.")]
    header = next(line for line in section.splitlines() if line.startswith("| command"))
    assert [c.strip() for c in header.strip("|").split("|")] == ["command", "0", "1", "2", "130"]
    commands = [a for a in build_parser()._subparsers._group_actions[0].choices]
    rows = [line for line in section.splitlines() if line.startswith("| `nni-eas")]
    for command in commands:
        assert any(f"nni-eas {command}" in row.split("|")[1] for row in rows), command
    nnictl = next(row for row in rows if row.startswith("| `nni-eas nnictl`"))
    assert [c.strip() for c in nnictl.strip("|").split("|")][1:] == [
        "experiment started and its tuner connected",
        "the experiment ended in ERROR or its dispatcher died (the dispatcher's error is printed)",
        "the config is invalid (nothing started)", "interrupted"]
    # the module docstring states the same four codes and points at the table
    codes = re.findall(r"^(\d+)\s{2,}", cli.__doc__, flags=re.M)
    assert codes == ["0", "1", "2", "130"] and "docs/deployment.md" in cli.__doc__
    assert "BENCHMARK_RESULTS" not in doc and "PLACEHOLDER" not in doc  # no placeholder left in the page


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
