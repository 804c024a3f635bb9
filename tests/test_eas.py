"""EAS: cost tables, the generator, budget repair, specialization, the pipeline core, its NNI adapters
(NasExperiment strategy, nnictl tuner) and the web UI showing its trials in a real browser."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch

from nni_eas.config import ConfigError
from nni_eas.eas import (ArchGenerator, Scenario, ScenarioSpec, cost_tables, generate,
                         load_generator, repair, resolve_scenarios, save_generator, specialize)
from nni_eas.eas.budget import budget_check
from nni_eas.encodings import arch_to_genome, genome_bounds
from nni_eas.spaces.arch import max_arch, min_arch, sample_arch
from nni_eas.spaces.config import load_space_config

SMALL = load_space_config("ofa_mbv3_small", num_classes=10, resolutions=[12, 14, 16])
DIGITS = [str(i) for i in range(10)]


def random_generator(cfg, tables, seed=0, num_classes=10):
    """A generator with random (not zero) head weights: arbitrary, confident distributions."""
    torch.manual_seed(seed)
    gen = ArchGenerator(cfg, num_classes, list(tables), {m: t.minmax() for m, t in tables.items()}, hidden=32)
    with torch.no_grad():
        gen.head.weight.normal_(0, 2.0)
        gen.head.bias.normal_(0, 2.0)
    return gen.eval()


# ---- cost tables ---------------------------------------------------------------------------------
def test_cost_tables_are_exact_and_expected_cost_is_the_expectation():
    from nni_eas.costs import CostModel
    from nni_eas.eas.generator import GeneLogits

    tables = cost_tables(SMALL, ["macs", "params"])
    cm = CostModel(SMALL)
    rng = np.random.default_rng(0)
    archs = [sample_arch(SMALL, rng) for _ in range(20)] + [min_arch(SMALL), max_arch(SMALL)]
    g = np.stack([arch_to_genome(SMALL, a) for a in archs])
    assert np.array_equal(tables["macs"].exact(g), [cm.macs(a) for a in archs])
    assert np.array_equal(tables["params"].exact(g), [cm.params(a) for a in archs])
    assert tables["macs"].minmax() == tuple(float(v) for v in cm.min_max_macs())
    # one-hot distributions: the expectation is the arch's exact cost
    gen = random_generator(SMALL, tables)
    logits = gen(*gen.inputs([Scenario("s", (0, 1), {"macs": 3e6})]))
    one_hot = logits.argmax()[0].numpy()
    n, S = SMALL.num_slots, SMALL.num_stages

    def hot(idx, size):
        return torch.nn.functional.one_hot(torch.as_tensor(idx), size).float()[None] * 60 - 30
    peaked = GeneLogits(hot(one_hot[:n], 3), hot(one_hot[n:2 * n], 3), hot(one_hot[2 * n:2 * n + S], 3),
                        hot(one_hot[2 * n + S], 3), hot(one_hot[2 * n + S + 1], 2))
    exp = tables["macs"].expected(peaked.probs()).item()
    assert exp == pytest.approx(tables["macs"].exact(one_hot[None])[0], rel=1e-5)
    # a spread distribution: the closed form equals the Monte Carlo mean of sampled archs
    soft = GeneLogits(*(t / 4 for t in (logits.k, logits.e, logits.d, logits.r, logits.w)))
    samples = soft.sample(20000, torch.Generator().manual_seed(0))[0].numpy()
    mc = tables["macs"].exact(samples).mean()
    closed = tables["macs"].expected(soft.probs()).item()
    assert closed == pytest.approx(mc, rel=0.01)


def test_latency_cost_table_from_note10(reference_dir):
    """latency_ms budgets use a latency table: the expected/exact costs are its predictions."""
    from nni_eas.eas.budget import load_tables
    from nni_eas.export.lut import load_latency_table

    cfg = load_space_config("ofa_mbv3_w1.2")
    with pytest.raises(ConfigError, match="does not cover every choice of space 'ofa_mbv3_w1.2'"):
        load_tables(cfg, ["latency_ms"], latency_table=str(reference_dir / "ofa" / "note10"))
    cfg = load_space_config("ofa_mbv3_w1.2", resolutions=[160, 176, 192, 208, 224])   # Note10's resolutions
    table = load_latency_table(reference_dir / "ofa" / "note10")
    tables = load_tables(cfg, ["latency_ms"], latency_table=str(reference_dir / "ofa" / "note10"))
    rng = np.random.default_rng(1)
    archs = [sample_arch(cfg, rng) for _ in range(10)]
    got = tables["latency_ms"].exact(np.stack([arch_to_genome(cfg, a) for a in archs]))
    assert np.allclose(got, [table.predict(a, cfg) for a in archs], rtol=1e-6)
    with pytest.raises(ConfigError, match="latency_table"):
        load_tables(cfg, ["latency_ms"])


# ---- scenarios -------------------------------------------------------------------------------------
def test_scenarios_resolve_names_percentages_and_rules():
    tables = cost_tables(SMALL, ["macs", "params"])
    lo, hi = tables["macs"].minmax()
    specs = [ScenarioSpec(name="a", classes=["0", "1"], budget={"macs": "0%"}),
             ScenarioSpec(classes=[3, 5], budget={"macs": "50%", "params": "2M"}),
             ScenarioSpec(name="all", classes="all", budget={"macs": "3.5M"})]
    from nni_eas.eas.config import ScenarioRule

    out = resolve_scenarios(specs, ScenarioRule(count=3, seed=0), DIGITS, tables)
    assert [s.classes for s in out[:3]] == [(0, 1), (3, 5), tuple(range(10))]
    assert out[0].budgets["macs"] == lo and out[1].budgets["macs"] == pytest.approx((lo + hi) / 2)
    assert out[1].budgets["params"] == 2e6 and out[2].budgets["macs"] == 3.5e6
    rule = out[3:]
    assert len(rule) == 3 and all(2 <= len(s.classes) <= 10 for s in rule)
    assert all(lo + 0.1 * (hi - lo) - 1 <= s.budgets["macs"] <= lo + 0.9 * (hi - lo) + 1 for s in rule)
    again = resolve_scenarios(specs, ScenarioRule(count=3, seed=0), DIGITS, tables)
    assert [s.to_dict() for s in again] == [s.to_dict() for s in out]


@pytest.mark.parametrize("spec, match", [
    ({"classes": ["0", "eleven"], "budget": {"macs": "2M"}}, r"unknown class 'eleven'; allowed: the names 0, 1, 2"),
    ({"classes": [12], "budget": {"macs": "2M"}}, r"unknown class 12.*indices 0\.\.9"),
    ({"classes": ["1", "2"], "budget": {"macs": "100k"}},
     r"budget\.macs: budget 100k is infeasible: the smallest subnet of the space needs macs = 1\.25M"),
    ({"classes": ["1", "2"], "budget": {"latency_ms": "1"}}, r"metric 'latency_ms' is not budgeted by this run; allowed: macs, params"),
    ({"classes": ["1", "2"], "budget": {"macs": "120%"}}, r"between 0% \(smallest subnet\) and 100%"),
    ({"classes": ["1", "2"], "budget": {"macs": "lots"}}, r"cannot parse 'lots' as a budget"),
    ({"classes": ["1"], "budget": {"macs": "2M"}}, r"a task needs at least 2 classes, got \['1'\]"),
    ({"classes": ["1", "2"], "budget": {"macs": -1}}, r"budget\.macs: a budget must be positive, got -1"),
    ({"classes": ["1", "2"], "budget": {"macs": 1000}}, r"budget 1k is infeasible"),
    ({"classes": ["1", "2"], "budget": {"flops": "2M"}}, r"metric 'flops' is not budgeted by this run; allowed: macs, params"),
])
def test_bad_scenarios_fail_with_clear_errors(spec, match):
    tables = cost_tables(SMALL, ["macs", "params"])
    with pytest.raises(ConfigError, match=match):
        resolve_scenarios([ScenarioSpec(**spec)], None, DIGITS, tables)


def test_eas_config_errors_name_the_field():
    from nni_eas.eas import eas_config

    with pytest.raises(ConfigError, match="give deployment scenarios"):
        eas_config({})

    with pytest.raises(ConfigError, match=r"generator\.metrics"):
        eas_config({"scenarios": [{"budget": {"macs": "1M"}}], "generator": {"metrics": ["flops"]}})
    with pytest.raises(ConfigError, match="samples"):
        eas_config({"scenarios": [{"budget": {"macs": "1M"}}], "generator": {"samples": 1}})


# ---- generator + repair ------------------------------------------------------------------------------
def test_generated_archs_always_meet_their_budgets_after_repair():
    tables = cost_tables(SMALL, ["macs", "params"])
    rng = np.random.default_rng(0)
    (mlo, mhi), (plo, phi) = tables["macs"].minmax(), tables["params"].minmax()
    scenarios = []
    for i in range(60):
        cls = tuple(sorted(rng.choice(10, size=int(rng.integers(2, 11)), replace=False).tolist()))
        budgets = {"macs": float(mlo + rng.uniform(0, 1) ** 3 * (mhi - mlo))}   # many tight budgets
        if i % 2:
            budgets["params"] = float(plo + rng.uniform(0, 1) ** 2 * (phi - plo))
        scenarios.append(Scenario(f"s{i}", cls, budgets))
    scenarios.append(Scenario("exactly the smallest", (0, 1), {"macs": mlo, "params": plo}))
    for seed in range(3):
        gen = random_generator(SMALL, tables, seed)
        out = generate(gen, tables, scenarios)
        genomes = np.stack([o.genome for o in out])
        for s, o, g in zip(scenarios, out, genomes):
            assert budget_check(tables, g[None], s.budgets)[0], (s, o.costs)
            for m, b in s.budgets.items():
                assert o.costs[m] <= b
        assert sum(o.repair_steps > 0 for o in out) > 10   # random generators overshoot: repair did work
        lo, hi = genome_bounds(SMALL)
        assert ((genomes >= lo) & (genomes <= hi)).all()


def test_repair_keeps_a_feasible_arch_and_prefers_likely_choices():
    tables = cost_tables(SMALL, ["macs"])
    g = arch_to_genome(SMALL, max_arch(SMALL))
    logp = [np.log(np.full(hi + 1, 1.0 / (hi + 1))) for hi in genome_bounds(SMALL)[1]]
    same, steps = repair(g, logp, tables, {"macs": tables["macs"].minmax()[1]})
    assert steps == 0 and np.array_equal(same, g)
    # make resolution very unlikely to change: repair must shrink something else first
    logp_r = [lp.copy() for lp in logp]
    r = 2 * SMALL.num_slots + SMALL.num_stages
    logp_r[r] = np.array([-50.0, -50.0, 0.0])
    budget = 0.8 * tables["macs"].exact(g[None])[0]
    fixed, steps = repair(g, logp_r, tables, {"macs": budget})
    assert steps > 0 and fixed[r] == g[r] and tables["macs"].exact(fixed[None])[0] <= budget


def test_infeasible_joint_budgets_raise():
    tables = cost_tables(SMALL, ["macs", "params"])
    g = arch_to_genome(SMALL, max_arch(SMALL))
    logp = [np.zeros(hi + 1) for hi in genome_bounds(SMALL)[1]]
    with pytest.raises(ConfigError, match="no subnet meets all budgets"):
        repair(g, logp, tables, {"macs": tables["macs"].minmax()[0] * 0.5})


def test_same_scenario_gives_the_same_arch():
    tables = cost_tables(SMALL, ["macs"])
    gen = random_generator(SMALL, tables, 4)
    s = Scenario("odd", (1, 3, 5, 7, 9), {"macs": 3e6})
    others = [Scenario(f"o{i}", (i, i + 1), {"macs": 2e6 + i * 1e6}) for i in range(7)]
    alone = generate(gen, tables, [s])[0].genome
    in_batch = generate(gen, tables, others[:3] + [s] + others[3:])[3].genome
    reloaded = generate(gen, tables, [s])[0].genome
    assert np.array_equal(alone, in_batch) and np.array_equal(alone, reloaded)


def test_generator_file_round_trip_and_bad_files(tmp_path):
    from nni_eas.checkpoint import CheckpointError

    tables = cost_tables(SMALL, ["macs", "params"])
    gen = random_generator(SMALL, tables, 2)
    path = save_generator(tmp_path / "g.pt", gen, DIGITS, meta={"steps": 3})
    back, info = load_generator(path)
    s = [Scenario("x", (2, 7), {"macs": 4e6, "params": 1e6})]
    assert np.array_equal(generate(gen, tables, s)[0].genome, generate(back, tables, s)[0].genome)
    assert info["class_names"] == DIGITS and info["meta"]["steps"] == 3
    (tmp_path / "bad.pt").write_bytes(path.read_bytes()[:100])
    with pytest.raises(CheckpointError, match="cannot read generator file"):
        load_generator(tmp_path / "bad.pt")
    with pytest.raises(CheckpointError, match="not found"):
        load_generator(tmp_path / "missing.pt")


def test_generator_training_learns_to_follow_the_budget(tiny_supernet, tmp_path, monkeypatch):
    """The learning machinery (policy gradient + budget terms) against a known accuracy function:
    with reward = log(MACs) (bigger is better) the trained generator must spend each budget, not
    more: expected cost grows with the budget and stays near it, repaired archs use most of it.
    The real reward (task cross-entropy of supernet subnets) runs in the other EAS tests."""
    from nni_eas.eas import train_generator
    from nni_eas.eas.generator import GeneratorModule

    def known_reward(self, genome, x, y, classes, n_ref=0):
        return float(np.log(self.tables["macs"].exact(np.asarray(genome)[None])[0])), 0.5

    monkeypatch.setattr(GeneratorModule, "task_reward", known_reward)
    res = train_generator(tiny_supernet, {"steps": 150, "val_every": 75, "lr": 0.01, "hidden": 32, "batch_size": 128,
                                          "images_per_scenario": 16},
                          tmp_path / "gen", progress=False, nni_report=False, threads=1)
    gen, info = load_generator(res.path)
    tables = cost_tables(gen.cfg, ["macs"])
    lo, hi = tables["macs"].minmax()
    scen = [Scenario(f"b{i}", tuple(range(10)), {"macs": b}) for i, b in enumerate(np.geomspace(lo * 1.05, hi, 5))]
    with torch.no_grad():
        probs = gen(*gen.inputs(scen)).probs()
    expected = tables["macs"].expected(probs).numpy()
    ratio = expected / np.array([s.budgets["macs"] for s in scen])
    assert np.all(np.diff(expected) > 0), expected              # more budget, more expected MACs
    assert np.all((ratio > 0.5) & (ratio < 1.6)), ratio         # ... close to the budget, both ways
    assert res.history[-1]["budget_use"] > 0.7                  # generated + repaired archs use it
    for g, s in zip(generate(gen, tables, scen), scen):
        assert g.costs["macs"] <= s.budgets["macs"]
    assert [h["step"] for h in res.history] == [75.0, 150.0]
    assert (tmp_path / "gen" / "generator_curves.png").is_file()
    assert info["meta"]["steps"] == 150


# ---- specialization --------------------------------------------------------------------------------
def test_task_restricted_subnet_logits_cover_exactly_the_task(tiny_supernet):
    from nni_eas.checkpoint import load_supernet
    from nni_eas.search.subnet_eval import load_eval_data

    supernet, _ = load_supernet(tiny_supernet)
    cfg = supernet.config
    calib = load_eval_data("digits", "train", 8, cfg.in_chans)
    test = load_eval_data("digits", "test", 8, cfg.in_chans)
    s = Scenario("3 5 8", (3, 5, 8), {"macs": 1e9})
    genome = arch_to_genome(cfg, sample_arch(cfg, np.random.default_rng(3)))
    out = specialize(supernet, s, genome, calib, test, calib_images=64)
    assert out["bn"] == "all" and out["decided_on"].startswith("no validation images")   # no val: the baseline
    model = out["model"]
    x = test[0][:20]
    logits = model(x)
    assert logits.shape == (20, 3)
    # the same subnet, unrestricted, after the same all-class BN recalibration: logits are its columns 3, 5, 8
    from nni_eas.eas.specialize import bn_calibration_set
    from nni_eas.evaluation import recalibrate_bn

    full = supernet.extract(out["arch"])
    recalibrate_bn(full, bn_calibration_set(*calib, s.classes, "all", 64), resolution=out["arch"].r, max_images=None)
    full.eval()
    with torch.no_grad():
        assert torch.allclose(logits, full(x)[:, [3, 5, 8]], atol=1e-5)
    keep = torch.isin(test[1], torch.tensor([3, 5, 8]))
    assert out["test_images"] == int(keep.sum())
    with torch.no_grad():
        pred = model(test[0][keep]).argmax(1)
    remapped = torch.tensor([{3: 0, 5: 1, 8: 2}[int(v)] for v in test[1][keep]])
    assert out["top1"] == pytest.approx(float((pred == remapped).float().mean()))
    assert out["baseline_top1"] == out["top1"]


# ---- the pipeline core -------------------------------------------------------------------------------
def small_eas_args(supernet, **over) -> dict:
    """``strategies/eas.yml``'s classArgs shrunk: a given (tiny) supernet, a few generator steps, 2 scenarios."""
    import yaml

    from nnictl_helpers import ROOT

    args = yaml.safe_load((ROOT / "strategies" / "eas.yml").read_text())["tuner"]["classArgs"]
    args.update(supernet=str(supernet), scenario_rule=None,
                scenarios=[{"name": "0 vs 1", "classes": ["0", "1"], "budget": {"macs": "10%"}},
                           {"name": "odd digits", "classes": ["1", "3", "5", "7", "9"],
                            "budget": {"macs": "60%", "params": "50%"}}])
    args["generator"].update(steps=4, val_every=2, scenarios_per_step=2, samples=2, hidden=16, batch_size=64,
                             images_per_scenario=8)
    # an untrained supernet's logits are large (BN recalibrated on random features): a relative
    # export error of 1e-5 is a few 1e-3 in absolute terms
    args["evaluation"].update(calib_images=64, latency_runs=3, candidates=3, onnx_atol=1e-2)
    args.update(over)
    return args


