"""Benchmark of EAS (docs/eas.md): does the generator specialize, and do budgets matter?

Supernets: the tiny small-image space trained by ``eas_tiny_digits`` (digits) and
``eas_tiny_cifar10`` (CIFAR-10 from ``../shared/data``, 32 px, CPU-sized), cached under
``--work``. Scenarios: ``--tasks`` random tasks of 2-5 classes, each at every MACs budget of
``--fractions`` of the space's range. Every arch is scored the same way, on the task's
*validation* images (inherited weights, BN recalibrated on all-class training images,
task-restricted logits); the choice is made on val and reported on test too. Per scenario:

* ``argmax``: the generator's most likely arch, repaired into the budget (one pass for all);
* ``rerank``: the generator's proposals (+ budget fill, + same-task pooling) scored on val, the
  best kept (:mod:`nni_eas.eas.propose`; the product's default);
* ``nsga2``: an NSGA-II search per scenario, ``--pop`` x ``--generations`` (300) evaluations;
* ``random``: the best of ``--random`` (100) random archs under the budget;

with budget use (MACs / budget), evaluations and time to choose; a monotonicity check (for one
task, a larger budget never scores lower on val); and, on digits, task dropout vs plain training:
``--td-tasks`` random tasks, the same archs of two supernets trained alike but for task dropout.

    python benchmarks/eas.py                 # digits + CIFAR-10
    python benchmarks/eas.py --quick         # smoke test
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

# Supernets: the tiny small-image space (search_spaces/ofa_mbv3_tiny.yml) trained by its recipes,
# cached under --work (a changed recipe trains a new one: the folder is named by recipe and overrides).
SUPERNETS = {
    "digits": ("eas_tiny_digits", {}),
    "digits_no_task_dropout": ("eas_tiny_digits", {"task_dropout.rate": 0.0}),
    "cifar10": ("eas_tiny_cifar10", {}),
}

DATASETS = {
    # calib: all-class train images for BN recalibration; val/test: cap on the images per class of
    # those splits (None: all). CIFAR-10 is capped so that 300 evaluations per scenario fit the CPU.
    "digits": {"supernet": "digits", "calib_images": 500, "val_images": None, "test_images": None},
    "cifar10": {"supernet": "cifar10", "calib_images": 500, "val_images": 100, "test_images": 300},
}


def machine_info(threads: int) -> dict[str, Any]:
    return {"python": platform.python_version(), "cpu": platform.processor() or platform.machine(),
            "cores": os.cpu_count(), "torch": torch.__version__, "torch_threads": threads}


# ------------------------------------------------------------------------------------------------
# supernets, generators, scenarios
# ------------------------------------------------------------------------------------------------
def get_supernet(key: str, work: Path) -> Path:
    """Train (once) and cache the supernet ``key`` of :data:`SUPERNETS`."""
    from nni_eas.training.recipe import load_recipe
    from nni_eas.training.run import train_supernet

    recipe, overrides = SUPERNETS[key]
    tag = "_".join(f"{k.replace('.', '-')}{v}" for k, v in overrides.items())
    out = work / f"{key}_{recipe}{'_' + tag if tag else ''}"
    path = out / "supernet.pt"
    if not path.is_file():
        print(f"  training supernet {key} (recipe {recipe} {overrides or ''}) -> {out}", flush=True)
        t0 = time.perf_counter()
        res = train_supernet(load_recipe(recipe, **overrides), out, progress=False)
        atomic_write_json(out / "bench_train.json", {"recipe": recipe, "overrides": overrides,
                                                      "seconds": time.perf_counter() - t0, "val": res.metrics})
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


def make_scenarios(tasks: int, fractions: list[float], num_classes: int, tables, seed: int, sizes=(2, 5)):
    """``tasks`` random tasks of 2-5 classes, each with a MACs budget at every fraction of the
    space's range (so that budgets can be compared within a task)."""
    from nni_eas.eas.scenario import Scenario, format_budget

    rng = np.random.default_rng(seed)
    lo, hi = tables["macs"].minmax()
    out = []
    for t in range(tasks):
        k = int(rng.integers(sizes[0], min(sizes[1], num_classes) + 1))
        cls = tuple(sorted(rng.choice(num_classes, size=k, replace=False).tolist()))
        for f in fractions:
            b = lo + f * (hi - lo)
            out.append(Scenario(f"t{t}: {'+'.join(map(str, cls))} @ {format_budget('macs', b)}", cls, {"macs": b}))
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
# how an arch is scored (one protocol for every method: the decision is made on val)
# ------------------------------------------------------------------------------------------------
class Scorer:
    """Task top-1 of genomes with inherited weights: BN recalibrated on all-class training images,
    task-restricted logits (the plain baseline of specialization); ``split``: val or test."""

    def __init__(self, supernet, calib, data, calib_images: int):
        self.supernet, self.calib, self.data, self.calib_images = supernet, calib, data, calib_images
        self.calls = 0

    def __call__(self, scenario, genomes: np.ndarray) -> np.ndarray:
        from nni_eas.search.evaluators import SupernetEvaluator

        ev = SupernetEvaluator(self.supernet, self.calib, self.data, classes=list(scenario.classes),
                               calib_images=self.calib_images)
        self.calls += len(genomes)
        return ev(np.atleast_2d(np.asarray(genomes, dtype=np.int64)))["top1"]


