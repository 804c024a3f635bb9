"""Benchmark of the multi-objective search (see docs/search.md).

Part A, OFA²'s setting: OFA's published accuracy predictor + Samsung Note10 latency tables,
population 100, 1000 generations, NSGA-II and SMS-EMOA, several seeds. Hypervolume with the
reference point (100 ms, 25 % error) against OFA²'s published final population, and wall time
per run on this CPU (OFA² reports ~40 s per run on a GPU).

Part B (needs ``--supernet``, a trained supernet checkpoint): NSGA-II on real measurements
(BN-recalibrated top-1 on the validation split, analytic MACs) against random search with the
same number of evaluations; plus an MLP accuracy predictor fitted on the random-search
measurements, with Kendall's tau on held-out archs.

    python benchmarks/search.py                          # part A (about 1-2 minutes per run here)
    python benchmarks/search.py --supernet sn.pt         # parts A and B
    python benchmarks/search.py --quick                  # a smoke run (few generations)

Writes ``benchmarks/results/search.json`` and PNG plots next to it.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pymoo.indicators.hv import HV  # noqa: E402

from nni_eas.io import atomic_write_json, safe_pickle_load, save_figure  # noqa: E402
from nni_eas.search import build_driver  # noqa: E402
from nni_eas.search.front import non_dominated  # noqa: E402
from nni_eas.search.plot import plot_fronts  # noqa: E402
from nni_eas.search.presets import OFA2_REF_POINT, ofa2_setting  # noqa: E402

REFERENCE = Path(os.environ.get("NNI_EAS_SHARED", ROOT.parent / "shared")) / "reference"


def part_a(args) -> dict:
    setting = ofa2_setting(REFERENCE / "ofa" / "acc_predictor.pth", REFERENCE / "ofa" / "note10")
    published = np.array([[d[0], d[1]] for d in safe_pickle_load(REFERENCE / "ofa2" / "res_nsga2_results.pkl")])
    hv = HV(ref_point=np.array(OFA2_REF_POINT))
    published_hv = float(hv(published[non_dominated(published)]))
    runs, best = [], {}
    for algorithm in args.algorithms:
        for seed in args.seeds:
            t0 = time.perf_counter()
            driver = build_driver({"algorithm": algorithm, "pop_size": args.pop, "generations": args.generations,
                                   "objectives": setting.objectives, "ref_point": list(OFA2_REF_POINT), "seed": seed},
                                  setting.cfg, setting.evaluators)
            result = driver.run()
            seconds = time.perf_counter() - t0
            V = driver.to_objective_values(result.F)
            run = {"algorithm": algorithm, "seed": seed, "hypervolume": result.hv_history[-1],
                   "hv_minus_published": result.hv_history[-1] - published_hv, "seconds": round(seconds, 2),
                   "evaluations": result.n_evals, "front_size": len(V),
                   "hv_at": {g: result.hv_history[g - 1] for g in (1, 10, 100, 300, 1000) if g <= len(result.hv_history)}}
            runs.append(run)
            print(f"  {algorithm:8s} seed {seed}: HV {run['hypervolume']:.2f} (published {published_hv:.2f}, "
                  f"{run['hv_minus_published']:+.2f})  {seconds:.1f} s", flush=True)
            if algorithm not in best or run["hypervolume"] > best[algorithm][0]["hypervolume"]:
                best[algorithm] = (run, V, driver.front_history, result.hv_history)
    out = args.out
    others = {"OFA² published": published}
    for algorithm, (run, V, history, _) in best.items():
        plot_fronts(out / f"search_ofa2_{algorithm}.png", setting.objectives, history, final=V, others=others,
                    title=f"OFA² setting, {algorithm} seed {run['seed']}: HV {run['hypervolume']:.1f} vs published {published_hv:.1f}")
    _plot_hv(out / "search_ofa2_hv.png", {a: b[3] for a, b in best.items()}, published_hv)
    summary = {}
    for algorithm in args.algorithms:
        rs = [r for r in runs if r["algorithm"] == algorithm]
        summary[algorithm] = {"hv_mean": float(np.mean([r["hypervolume"] for r in rs])),
                              "hv_min": float(np.min([r["hypervolume"] for r in rs])),
                              "seconds_mean": float(np.mean([r["seconds"] for r in rs])),
                              "runs_at_or_above_published": sum(r["hypervolume"] >= published_hv for r in rs),
                              "runs": len(rs)}
    return {"setting": {"space": "ofa_mbv3_w1.2 @ 160..224 step 16", "objectives": setting.objectives,
                        "predictor": "OFA tutorial acc_predictor.pth", "latency": "OFA Samsung Note10 LUT",
                        "pop_size": args.pop, "generations": args.generations, "ref_point": list(OFA2_REF_POINT)},
            "published_hypervolume": published_hv, "runs": runs, "summary": summary}


def _plot_hv(path: Path, histories: dict, published: float) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4), dpi=110)
    for name, h in histories.items():
        ax.plot(np.arange(1, len(h) + 1), h, label=name)
    ax.axhline(published, color="black", ls="--", lw=1, label="OFA² published population")
    ax.set_xscale("log")
    ax.set_xlabel("generation")
    ax.set_ylabel("hypervolume (ref 100 ms, 25 %)")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    save_figure(fig, path, dpi=110)


def part_b(args) -> dict:
    from nni_eas.predictors import MLPPredictor, regression_scores
    from nni_eas.search import CostEvaluator, SubnetEvaluation
    from nni_eas.search.genome import GenomeLayout

    ev = SubnetEvaluation({"supernet": str(args.supernet), "dataset": args.dataset, "calib_images": args.calib_images,
                           "threads": args.threads})
    cfg = ev.cfg
    budget = args.b_pop * args.b_generations
    t0 = time.perf_counter()
    driver = build_driver({"algorithm": "nsga2", "pop_size": args.b_pop, "generations": args.b_generations,
                           "objectives": ["top1", "macs"], "seed": 0}, cfg, [CostEvaluator(cfg)],
                          workdir=args.out / "search_supernet_run", resume=False, meta={"supernet_sha256": ev.sha256})
    front = driver.run(ev.evaluate).front
    t_search = time.perf_counter() - t0
    lay = GenomeLayout(cfg)
    rng = np.random.default_rng(1)
    G, seen = [], set()
    while len(G) < budget:
        g = lay.random(1, rng)
        k = lay.keys(g)[0]
        if k not in seen:
            seen.add(k)
            G.append(g[0])
    G = np.stack(G)
    t0 = time.perf_counter()
    res = ev.evaluate(G)
    t_random = time.perf_counter() - t0
    ok = np.array(["top1" in r for r in res])
    top1 = np.array([r.get("top1", np.nan) for r in res])
    macs = CostEvaluator(cfg)(G)["macs"]
    macs_max = CostEvaluator(cfg).model.min_max_macs()[1]
    ref = np.array([0.0, 1.05 * macs_max])                  # (-top1, macs) minimised
    hv = HV(ref_point=ref)
    Fr = np.column_stack([-top1[ok], macs[ok]])
    rand_front = Fr[non_dominated(Fr)]
    Fs = np.column_stack([-front.metric("top1"), front.metric("macs")])
    hv_search, hv_random = float(hv(Fs)), float(hv(rand_front))
    n_train = int(0.7 * ok.sum())
    Gok, yok = G[ok], top1[ok]
    pred = MLPPredictor(hidden=(128, 128), epochs=200).fit_genomes(cfg, Gok[:n_train], yok[:n_train])
    scores = regression_scores(yok[n_train:], pred.predict_genomes(cfg, Gok[n_train:]))
    plot_fronts(args.out / "search_supernet.png", ["top1", "macs"], driver.front_history,
                final=front.values(), others={"random search (same budget)": np.column_stack([top1[ok], macs[ok]])},
                title=f"NSGA-II vs random search, {budget} evaluations each")
    print(f"  NSGA-II HV {hv_search:.4g} ({t_search:.0f} s)  random HV {hv_random:.4g} ({t_random:.0f} s); "
          f"MLP predictor Kendall tau {scores['kendall_tau']:.3f} on {scores['n']} held-out archs", flush=True)
    return {"supernet": str(args.supernet), "supernet_sha256": ev.sha256, "dataset": args.dataset,
            "evaluations": budget, "ref_point": {"top1": 0.0, "macs": float(ref[1])},
            "nsga2": {"hypervolume": hv_search, "front_size": len(front), "seconds": round(t_search, 1)},
            "random": {"hypervolume": hv_random, "front_size": len(rand_front), "seconds": round(t_random, 1)},
            "predictor": {"model": "MLP 128-128, onehot features", "train": n_train, **scores}}


def part_c(args) -> dict:
    """What one evaluation costs as an nnictl trial: a fresh ``python -m nni_eas.trial`` process
    (imports torch and NNI, loads supernet and data) measuring 1 arch, then 8 archs."""
    import subprocess

    import torch

    from nni_eas.checkpoint import load_supernet, save_supernet
    from nni_eas.search.genome import GenomeLayout
    from nni_eas.spaces import OFAMobileNetV3

    path = args.supernet
    if path is None:
        path = args.out / ".trial_cost_supernet.pt"
        torch.manual_seed(0)
        save_supernet(path, OFAMobileNetV3("ofa_mbv3_small", num_classes=10))
    cfg = load_supernet(path)[0].config
    G = GenomeLayout(cfg).random(8, np.random.default_rng(0))
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    times = {}
    for n in (1, 8):
        # as under nnictl, the process imports NNI too (the trial asks NNI for its parameters)
        runner = ("import nni, runpy, sys; sys.argv = ['nni_eas.trial'] + sys.argv[1:]; "
                  "runpy.run_module('nni_eas.trial', run_name='__main__')")
        cmd = [sys.executable, "-c", runner, "--supernet", str(path), "--dataset", args.dataset,
               "--set", f"calib_images={args.calib_images}", "--set", f"threads={args.threads}"]
        for g in G[:n]:
            cmd += ["--genome", ",".join(map(str, g))]
        best = []
        for _ in range(args.trial_repeats):
            t0 = time.perf_counter()
            subprocess.run(cmd, check=True, capture_output=True, env=env, cwd=ROOT)
            best.append(time.perf_counter() - t0)
        times[n] = float(np.median(best))
    per_arch = (times[8] - times[1]) / 7
    startup = times[1] - per_arch
    print(f"  trial process: {times[1]:.1f} s for 1 arch, {times[8]:.1f} s for 8 -> start-up {startup:.1f} s, "
          f"{per_arch:.2f} s per arch", flush=True)
    if path == args.out / ".trial_cost_supernet.pt":
        path.unlink()
    return {"one_arch_s": times[1], "eight_archs_s": times[8], "startup_s": startup, "per_arch_s": per_arch,
            "calib_images": args.calib_images, "supernet": "given" if args.supernet else "untrained ofa_mbv3_small",
            "repeats": args.trial_repeats}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--algorithms", nargs="+", default=["nsga2", "smsemoa"])
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    p.add_argument("--pop", type=int, default=100)
    p.add_argument("--generations", type=int, default=1000)
    p.add_argument("--quick", action="store_true", help="30 generations, one seed (smoke test)")
    p.add_argument("--supernet", type=Path, help="trained supernet checkpoint for part B (skipped without)")
    p.add_argument("--dataset", default="digits")
    p.add_argument("--b-pop", type=int, default=16)
    p.add_argument("--b-generations", type=int, default=8)
    p.add_argument("--calib-images", type=int, default=500)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--trial-repeats", type=int, default=3)
    p.add_argument("--skip-trial-cost", action="store_true")
    p.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    args = p.parse_args(argv)
    if args.quick:
        args.generations, args.seeds = 30, args.seeds[:1]
    args.out.mkdir(parents=True, exist_ok=True)
    import torch

    torch.set_num_threads(args.threads)
    print(f"Part A: OFA² setting, pop {args.pop}, {args.generations} generations, seeds {args.seeds}")
    results = {"machine": {"python": platform.python_version(), "cpu": platform.processor() or platform.machine(),
                           "cores": os.cpu_count(), "torch_threads": args.threads},
               "ofa2": part_a(args)}
    if args.supernet:
        print(f"Part B: supernet {args.supernet}")
        results["supernet"] = part_b(args)
    else:
        results["supernet"] = {"skipped": "no --supernet given: pass a trained supernet checkpoint "
                                          "(nni_eas.checkpoint.save_supernet) to compare against random search"}
    if not args.skip_trial_cost:
        print("Part C: cost of one evaluation in a trial process")
        results["trial_cost"] = part_c(args)
    a = results["ofa2"]
    print("\n| algorithm | runs | HV mean | HV min | published HV | runs >= published | s / run |")
    print("|---|---|---|---|---|---|---|")
    for algorithm, s in a["summary"].items():
        print(f"| {algorithm} | {s['runs']} | {s['hv_mean']:.2f} | {s['hv_min']:.2f} | {a['published_hypervolume']:.2f} "
              f"| {s['runs_at_or_above_published']} | {s['seconds_mean']:.1f} |")
    if "nsga2" in results["supernet"]:
        b = results["supernet"]
        print(f"\nsupernet: NSGA-II HV {b['nsga2']['hypervolume']:.4g} vs random {b['random']['hypervolume']:.4g} "
              f"({b['evaluations']} evaluations each); predictor Kendall tau {b['predictor']['kendall_tau']:.3f}")
    atomic_write_json(args.out / "search.json", results)
    print(f"\nwrote {args.out / 'search.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