def test_core_runs_the_pipeline_writes_results_and_resumes(tiny_supernet, tmp_path):
    from nni_eas.eas.core import EASCore
    from nni_eas.search.front import Front

    core = EASCore(small_eas_args(tiny_supernet), tmp_path / "run", resume=False)
    assert core.stages == ["generator", "scenarios"] and core.planned_evaluations() == 3
    core.run()
    assert core.done and core.generate_seconds is not None
    rows = core.rows()
    for row, s in zip(rows, core.scenarios):
        m = row["metrics"]
        assert {"default", "top1", "macs", "params", "latency_ms", "onnx", "card"} <= set(m)
        assert m["default"] == m["top1"]
        for metric, budget in s.budgets.items():
            assert m[metric] <= budget and row["predicted"][metric] <= budget
        card = json.loads(open(m["card"]).read())
        assert card["classes"]["indices"] == list(s.classes)
        # the BN mode was decided on validation; the card says which and with what scores
        spec = card["extra"]["specialization"]
        assert m["bn"] == spec["bn"] == card["accuracy"]["bn_recalibration"]["mode"] and m["bn"] in ("all", "mix", "task")
        assert spec["val_split"] == "val" and spec["val_top1"] >= spec["val_baseline_top1"]
        assert m["val_top1"] == spec["val_top1"] and m["baseline_top1"] == spec["baseline_top1"]
        assert 0 < row["budget_use"] <= 1 + 1e-9
        # the arch is the best of the generator's candidates on val (argmax first, then samples and fills)
        gen = core.generated[core.scenarios.index(s)]
        assert m["candidates"] == len(gen["candidates"]) >= 2 and row["genome"] in gen["candidates"]
        assert m["candidate_val_top1"] >= m["argmax_val_top1"] and gen["candidates"][0] == gen["genome"]
    front = Front.load(tmp_path / "run" / "front.json")
    assert [e.classes for e in front.entries] == [[0, 1], [1, 3, 5, 7, 9]]
    assert (tmp_path / "run" / "scenarios.png").is_file()
    assert "odd digits" in core.table()
    # resume: a finished run is finished; the same results come back without running anything
    again = EASCore(small_eas_args(tiny_supernet), tmp_path / "run", resume=True)
    assert again.done and again.rows() == rows
    # the command line answers a new scenario with the trained generator and exports it
    from nni_eas.cli import main as cli

    gen_path = tmp_path / "run" / "generator" / "generator.pt"
    out = tmp_path / "cli" / "three.onnx"
    assert cli(["eas", "--supernet", str(tiny_supernet), "--generator", str(gen_path), "--classes", "3,5,8",
                "--macs", "1.5M", "--data", "digits", "--runs", "3", "-o", str(out), "--json"]) == 0
    from nni_eas.export.card import card_path

    card = json.loads(card_path(out).read_text())
    assert card["classes"]["indices"] == [3, 5, 8] and card["costs"]["macs"] <= 1.5e6
    assert cli(["eas", "--supernet", str(tiny_supernet), "--generator", str(gen_path), "--classes", "3,eleven",
                "--macs", "1.5M"]) == 2
    assert cli(["eas", "--supernet", str(tiny_supernet), "--generator", str(gen_path), "--macs", "10k"]) == 2
    # other scenarios in the same folder are refused, not mixed
    other = small_eas_args(tiny_supernet)
    other["scenarios"][0]["budget"] = {"macs": "20%"}
    with pytest.raises(ConfigError, match="other scenarios"):
        EASCore(other, tmp_path / "run", resume=True)


