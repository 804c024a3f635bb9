"""Multi-objective search: operators, pymoo equivalence, OFA² reproduction, budgets, failures,
checkpoints and resume, result files and a-posteriori choices."""

from __future__ import annotations

import json

import numpy as np
import pytest
from pymoo.algorithms.moo.nsga2 import NSGA2
from pymoo.algorithms.moo.nsga3 import NSGA3
from pymoo.algorithms.moo.sms import SMSEMOA
from pymoo.indicators.hv import HV
from pymoo.optimize import minimize
from pymoo.problems import get_problem
from pymoo.util.ref_dirs import get_reference_directions

from nni_eas.config import ConfigError
from nni_eas.encodings import arch_from_ofa2, arch_to_genome, archs_to_genomes, genome_bounds, genomes_to_archs
from nni_eas.search import (
    ArchProblem,
    CostEvaluator,
    Front,
    FunctionEvaluator,
    GenomeCrossover,
    GenomeDuplicateElimination,
    GenomeLayout,
    GenomeMutation,
    GenomeRepair,
    GenomeSampling,
    PredictorEvaluator,
    SearchDriver,
    best_for_budget,
    build_driver,
    high_tradeoff_points,
    knee_point,
    pseudo_weights_choice,
)
from nni_eas.search.front import non_dominated
from nni_eas.spaces import canonical_arch, load_space_config

CFG = load_space_config("ofa_mbv3_small")


def _fake_top1(cost: CostEvaluator):
    """A smooth, arch-dependent accuracy so searches have a real trade-off (no supernet needed)."""
    def fn(G):
        macs = cost(G)["macs"]
        return {"top1": 1 - 1 / (1 + np.log(macs / 1e5)) + 0.01 * np.sin(np.asarray(G).sum(1))}
    return fn


def _evaluators(cfg=CFG):
    cost = CostEvaluator(cfg)
    return [cost, FunctionEvaluator(_fake_top1(cost), ["top1"])]


# ---------------------------------------------------------------------------------------------
# genomes and operators
# ---------------------------------------------------------------------------------------------
def test_canonical_keys_identify_networks():
    lay = GenomeLayout(CFG)
    rng = np.random.default_rng(0)
    G = lay.random(50, rng)
    archs = genomes_to_archs(CFG, G)
    C = lay.canonical(G)
    # canonical genomes are the genomes of canonical archs (inactive slots -> smallest choice)
    assert np.array_equal(C, archs_to_genomes(CFG, [canonical_arch(CFG, a) for a in archs]))
    # changing an inactive gene keeps the key, changing an active one does not
    g = G[0].copy()
    active = lay.active(g[None])[0]
    inactive_slot = int(np.flatnonzero(~active)[0]) if (~active).any() else None
    if inactive_slot is not None:
        h = g.copy()
        h[inactive_slot] = (h[inactive_slot] + 1) % 3
        assert lay.keys(h[None]) == lay.keys(g[None])
    a = int(np.flatnonzero(active)[0])
    h = g.copy()
    h[a] = (h[a] + 1) % 3
    assert lay.keys(h[None]) != lay.keys(g[None])


