"""NNI adapters around the one search core: a ``Strategy`` for ``NasExperiment`` and a ``Tuner``
for ``nnictl``, with the trial entry point that measures subnets of a supernet checkpoint."""

from __future__ import annotations

import json
import math
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections import deque
from pathlib import Path

import pytest
import torch
import yaml

ROOT = Path(__file__).resolve().parents[1]
PY = Path(sys.executable)


@pytest.fixture(scope="module")
def supernet(tmp_path_factory) -> Path:
    """A tiny (untrained) digits supernet: 8 px inputs keep every evaluation cheap."""
    from nni_eas.checkpoint import save_supernet
    from nni_eas.spaces import OFAMobileNetV3

    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("supernet") / "supernet.pt"
    return save_supernet(path, OFAMobileNetV3("ofa_mbv3_small", num_classes=10, resolutions=[8]))


def _evaluation(supernet: Path) -> dict:
    return {"supernet": str(supernet), "dataset": "digits", "calib_images": 32, "val_images": 64, "threads": 1}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(port: int, path: str):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/nni{path}", timeout=10) as r:
        return json.loads(r.read())


def _final_metrics(trials: list[dict]) -> list[dict]:
    out = []
    for t in trials:
        for m in t.get("finalMetricData") or []:
            data = json.loads(m["data"])
            out.append(json.loads(data) if isinstance(data, str) else data)
    return out