def test_tuner_hands_out_the_pipeline_in_order(tiny_supernet, tmp_path):
    """The nnictl protocol, simulated: the generator job first; scenario requests wait (parked)
    until it is told, then one trial per scenario, answered through st_callback."""
    from nni_eas.eas.trial import run_job
    from nni_eas.tuners import EASTuner

    tuner = EASTuner(workdir=str(tmp_path / "t"), resume=False, **small_eas_args(tiny_supernet))
    assert tuner.planned_trials() == 3
    sent = {}
    first = tuner.generate_multiple_parameters([0, 1], st_callback=lambda pid, p: sent.__setitem__(pid, p))
    assert len(first) == 1 and first[0]["eas_job"]["kind"] == "generator"      # request 1 is parked
    tuner.receive_trial_result(0, first[0], run_job(first[0]["eas_job"], progress=False, nni_report=False))
    assert list(sent) == [1] and sent[1]["eas_job"]["kind"] == "scenario"
    more = tuner.generate_multiple_parameters([2])
    assert more[0]["eas_job"]["scenario"]["name"] == "odd digits"
    for pid, params in ((1, sent[1]), (2, more[0])):
        tuner.receive_trial_result(pid, params, run_job(params["eas_job"], progress=False, nni_report=False))
    assert tuner.core.done
    rows = json.loads((tmp_path / "t" / "scenarios.json").read_text())["scenarios"]
    assert [r["class_names"] for r in rows] == [["0", "1"], ["1", "3", "5", "7", "9"]]
    assert all(0 <= r["metrics"]["top1"] <= 1 and r["metrics"]["macs"] <= r["budget"]["macs"] for r in rows)