def test_operators_respect_the_encoding():
    problem = ArchProblem(CFG, ["top1", "macs"], _evaluators())
    lo, hi = genome_bounds(CFG)
    rng = np.random.default_rng(1)
    X = GenomeSampling(CFG, extremes=True).do(problem, 40, random_state=rng).get("X")
    assert X.shape == (40, len(lo)) and np.all((X >= lo) & (X <= hi))
    assert len(set(GenomeLayout(CFG).keys(X))) == 40            # distinct networks
    assert np.array_equal(X[1], arch_to_genome(CFG, genomes_to_archs(CFG, hi[None])[0]))  # largest subnet seeded

    parents = np.stack([X[:20], X[20:]])
    for method in ("uniform", "two_point"):
        kids = GenomeCrossover(method)._do(problem, parents, random_state=rng)
        assert kids.shape == parents.shape
        # genes are exchanged, never invented: each position holds the two parents' values
        assert np.array_equal(np.sort(kids, axis=0), np.sort(parents, axis=0))
        assert not np.array_equal(kids, parents)
    two = GenomeCrossover("two_point")._do(problem, parents, random_state=rng)
    for k in range(20):  # the positions taken from the other parent form one contiguous segment
        differ = parents[0, k] != parents[1, k]
        swapped = np.flatnonzero(differ & (two[0, k] == parents[1, k]))
        if len(swapped) > 1:
            segment = np.arange(swapped[0], swapped[-1] + 1)
            assert np.all(two[0, k, segment][differ[segment]] == parents[1, k, segment][differ[segment]])

    M = GenomeMutation(gene_prob=1.0)._do(problem, X, random_state=rng)
    multi = hi > lo
    assert np.all(M[:, multi] != X[:, multi])                   # mutation always picks another choice
    assert np.all(M[:, ~multi] == X[:, ~multi]) and np.all((M >= lo) & (M <= hi))

    R = GenomeRepair(CFG)._do(problem, X + rng.normal(0, 3, X.shape))
    assert R.dtype == np.int64 and np.all((R >= lo) & (R <= hi))


def test_duplicate_elimination_is_per_network_and_archive_aware():
    from pymoo.core.population import Population

    lay = GenomeLayout(CFG)
    G = lay.random(6, np.random.default_rng(2))
    twin = G[0].copy()
    inactive = np.flatnonzero(~lay.active(twin[None])[0])
    twin[inactive] = (twin[inactive] + 1) % 3   # same network as G[0]
    pop = Population.new("X", np.vstack([G, twin]))
    archive = set(lay.keys(G[1:2]))
    kept = GenomeDuplicateElimination(CFG, archive).do(pop)
    kept_keys = lay.keys(kept.get("X"))
    assert len(kept) == 5 and lay.keys(G[1:2])[0] not in kept_keys
    assert len(set(kept_keys)) == len(kept_keys)


# ---------------------------------------------------------------------------------------------
# the driver is pymoo: same seed, same run
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name,make,n_gen,ref", [
    ("zdt1", lambda: NSGA2(pop_size=40), 30, [1.1, 1.1]),
    ("zdt2", lambda: SMSEMOA(pop_size=30), 40, [1.1, 10.0]),
    ("dtlz2", lambda: NSGA3(ref_dirs=get_reference_directions("das-dennis", 3, n_partitions=6)), 25, [1.1, 1.1, 1.1]),
])
def test_driver_matches_pymoo_minimize(name, make, n_gen, ref):
    problem = get_problem(name) if name != "dtlz2" else get_problem(name, n_obj=3)
    res = minimize(problem, make(), ("n_gen", n_gen), seed=7)
    result = SearchDriver(problem, make(), n_gen, seed=7, ref_point=ref).run()
    pop_F = res.pop.get("F")
    pymoo_front = pop_F[non_dominated(pop_F)]
    hv = HV(ref_point=np.array(ref))
    assert result.generations == n_gen and result.n_evals == res.algorithm.evaluator.n_eval
    assert result.hv_history[-1] == pytest.approx(hv(pymoo_front), rel=1e-12)
    assert result.hv_history[-1] > 0
    assert np.allclose(np.sort(result.F, axis=0), np.sort(pymoo_front, axis=0))
    assert len(result.hv_history) == n_gen