def method_generator(gen, tables, scenarios, val_score, samples: int) -> dict[str, Any]:
    """The generator: one pass for all scenarios; ``argmax`` (+repair) alone, and re-ranked:
    proposals (+ fill, + same-task pooling) scored on val, the best kept."""
    from nni_eas.eas.propose import choose, pool_by_task, propose
    from nni_eas.eas.specialize import generate

    generate(gen, tables, scenarios[:1])                   # warm-up
    t0 = time.perf_counter()
    arg = generate(gen, tables, scenarios)
    t_arg = time.perf_counter() - t0
    t0 = time.perf_counter()
    props = pool_by_task(scenarios, propose(gen, tables, scenarios, samples=samples), tables)
    t_prop = time.perf_counter() - t0
    out = {"argmax": [], "rerank": []}
    for i, s in enumerate(scenarios):
        t0 = time.perf_counter()
        k, scores = choose(props[i].genomes, lambda g: val_score(s, g), prefer=tables["macs"].exact(
            np.asarray(props[i].genomes, dtype=np.int64)))
        t_choose = time.perf_counter() - t0
        # the first proposal is the generator's most likely arch, repaired: its score is already there
        same = list(map(int, arg[i].genome)) == props[i].genomes[0]
        v = scores[0] if same else val_score(s, np.asarray([arg[i].genome]))[0]
        out["argmax"].append({"genome": arg[i].genome, "val_top1": float(v),
                              "arch_seconds": t_arg / len(scenarios), "evaluations": 0})
        out["rerank"].append({"genome": np.asarray(props[i].genomes[k]), "val_top1": float(scores[k]),
                              "origin": props[i].origin[k], "candidates": len(props[i].genomes),
                              "arch_seconds": t_prop / len(scenarios) + t_choose,
                              "evaluations": len(props[i].genomes)})
    return out


def method_nsga2(cfg, tables, scenario, val_score, pop: int, generations: int, seed: int) -> dict[str, Any]:
    """NSGA-II (val top-1 x MACs, the budget as a constraint): best feasible arch by val."""
    from nni_eas.search import CostEvaluator
    from nni_eas.search.config import build_driver

    evaluated: list[tuple[np.ndarray, float]] = []

    def evaluate(genomes: np.ndarray) -> list[dict[str, float]]:
        acc = val_score(scenario, genomes)
        evaluated.extend((np.asarray(g).copy(), float(a)) for g, a in zip(genomes, acc))
        return [{"top1": float(a)} for a in acc]

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
    return {"genome": G[best], "val_top1": float(acc[best]), "evaluations": len(evaluated),
            "arch_seconds": time.perf_counter() - t0}


