"""Benchmark of EAS (docs: nni_eas/eas): one generator pass against one search per scenario.

For each dataset (scikit-learn digits with the trained OFA supernet of ``benchmarks/
supernet_quality.py``; CIFAR-10 from ``../shared/data`` with a supernet trained here by the
``eas_small_digits`` recipe settings, cached under ``--work``):

(a) **time to specialize** ``--timing-scenarios`` scenarios on this CPU: the generator's forward
    pass for all of them at once, budget repair per scenario, and per scenario the extraction,
    task BN recalibration and task top-1 evaluation of :func:`nni_eas.eas.specialize`;
(b) **accuracy against search**: for the first ``--scenarios`` of them, task top-1 (test split)
    of the generated arch against an NSGA-II run per scenario (``--pop`` x ``--generations``
    evaluations, the scenario's MACs budget as a constraint; each subnet evaluated exactly like
    ``specialize`` does it: task BN recalibration on the task's train images, task top-1 on the
    task's val images; the final choice is the best feasible arch by val, reported on test),
    with the time of each.

Times: "arch" is choosing the arch (the generator's pass, its share for one scenario, + repair;
NSGA-II's whole search); the per-scenario totals add extraction + BN recalibration of the chosen
arch to both. A search is cached under ``--work`` (same supernet, scenario and settings): a rerun
reports the time it took when it ran (``--no-cache`` to search again).

Scenarios: random tasks of 2-5 classes, MACs budgets spread uniformly over 10-90 % of the
space's range (seeded). The generator is trained with the defaults of
:class:`~nni_eas.eas.config.GeneratorConfig` (cached under ``--work``; its training time is
reported as the one-off cost that the per-scenario searches do not pay).

    python benchmarks/eas.py                 # digits + CIFAR-10 (about 50 min here from scratch, ~22 of
                                             # them the CIFAR-10 supernet; ~7 min with both cached)
    python benchmarks/eas.py --quick         # smoke test: few scenarios, tiny searches
    python benchmarks/eas.py --datasets digits

Writes ``benchmarks/results/eas.json`` and ``eas.png`` next to it.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "1")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from nni_eas.io import atomic_write_json, save_figure  # noqa: E402

# CIFAR-10 supernet: the eas_small_digits recipe (sandwich + task dropout, same optimiser), on
# CIFAR-10 at 24 px (resolutions 16/20/24) for three epochs of 16k images (cosine schedule over the
# three): about 7 min of one core per epoch, ~21 min in all. Its folder is named by the epoch count,
# so that a change of the recipe trains a new one instead of resuming an incompatible checkpoint.
CIFAR_RECIPE = {"data.dataset": "cifar10", "data.resolution": 24, "space_overrides.resolutions": [16, 20, 24],
                "data.limit_train": 16000, "data.limit_val": 1000, "policy.epochs": 3, "augment.flip": True,
                "name": "eas_small_cifar10_bench"}
CIFAR_SUPERNET_DIR = f"cifar10_supernet_{CIFAR_RECIPE['policy.epochs']}ep"

DATASETS = {
    # calib: task train images for BN recalibration (as specialize); val/test: cap on the images
    # per class of those splits (None: all). Digits is tiny: everything; CIFAR-10 is capped so that
    # a search of ~80 evaluations per scenario fits the time budget of this shared CPU.
    "digits": {"supernet": "runs/supernet_quality/ofa/supernet.pt", "calib_images": 500, "val_images": None,
               "test_images": None, "scenarios": 12},
    "cifar10": {"supernet": None, "calib_images": 200, "val_images": 100, "test_images": 500, "scenarios": 12},
}


def machine_info(threads: int) -> dict[str, Any]:
    return {"python": platform.python_version(), "cpu": platform.processor() or platform.machine(),
            "cores": os.cpu_count(), "torch": torch.__version__, "torch_threads": threads}


# ------------------------------------------------------------------------------------------------
# supernet, generator, scenarios
# ------------------------------------------------------------------------------------------------
def cifar_supernet(work: Path) -> Path:
    from nni_eas.training.recipe import load_recipe
    from nni_eas.training.run import train_supernet

    out = work / CIFAR_SUPERNET_DIR
    path = out / "supernet.pt"
    if not path.is_file():
        print(f"  training the CIFAR-10 supernet ({CIFAR_RECIPE}) -> {out}", flush=True)
        t0 = time.perf_counter()
        res = train_supernet(load_recipe("eas_small_digits", **CIFAR_RECIPE), out, progress=False)
        atomic_write_json(out / "bench_train.json", {"overrides": CIFAR_RECIPE, "seconds": time.perf_counter() - t0,
                                                      "val": res.metrics})
    return path


def digits_supernet() -> Path:
    """The OFA digits supernet of benchmarks/supernet_quality.py (trained here if it is missing)."""
    from nni_eas.training.run import train_supernet

    path = ROOT / DATASETS["digits"]["supernet"]
    if not path.is_file():
        print(f"  training the digits supernet (recipe ofa_small_digits) -> {path.parent}", flush=True)
        train_supernet("ofa_small_digits", path.parent, progress=False)
    return path


def supernet_summary(path: Path) -> dict[str, Any]:
    from nni_eas.checkpoint import file_sha256, load_supernet

    _, info = load_supernet(path)
    meta = dict(info.get("meta") or {})
    out = {"path": str(path.relative_to(ROOT) if path.is_relative_to(ROOT) else path), "sha256": file_sha256(path),
           "recipe": meta.get("recipe"), "epochs": meta.get("epochs"), "val": meta.get("val")}
    extra = path.parent / "bench_train.json"
    if extra.is_file():
        out["training"] = json.loads(extra.read_text())
    return out


def get_generator(supernet: Path, dataset: str, work: Path, config: dict[str, Any]):
    """Train (or reuse, when the cached one was trained with the same config on the same supernet)."""
    from nni_eas.checkpoint import file_sha256
    from nni_eas.eas.config import GeneratorConfig
    from nni_eas.eas.generator import load_generator
    from nni_eas.eas.train import train_generator

    cfg = GeneratorConfig(**config)
    out = work / f"{dataset}_generator"
    path = out / "generator.pt"
    sha = file_sha256(supernet)
    if path.is_file():
        gen, info = load_generator(path)
        meta = info["meta"]
        if meta.get("config") == cfg.model_dump(mode="json") and meta.get("supernet_sha256") == sha and "train_seconds" in meta:
            return gen, meta
    import shutil

    shutil.rmtree(out, ignore_errors=True)
    print(f"  training the generator ({cfg.steps} steps) -> {out}", flush=True)
    res = train_generator(supernet, cfg, out, dataset=dataset, resume=False, progress=False, nni_report=False)
    gen, info = load_generator(res.path)
    meta = dict(info["meta"], train_seconds=res.seconds, history=res.history)
    # keep the training time with the cached generator
    from nni_eas.eas.generator import save_generator

    save_generator(path, gen, info["class_names"], meta=meta)
    return gen, meta


def make_scenarios(n: int, num_classes: int, tables, seed: int, fractions=(0.1, 0.9), sizes=(2, 5)):
    from nni_eas.eas.scenario import Scenario, format_budget

    rng = np.random.default_rng(seed)
    lo, hi = tables["macs"].minmax()
    out = []
    for i in range(n):
        k = int(rng.integers(sizes[0], min(sizes[1], num_classes) + 1))
        cls = tuple(sorted(rng.choice(num_classes, size=k, replace=False).tolist()))
        frac = float(rng.uniform(*fractions))
        b = lo + frac * (hi - lo)
        out.append(Scenario(f"s{i}: {'+'.join(map(str, cls))} @ {format_budget('macs', b)}", cls, {"macs": b}))
    return out, [lo, hi]


def cap_split(x: torch.Tensor, y: torch.Tensor, per_class: int | None, num_classes: int):
    """At most ``per_class`` images of every class (first ones), so that task splits stay small."""
    if per_class is None:
        return x, y
    keep = torch.zeros(len(y), dtype=torch.bool)
    for c in range(num_classes):
        idx = torch.nonzero(y == c).flatten()[:per_class]
        keep[idx] = True
    return x[keep], y[keep]


# ------------------------------------------------------------------------------------------------
# the two methods
# ------------------------------------------------------------------------------------------------
def time_generator(gen, tables, scenarios, repeats: int = 50) -> dict[str, Any]:
    """Median time of the generator's forward pass for all scenarios at once, and of repair each."""
    from nni_eas.eas.specialize import generate, repair

    gen.eval()
    times = []
    with torch.no_grad():
        for _ in range(repeats + 3):
            t0 = time.perf_counter()
            masks, budgets = gen.inputs(scenarios)
            logits = gen(masks, budgets)
            genomes = logits.argmax().numpy()
            flat = [t.numpy() for t in logits.flat()]
            times.append(time.perf_counter() - t0)
    fwd = float(np.median(times[3:]))
    rep = []
    for i, s in enumerate(scenarios):
        t0 = time.perf_counter()
        repair(genomes[i], [f[i] for f in flat], tables, s.budgets)
        rep.append(time.perf_counter() - t0)
    t0 = time.perf_counter()
    out = generate(gen, tables, scenarios)
    total = time.perf_counter() - t0
    return {"forward_all_s": fwd, "repair_s": rep, "generate_all_s": total, "generated": out}