# ---------------------------------------------------------------------------------------------
# OFA²: the published population's objectives follow from OFA's predictor and Note10 tables
# ---------------------------------------------------------------------------------------------
def test_ofa2_objectives_reproduce_published_population(reference_dir):
    from nni_eas.io import safe_pickle_load
    from nni_eas.predictors import OFAAccuracyPredictor, ofa2_error_pct

    data = list(safe_pickle_load(reference_dir / "ofa2" / "res_nsga2_results.pkl"))
    assert len(data) == 100
    pub_latency = np.array([d[0] for d in data])
    pub_error = np.array([d[1] for d in data])
    cfg10 = load_space_config("ofa_mbv3_w1.0")
    archs = [arch_from_ofa2(cfg10, d[2]) for d in data]
    predictor = OFAAccuracyPredictor.from_file(reference_dir / "ofa" / "acc_predictor.pth")
    G = archs_to_genomes(cfg10, archs)
    # OFA²: error = 100 - predict_accuracy(archs), predict_accuracy = model(features) * 100 (float32)
    err = ofa2_error_pct(predictor.raw(predictor.features(cfg10, G)))
    assert np.abs(err - pub_error).max() < 1e-4
    # the search's objective (float64 from the predicted top-1) agrees as well
    problem = ArchProblem(cfg10, ["error_pct"], [PredictorEvaluator(predictor, cfg10)])
    F, G_ = problem.encode(problem.evaluate_metrics(G))
    assert np.abs(F[:, 0] - pub_error).max() < 1e-4 and np.all(G_ <= 0)

    try:
        from nni_eas.export.lut import load_latency_table  # noqa: F401  (is the Note10 reader there?)
    except ImportError:
        pytest.skip("nni_eas.export.lut (Note10 LatencyTable) is not available: latency part not checked")
    from nni_eas.search.presets import ofa2_setting

    s = ofa2_setting(reference_dir / "ofa" / "acc_predictor.pth", reference_dir / "ofa" / "note10", exact_latency=True)
    # OFA² hard-codes OFA's w1.2 channels for latency: decode the same 46 integers in that space
    G12 = archs_to_genomes(s.cfg, [arch_from_ofa2(s.cfg, d[2]) for d in data])
    problem = ArchProblem(s.cfg, s.objectives, s.evaluators)
    metrics = problem.evaluate_metrics(G12)
    assert np.array_equal(metrics["latency_ms"], pub_latency)           # exact
    values = problem.objective_values(metrics)
    assert np.abs(values[:, 1] - pub_error).max() < 1e-4
    fast = ofa2_setting(reference_dir / "ofa" / "acc_predictor.pth", reference_dir / "ofa" / "note10")
    assert np.abs(fast.evaluators[0](G12)["latency_ms"] - pub_latency).max() < 1e-9   # vectorised gather


# ---------------------------------------------------------------------------------------------
# budgets, failures, resume
# ---------------------------------------------------------------------------------------------
def test_budget_constraint_holds_on_the_front(tmp_path):
    budget = 3e7
    d = build_driver({"pop_size": 16, "generations": 6, "objectives": ["top1", "params"], "budgets": {"macs": budget}},
                     CFG, _evaluators(), workdir=tmp_path)
    result = d.run()
    macs = result.front.metric("macs")
    assert len(result.front) > 3 and np.all(macs <= budget)
    free = build_driver({"pop_size": 16, "generations": 6, "objectives": ["top1", "params"]}, CFG, _evaluators()).run()
    assert free.front.metric("macs").max() > budget   # the budget did bind


def test_failed_evaluations_are_recorded_and_search_goes_on(tmp_path):
    cost = CostEvaluator(CFG)
    calls = []

    def evaluate(G):
        calls.append(len(G))
        out = []
        for g in G:
            if g.sum() % 4 == 0:
                out.append(None)                         # crashed trial
            elif g.sum() % 4 == 1:
                out.append({"error": "CUDA out of memory"})
            else:
                out.append({"top1": float(_fake_top1(cost)(g[None])["top1"][0])})
        return out

    d = build_driver({"pop_size": 12, "generations": 4}, CFG, [cost], workdir=tmp_path)
    assert d.problem.external_metrics == ("top1",)
    result = d.run(evaluate)
    assert result.generations == 4 and 0 < result.n_failed < result.n_evals
    assert result.n_evals == d.planned_evaluations() == sum(calls)
    logged = [json.loads(line) for line in (tmp_path / "evaluations.jsonl").read_text().splitlines()]
    assert len(logged) == result.n_evals
    assert sum(r["error"] is not None for r in logged) == result.n_failed
    failed = {tuple(r["genome"]) for r in logged if r["error"]}
    assert failed and not failed & {tuple(e.genome) for e in result.front.entries}
    with pytest.raises(ConfigError, match="need an evaluate function"):
        build_driver({"pop_size": 4, "generations": 2}, CFG, [cost]).run()


