"""Benchmark of supernet training (see docs/training.md): how good are the subnets of one training?

For each digits recipe (one per policy, plus the EAS / TOFA losses): train it, then measure
on the test split, with BatchNorm recalibrated on 500 training images and no fine-tuning:

* top-1 of the largest, the smallest and 10 random subnets (the same archs for every recipe),
  against their MACs;
* mean top-1 of the largest and smallest subnet on 20 random 2- to 5-class tasks (restricted
  logits): EAS task dropout against plain sandwich training;
* the largest subnet trained alone for the same epochs (``standalone_max``): inherited vs standalone;
* TOFA with 10 % labels against the same 10 % labels without the unlabeled term;
* training time and images/s (training images x epochs / wall time, validation included).

    python benchmarks/supernet_quality.py                       # all variants (CPU: ~15-20 min here)
    python benchmarks/supernet_quality.py --variants eas sandwich
    python benchmarks/supernet_quality.py --quick               # 1 epoch each (smoke test)

Writes ``benchmarks/results/supernet_quality.json`` and ``supernet_quality.png``; the trained
supernets stay in ``--workdir`` (default ``runs/supernet_quality``, git-ignored).
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

# name -> (recipe, overrides, policy label)
VARIANTS: dict[str, tuple[str, dict, str]] = {
    "ofa": ("ofa_small_digits", {}, "progressive shrinking"),
    "sandwich": ("sandwich_small_digits", {}, "sandwich + in-place KD"),
    "uniform": ("uniform_small_digits", {}, "uniform (SPOS)"),
    "eas": ("eas_small_digits", {}, "sandwich + task dropout"),
    "tofa": ("tofa_small_digits", {}, "sandwich + semi-supervised (10 % labels)"),
    "tofa_labeled_only": ("tofa_small_digits", {"semi_supervised.weight": 0.0}, "sandwich, 10 % labels only"),
    # the largest subnet alone, as many epochs as the sandwich recipe: the standalone reference
    "standalone_max": ("sandwich_small_digits", {"policy": "STANDALONE"}, "largest subnet alone"),
}


def _overrides(name: str, overrides: dict, quick: bool) -> dict:
    from nni_eas.training import load_recipe

    ov = dict(overrides)
    if ov.get("policy") == "STANDALONE":
        epochs = load_recipe("sandwich_small_digits").policy.epochs
        ov["policy"] = {"kind": "progressive_shrinking", "distill": False, "phases": [{"name": "full", "epochs": epochs}]}
    if quick:
        recipe = load_recipe(VARIANTS[name][0], **ov)
        if recipe.policy.kind == "progressive_shrinking":
            phases = recipe.policy.phases or []
            ov["policy"] = {**recipe.policy.model_dump(), "phases": [
                {**p.model_dump(), "epochs": 1} for p in (phases or _ofa_phases(recipe))][:3]}
        else:
            ov["policy.epochs"] = 1
    return ov


def _ofa_phases(recipe):
    from nni_eas.spaces.config import load_space_config
    from nni_eas.training.policies import ofa_phases

    cfg = load_space_config(recipe.space, **recipe.space_overrides)
    return ofa_phases(cfg, recipe.policy.epoch_scale)


def evaluate(supernet, archs: dict, calib, test, tasks, calib_images: int) -> dict:
    """Top-1 (whole test split, and per task for max/min) of inherited subnets, BN recalibrated."""
    from nni_eas.costs import CostModel
    from nni_eas.evaluation import accuracy, recalibrate_bn

    cost = CostModel(supernet.config)
    out = {}
    for key, arch in archs.items():
        sub = recalibrate_bn(supernet.extract(arch), calib, resolution=arch.r, max_images=calib_images)
        row = {"arch": arch.to_dict(), "macs": int(cost.macs(arch)), "params": int(cost.params(arch)),
               "top1": accuracy(sub, test, resolution=arch.r)}
        if key in ("max", "min"):
            row["task_top1"] = float(np.mean([accuracy(sub, test, classes=t.classes, resolution=arch.r) for t in tasks]))
        out[key] = row
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    p.add_argument("--random-archs", type=int, default=10)
    p.add_argument("--tasks", type=int, default=20, help="random 2- to 5-class tasks")
    p.add_argument("--calib-images", type=int, default=500)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--quick", action="store_true", help="1 epoch per variant (smoke test)")
    p.add_argument("--eval-only", action="store_true", help="re-evaluate supernets already in --workdir")
    p.add_argument("--workdir", type=Path, default=ROOT / "runs" / "supernet_quality")
    p.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    args = p.parse_args(argv)

    import torch

    torch.set_num_threads(args.threads)
    from nni_eas.checkpoint import file_sha256, load_supernet
    from nni_eas.data import TaskSampler, load_dataset
    from nni_eas.io import atomic_write_json
    from nni_eas.spaces.arch import max_arch, min_arch, sample_arch
    from nni_eas.training import load_recipe, train_supernet

    args.out.mkdir(parents=True, exist_ok=True)
    results = {"machine": {"python": platform.python_version(), "cpu": platform.processor() or platform.machine(),
                           "cores": os.cpu_count(), "torch_threads": args.threads, "torch": torch.__version__},
               "protocol": {"split": "digits test (359 images)", "bn_calibration": f"first {args.calib_images} train images",
                            "random_archs": args.random_archs, "tasks": f"{args.tasks} random tasks of 2-5 classes, seed 0",
                            "quick": args.quick},
               "variants": {}}
    previous = {}
    if args.eval_only and (args.out / "supernet_quality.json").is_file():  # keep the measured training times
        import json

        previous = json.loads((args.out / "supernet_quality.json").read_text()).get("variants", {})
    data_cache: dict[tuple, tuple] = {}
    for name in args.variants:
        recipe_name, overrides, label = VARIANTS[name]
        recipe = load_recipe(recipe_name, **_overrides(name, overrides, args.quick))
        out_dir = args.workdir / name
        if args.eval_only:
            train_s = previous.get(name, {}).get("train_seconds")
        else:
            print(f"== {name}: training {recipe_name} ({label})", flush=True)
            t0 = time.perf_counter()
            train_supernet(recipe, out_dir, resume=False, progress=False)
            train_s = time.perf_counter() - t0
        supernet, info = load_supernet(out_dir / "supernet.pt")
        cfg = supernet.config
        key = (recipe.data.dataset, recipe.data.resolution, cfg.in_chans)
        if key not in data_cache:
            kw = dict(resolution=key[1], channels=key[2])
            data_cache[key] = (load_dataset(key[0], "train", **kw).tensors(), load_dataset(key[0], "test", **kw).tensors())
        calib, test = data_cache[key]
        rng = np.random.default_rng(0)
        archs = {"max": max_arch(cfg), "min": min_arch(cfg)}
        archs.update({f"random_{i}": sample_arch(cfg, rng) for i in range(args.random_archs)})
        tasks = TaskSampler(cfg.num_classes, 2, 5, seed=0).sample_many(args.tasks)
        t0 = time.perf_counter()
        measured = evaluate(supernet, archs, calib, test, tasks, args.calib_images)
        eval_s = time.perf_counter() - t0
        images = info["meta"].get("epochs", 0) * _train_images(recipe)
        rand = [v["top1"] for k, v in measured.items() if k.startswith("random_")]
        row = {"recipe": recipe_name, "overrides": overrides, "policy": label, "epochs": info["meta"].get("epochs"),
               "train_seconds": None if train_s is None else round(train_s, 1), "eval_seconds": round(eval_s, 1),
               "train_images_per_s": None if not train_s else round(images / train_s, 1),
               "top1_max": measured["max"]["top1"], "top1_min": measured["min"]["top1"],
               "top1_random_mean": float(np.mean(rand)) if rand else None,
               "top1_random_range": [float(min(rand)), float(max(rand))] if rand else None,
               "task_top1_max": measured["max"]["task_top1"], "task_top1_min": measured["min"]["task_top1"],
               "supernet": str(out_dir / "supernet.pt"), "supernet_sha256": file_sha256(out_dir / "supernet.pt"),
               "subnets": measured}
        results["variants"][name] = row
        print(f"   max {row['top1_max']:.3f}  min {row['top1_min']:.3f}  random {row['top1_random_mean']:.3f}  "
              f"tasks max/min {row['task_top1_max']:.3f}/{row['task_top1_min']:.3f}  "
              f"train {row['train_seconds']} s", flush=True)
        atomic_write_json(args.out / "supernet_quality.json", results)  # partial results survive a kill

    results["comparisons"] = _comparisons(results["variants"])
    _table(results)
    _plot(args.out / "supernet_quality.png", results["variants"])
    atomic_write_json(args.out / "supernet_quality.json", results)
    print(f"\nwrote {args.out / 'supernet_quality.json'} and supernet_quality.png")
    return 0


def _train_images(recipe) -> int:
    from nni_eas.training import SupernetDataModule

    dm = SupernetDataModule(recipe.data, recipe.batch_size, recipe.seed, recipe.semi_supervised)
    dm.setup()
    n = len(dm.labeled_set) if recipe.semi_supervised.enabled else len(dm.train_set)
    return n - n % recipe.batch_size if n >= recipe.batch_size else n  # drop_last


def _comparisons(v: dict) -> dict:
    out = {}
    if "standalone_max" in v:
        ref = v["standalone_max"]
        out["inherited_minus_standalone_max"] = {k: r["top1_max"] - ref["top1_max"] for k, r in v.items() if k != "standalone_max"}
        if ref.get("train_images_per_s"):
            out["throughput_vs_largest_alone"] = {k: r["train_images_per_s"] / ref["train_images_per_s"]
                                                  for k, r in v.items() if r.get("train_images_per_s")}
    if "eas" in v and "sandwich" in v:
        out["task_dropout_minus_plain_task_top1"] = {
            "max": v["eas"]["task_top1_max"] - v["sandwich"]["task_top1_max"],
            "min": v["eas"]["task_top1_min"] - v["sandwich"]["task_top1_min"]}
    if "tofa" in v and "tofa_labeled_only" in v:
        out["semi_supervised_minus_labeled_only"] = {
            "max": v["tofa"]["top1_max"] - v["tofa_labeled_only"]["top1_max"],
            "min": v["tofa"]["top1_min"] - v["tofa_labeled_only"]["top1_min"]}
    return out


def _table(results: dict) -> None:
    print("\n| variant | policy | epochs | train s | img/s | top-1 max | top-1 min | random mean (range) | task top-1 max / min |")
    print("|---|---|---|---|---|---|---|---|---|")
    for name, r in results["variants"].items():
        rr = r["top1_random_range"]
        print(f"| {name} | {r['policy']} | {r['epochs']} | {r['train_seconds']} | {r['train_images_per_s']} | "
              f"{r['top1_max']:.3f} | {r['top1_min']:.3f} | {r['top1_random_mean']:.3f} ({rr[0]:.3f}-{rr[1]:.3f}) | "
              f"{r['task_top1_max']:.3f} / {r['task_top1_min']:.3f} |")
    for key, value in results.get("comparisons", {}).items():
        print(f"{key}: " + ", ".join(f"{k} {x:+.3f}" if "minus" in key else f"{k} {x:.2f}x" for k, x in value.items()))


def _plot(path: Path, variants: dict) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from nni_eas.io import save_figure

    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=110)
    for i, (name, r) in enumerate(variants.items()):
        color = f"C{i}"
        pts = sorted((s["macs"], s["top1"]) for s in r["subnets"].values())
        ax.scatter([m / 1e6 for m, _ in pts], [a for _, a in pts], color=color, s=14, alpha=0.8, label=f"{name} ({r['policy']})")
        for key, marker in (("max", "^"), ("min", "v")):
            s = r["subnets"][key]
            ax.scatter([s["macs"] / 1e6], [s["top1"]], color=color, marker=marker, s=60, edgecolor="black", linewidth=0.5)
    ax.set_xscale("log")
    ax.set_xlabel("MACs (millions, log)")
    ax.set_ylabel("digits test top-1 (inherited, BN recalibrated)")
    ax.set_title("Subnets of one supernet training: ▲ largest, ▼ smallest, dots random")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="lower right")
    save_figure(fig, path, dpi=110)


if __name__ == "__main__":
    sys.exit(main())
