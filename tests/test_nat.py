"""NAT: surrogates and adaptive switching, the archive loop on a known accuracy function,
checkpoints and resume, the adaptation policy, a real run on digits, and the NNI adapters."""

from __future__ import annotations

import json
import math
from collections import deque
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from pymoo.indicators.hv import HV

from nni_eas.config import ConfigError
from nni_eas.nat import NATConfig, NATCore, select_diverse
from nni_eas.nat.adapt import ArchiveDistribution, ArchiveDistributionPolicy, prepare_target_supernet
from nni_eas.predictors import (
    AdaptiveSurrogate,
    GPPredictor,
    RBFPredictor,
    TreeEnsemblePredictor,
    encode,
    kendall_tau,
    make_surrogate,
)
from nni_eas.search import CostEvaluator, GenomeLayout, random_genomes
from nni_eas.search.front import non_dominated
from nni_eas.spaces import load_space_config, max_arch

ROOT = Path(__file__).resolve().parents[1]
CFG = load_space_config("ofa_mbv3_small")
LAYOUT = GenomeLayout(CFG)
COST = CostEvaluator(CFG)


def known_top1(G: np.ndarray) -> np.ndarray:
    """Accuracy that grows with MACs, with a bonus for large kernels and a penalty for width 1.0:
    the best archs at a budget are not simply the largest ones, so a search has to find them."""
    G = np.atleast_2d(G)
    act = LAYOUT.active(G)
    kernel = (G[:, LAYOUT.kernel] * act).sum(1) / np.maximum(act.sum(1), 1)
    return 0.9 - 0.5 / np.log(COST(G)["macs"] / 1e5) + 0.03 * kernel - 0.01 * G[:, LAYOUT.width]


def evaluate_known(G, supernet=None):
    return [{"top1": float(v)} for v in known_top1(G)]


SMALL = {"iterations": 4, "initial_archs": 10, "archs_per_iteration": 6, "pop_size": 20, "generations": 10,
         "surrogate": {"model": "rbf"}, "adapt": {"enabled": False}, "seed": 0}


# ---------------------------------------------------------------------------------------------
# surrogates
# ---------------------------------------------------------------------------------------------
def test_surrogates_share_the_predictor_interface():
    G = random_genomes(CFG, 60, 0)
    y = known_top1(G)
    for model in (RBFPredictor(), GPPredictor(restarts=0), TreeEnsemblePredictor("rf", n_estimators=50),
                  TreeEnsemblePredictor("gbdt", n_estimators=50), make_surrogate("mlp")):
        pred = model.fit_genomes(CFG, G[:40], y[:40]).predict_genomes(CFG, G[40:])
        assert pred.shape == (20,) and np.all(np.isfinite(pred))
        assert kendall_tau(y[40:], pred) > 0.3, type(model).__name__
    # RBF interpolates what it was given (duplicates averaged)
    rbf = RBFPredictor(smoothing=0.0).fit_genomes(CFG, np.vstack([G[:30], G[:1]]), np.append(y[:30], y[0]))
    assert np.allclose(rbf.predict_genomes(CFG, G[:30]), y[:30], atol=1e-6)
    with pytest.raises(ConfigError, match="allowed: rbf, gp, rf, extra, gbdt, mlp"):
        make_surrogate("svm")
    with pytest.raises(ConfigError, match="not fitted"):
        RBFPredictor().predict(np.zeros((1, 3)))
    with pytest.raises(ConfigError, match="surrogate.model: .*unknown surrogate 'svm'"):
        from nni_eas.config import validate

        validate(NATConfig, {"surrogate": {"model": "svm"}}, "nat")