def test_nas_experiment_with_eas_strategy(tiny_supernet, tmp_path):
    """``NasExperiment`` + the ``EAS`` strategy (sequential engine): each job is one model."""
    from nni.nas.experiment import NasExperiment, NasExperimentConfig

    from nni_eas.spaces import OFAMobileNetV3Space
    from nni_eas.strategies import EAS

    args = small_eas_args(tiny_supernet)
    strategy = EAS(workdir=tmp_path / "nas", resume=False, **args)
    space = OFAMobileNetV3Space(**strategy.space_arguments())
    config = NasExperimentConfig("sequential", "simplified", "local")
    exp = NasExperiment(space, strategy.placeholder_evaluator(), strategy, config)
    exp.run()
    assert strategy.core.done
    rows = strategy.core.rows()
    assert all(r["metrics"] and 0 <= r["metrics"]["top1"] <= 1 for r in rows)
    assert (tmp_path / "nas" / "front.json").is_file()


# ---- nnictl + the web UI in a real browser -----------------------------------------------------------
def small_eas_config(supernet) -> dict:
    from nnictl_helpers import ROOT, load_config

    config = load_config(ROOT / "strategies" / "eas.yml")
    config["tuner"]["classArgs"] = small_eas_args(supernet)
    config["maxTrialNumber"] = 3
    return config