@pytest.mark.parametrize("algorithm,objectives", [("nsga2", ["top1", "macs"]), ("smsemoa", ["top1", "macs"]),
                                                  ("nsga3", ["top1", "macs", "params"])])
def test_resume_continues_exactly(tmp_path, algorithm, objectives):
    sc = {"algorithm": algorithm, "pop_size": 12, "generations": 6, "objectives": objectives, "seed": 3}
    full = build_driver(sc, CFG, _evaluators()).run()
    first = build_driver(sc, CFG, _evaluators(), workdir=tmp_path)
    for _ in range(3):
        first.tell(first.ask())
    assert (tmp_path / "search_state.npz").is_file()
    resumed = build_driver(sc, CFG, _evaluators(), workdir=tmp_path)
    assert resumed.generation == 3
    result = resumed.run()
    assert result.hv_history == full.hv_history
    assert np.array_equal(np.sort(result.F, axis=0), np.sort(full.F, axis=0))


def test_crash_mid_generation_reuses_logged_evaluations(tmp_path):
    cost = CostEvaluator(CFG)
    seen = []

    def evaluate(G):
        seen.extend(GenomeLayout(CFG).keys(G))
        return [{"top1": float(v)} for v in _fake_top1(cost)(G)["top1"]]

    sc = {"pop_size": 10, "generations": 3, "seed": 1}
    d = build_driver(sc, CFG, [cost], workdir=tmp_path)
    d.tell(_run_batch(d, evaluate))
    batch = d.ask()                                 # generation 2: half measured, then a crash
    half = sorted(batch.pending)[:5]
    for i, r in zip(half, evaluate(batch.genomes[half])):
        d.report(batch, i, r)
    del d
    n_before = len(seen)
    resumed = build_driver(sc, CFG, [cost], workdir=tmp_path)
    assert resumed.generation == 1
    again = resumed.ask()
    assert np.array_equal(again.genomes, batch.genomes)          # same offspring (RNG restored)
    assert len(again.pending) == len(batch.genomes) - 5           # the logged five are cache hits
    idx = sorted(again.pending)
    for i, r in zip(idx, evaluate(again.genomes[idx])):
        resumed.report(again, i, r)
    resumed.tell(again)
    result = resumed.run(evaluate)
    assert result.generations == 3
    assert len(seen) - n_before == resumed.planned_evaluations() - 10 - 5
    assert len(set(seen)) == len(seen)                          # nothing measured twice


def _run_batch(d, evaluate):
    b = d.ask()
    idx = sorted(b.pending)
    for i, r in zip(idx, evaluate(b.genomes[idx])):
        d.report(b, i, r)
    return b