def method_random(cfg, tables, scenario, val_score, n: int, seed: int) -> dict[str, Any]:
    """The best (by val) of ``n`` uniformly random archs that meet the budget."""
    from nni_eas.encodings import genome_bounds

    t0 = time.perf_counter()
    lo, hi = genome_bounds(cfg)
    rng = np.random.default_rng(seed)
    pool: list[np.ndarray] = []
    while len(pool) < n:
        g = rng.integers(lo, hi + 1, size=(4 * n, len(lo)))
        ok = tables["macs"].exact(g) <= scenario.budgets["macs"]
        pool.extend(g[ok])
    G = np.stack(pool[:n])
    acc = val_score(scenario, G)
    best = int(np.nanargmax(acc))
    return {"genome": G[best], "val_top1": float(acc[best]), "evaluations": n, "arch_seconds": time.perf_counter() - t0}


# ------------------------------------------------------------------------------------------------
# one dataset
# ------------------------------------------------------------------------------------------------
METHODS = ("argmax", "rerank", "nsga2", "random")
LABEL = {"argmax": "generator (argmax + repair)", "rerank": "generator re-ranked on val",
         "nsga2": "NSGA-II per scenario", "random": "best of random archs"}


def load_splits(dataset: str, cfg, spec: dict[str, Any]):
    from nni_eas.search.subnet_eval import load_eval_data

    C, res = cfg.num_classes, max(cfg.resolutions)
    x, y = load_eval_data(dataset, "train", res, cfg.in_chans)
    keep = torch.randperm(len(y), generator=torch.Generator().manual_seed(0))[:spec["calib_images"]]
    calib = (x[keep], y[keep])
    val = cap_split(*load_eval_data(dataset, "val", res, cfg.in_chans), spec["val_images"], C)
    test = cap_split(*load_eval_data(dataset, "test", res, cfg.in_chans), spec["test_images"], C)
    return calib, val, test


def run_dataset(dataset: str, args) -> dict[str, Any]:
    from nni_eas.checkpoint import load_supernet
    from nni_eas.eas.budget import cost_tables

    spec = dict(DATASETS[dataset])
    supernet_path = get_supernet(spec["supernet"], args.work)
    supernet, _ = load_supernet(supernet_path)
    supernet.eval()
    cfg = supernet.config
    tables = cost_tables(cfg, ["macs"], num_classes=cfg.num_classes)
    gen, gmeta = get_generator(supernet_path, dataset, args.work, args.generator)
    calib, val, test = load_splits(dataset, cfg, spec)
    val_score = Scorer(supernet, calib, val, spec["calib_images"])
    test_score = Scorer(supernet, calib, test, spec["calib_images"])
    scen, rng_macs = make_scenarios(args.tasks, args.fractions, cfg.num_classes, tables, args.seed)
    lo, hi = rng_macs
    t0 = time.perf_counter()
    g = method_generator(gen, tables, scen, val_score, args.samples)
    print(f"  generator: {len(scen)} scenarios, {time.perf_counter() - t0:.1f} s incl. re-ranking", flush=True)
    rows = []
    hdr = " ".join(f"{m:>8}" for m in METHODS)
    print(f"  {'scenario':<26} {'budget%':>7} val top-1: {hdr} | test top-1: {hdr}", flush=True)
    for i, s in enumerate(scen):
        res = {"argmax": g["argmax"][i], "rerank": g["rerank"][i],
               "nsga2": method_nsga2(cfg, tables, s, val_score, args.pop, args.generations, args.seed + i),
               "random": method_random(cfg, tables, s, val_score, args.random, args.seed + i)}
        row = {"scenario": s.name, "classes": list(s.classes), "budget_macs": s.budgets["macs"],
               "budget_frac": (s.budgets["macs"] - lo) / (hi - lo)}
        for m, r in res.items():
            macs = float(tables["macs"].exact(np.asarray(r["genome"])[None])[0])
            row[m] = {"val_top1": r["val_top1"], "test_top1": float(test_score(s, np.asarray(r["genome"])[None])[0]),
                      "macs": macs, "budget_use": macs / s.budgets["macs"], "evaluations": r["evaluations"],
                      "arch_seconds": r["arch_seconds"], "genome": [int(v) for v in r["genome"]],
                      **({"origin": r["origin"]} if "origin" in r else {})}
        rows.append(row)
        print(f"  {s.name[:26]:<26} {row['budget_frac'] * 100:6.0f}% {'':>10} "
              + " ".join(f"{row[m]['val_top1']:8.3f}" for m in METHODS) + " | "
              + " ".join(f"{row[m]['test_top1']:8.3f}" for m in METHODS), flush=True)
    return {"supernet": supernet_summary(supernet_path), "generator": {k: v for k, v in gmeta.items()
                                                                        if k in ("steps", "val", "config", "train_seconds")},
            "space": cfg.name, "resolutions": list(cfg.resolutions), "macs_range": rng_macs,
            "eval": {k: spec[k] for k in ("calib_images", "val_images", "test_images")},
            "rows": rows, "summary": summarize(rows, val, args)}