@pytest.mark.parametrize("name,fn,expected", [
    # a linear response of the genes: the RBF's linear tail is exact, trees are piecewise constant
    ("linear", lambda X, w: X @ w, "rbf"),
    # steps on three genes: axis-aligned splits are exact, kernels smear the steps
    ("steps", lambda X, w: (X[:, 0] > 0.6) + (X[:, 21] > 0.4) + 0.5 * (X[:, 42] > 0.6), "rf"),
])
def test_adaptive_switching_picks_the_best_held_out_surrogate(name, fn, expected):
    G = random_genomes(CFG, 300, 0)
    X = encode("index", CFG, G).astype(np.float64)
    y = fn(X, np.random.default_rng(1).normal(size=X.shape[1])).astype(np.float64)
    train, test = slice(0, 80), slice(80, None)
    candidates = ["rbf", "gp", "rf"]
    adaptive = AdaptiveSurrogate(CFG, candidates, folds=5).fit_genomes(CFG, G[train], y[train])
    held_out = {c: kendall_tau(y[test], make_surrogate(c).fit_genomes(CFG, G[train], y[train]).predict_genomes(CFG, G[test]))
                for c in candidates}
    assert max(held_out, key=held_out.get) == expected            # the answer is known ...
    assert adaptive.chosen == expected                             # ... and cross-validation finds it
    sel = adaptive.selection
    assert sel["chosen"] == expected and set(sel["taus"]) == set(candidates) and sel["tau"] == max(sel["taus"].values())
    assert kendall_tau(y[test], adaptive.predict_genomes(CFG, G[test])) == pytest.approx(held_out[expected])


# ---------------------------------------------------------------------------------------------
# the loop on a known accuracy function
# ---------------------------------------------------------------------------------------------
def test_archive_front_improves_over_iterations(tmp_path):
    core = NATCore(CFG, SMALL, workdir=tmp_path)
    front = core.run(evaluate_known)
    hv = core.hv_history
    assert len(hv) == SMALL["iterations"] + 1
    assert all(b >= a for a, b in zip(hv, hv[1:])) and hv[-1] > hv[0] * 1.02   # reference: top-1 0
    # NAT's archive beats random search with the same number of measurements, on the same reference
    n = len(core.archive)
    assert n == core.planned_evaluations() == 10 + 4 * 6
    rand = random_genomes(CFG, n, 7)
    F_rand = np.column_stack([-known_top1(rand), COST(rand)["macs"]])
    ind = HV(ref_point=core._ref_min)
    assert hv[-1] > ind(F_rand[non_dominated(F_rand)])
    # every iteration reports the chosen surrogate, its tau, and its tau on the archs it proposed
    for h in core.history[1:]:
        assert h["surrogate"]["chosen"] == "rbf" and -1 <= h["surrogate"]["tau"] <= 1 and h["tau_new"] is not None
    assert core.history[-1]["surrogate"]["tau"] > 0.5
    # result files in the formats of the other searches
    data = json.loads((tmp_path / "front.json").read_text())
    assert data["format"] == "nni-eas-front/1" and len(data["entries"]) == len(front) > 3
    assert {"top1", "macs", "params"} <= set(data["entries"][0]["metrics"])
    assert (tmp_path / "front.csv").is_file() and (tmp_path / "front.png").is_file() and (tmp_path / "nat.png").is_file()
    summary = json.loads((tmp_path / "nat.json").read_text())
    assert summary["done"] and summary["hypervolume"] == hv


def test_three_objectives_use_nsga3_and_budgets_hold(tmp_path):
    cfg = dict(SMALL, iterations=2, objectives=["top1", "macs", "params"], budgets={"macs": 1.5e7})
    core = NATCore(CFG, cfg)
    assert core.config.algorithm_name == "nsga3"
    front = core.run(evaluate_known)
    assert len(front) and all(e.metrics["macs"] <= 1.5e7 for e in front.entries)
    assert core.history[-1]["search"]["algorithm"] == "nsga3"


def test_select_diverse_fills_gaps_of_the_front():
    F = np.array([[0.0, 1.0], [0.1, 0.9], [0.5, 0.5], [0.52, 0.48], [1.0, 0.0], [0.6, 0.6]])
    rank = np.array([0, 0, 0, 0, 0, 1])
    assert sorted(select_diverse(F, 3, rank=rank)) == [0, 2, 4]          # spread, rank 1 left out
    covered = np.array([[0.0, 1.0], [1.0, 0.0]])
    assert select_diverse(F, 1, covered=covered, rank=rank)[0] in (2, 3)  # the middle gap first