def test_imports_are_lazy():
    code = ("import sys, nni_eas.strategies, nni_eas.tuners, nni_eas.trial; "
            "print(any(m == 'nni' or m.startswith('nni.') for m in sys.modules))")
    out = subprocess.run([str(PY), "-c", code], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"
    from nni_eas.strategies import NSGA2, NSGA3, SMSEMOA, RepNAS  # noqa: F401  (RepNAS export kept)
    from nni_eas.tuners import NSGA2Tuner, NSGA3Tuner, SMSEMOATuner  # noqa: F401


def test_trial_metric_always_has_default():
    from nni_eas.trial import batch_metric

    one = batch_metric([{"top1": 0.5, "macs": 1e6, "params": 1e4}])
    assert one == {"default": 0.5, "top1": 0.5, "macs": 1e6, "params": 1e4}
    many = batch_metric([{"top1": 0.5, "macs": 1.0, "params": 2.0}, {"error": "boom"}, {"top1": 0.7, "macs": 3.0, "params": 4.0}])
    assert many["default"] == 0.7 and many["macs"] == 3.0 and len(many["archs"]) == 3
    with pytest.raises(RuntimeError, match="every arch of this trial failed"):
        batch_metric([{"error": "x"}])


def test_tuner_runs_generations_in_batched_trials(supernet, tmp_path):
    """The nnictl protocol, simulated: requests, parked requests answered via st_callback,
    batched trials, a crashed trial; exactly ``planned_trials()`` trials, then results."""
    from nni_eas.trial import batch_metric, evaluate_genomes
    from nni_eas.tuners import NSGA2Tuner

    tuner = NSGA2Tuner(evaluation=_evaluation(supernet), archs_per_trial=3, workdir=str(tmp_path / "run"),
                       pop_size=4, generations=3, objectives=["top1", "macs"])
    planned = tuner.planned_trials()
    assert planned == math.ceil(4 / 3) + 2 * math.ceil(4 / 3)
    sent: list = []
    ids = iter(range(1000))
    queue: deque = deque()

    def request(n):
        pids = [next(ids) for _ in range(n)]
        got = tuner.generate_multiple_parameters(pids, st_callback=lambda pid, p: sent.append((pid, p)))
        queue.extend(zip(pids, got))

    request(2)                                              # trialConcurrency: 2
    trials, crashed = 0, None
    while queue or sent:
        queue.extend(sent)
        sent.clear()
        pid, params = queue.popleft()
        trials += 1
        assert 1 <= len(params["genomes"]) <= 3 and params["evaluation"]["supernet"] == str(supernet)
        if crashed is None:
            crashed = len(params["genomes"])
            tuner.trial_end(pid, False)                     # the trial process died: no metric
        else:
            metric = batch_metric(evaluate_genomes(params["genomes"], params["evaluation"]))
            assert metric["default"] == metric["top1"]
            tuner.receive_trial_result(pid, params, json.loads(json.dumps(metric)))
            tuner.trial_end(pid, True)
        request(1)                                          # NNI asks for one more per finished trial
    assert trials == planned and tuner.core.done
    assert tuner.core.n_failed == crashed and tuner.core.n_evals == 4 + 2 * 4
    front = json.loads((tmp_path / "run" / "front.json").read_text())
    assert front["format"] == "nni-eas-front/1" and front["entries"]
    assert all({"top1", "macs", "params"} <= set(e["metrics"]) for e in front["entries"])


def test_nas_experiment_sequential_engine(supernet, tmp_path):
    """NasExperiment + NSGA2 strategy, trials run in-process (no process start-up per arch)."""
    from nni.nas.experiment import NasExperiment, NasExperimentConfig

    from nni_eas.spaces import OFAMobileNetV3Space
    from nni_eas.strategies import NSGA2, subnet_evaluator

    space = OFAMobileNetV3Space("ofa_mbv3_small", num_classes=10, resolutions=[8])
    strategy = NSGA2(pop_size=4, generations=2, objectives=["top1", "params"], workdir=tmp_path / "run")
    config = NasExperimentConfig("sequential", "simplified", "local")
    config.experiment_working_directory = str(tmp_path / "exp")
    exp = NasExperiment(space, subnet_evaluator(_evaluation(supernet)), strategy, config)
    try:
        exp.run()
    finally:
        exp.stop()
    models = list(strategy.list_models(sort=False))
    assert len(models) == 8 and all(m.metric is not None for m in models)
    top = exp.export_top_models(top_k=2, formatter="dict")
    assert len(top) == 2 and set(top[0]) >= {"resolution", "width", "depth_0"}
    front = strategy.front()
    assert len(front) >= 1 and all(0 <= e.metrics["top1"] <= 1 for e in front.entries)
    assert (tmp_path / "run" / "front.json").is_file() and (tmp_path / "run" / "front.png").is_file()
    assert strategy.state_dict()["workdir"] == str(tmp_path / "run")


@pytest.mark.slow
def test_nas_experiment_training_service_reports_dict_metrics(supernet, tmp_path):
    """The default (training-service) engine: trials in processes, NNI's manager and REST API."""
    from nni.nas.experiment import NasExperiment

    from nni_eas.spaces import OFAMobileNetV3Space
    from nni_eas.strategies import SMSEMOA, subnet_evaluator

    space = OFAMobileNetV3Space("ofa_mbv3_small", num_classes=10, resolutions=[8])
    strategy = SMSEMOA(pop_size=3, generations=2, objectives=["top1", "macs"])
    exp = NasExperiment(space, subnet_evaluator(_evaluation(supernet)), strategy)
    exp.config.experiment_working_directory = str(tmp_path / "exp")
    exp.config.trial_concurrency = 2
    port = _free_port()
    try:
        exp.run(port=port)
        assert exp.get_status() == "DONE"
        trials = _get(port, "/trial-jobs")
        assert len(trials) == 6 and all(t["status"] == "SUCCEEDED" for t in trials)
        metrics = _final_metrics(trials)
        assert len(metrics) == 6
        for m in metrics:
            assert {"default", "top1", "macs", "params"} <= set(m) and m["default"] == m["top1"]
        top = exp.export_top_models(top_k=1, formatter="dict")
        assert len(top) == 1
    finally:
        exp.stop()
    run = Path(exp.config.experiment_working_directory) / exp.id / "nni_eas"
    front = json.loads((run / "front.json").read_text())
    assert front["entries"] and front["supernet_sha256"]


def test_nnictl_experiment_runs_to_done(supernet, tmp_path):
    """``nnictl create --config strategies/ofa-nsga2.yml`` (settings shrunk), to DONE, dict metrics via REST."""
    from nni_eas.compat import node_options_for_loopback

    config = yaml.safe_load((ROOT / "strategies" / "ofa-nsga2.yml").read_text())
    args = config["tuner"]["classArgs"]
    args.update(pop_size=4, generations=2, archs_per_trial=4, evaluation=_evaluation(supernet))
    config["maxTrialNumber"] = 2
    config["trialCodeDirectory"] = str(ROOT)
    config["tuner"]["codeDirectory"] = str(ROOT)
    config["experimentWorkingDirectory"] = str(tmp_path / "exp")
    path = tmp_path / "ofa-nsga2.yml"
    path.write_text(yaml.safe_dump(config))
    env = {**os.environ, "PATH": f"{PY.parent}{os.pathsep}{os.environ.get('PATH', '')}",
           "NODE_OPTIONS": node_options_for_loopback(os.environ.get("NODE_OPTIONS"))}
    port = _free_port()
    nnictl = str(PY.with_name("nnictl"))
    exp_id = None
    try:
        out = subprocess.run([nnictl, "create", "--config", str(path), "--port", str(port)], capture_output=True,
                             text=True, timeout=180, env=env, cwd=ROOT)
        assert out.returncode == 0, out.stdout + out.stderr
        exp_id = _get(port, "/experiment")["id"]
        deadline = time.time() + 420
        status = None
        while time.time() < deadline:
            status = _get(port, "/check-status")["status"]
            if status in ("DONE", "ERROR", "STOPPED"):
                break
            time.sleep(3)
        assert status == "DONE", _get(port, "/check-status")
        trials = _get(port, "/trial-jobs")
        assert len(trials) == 2 and all(t["status"] == "SUCCEEDED" for t in trials)
        metrics = _final_metrics(trials)
        for m in metrics:
            assert {"default", "top1", "macs", "params", "archs"} <= set(m) and m["default"] == m["top1"]
            assert len(m["archs"]) == 4 and all({"top1", "macs", "params"} <= set(a) for a in m["archs"])
        run = tmp_path / "exp" / exp_id / "nni_eas"
        front = json.loads((run / "front.json").read_text())
        summary = json.loads((run / "search.json").read_text())
        assert front["entries"] and summary["generation"] == 2 and summary["n_evals"] == 8
    finally:
        if exp_id is not None:
            subprocess.run([nnictl, "stop", exp_id], capture_output=True, text=True, timeout=120, env=env)