def subnet_val_top1(supernet, scenario, genome, calib, val, calib_images: int) -> float:
    """One search evaluation, exactly as :func:`nni_eas.eas.specialize.specialize` measures a
    subnet (task BN recalibration, task-restricted classifier), on the val split."""
    from nni_eas.eas.specialize import specialize

    return specialize(supernet, scenario, genome, calib, val, calib_images=calib_images)["top1"]


def nsga2_search(supernet, tables, scenario, calib, val, calib_images: int, pop: int, generations: int,
                 seed: int, cache: Path | None = None) -> dict[str, Any]:
    """NSGA-II (top-1 x MACs, the budget as a constraint) for one scenario; ``cache``: a JSON file
    of an earlier run with the same supernet, scenario and settings (reruns skip the search and
    report the time it took then)."""
    from nni_eas.search import CostEvaluator
    from nni_eas.search.config import build_driver

    if cache is not None and cache.is_file():
        out = json.loads(cache.read_text())
        return {**out, "genome": np.asarray(out["genome"], dtype=np.int64), "cached": True}
    cfg = supernet.config
    evaluated: list[tuple[np.ndarray, float]] = []

    def evaluate(genomes: np.ndarray) -> list[dict[str, float]]:
        out = []
        for g in genomes:
            acc = subnet_val_top1(supernet, scenario, g, calib, val, calib_images)
            evaluated.append((np.asarray(g).copy(), acc))
            out.append({"top1": acc})
        return out

    t0 = time.perf_counter()
    driver = build_driver({"algorithm": "nsga2", "pop_size": pop, "generations": generations, "seed": seed,
                           "objectives": ["top1", "macs"], "budgets": {"macs": float(scenario.budgets["macs"])}},
                          cfg, [CostEvaluator(cfg, num_classes=cfg.num_classes)])
    driver.run(evaluate)
    G = np.stack([g for g, _ in evaluated])
    acc = np.array([a for _, a in evaluated])
    feasible = tables["macs"].exact(G) <= scenario.budgets["macs"] * (1 + 1e-9)
    if not feasible.any():
        raise RuntimeError(f"{scenario.name}: NSGA-II found no feasible arch")
    best = int(np.flatnonzero(feasible)[np.argmax(acc[feasible])])
    seconds = time.perf_counter() - t0
    out = {"genome": G[best], "val_top1": float(acc[best]), "evaluations": len(evaluated),
           "feasible": int(feasible.sum()), "seconds": seconds}
    if cache is not None:
        cache.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_json(cache, {**out, "genome": G[best].tolist(), "scenario": scenario.to_dict()})
    return out