def summarize(rows: list[dict[str, Any]], val, args) -> dict[str, Any]:
    tie = 0.005
    out: dict[str, Any] = {"tie_tolerance_points": tie * 100}
    for m in METHODS:
        out[m] = {k: float(np.mean([r[m][k] for r in rows])) for k in ("val_top1", "test_top1", "budget_use",
                                                                           "arch_seconds", "evaluations")}
    for ref in ("nsga2", "random", "argmax"):
        for split in ("val", "test"):
            d = np.array([r["rerank"][f"{split}_top1"] - r[ref][f"{split}_top1"] for r in rows])
            out[f"rerank_vs_{ref}_{split}"] = {"mean_diff_points": float(d.mean() * 100), "wins": int((d > tie).sum()),
                                               "ties": int((np.abs(d) <= tie).sum()), "losses": int((d < -tie).sum())}
    # monotonicity: within a task, val top-1 of the re-ranked choice never drops as the budget grows
    tasks: dict[tuple, list] = {}
    for r in rows:
        tasks.setdefault(tuple(r["classes"]), []).append(r)
    drops = []
    for rs in tasks.values():
        rs = sorted(rs, key=lambda r: r["budget_macs"])
        for a, b in zip(rs, rs[1:]):
            drops.append(a["rerank"]["val_top1"] - b["rerank"]["val_top1"])
    out["monotonicity"] = {"pairs": len(drops), "violations": int(sum(d > 1e-9 for d in drops)),
                           "largest_drop_points": float(max(drops + [0.0]) * 100)}
    vs = out["rerank_vs_nsga2_val"]
    out["targets"] = {"within_0.5pt_of_nsga2_on_val": vs["mean_diff_points"] >= -0.5,
                      "ahead_of_nsga2_more_often_than_behind_on_val": vs["wins"] > vs["losses"],
                      "monotone_in_budget": out["monotonicity"]["violations"] == 0}
    return out


