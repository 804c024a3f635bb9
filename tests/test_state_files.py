"""Resumable state files: a truncated or foreign file is refused with a message naming the file
and what was expected, never a raw BadZipFile / EOFError / UnicodeDecodeError traceback.

Covers ``search_state.npz`` (search driver), ``nat_state.json`` and NAT's ``evaluations.jsonl``,
``eas_state.json`` (EAS pipeline) and ``generator.pt`` (EAS generator)."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch

from nni_eas.checkpoint import CheckpointError
from nni_eas.config import ConfigError
from nni_eas.search import CostEvaluator, build_driver, random_genomes
from nni_eas.spaces import load_space_config

CFG = load_space_config("ofa_mbv3_small")
RANDOM = bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8))


def _truncated(data: bytes) -> bytes:
    return data[: len(data) // 2]


def _npz(**arrays) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


def _cases(expected: dict[str, str]):
    """Parametrize ``kind, expected`` (a regex of the message) with the kind as the test id."""
    return pytest.mark.parametrize("kind,expected", [pytest.param(k, v, id=k) for k, v in expected.items()])


def _names(path: Path, err: pytest.ExceptionInfo) -> str:
    text = str(err.value)
    assert str(path) in text, text
    assert "Traceback" not in text
    return text


# ---------------------------------------------------------------------------------------------
# search_state.npz
# ---------------------------------------------------------------------------------------------
SEARCH = {"pop_size": 4, "generations": 3, "objectives": ["macs", "params"], "seed": 1}


def _driver(workdir: Path):
    return build_driver(SEARCH, CFG, [CostEvaluator(CFG)], workdir=workdir)


@pytest.fixture(scope="module")
def search_state(tmp_path_factory) -> bytes:
    workdir = tmp_path_factory.mktemp("search")
    d = _driver(workdir)
    d.tell(d.ask())
    data = (workdir / "search_state.npz").read_bytes()
    assert _driver(workdir).generation == 1  # the real file resumes
    return data


@_cases({
    "truncated": r"is not a readable nni-eas search state \(truncated or not written by nni-eas\): BadZipFile",
    "random": r"is not a readable nni-eas search state \(truncated or not written by nni-eas\)",
    "json": r"is not a readable nni-eas search state",
    "npz_without_state": r"is not an nni-eas search state \(expected an npz with a JSON 'state' entry",
    "npz_other_format": r"is not an nni-eas search state \(format 'something-else/1', expected 'nni-eas-search-state/1'\)",
    "npz_state_not_a_dict": r"is not an nni-eas search state \(format None",
    "npz_incomplete": r"is an incomplete nni-eas search state \(missing generation, n_iter",
})
def test_search_state_truncated_or_foreign(tmp_path, search_state, kind, expected):
    data = {
        "truncated": _truncated(search_state),
        "random": RANDOM,
        "json": json.dumps({"format": "nni-eas-search-state/1"}).encode(),
        "npz_without_state": _npz(x=np.arange(3)),
        "npz_other_format": _npz(state=np.array(json.dumps({"format": "something-else/1"}))),
        "npz_state_not_a_dict": _npz(state=np.array("[1, 2, 3]")),
        "npz_incomplete": _npz(state=np.array(json.dumps({"format": "nni-eas-search-state/1", "signature": {}}))),
    }[kind]
    path = tmp_path / "search_state.npz"
    path.write_bytes(data)
    with pytest.raises(ConfigError) as err:
        _driver(tmp_path)
    text = _names(path, err)
    assert re.search(expected, text) and "delete it" in text, text


def test_search_state_of_another_search_is_refused(tmp_path, search_state):
    (tmp_path / "search_state.npz").write_bytes(search_state)
    with pytest.raises(ConfigError, match="belongs to another search"):
        build_driver(dict(SEARCH, pop_size=6), CFG, [CostEvaluator(CFG)], workdir=tmp_path)


# ---------------------------------------------------------------------------------------------
# nat_state.json and NAT's evaluations.jsonl
# ---------------------------------------------------------------------------------------------
NAT = {"iterations": 2, "initial_archs": 4, "archs_per_iteration": 2, "pop_size": 8, "generations": 2,
       "surrogate": {"model": "rbf"}, "adapt": {"enabled": False}, "seed": 0,
       "objectives": ["top1", "macs"]}


def _nat(workdir: Path, resume: bool = True):
    from nni_eas.nat import NATCore

    return NATCore(CFG, NAT, workdir=workdir, resume=resume)


@pytest.fixture(scope="module")
def nat_state(tmp_path_factory) -> bytes:
    workdir = tmp_path_factory.mktemp("nat")
    _nat(workdir, resume=False).save_checkpoint()
    data = (workdir / "nat_state.json").read_bytes()
    assert _nat(workdir).step == 0  # the real file resumes
    return data


@_cases({
    "truncated": r"is not a readable nni-eas NAT state \(truncated or not written by nni-eas\): JSONDecodeError",
    "random": r"is not a readable nni-eas NAT state \(truncated or not written by nni-eas\): UnicodeDecodeError",
    "json_list": r"is not an nni-eas NAT state \(format None, expected 'nni-eas-nat-state/1'\)",
    "json_other_format": r"is not an nni-eas NAT state \(format 'nni-eas-eas-state/1', expected 'nni-eas-nat-state/1'\)",
    "json_incomplete": r"is an incomplete nni-eas NAT state \(missing or malformed: space, config",
})
def test_nat_state_truncated_or_foreign(tmp_path, nat_state, kind, expected):
    data = {
        "truncated": _truncated(nat_state),
        "random": RANDOM,
        "json_list": b"[1, 2, 3]",
        "json_other_format": json.dumps({"format": "nni-eas-eas-state/1", "step": 1}).encode(),
        "json_incomplete": json.dumps({"format": "nni-eas-nat-state/1", "step": 0}).encode(),
    }[kind]
    path = tmp_path / "nat_state.json"
    path.write_bytes(data)
    with pytest.raises(ConfigError) as err:
        _nat(tmp_path)
    text = _names(path, err)
    assert re.search(expected, text) and "delete it" in text, text


def _record(step: int, genome) -> str:
    return json.dumps({"step": step, "kind": "initial", "genome": [int(g) for g in genome],
                       "metrics": {"top1": 0.5}, "error": None})


def test_nat_evaluation_log_keeps_records_and_skips_lines_cut_by_a_crash(tmp_path):
    g = random_genomes(CFG, 3, 0)
    cut = _record(0, g[1])[:25]
    # a crash cut a record, the next run appended after it; then another crash cut the last line
    (tmp_path / "evaluations.jsonl").write_text(_record(0, g[0]) + "\n" + cut + _record(0, g[2]) + "\n" + cut)
    core = _nat(tmp_path)
    assert len(core._logged[0]) == 1


@_cases({
    "random": r"is not an nni-eas NAT evaluation log \(line \d+ is neither a JSON record nor one cut by a crash\)",
    "json_of_other_records": r"is not an nni-eas NAT evaluation log of this space \(line 1: expected a record with "
                              r"'step', 'metrics' and a 47-gene 'genome'; KeyError",
    "genome_of_another_space": r"line 2: .*genome \[0, 1, 2\] is not one of space 'ofa_mbv3_small'",
})
def test_nat_evaluation_log_foreign(tmp_path, kind, expected):
    g = random_genomes(CFG, 1, 0)
    data = {
        "random": RANDOM,
        "json_of_other_records": b'{"trial": 1, "value": 0.5}\n',
        "genome_of_another_space": (_record(0, g[0]) + "\n" + _record(0, [0, 1, 2]) + "\n").encode(),
    }[kind]
    path = tmp_path / "evaluations.jsonl"
    path.write_bytes(data)
    with pytest.raises(ConfigError) as err:
        _nat(tmp_path)
    text = _names(path, err)
    assert re.search(expected, text) and "delete it" in text, text


# ---------------------------------------------------------------------------------------------
# eas_state.json
# ---------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def eas_state(tiny_supernet, tmp_path_factory) -> tuple[dict, bytes]:
    from nni_eas.eas.core import EASCore
    from test_eas import small_eas_args

    args = small_eas_args(tiny_supernet)
    workdir = tmp_path_factory.mktemp("eas")
    EASCore(args, workdir, resume=False).save_checkpoint()
    data = (workdir / "eas_state.json").read_bytes()
    assert EASCore(args, workdir, resume=True).step == 0  # the real file resumes
    return args, data


@_cases({
    "truncated": r"is not a readable nni-eas EAS state \(truncated or not written by nni-eas\): JSONDecodeError",
    "random": r"is not a readable nni-eas EAS state \(truncated or not written by nni-eas\): UnicodeDecodeError",
    "json_list": r"is not an nni-eas EAS state \(format None, expected 'nni-eas-eas-state/1'\)",
    "json_other_format": r"is not an nni-eas EAS state \(format 'nni-eas-nat-state/1', expected 'nni-eas-eas-state/1'\)",
    "json_incomplete": r"is an incomplete nni-eas EAS state \(missing or malformed: supernet, generator",
    "json_malformed": r"is an incomplete nni-eas EAS state \(missing or malformed: results\)",
})
def test_eas_state_truncated_or_foreign(tmp_path, eas_state, kind, expected):
    from nni_eas.eas.core import EASCore

    args, real = eas_state
    malformed = json.loads(real)
    malformed["results"] = {"a": 1}
    data = {
        "truncated": _truncated(real),
        "random": RANDOM,
        "json_list": b"[]",
        "json_other_format": json.dumps({"format": "nni-eas-nat-state/1"}).encode(),
        "json_incomplete": json.dumps({"format": "nni-eas-eas-state/1", "step": 0}).encode(),
        "json_malformed": json.dumps(malformed).encode(),
    }[kind]
    path = tmp_path / "eas_state.json"
    path.write_bytes(data)
    with pytest.raises(ConfigError) as err:
        EASCore(args, tmp_path, resume=True)
    text = _names(path, err)
    assert re.search(expected, text) and "delete it" in text, text


# ---------------------------------------------------------------------------------------------
# generator.pt
# ---------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def generator_file(tmp_path_factory) -> bytes:
    from nni_eas.eas import ArchGenerator, load_generator, save_generator

    gen = ArchGenerator(CFG, 10, ["macs"], {"macs": (1e5, 1e7)}, hidden=8)
    path = save_generator(tmp_path_factory.mktemp("gen") / "generator.pt", gen, [str(i) for i in range(10)])
    assert load_generator(path)[0].metrics == ["macs"]  # the real file loads
    return path.read_bytes()


def _torch_bytes(obj) -> bytes:
    buf = io.BytesIO()
    torch.save(obj, buf)
    return buf.getvalue()


@_cases({
    "truncated": r"cannot read generator file .*: it is not a readable nni-eas generator \(truncated or not written "
                  r"by nni-eas\): ",
    "random": r"not a readable nni-eas generator \(truncated or not written by nni-eas\)",
    "json": r"not a readable nni-eas generator",
    "other_format": r"is not an nni-eas generator \(format 'nni-eas-supernet/1', expected 'nni-eas-generator/1'\)",
    "incomplete": r"is an incomplete or inconsistent nni-eas generator \(KeyError",
})
def test_generator_file_truncated_or_foreign(tmp_path, generator_file, kind, expected):
    from nni_eas.eas import load_generator

    data = {
        "truncated": _truncated(generator_file),
        "random": RANDOM,
        "json": json.dumps({"format": "nni-eas-generator/1"}).encode(),
        "other_format": _torch_bytes({"format": "nni-eas-supernet/1", "state_dict": {}}),
        "incomplete": _torch_bytes({"format": "nni-eas-generator/1", "space": CFG.model_dump(mode="json")}),
    }[kind]
    path = tmp_path / "generator.pt"
    path.write_bytes(data)
    with pytest.raises(CheckpointError) as err:
        load_generator(path)
    text = _names(path, err)
    assert re.search(expected, text) and "generator.pt written by EAS" in text, text
    # a folder is named as one
    with pytest.raises(CheckpointError, match=r"is a directory, not a generator file"):
        load_generator(tmp_path)