def test_resume_continues_from_the_saved_step(tmp_path):
    full = NATCore(CFG, SMALL)
    full.run(evaluate_known)

    class Stop(Exception):
        pass

    measured: list[bytes] = []

    def evaluate(G, supernet=None):
        measured.extend(LAYOUT.keys(G))
        return evaluate_known(G)

    def stop_at(core, batch):
        if batch.iteration == 2:       # stopped after iteration 1 was checkpointed, before 2 is told
            raise Stop

    first = NATCore(CFG, SMALL, workdir=tmp_path)
    with pytest.raises(Stop):
        first.run(evaluate, callback=stop_at)
    state = json.loads((tmp_path / "nat_state.json").read_text())
    assert state["step"] == 2 and len(state["archive"]) == 16
    resumed = NATCore(CFG, SMALL, workdir=tmp_path)
    assert resumed.step == 2 and resumed.iteration == 2 and len(resumed.archive) == 16
    resumed.run(evaluate)
    assert resumed.hv_history == full.hv_history                       # as if never stopped
    assert [h["surrogate"]["chosen"] for h in resumed.history[1:]] == [h["surrogate"]["chosen"] for h in full.history[1:]]
    assert resumed.archive.to_json() == full.archive.to_json()
    assert len(measured) == len(set(measured)) == 10 + 4 * 6          # iteration 2 was not measured twice
    # a run can be extended; other settings must match the checkpoint
    longer = NATCore(CFG, dict(SMALL, iterations=5), workdir=tmp_path)
    assert longer.step == resumed.step and not longer.done
    with pytest.raises(ConfigError, match="archs_per_iteration"):
        NATCore(CFG, dict(SMALL, archs_per_iteration=3), workdir=tmp_path)


def test_failed_measurements_stay_out_of_the_front(tmp_path):
    def flaky(G, supernet=None):
        out = evaluate_known(G)
        return [None if i % 4 == 1 else r for i, r in enumerate(out)]

    core = NATCore(CFG, dict(SMALL, iterations=2), workdir=tmp_path)
    front = core.run(flaky)
    failed = [r for r in core.archive.records.values() if r.error]
    assert failed and not {tuple(r.genome) for r in failed} & {tuple(e.genome) for e in front.entries}
    logged = [json.loads(line) for line in (tmp_path / "evaluations.jsonl").read_text().splitlines()]
    assert sum(r["error"] is not None for r in logged) == len(failed)


def test_config_errors_name_the_field():
    from nni_eas.config import validate

    with pytest.raises(ConfigError, match="objectives need exactly one accuracy objective"):
        validate(NATConfig, {"objectives": ["macs", "params"]}, "nat")
    with pytest.raises(ConfigError, match="nsga3 is for 3 or more objectives"):
        validate(NATConfig, {"algorithm": "nsga3"}, "nat")
    with pytest.raises(ConfigError, match="unknown key 'adapt.epoch'"):
        validate(NATConfig, {"adapt": {"epoch": 2}}, "nat")
    with pytest.raises(ConfigError, match="no in-process evaluator"):
        NATCore(CFG, dict(SMALL, objectives=["top1", "latency_ms"]))
    c = validate(NATConfig, dict(SMALL, adapt={"epochs": 1, "warmup_epochs": 1}), "nat")
    assert c.steps()[:3] == [("adapt", 0), ("evaluate", 0), ("evaluate", 1)]
    assert c.planned_batch_sizes()[:5] == [1, 10, 6, 1, 16]