# ---------------------------------------------------------------------------------------------
# results a person uses
# ---------------------------------------------------------------------------------------------
def test_result_files_and_a_posteriori_choices(tmp_path):
    d = build_driver({"pop_size": 16, "generations": 5, "objectives": ["top1", "macs"]}, CFG, _evaluators(),
                     workdir=tmp_path, meta={"supernet_sha256": "abc"})
    result = d.run()
    data = json.loads((tmp_path / "front.json").read_text())
    assert data["format"] == "nni-eas-front/1" and data["objectives"] == ["top1", "macs"]
    assert data["supernet_sha256"] == "abc" and data["space"]["name"] == CFG.name
    entry = data["entries"][0]
    assert set(entry) == {"arch", "genome", "metrics", "classes"}
    assert set(entry["arch"]) == {"ks", "e", "d", "r", "w"} and {"top1", "macs", "params"} <= set(entry["metrics"])
    assert genomes_to_archs(CFG, np.array([entry["genome"]]))[0].to_dict() == entry["arch"]
    csv_rows = (tmp_path / "front.csv").read_text().splitlines()
    assert len(csv_rows) == len(data["entries"]) + 1 and csv_rows[0].startswith("index,")
    assert (tmp_path / "front.png").stat().st_size > 10_000
    summary = json.loads((tmp_path / "search.json").read_text())
    assert len(summary["hypervolume"]) == 5 and summary["hypervolume"] == sorted(summary["hypervolume"])

    front = Front.load(tmp_path)
    V = front.values()
    assert np.all(np.diff(front.minimised()[:, 0]) >= 0) and len(non_dominated(front.minimised())) == len(front)
    budget = float(np.median(V[:, 1]))
    best = front.best_for_budget(macs=budget)
    ok = V[:, 1] <= budget
    assert best.metrics["macs"] <= budget and best.metrics["top1"] == V[ok, 0].max()
    with pytest.raises(ConfigError, match="no arch of the front fits"):
        front.best_for_budget(macs=1.0)
    with pytest.raises(ConfigError, match="not one of the front's objectives"):
        best_for_budget(front, "latency_ms", macs=budget)
    assert front.knee() in front.entries
    assert pseudo_weights_choice(front.minimised(), [1, 0]) == int(np.argmax(V[:, 0]))   # accuracy only
    assert pseudo_weights_choice(front.minimised(), [0, 1]) == int(np.argmin(V[:, 1]))   # MACs only
    assert all(0 <= i < len(front) for i in high_tradeoff_points(front.minimised()))


def test_knee_point_of_a_known_front():
    x = np.linspace(0, 1, 41)
    F = np.column_stack([x, (1 - np.sqrt(x)) ** 2])   # convex, knee at x = 0.25
    assert abs(x[knee_point(F)] - 0.25) < 0.03
    line = np.column_stack([x, 1 - x])                  # no knee: any point of the line is fine
    assert 0 <= knee_point(line) < len(x)


def test_config_errors_name_the_field():
    with pytest.raises(ConfigError, match="known objectives: top1, error_pct"):
        build_driver({"objectives": ["accuracy"]}, CFG)
    with pytest.raises(ConfigError, match="nsga3 is for 3 or more objectives"):
        build_driver({"algorithm": "nsga3", "objectives": ["top1", "macs"]}, CFG, _evaluators())
    with pytest.raises(ConfigError, match="algorithm"):
        build_driver({"algorithm": "moead"}, CFG)
    with pytest.raises(ConfigError, match="allowed keys: max, min"):
        build_driver({"budgets": {"macs": {"upto": 3}}}, CFG)


def test_supernet_evaluated_in_process(tmp_path):
    """The whole loop on a real (tiny, untrained) supernet: BN recalibration, cached archive, front."""
    import torch

    from nni_eas.checkpoint import save_supernet
    from nni_eas.search import EvaluationConfig, SubnetEvaluation
    from nni_eas.spaces import OFAMobileNetV3

    torch.manual_seed(0)
    path = save_supernet(tmp_path / "supernet.pt", OFAMobileNetV3("ofa_mbv3_small", num_classes=10, resolutions=[8, 12]))
    ev = SubnetEvaluation(EvaluationConfig(supernet=str(path), calib_images=64, val_images=64, threads=1))
    d = build_driver({"pop_size": 4, "generations": 2}, ev.cfg, [CostEvaluator(ev.cfg)], workdir=tmp_path / "run",
                     meta={"supernet_sha256": ev.sha256})
    result = d.run(ev.evaluate)
    assert result.n_evals == 8 and result.n_failed == 0
    assert all(0 <= e.metrics["top1"] <= 1 for e in result.front.entries)
    assert json.loads((tmp_path / "run" / "front.json").read_text())["supernet_sha256"] == ev.sha256