# ------------------------------------------------------------------------------------------------
# task dropout vs plain training (digits)
# ------------------------------------------------------------------------------------------------
def task_dropout_comparison(args) -> dict[str, Any]:
    """20 random 2-5-class digits tasks; the same archs (smallest, largest, 3 random) of two
    supernets trained alike except for EAS task dropout, specialized the same way (all-class BN,
    task-restricted logits); task top-1 on test."""
    from nni_eas.checkpoint import load_supernet
    from nni_eas.encodings import arch_to_genome
    from nni_eas.spaces.arch import max_arch, min_arch, sample_arch

    spec = DATASETS["digits"]
    out: dict[str, Any] = {"tasks": args.td_tasks, "archs": ["smallest", "largest", "random0", "random1", "random2"]}
    scores = {}
    for key in ("digits", "digits_no_task_dropout"):
        path = get_supernet(key, args.work)
        sn, _ = load_supernet(path)
        sn.eval()
        cfg = sn.config
        calib, _, test = load_splits("digits", cfg, spec)
        score = Scorer(sn, calib, test, spec["calib_images"])
        archs = [min_arch(cfg), max_arch(cfg)] + [sample_arch(cfg, rng=np.random.default_rng(s)) for s in range(3)]
        G = np.stack([arch_to_genome(cfg, a) for a in archs])
        rng = np.random.default_rng(args.seed + 7)
        from nni_eas.eas.scenario import Scenario

        per_task = []
        for t in range(args.td_tasks):
            k = int(rng.integers(2, 6))
            cls = tuple(sorted(rng.choice(cfg.num_classes, size=k, replace=False).tolist()))
            per_task.append(score(Scenario(f"task{t}", cls, {}), G).tolist())
        scores[key] = np.asarray(per_task)
        out[key] = {"supernet": supernet_summary(path), "mean_top1": float(scores[key].mean()),
                    "per_arch_mean": scores[key].mean(0).tolist()}
    d = (scores["digits"] - scores["digits_no_task_dropout"]).mean(1)
    out["task_dropout_minus_plain_points"] = float(d.mean() * 100)
    out["wins_ties_losses"] = [int((d > 0.005).sum()), int((np.abs(d) <= 0.005).sum()), int((d < -0.005).sum())]
    print(f"  task dropout {out['digits']['mean_top1']:.4f} vs plain {out['digits_no_task_dropout']['mean_top1']:.4f} "
          f"({out['task_dropout_minus_plain_points']:+.2f} pt; W/T/L {out['wins_ties_losses']}) over {args.td_tasks} tasks",
          flush=True)
    return out