# ---------------------------------------------------------------------------------------------
# adaptation
# ---------------------------------------------------------------------------------------------
def test_archive_distribution_policy_samples_the_good_archs():
    good = random_genomes(CFG, 1, 3).repeat(5, axis=0)
    dist = ArchiveDistribution(CFG, good, smoothing=0.0)
    rng = np.random.default_rng(0)
    S = dist.sample(50, rng)
    assert LAYOUT.keys(S) == LAYOUT.keys(good[:1]) * 50                  # only the good net (inactive genes free)
    uniform = ArchiveDistribution(CFG, None)
    smoothed = ArchiveDistribution(CFG, good, smoothing=0.5)
    assert dist.entropy() < smoothed.entropy() < uniform.entropy() == pytest.approx(1.0)
    best = max_arch(CFG)
    policy = ArchiveDistributionPolicy(CFG, dist, epochs=2, subnets=3, include_largest=True, best=best)
    from nni_eas.training.policies import SubnetPolicy

    assert isinstance(policy, SubnetPolicy) and policy.total_epochs == 2 and policy.phase_at(1).subnets == 3
    archs = policy.archs(0, rng)
    assert len(archs) == 4 and archs[0][0] == best and all(role == "label" for _, role in archs)
    assert set(policy.eval_archs()) == {"max", "min", "best"}


def test_target_supernet_gets_a_new_head(tmp_path):
    from nni_eas.checkpoint import load_supernet, save_supernet
    from nni_eas.spaces import OFAMobileNetV3

    torch.manual_seed(0)
    src = save_supernet(tmp_path / "src.pt", OFAMobileNetV3("ofa_mbv3_small", num_classes=10, resolutions=[8]))
    out = prepare_target_supernet(src, [f"flower{i}" for i in range(17)], tmp_path / "t.pt")
    a, _ = load_supernet(src)
    b, info = load_supernet(out)
    assert b.config.num_classes == 17 and info["meta"]["head"] == "new" and len(info["classes"]) == 17
    assert torch.equal(a.conv_stem.weight, b.conv_stem.weight)
    same = prepare_target_supernet(src, [str(i) for i in range(10)], tmp_path / "s.pt")
    assert load_supernet(same)[1]["meta"]["head"] == "kept"


@pytest.fixture(scope="module")
def supernet(tmp_path_factory) -> Path:
    """A tiny (untrained) digits supernet: 8 px inputs keep every evaluation and training step cheap."""
    from nni_eas.checkpoint import save_supernet
    from nni_eas.spaces import OFAMobileNetV3

    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("supernet") / "supernet.pt"
    return save_supernet(path, OFAMobileNetV3("ofa_mbv3_small", num_classes=10, resolutions=[8]))


def _evaluation(supernet: Path) -> dict:
    return {"supernet": str(supernet), "dataset": "digits", "calib_images": 32, "val_images": 64, "threads": 1}


TINY = {"iterations": 1, "initial_archs": 5, "archs_per_iteration": 2, "pop_size": 8, "generations": 3,
        "surrogate": {"model": "rbf"},
        "adapt": {"epochs": 1, "warmup_epochs": 1, "limit_train": 96, "batch_size": 32, "bn_calibration_images": 32}}


def test_real_run_on_digits_with_adaptation_steps(supernet, tmp_path):
    from nni_eas.checkpoint import load_supernet

    cfg = load_supernet(supernet)[0].config
    core = NATCore(cfg, TINY, _evaluation(supernet), workdir=tmp_path)
    front = core.run()
    assert core.done and core.adaptations == 2 and len(core.archive) == 7
    assert [k for k, _ in core.plan] == ["adapt", "evaluate", "evaluate", "adapt", "reevaluate"]
    h0, h1 = core.history
    assert 0 <= h0["warmup"]["top1_max"] <= 1 and h1["adaptation"]["epochs"] == 1
    assert h1["reevaluated"] == {"archs": 7, "failed": 0}
    rec = next(iter(core.archive.records.values()))
    assert len(rec.history) == 2 and rec.measured_on == 2            # measured, then re-measured after adaptation
    adapted, info = load_supernet(tmp_path / "supernet.pt")
    source, _ = load_supernet(supernet)
    assert not torch.equal(adapted.conv_stem.weight, source.conv_stem.weight)   # the supernet was trained
    assert info["sha256"] == front.supernet_sha256 and info["meta"]["nat_iteration"] == 1
    assert sorted(p.name for p in (tmp_path / "supernets").iterdir()) == ["iter_001.pt"]   # old ones dropped
    assert all(0 <= e.metrics["top1"] <= 1 for e in front.entries)
    assert (tmp_path / "adapt" / "iter_001" / "metrics.json").is_file()


