"""Helpers shared by the tests that run real ``nnictl`` experiments (test_strategies, test_webui).

A plain module, not a test file: ``from nnictl_helpers import ...`` (pytest puts ``tests/`` on
``sys.path``). The tiny supernet these experiments search is conftest's ``tiny_supernet`` fixture.
"""

from __future__ import annotations

import copy
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
PY = Path(sys.executable)
NNICTL = PY.with_name("nnictl")
FINISHED = ("DONE", "ERROR", "STOPPED")


def save_tiny_supernet(path: Path) -> Path:
    """A tiny (untrained) digits supernet: 8 px inputs keep every evaluation cheap."""
    import torch

    from nni_eas.checkpoint import save_supernet
    from nni_eas.spaces import OFAMobileNetV3

    torch.manual_seed(0)
    return save_supernet(path, OFAMobileNetV3("ofa_mbv3_small", num_classes=10, resolutions=[8]))


def small_evaluation(supernet: Path) -> dict:
    """``evaluation`` settings for the tiny supernet: a few images, one thread."""
    return {"supernet": str(supernet), "dataset": "digits", "calib_images": 32, "val_images": 64, "threads": 1}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rest_get(port: int, path: str, timeout: float = 10):
    """GET ``/api/v1/nni<path>`` from a running experiment's manager, decoded from JSON."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/nni{path}", timeout=timeout) as r:
        return json.loads(r.read())


def final_metrics(trials: list[dict]) -> list[dict]:
    """The final metrics of ``/trial-jobs`` records, decoded (NNI stores them JSON-in-JSON)."""
    out = []
    for t in trials:
        for m in t.get("finalMetricData") or []:
            data = json.loads(m["data"])
            out.append(json.loads(data) if isinstance(data, str) else data)
    return out


def small_nsga2_config(supernet: Path, *, max_trials: int = 2, archs_per_trial: int = 4) -> dict:
    """``strategies/ofa-nsga2.yml`` shrunk to ``max_trials`` trials on the tiny supernet."""
    config = load_config(ROOT / "strategies" / "ofa-nsga2.yml")
    args = config["tuner"]["classArgs"]
    # ceil(pop / archs) trials per generation, 2 generations: max_trials must match the plan
    pop_size = archs_per_trial * max(1, max_trials // 2)
    args.update(pop_size=pop_size, generations=2, archs_per_trial=archs_per_trial,
                evaluation=small_evaluation(supernet))
    config["maxTrialNumber"] = max_trials
    return config


def load_config(config: str | os.PathLike | Mapping) -> dict:
    """An nnictl experiment config as a dict (a deep copy), from a YAML path or a mapping.

    Relative code directories in a file are resolved against the file's folder, as nnictl does,
    so the config may be written elsewhere; a mapping's relative directories are taken from ROOT.
    """
    if isinstance(config, Mapping):
        data, base = copy.deepcopy(dict(config)), ROOT
    else:
        path = Path(config)
        data, base = yaml.safe_load(path.read_text()), path.resolve().parent
    if "trialCodeDirectory" in data:
        data["trialCodeDirectory"] = str((base / data["trialCodeDirectory"]).resolve())
    else:
        data["trialCodeDirectory"] = str(ROOT)
    for role in ("tuner", "assessor", "advisor"):
        if isinstance(data.get(role), dict) and "codeDirectory" in data[role]:
            data[role]["codeDirectory"] = str((base / data[role]["codeDirectory"]).resolve())
    return data


def nnictl_env() -> dict:
    """Environment for ``nnictl``: this venv's ``python`` first on PATH, the web UI on loopback."""
    from nni_eas.compat import node_options_for_loopback

    return {**os.environ, "PATH": f"{PY.parent}{os.pathsep}{os.environ.get('PATH', '')}",
            "NODE_OPTIONS": node_options_for_loopback(os.environ.get("NODE_OPTIONS"))}


@dataclass
class NnictlExperiment:
    id: str
    port: int
    workdir: Path                       # experimentWorkingDirectory

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def get(self, path: str):
        return rest_get(self.port, path)

    def wait(self, timeout: float = 420, poll: float = 3) -> str:
        """Polls ``/check-status`` until the experiment finishes (or ``timeout``); its status."""
        deadline = time.time() + timeout
        status = None
        while time.time() < deadline:
            status = self.get("/check-status")["status"]
            if status in FINISHED:
                break
            time.sleep(poll)
        return status

    def trials(self) -> list[dict]:
        return self.get("/trial-jobs")


@contextmanager
def nnictl_experiment(config: str | os.PathLike | Mapping, tmp_path: Path, port: int | None = None,
                      create_timeout: float = 180) -> Iterator[NnictlExperiment]:
    """``nnictl create`` the config (path or dict) with its working directory under ``tmp_path``;
    yields the running experiment and always ``nnictl stop``s it, also when the body fails."""
    data = load_config(config)
    data["experimentWorkingDirectory"] = str(tmp_path / "exp")
    name = data.get("experimentName") or "experiment"
    path = tmp_path / f"{name}.yml"
    path.write_text(yaml.safe_dump(data))
    port = port or free_port()
    env = nnictl_env()
    exp_id = None
    try:
        out = subprocess.run([str(NNICTL), "create", "--config", str(path), "--port", str(port)],
                             capture_output=True, text=True, timeout=create_timeout, env=env, cwd=ROOT)
        assert out.returncode == 0, out.stdout + out.stderr
        exp_id = rest_get(port, "/experiment")["id"]
        yield NnictlExperiment(exp_id, port, Path(data["experimentWorkingDirectory"]))
    finally:
        if exp_id is not None:
            subprocess.run([str(NNICTL), "stop", exp_id], capture_output=True, text=True, timeout=120, env=env)
        else:   # create may have started the manager and then failed: stop whatever holds the port
            subprocess.run([str(NNICTL), "stop", "--port", str(port)], capture_output=True, text=True,
                           timeout=120, env=env)