@pytest.mark.webui
def test_eas_yml_in_nnictl_and_the_web_ui(tiny_supernet, tmp_path, request):
    """``nnictl create --config strategies/eas.yml`` (shrunk) runs to DONE; headless Chromium
    renders the web UI's trial table with every trial and our metric keys with their values."""
    from nnictl_helpers import ROOT, free_port
    from webui import find_chromium, run_experiment_and_check

    if find_chromium() is None:
        pytest.skip("chromium is not installed (Debian: apt-get install chromium, or `make sysdeps` as root)")
    png = tmp_path / "webui.png"
    keys = ["default", "top1", "macs", "params", "latency_ms", "classes", "budget"]
    try:
        table = run_experiment_and_check(small_eas_config(tiny_supernet), port=free_port(), expected_keys=keys,
                                         screenshot_path=png, workdir=tmp_path)
    finally:
        if png.is_file():
            (ROOT / "runs" / "webui").mkdir(parents=True, exist_ok=True)
            shutil.copyfile(png, ROOT / "runs" / "webui" / f"{request.node.name}.png")
    assert len(table["rows"]) == 3
    text = json.dumps(table)
    assert "1,3,5,7,9" in text and "macs<=" in text


def test_epochs_override_works_for_every_supernet_policy():
    """``epochs`` (EASConfig / ``make demo --epochs``): exact for sandwich, OFA's phases scaled
    together for progressive shrinking (each phase keeps at least one epoch)."""
    from nni_eas.eas.core import space_of_recipe
    from nni_eas.eas.trial import recipe_with_epochs
    from nni_eas.training.policies import ofa_phases

    assert recipe_with_epochs("eas_small_digits", 3).policy.epochs == 3
    cfg, names = space_of_recipe("eas_ps_small_digits")
    assert names == DIGITS and cfg.num_classes == 10
    for epochs, expected in ((None, 14), (14, 14), (30, 30)):
        r = recipe_with_epochs("eas_ps_small_digits", epochs)
        assert sum(p.epochs for p in ofa_phases(cfg, r.policy.epoch_scale)) == expected