# ---------------------------------------------------------------------------------------------
# NNI adapters
# ---------------------------------------------------------------------------------------------
def test_nat_tuner_protocol_with_adaptation_trials(supernet, tmp_path):
    """nnictl's protocol, simulated: parked requests, batched measurement trials on the current
    supernet, adaptation trials; exactly ``planned_trials()`` trials, then the result files."""
    from nni_eas.nat.adapt import adapt_supernet
    from nni_eas.trial import batch_metric, evaluate_genomes
    from nni_eas.tuners import NATTuner

    nat = dict(TINY, adapt=dict(TINY["adapt"], warmup_epochs=0))
    tuner = NATTuner(evaluation=_evaluation(supernet), archs_per_trial=3, workdir=str(tmp_path / "run"), **nat)
    planned = tuner.planned_trials()
    assert planned == math.ceil(5 / 3) + 1 + 1 + math.ceil(7 / 3)
    sent: list = []
    ids = iter(range(1000))
    queue: deque = deque()

    def request(n):
        pids = [next(ids) for _ in range(n)]
        queue.extend(zip(pids, tuner.generate_multiple_parameters(pids, st_callback=lambda p, x: sent.append((p, x)))))

    request(2)
    trials, adapt_trials, supernets = 0, 0, set()
    while queue or sent:
        queue.extend(sent)
        sent.clear()
        pid, params = queue.popleft()
        trials += 1
        supernets.add(params["evaluation"]["supernet"])
        if "nat_adapt" in params:
            adapt_trials += 1
            metric = adapt_supernet(params["nat_adapt"], threads=1)
        else:
            metric = batch_metric(evaluate_genomes(params["genomes"], params["evaluation"]))
        tuner.receive_trial_result(pid, params, json.loads(json.dumps(metric)))
        tuner.trial_end(pid, True)
        request(1)
    assert trials == planned and adapt_trials == 1 and tuner.core.done
    assert len(supernets) == 2                                          # source-derived, then adapted
    front = json.loads((tmp_path / "run" / "front.json").read_text())
    assert front["format"] == "nni-eas-front/1" and front["entries"]


def test_nat_strategy_with_nas_experiment(supernet, tmp_path):
    """NasExperiment + NAT, trials in-process: measurement and adaptation trials, dict metrics."""
    from nni.nas.experiment import NasExperiment, NasExperimentConfig

    from nni_eas.spaces import OFAMobileNetV3Space
    from nni_eas.strategies import NAT, subnet_evaluator

    nat = dict(TINY, adapt=dict(TINY["adapt"], warmup_epochs=0))
    space = OFAMobileNetV3Space("ofa_mbv3_small", num_classes=10, resolutions=[8])
    strategy = NAT(workdir=tmp_path / "run", **nat)
    config = NasExperimentConfig("sequential", "simplified", "local")
    config.experiment_working_directory = str(tmp_path / "exp")
    exp = NasExperiment(space, subnet_evaluator(_evaluation(supernet)), strategy, config)
    try:
        exp.run()
    finally:
        exp.stop()
    models = list(strategy.list_models(sort=False))
    assert len(models) == strategy.core.planned_evaluations() == 5 + 2 + 1 + 7
    assert all(m.metric is not None for m in models)
    curves = [m for m in models if m.metrics.intermediates]              # the adaptation trial's learning curve
    assert len(curves) == 1 and len(curves[0].metrics.intermediates) == 1
    assert strategy.core.done and strategy.core.adaptations == 1
    assert strategy.core.history[1]["adaptation"]["epochs"] == 1
    assert len(strategy.front()) >= 1 and (tmp_path / "run" / "front.json").is_file()