# ------------------------------------------------------------------------------------------------
# one dataset
# ------------------------------------------------------------------------------------------------
def run_dataset(dataset: str, args) -> dict[str, Any]:
    from nni_eas.checkpoint import load_supernet
    from nni_eas.eas.budget import cost_tables
    from nni_eas.eas.specialize import specialize
    from nni_eas.search.subnet_eval import load_eval_data

    spec = dict(DATASETS[dataset])
    supernet_path = digits_supernet() if dataset == "digits" else cifar_supernet(args.supernet_work)
    supernet, _ = load_supernet(supernet_path)
    supernet.eval()
    cfg = supernet.config
    C = cfg.num_classes
    tables = cost_tables(cfg, ["macs"], num_classes=C)
    gen, gmeta = get_generator(supernet_path, dataset, args.work, args.generator)
    res = max(cfg.resolutions)
    calib = cap_split(*load_eval_data(dataset, "train", res, cfg.in_chans), spec["calib_images"], C)
    val = cap_split(*load_eval_data(dataset, "val", res, cfg.in_chans), spec["val_images"], C)
    test = cap_split(*load_eval_data(dataset, "test", res, cfg.in_chans), spec["test_images"], C)
    scen, rng_macs = make_scenarios(args.timing_scenarios, C, tables, args.seed)
    n_cmp = min(args.scenarios or spec["scenarios"], len(scen))
    from nni_eas.checkpoint import file_sha256

    cache_dir = args.work / "nsga2_cache" / (f"{dataset}_{file_sha256(supernet_path)[:12]}_p{args.pop}g{args.generations}"
                                             f"_c{spec['calib_images']}_v{spec['val_images']}")

    # (a) timing: all scenarios through the generator, then specialize each
    tg = time_generator(gen, tables, scen)
    spec_rows = []
    for s, g in zip(scen, tg["generated"]):
        r = specialize(supernet, s, g.genome, calib, test, calib_images=spec["calib_images"])
        spec_rows.append({"top1": r["top1"], **r["seconds"]})
    sec = {k: np.array([r[k] for r in spec_rows]) for k in ("extract", "bn", "eval")}
    rep = np.array(tg["repair_s"])
    timing = {
        "scenarios": len(scen),
        "generator_forward_all_ms": tg["forward_all_s"] * 1e3,
        "repair_ms": {"median": float(np.median(rep) * 1e3), "total": float(rep.sum() * 1e3), "max": float(rep.max() * 1e3),
                      "repaired": int(sum(g.repair_steps > 0 for g in tg["generated"]))},
        "generate_all_ms": tg["generate_all_s"] * 1e3,
        **{f"{k}_s": {"median": float(np.median(v)), "total": float(v.sum())} for k, v in sec.items()},
        "extract_bn_s": {"median": float(np.median(sec["extract"] + sec["bn"])), "total": float((sec["extract"] + sec["bn"]).sum())},
    }
    t = timing
    print(f"  (a) {len(scen)} scenarios: generator pass {t['generator_forward_all_ms']:.2f} ms for all, repair median "
          f"{t['repair_ms']['median']:.2f} ms (total {t['repair_ms']['total']:.1f} ms, {t['repair_ms']['repaired']} repaired); "
          f"extract+BN median {t['extract_bn_s']['median'] * 1e3:.0f} ms (total {t['extract_bn_s']['total']:.1f} s), "
          f"eval median {t['eval_s']['median'] * 1e3:.0f} ms", flush=True)

    # (b) accuracy: generated vs NSGA-II per scenario
    rows = []
    print(f"  (b) {'scenario':<28} {'budget%':>7} {'gen top1':>8} {'nsga top1':>9} {'diff':>6} {'gen s':>7} {'nsga s':>7}",
          flush=True)
    lo, hi = rng_macs
    for i, (s, g) in enumerate(zip(scen[:n_cmp], tg["generated"])):
        gen_arch_s = tg["forward_all_s"] / len(scen) + tg["repair_s"][i]
        gen_s = gen_arch_s + spec_rows[i]["extract"] + spec_rows[i]["bn"]
        ns = nsga2_search(supernet, tables, s, calib, val, spec["calib_images"], args.pop, args.generations, args.seed + i,
                          cache=None if args.no_cache else cache_dir / f"seed{args.seed}_{i}.json")
        r = specialize(supernet, s, ns["genome"], calib, test, calib_images=spec["calib_images"])
        ns_s = ns["seconds"] + r["seconds"]["extract"] + r["seconds"]["bn"]
        row = {"scenario": s.name, "classes": list(s.classes), "budget_macs": s.budgets["macs"],
               "budget_frac": (s.budgets["macs"] - lo) / (hi - lo),
               "generator": {"top1": spec_rows[i]["top1"], "macs": g.costs["macs"], "repair_steps": g.repair_steps,
                             "arch_seconds": gen_arch_s, "seconds": gen_s},
               "nsga2": {"top1": r["top1"], "val_top1": ns["val_top1"], "macs": float(tables["macs"].exact(ns["genome"][None])[0]),
                         "evaluations": ns["evaluations"], "feasible": ns["feasible"], "arch_seconds": ns["seconds"],
                         "seconds": ns_s, "cached": bool(ns.get("cached"))}}
        rows.append(row)
        d = row["generator"]["top1"] - row["nsga2"]["top1"]
        print(f"      {s.name[:28]:<28} {row['budget_frac'] * 100:6.0f}% {row['generator']['top1']:8.3f} "
              f"{row['nsga2']['top1']:9.3f} {d * 100:+6.1f} {gen_s:7.3f} {ns_s:7.1f}", flush=True)
    diff = np.array([r["generator"]["top1"] - r["nsga2"]["top1"] for r in rows])
    tie = 0.005
    gen_t = np.array([r["generator"]["seconds"] for r in rows])
    ns_t = np.array([r["nsga2"]["seconds"] for r in rows])
    summary = {
        "generator_top1_mean": float(np.mean([r["generator"]["top1"] for r in rows])),
        "nsga2_top1_mean": float(np.mean([r["nsga2"]["top1"] for r in rows])),
        "mean_diff_points": float(diff.mean() * 100),
        "wins": int((diff > tie).sum()), "ties": int((np.abs(diff) <= tie).sum()), "losses": int((diff < -tie).sum()),
        "tie_tolerance_points": tie * 100,
        "generator_seconds_mean": float(gen_t.mean()), "nsga2_seconds_mean": float(ns_t.mean()),
        "time_ratio": float(ns_t.mean() / gen_t.mean()),
        "arch_time_ratio": float(np.mean([r["nsga2"]["arch_seconds"] for r in rows])
                                 / np.mean([r["generator"]["arch_seconds"] for r in rows])),
        "generator_budget_use_mean": float(np.mean([r["generator"]["macs"] / r["budget_macs"] for r in rows])),
        "nsga2_budget_use_mean": float(np.mean([r["nsga2"]["macs"] / r["budget_macs"] for r in rows])),
        "meets_1pt_target": bool(diff.mean() * 100 >= -1.0), "meets_100x_target": bool(ns_t.mean() / gen_t.mean() >= 100),
    }
    s = summary
    print(f"  => generator {s['generator_top1_mean']:.4f} vs NSGA-II {s['nsga2_top1_mean']:.4f}: mean diff "
          f"{s['mean_diff_points']:+.2f} pt, W/T/L {s['wins']}/{s['ties']}/{s['losses']}, time {s['generator_seconds_mean']:.3f} s "
          f"vs {s['nsga2_seconds_mean']:.1f} s per scenario incl. extraction + BN ({s['time_ratio']:.0f}x; "
          f"arch choice alone {s['arch_time_ratio']:.0f}x)", flush=True)
    gm = {k: v for k, v in gmeta.items() if k in ("steps", "val", "config", "train_seconds")}
    return {"supernet": supernet_summary(supernet_path), "generator": gm, "space": cfg.name,
            "resolutions": list(cfg.resolutions), "macs_range": rng_macs,
            "eval": {k: spec[k] for k in ("calib_images", "val_images", "test_images")},
            "search": {"algorithm": "nsga2", "pop_size": args.pop, "generations": args.generations,
                       "selection": "best feasible by task val top-1, reported on test"},
            "timing": timing, "comparison": rows, "summary": summary,
            "timing_scenarios_top1_mean": float(np.mean([r["top1"] for r in spec_rows]))}


