"""NNI adapters around the one search core: a ``Strategy`` for ``NasExperiment`` and a ``Tuner``
for ``nnictl``, with the trial entry point that measures subnets of a supernet checkpoint."""

from __future__ import annotations

import json
import math
import subprocess
from collections import deque
from pathlib import Path

import pytest
from nnictl_helpers import (PY, ROOT, final_metrics, free_port, nnictl_experiment, rest_get, small_evaluation,
                            small_nsga2_config)


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


def test_tuner_runs_generations_in_batched_trials(tiny_supernet, tmp_path):
    """The nnictl protocol, simulated: requests, parked requests answered via st_callback,
    batched trials, a crashed trial; exactly ``planned_trials()`` trials, then results."""
    from nni_eas.trial import batch_metric, evaluate_genomes
    from nni_eas.tuners import NSGA2Tuner

    tuner = NSGA2Tuner(evaluation=small_evaluation(tiny_supernet), archs_per_trial=3, workdir=str(tmp_path / "run"),
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
        assert 1 <= len(params["genomes"]) <= 3 and params["evaluation"]["supernet"] == str(tiny_supernet)
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


def test_nas_experiment_sequential_engine(tiny_supernet, tmp_path):
    """NasExperiment + NSGA2 strategy, trials run in-process (no process start-up per arch)."""
    from nni.nas.experiment import NasExperiment, NasExperimentConfig

    from nni_eas.spaces import OFAMobileNetV3Space
    from nni_eas.strategies import NSGA2, subnet_evaluator

    space = OFAMobileNetV3Space("ofa_mbv3_small", num_classes=10, resolutions=[8])
    strategy = NSGA2(pop_size=4, generations=2, objectives=["top1", "params"], workdir=tmp_path / "run")
    config = NasExperimentConfig("sequential", "simplified", "local")
    config.experiment_working_directory = str(tmp_path / "exp")
    exp = NasExperiment(space, subnet_evaluator(small_evaluation(tiny_supernet)), strategy, config)
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
def test_nas_experiment_training_service_reports_dict_metrics(tiny_supernet, tmp_path):
    """The default (training-service) engine: trials in processes, NNI's manager and REST API."""
    from nni.nas.experiment import NasExperiment

    from nni_eas.spaces import OFAMobileNetV3Space
    from nni_eas.strategies import SMSEMOA, subnet_evaluator

    space = OFAMobileNetV3Space("ofa_mbv3_small", num_classes=10, resolutions=[8])
    strategy = SMSEMOA(pop_size=3, generations=2, objectives=["top1", "macs"])
    exp = NasExperiment(space, subnet_evaluator(small_evaluation(tiny_supernet)), strategy)
    exp.config.experiment_working_directory = str(tmp_path / "exp")
    exp.config.trial_concurrency = 2
    port = free_port()
    try:
        exp.run(port=port)
        assert exp.get_status() == "DONE"
        trials = rest_get(port, "/trial-jobs")
        assert len(trials) == 6 and all(t["status"] == "SUCCEEDED" for t in trials)
        metrics = final_metrics(trials)
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


def test_nnictl_experiment_runs_to_done(tiny_supernet, tmp_path):
    """``nnictl create --config strategies/ofa-nsga2.yml`` (settings shrunk), to DONE, dict metrics via REST."""
    config = small_nsga2_config(tiny_supernet, max_trials=2, archs_per_trial=4)
    with nnictl_experiment(config, tmp_path) as exp:
        status = exp.wait(timeout=420)
        assert status == "DONE", exp.get("/check-status")
        trials = exp.trials()
        assert len(trials) == 2 and all(t["status"] == "SUCCEEDED" for t in trials)
        metrics = final_metrics(trials)
        for m in metrics:
            assert {"default", "top1", "macs", "params", "archs"} <= set(m) and m["default"] == m["top1"]
            assert len(m["archs"]) == 4 and all({"top1", "macs", "params"} <= set(a) for a in m["archs"])
        run = exp.workdir / exp.id / "nni_eas"
        front = json.loads((run / "front.json").read_text())
        summary = json.loads((run / "search.json").read_text())
        assert front["entries"] and summary["generation"] == 2 and summary["n_evals"] == 8