def test_nnictl_config_is_consistent():
    """``strategies/nat.yml``: maxTrialNumber equals the trials its settings plan."""
    from nni_eas.config import validate

    config = yaml.safe_load((ROOT / "strategies" / "nat.yml").read_text())
    args = dict(config["tuner"]["classArgs"])
    assert config["tuner"]["className"] == "nni_eas.tuners.NATTuner"
    assert config["trialCommand"] == "python -m nni_eas.nat.trial"
    per = args.pop("archs_per_trial")
    args.pop("evaluation")
    nat = validate(NATConfig, args, "classArgs")
    trials = sum(math.ceil(n / per) for n in nat.planned_batch_sizes())
    assert config["maxTrialNumber"] == trials


@pytest.mark.slow
def test_imports_stay_lazy():
    """``import nni_eas.nat`` (the NNI-free core) pulls in neither NNI nor Lightning."""
    import subprocess
    import sys

    code = ("import sys, nni_eas.nat, nni_eas.nat.core, nni_eas.strategies, nni_eas.tuners; "
            "print(any(m == 'nni' or m.startswith(('nni.', 'pytorch_lightning')) for m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"


@pytest.mark.slow
def test_nnictl_nat_experiment_runs_to_done(supernet, tmp_path):
    """``nnictl create --config strategies/nat.yml`` (settings shrunk): measurement and adaptation
    trials run ``python -m nni_eas.nat.trial``, the experiment reaches DONE, results are written."""
    import os
    import socket
    import subprocess
    import sys
    import time
    import urllib.request

    from nni_eas.compat import node_options_for_loopback

    def get(port, path):
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/nni{path}", timeout=10) as r:
            return json.loads(r.read())

    config = yaml.safe_load((ROOT / "strategies" / "nat.yml").read_text())
    args = config["tuner"]["classArgs"]
    nat = dict(TINY, adapt=dict(TINY["adapt"], warmup_epochs=0))
    args.clear()
    args.update(archs_per_trial=4, evaluation=_evaluation(supernet), **nat)
    config["maxTrialNumber"] = 2 + 1 + 1 + 2      # ceil(5/4) + 1 + adaptation + ceil(7/4)
    config["trialCodeDirectory"] = str(ROOT)
    config["tuner"]["codeDirectory"] = str(ROOT)
    config["experimentWorkingDirectory"] = str(tmp_path / "exp")
    path = tmp_path / "nat.yml"
    path.write_text(yaml.safe_dump(config))
    py = Path(sys.executable)
    env = {**os.environ, "PATH": f"{py.parent}{os.pathsep}{os.environ.get('PATH', '')}",
           "NODE_OPTIONS": node_options_for_loopback(os.environ.get("NODE_OPTIONS"))}
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    nnictl = str(py.with_name("nnictl"))
    exp_id = None
    try:
        out = subprocess.run([nnictl, "create", "--config", str(path), "--port", str(port)], capture_output=True,
                             text=True, timeout=180, env=env, cwd=ROOT)
        assert out.returncode == 0, out.stdout + out.stderr
        exp_id = get(port, "/experiment")["id"]
        deadline, status = time.time() + 600, None
        while time.time() < deadline:
            status = get(port, "/check-status")["status"]
            if status in ("DONE", "ERROR", "STOPPED"):
                break
            time.sleep(3)
        assert status == "DONE", get(port, "/check-status")
        trials = get(port, "/trial-jobs")
        assert len(trials) == 6 and all(t["status"] == "SUCCEEDED" for t in trials)
        metrics = get(port, "/metric-data")
        intermediate = [m for m in metrics if m["type"] == "PERIODICAL"]
        assert len(intermediate) == 1                       # the adaptation trial's learning curve (1 epoch)
        run = tmp_path / "exp" / exp_id / "nni_eas"
        summary = json.loads((run / "nat.json").read_text())
        assert summary["done"] and summary["adaptations"] == 1 and (run / "front.json").is_file()
    finally:
        if exp_id is not None:
            subprocess.run([nnictl, "stop", exp_id], capture_output=True, text=True, timeout=120, env=env)