def plot(path: Path, results: dict[str, Any]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ds = list(results["datasets"])
    fig, axes = plt.subplots(2, max(len(ds), 1), figsize=(5 * max(len(ds), 1), 7.5), squeeze=False)
    for c, d in enumerate(ds):
        rows = results["datasets"][d]["rows"]
        ax = axes[0][c]
        x = np.arange(len(rows))
        for k, m in enumerate(METHODS):
            ax.bar(x + (k - 1.5) * 0.2, [r[m]["val_top1"] for r in rows], 0.2, label=LABEL[m])
        lo = min(min(r[m]["val_top1"] for m in METHODS) for r in rows)
        ax.set(ylim=(max(0.0, lo - 0.05), 1.0), ylabel="task top-1 (val: the decision split)",
               title=f"{d}: {results['datasets'][d]['summary']['rerank_vs_nsga2_val']['mean_diff_points']:+.2f} pt vs NSGA-II")
        ax.set_xticks(x, [r["scenario"].split(":")[0] + f" {100 * r['budget_frac']:.0f}%" for r in rows], rotation=70,
                      fontsize=7)
        ax.legend(fontsize=6)
        ax = axes[1][c]
        for m in METHODS:
            ax.scatter([r["budget_frac"] for r in rows], [r[m]["budget_use"] for r in rows], label=LABEL[m], s=18)
        ax.set(xlabel="budget (fraction of the space's MACs range)", ylabel="budget use (MACs / budget)", ylim=(0, 1.05))
        ax.legend(fontsize=6)
    save_figure(fig, path, dpi=100)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--datasets", nargs="+", default=["digits", "cifar10"], choices=list(DATASETS))
    p.add_argument("--tasks", type=int, default=4, help="random tasks, each at every budget fraction")
    p.add_argument("--fractions", type=float, nargs="+", default=[0.15, 0.5, 0.85])
    p.add_argument("--samples", type=int, default=16,
                   help="generator samples per scenario for re-ranking (the default of evaluation.candidates)")
    p.add_argument("--pop", type=int, default=30)
    p.add_argument("--generations", type=int, default=10, help="pop x generations = NSGA-II evaluations per scenario")
    p.add_argument("--random", type=int, default=100, help="random archs per scenario")
    p.add_argument("--td-tasks", type=int, default=20, help="tasks of the task-dropout comparison (digits)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--generator-steps", type=int, default=None)
    p.add_argument("--quick", action="store_true", help="smoke test: 2 tasks x 2 budgets, tiny searches, 3 td tasks")
    p.add_argument("--merge", action="store_true", help="update only what this run measures in an existing results "
                   "file (e.g. one process per dataset, side by side)")
    p.add_argument("--work", type=Path, default=ROOT / "runs" / "eas_bench")
    p.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    args = p.parse_args(argv)
    args.generator = {}
    if args.quick:
        args.tasks, args.fractions, args.pop, args.generations, args.random, args.td_tasks = 2, [0.2, 0.8], 6, 2, 10, 3
        args.samples = 3
    if args.generator_steps:
        args.generator["steps"] = args.generator_steps
    args.work.mkdir(parents=True, exist_ok=True)
    args.out.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(args.threads)
    from nni_eas.eas.config import GeneratorConfig

    results: dict[str, Any] = {"machine": machine_info(args.threads), "quick": args.quick,
                               "generator_config": GeneratorConfig(**args.generator).model_dump(mode="json"),
                               "settings": {k: getattr(args, k) for k in ("tasks", "fractions", "samples", "pop",
                                                                           "generations", "random", "td_tasks", "seed")},
                               "datasets": {}}
    name = "eas_quick" if args.quick else "eas"
    path = args.out / f"{name}.json"

    def save(key: str, value: Any) -> None:
        if args.merge and path.is_file():   # another process may have written its part meanwhile
            old = json.loads(path.read_text())
            results["datasets"] = {**old.get("datasets", {}), **results["datasets"]}
            for k in ("task_dropout_vs_plain",):
                if k in old and k not in results:
                    results[k] = old[k]
        if key == "datasets":
            results["datasets"].update(value)
        else:
            results[key] = value
        atomic_write_json(path, results)

    for d in args.datasets:
        print(f"{d}:", flush=True)
        t0 = time.perf_counter()
        res = run_dataset(d, args)
        res["wall_s"] = time.perf_counter() - t0
        save("datasets", {d: res})
    if "digits" in args.datasets and args.td_tasks:
        print("task dropout vs plain (digits):", flush=True)
        save("task_dropout_vs_plain", task_dropout_comparison(args))
    plot(args.out / f"{name}.png", results)
    print(f"\n{'dataset':<8} {'method':<28} {'val top1':>8} {'test top1':>9} {'budget use':>10} {'evals':>6} {'arch s':>8}")
    for d, r in results["datasets"].items():
        if d not in args.datasets:
            continue
        s = r["summary"]
        for m in METHODS:
            print(f"{d:<8} {LABEL[m]:<28} {s[m]['val_top1']:8.4f} {s[m]['test_top1']:9.4f} {s[m]['budget_use']:10.2f} "
                  f"{s[m]['evaluations']:6.0f} {s[m]['arch_seconds']:8.3f}")
        v = s["rerank_vs_nsga2_val"]
        print(f"{'':<8} re-ranked vs NSGA-II on val: {v['mean_diff_points']:+.2f} pt, W/T/L {v['wins']}/{v['ties']}/{v['losses']}; "
              f"monotonicity violations {s['monotonicity']['violations']}/{s['monotonicity']['pairs']}; targets {s['targets']}")
    print(f"wrote {args.out / (name + '.json')} and {args.out / (name + '.png')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