def plot(path: Path, results: dict[str, Any]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ds = [d for d in results["datasets"]]
    fig, axes = plt.subplots(1, len(ds) + 1, figsize=(4.2 * (len(ds) + 1), 3.8), squeeze=False)
    for ax, d in zip(axes[0], ds):
        rows = results["datasets"][d]["comparison"]
        a = np.array([r["generator"]["top1"] for r in rows])
        b = np.array([r["nsga2"]["top1"] for r in rows])
        f = np.array([r["budget_frac"] for r in rows])
        sc = ax.scatter(b, a, c=f, cmap="viridis", vmin=0, vmax=1)
        lo = min(a.min(), b.min()) - 0.02
        ax.plot([lo, 1], [lo, 1], color="gray", lw=0.8, ls="--")
        ax.set(xlabel="NSGA-II per scenario: task top-1 (test)", ylabel="generator: task top-1 (test)",
               title=f"{d}: {results['datasets'][d]['summary']['mean_diff_points']:+.2f} pt mean")
        fig.colorbar(sc, ax=ax, label="budget (fraction of MACs range)")
    ax = axes[0][-1]
    names, gen_t, ns_t = [], [], []
    for d in ds:
        s = results["datasets"][d]["summary"]
        names.append(d)
        gen_t.append(s["generator_seconds_mean"])
        ns_t.append(s["nsga2_seconds_mean"])
    x = np.arange(len(names))
    ax.bar(x - 0.2, gen_t, 0.4, label="generator (pass + repair + extract + BN)")
    ax.bar(x + 0.2, ns_t, 0.4, label="NSGA-II search + extract + BN")
    ax.set_yscale("log")
    ax.set_xticks(x, names)
    ax.set_ylabel("seconds per scenario (log)")
    ax.legend(fontsize=7)
    save_figure(fig, path, dpi=100)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--datasets", nargs="+", default=["digits", "cifar10"], choices=list(DATASETS))
    p.add_argument("--scenarios", type=int, default=None, help="scenarios of the accuracy comparison "
                   "(default: 12 on each dataset)")
    p.add_argument("--no-cache", action="store_true", help="rerun the NSGA-II searches even when cached")
    p.add_argument("--timing-scenarios", type=int, default=50)
    p.add_argument("--pop", type=int, default=16)
    p.add_argument("--generations", type=int, default=5)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--generator-steps", type=int, default=None, help="override GeneratorConfig.steps (default: the default)")
    p.add_argument("--quick", action="store_true", help="smoke test: 3 scenarios, pop 6 x 2, 10 timing scenarios, 20 generator steps")
    p.add_argument("--work", type=Path, default=ROOT / "runs" / "eas_bench")
    p.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    args = p.parse_args(argv)
    args.generator = {}
    args.supernet_work = args.work          # the CIFAR-10 supernet is shared by quick and full runs
    if args.quick:
        args.scenarios, args.timing_scenarios, args.pop, args.generations = 3, 10, 6, 2
        args.generator = {"steps": 20, "val_every": 10}
        args.work = args.work / "quick"
    if args.generator_steps:
        args.generator["steps"] = args.generator_steps
    args.work.mkdir(parents=True, exist_ok=True)
    args.out.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(args.threads)
    from nni_eas.eas.config import GeneratorConfig

    results: dict[str, Any] = {"machine": machine_info(args.threads), "quick": args.quick,
                               "generator_config": GeneratorConfig(**args.generator).model_dump(mode="json"),
                               "settings": {"scenarios": args.scenarios, "timing_scenarios": args.timing_scenarios,
                                            "pop": args.pop, "generations": args.generations, "seed": args.seed,
                                            "classes_per_task": [2, 5], "budget_fractions": [0.1, 0.9]},
                               "datasets": {}}
    name = "eas_quick" if args.quick else "eas"
    for d in args.datasets:
        print(f"{d}:", flush=True)
        t0 = time.perf_counter()
        results["datasets"][d] = run_dataset(d, args)
        results["datasets"][d]["wall_s"] = time.perf_counter() - t0
        atomic_write_json(args.out / f"{name}.json", results)
    plot(args.out / f"{name}.png", results)
    print(f"\n{'dataset':<9} {'pass(all) ms':>12} {'repair ms':>9} {'extr+BN s':>9} {'gen top1':>8} {'nsga top1':>9} "
          f"{'diff pt':>7} {'W/T/L':>7} {'gen s':>6} {'nsga s':>7} {'ratio':>6} {'arch ratio':>10}")
    for d, r in results["datasets"].items():
        t, s = r["timing"], r["summary"]
        print(f"{d:<9} {t['generator_forward_all_ms']:12.2f} {t['repair_ms']['median']:9.2f} {t['extract_bn_s']['median']:9.3f} "
              f"{s['generator_top1_mean']:8.4f} {s['nsga2_top1_mean']:9.4f} {s['mean_diff_points']:+7.2f} "
              f"{s['wins']}/{s['ties']}/{s['losses']:<3} {s['generator_seconds_mean']:6.3f} {s['nsga2_seconds_mean']:7.1f} "
              f"{s['time_ratio']:6.0f}x {s['arch_time_ratio']:9.0f}x")
    print(f"wrote {args.out / (name + '.json')} and {args.out / (name + '.png')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
