"""Benchmark of the small-image supernet (space ``ofa_mbv3_tiny``, recipe ``eas_tiny_digits``).

Trains the recipe once through the project's own entry point (:func:`nni_eas.training.train_supernet`)
on one CPU thread and measures, as ``benchmarks/supernet_quality.py`` does (its ``evaluate``:
BatchNorm recalibrated on the first 500 training images, no fine-tuning), on the digits test split:

* top-1 of the largest, the smallest and the mean of 10 random subnets (seed 0);
* params / MACs of the largest and smallest subnet (the space's MACs range);
* training wall time and images/s (training images x epochs / wall time, validation included).

    python benchmarks/supernet_tiny.py                      # ~2 min on one thread
    python benchmarks/supernet_tiny.py --set policy.epochs=20 --set batch_size=32   # try a variant

Writes ``benchmarks/results/supernet_tiny_digits.json`` (``--out``); the supernet stays in
``--workdir`` (default ``runs/supernet_tiny``, git-ignored).
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
import yaml  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

TARGETS = {"top1_max": 0.975, "top1_min": 0.95, "top1_random_mean": 0.96}


def _parse_set(items: list[str]) -> dict:
    out = {}
    for item in items:
        key, _, value = item.partition("=")
        out[key] = yaml.safe_load(value)
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--recipe", default="eas_tiny_digits")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="recipe override (nested keys with dots, YAML values), repeatable")
    p.add_argument("--random-archs", type=int, default=10)
    p.add_argument("--tasks", type=int, default=10, help="random 2- to 5-class tasks (EAS task top-1)")
    p.add_argument("--calib-images", type=int, default=500)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--eval-only", action="store_true", help="re-evaluate the supernet already in --workdir")
    p.add_argument("--workdir", type=Path, default=ROOT / "runs" / "supernet_tiny")
    p.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "supernet_tiny_digits.json")
    args = p.parse_args(argv)

    import torch

    torch.set_num_threads(args.threads)
    from supernet_quality import _train_images, evaluate

    from nni_eas.checkpoint import load_supernet
    from nni_eas.data import TaskSampler, load_dataset
    from nni_eas.io import atomic_write_json
    from nni_eas.spaces.arch import max_arch, min_arch, sample_arch
    from nni_eas.training import load_recipe, train_supernet

    overrides = _parse_set(args.set)
    recipe = load_recipe(args.recipe, **overrides)
    train_s = None
    if not args.eval_only:
        print(f"== training {recipe.name} ({recipe.policy.kind}) on {args.threads} thread(s)", flush=True)
        t0 = time.perf_counter()
        result = train_supernet(recipe, args.workdir, resume=False, progress=False)
        train_s = time.perf_counter() - t0
        print(f"   trained in {train_s:.1f} s; last validation {result.metrics}", flush=True)
    supernet, info = load_supernet(args.workdir / "supernet.pt")
    cfg = supernet.config
    kw = dict(resolution=recipe.data.resolution, channels=cfg.in_chans)
    calib = load_dataset(recipe.data.dataset, "train", **kw).tensors()
    test = load_dataset(recipe.data.dataset, "test", **kw).tensors()
    rng = np.random.default_rng(0)
    archs = {"max": max_arch(cfg), "min": min_arch(cfg)}
    archs.update({f"random_{i}": sample_arch(cfg, rng) for i in range(args.random_archs)})
    t0 = time.perf_counter()
    tasks = TaskSampler(cfg.num_classes, 2, 5, seed=0).sample_many(args.tasks)
    measured = evaluate(supernet, archs, calib, test, tasks, args.calib_images)
    eval_s = time.perf_counter() - t0
    epochs = info["meta"].get("epochs", 0)
    images = epochs * _train_images(recipe)
    rand = [v["top1"] for k, v in measured.items() if k.startswith("random_")]
    row = {
        "recipe": recipe.name, "overrides": overrides, "space": cfg.name, "policy": recipe.policy.kind,
        "epochs": epochs, "batch_size": recipe.batch_size,
        "train_seconds": None if train_s is None else round(train_s, 1),
        "train_images_per_s": None if not train_s else round(images / train_s, 1),
        "eval_seconds": round(eval_s, 1),
        "top1_max": measured["max"]["top1"], "top1_min": measured["min"]["top1"],
        "top1_random_mean": float(np.mean(rand)), "top1_random_range": [float(min(rand)), float(max(rand))],
        "task_top1_max": measured["max"]["task_top1"], "task_top1_min": measured["min"]["task_top1"],
        "macs_max": measured["max"]["macs"], "macs_min": measured["min"]["macs"],
        "params_max": measured["max"]["params"], "params_min": measured["min"]["params"],
        "macs_ratio": measured["max"]["macs"] / measured["min"]["macs"],
        "val_at_end": info["meta"].get("val"),
        "subnets": {k: {"arch": v["arch"], "macs": v["macs"], "params": v["params"], "top1": v["top1"]}
                    for k, v in measured.items()},
    }
    row["targets"] = {k: {"target": t, "measured": row[k], "met": row[k] >= t} for k, t in TARGETS.items()}
    results = {
        "machine": {"python": platform.python_version(), "cpu": platform.processor() or platform.machine(),
                    "cores": os.cpu_count(), "torch_threads": args.threads, "torch": torch.__version__},
        "protocol": {"split": f"{recipe.data.dataset} test ({len(test[1])} images)",
                     "bn_calibration": f"first {args.calib_images} train images",
                     "random_archs": f"{args.random_archs}, numpy seed 0 (nni_eas.spaces.arch.sample_arch)"},
        "result": row,
    }
    if args.eval_only and args.out.is_file():  # keep the measured training time
        import json

        old = json.loads(args.out.read_text()).get("result", {})
        for key in ("train_seconds", "train_images_per_s"):
            row[key] = old.get(key)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_json(args.out, results)
    _table(row)
    print(f"\nwrote {args.out}")
    return 0


def _table(r: dict) -> None:
    rr = r["top1_random_range"]
    print("\n| recipe | space | epochs | train s | img/s | params max / min | MACs max / min (ratio) | "
          "top-1 max | top-1 min | random mean (range) |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    print(f"| {r['recipe']} | {r['space']} | {r['epochs']} | {r['train_seconds']} | {r['train_images_per_s']} | "
          f"{r['params_max'] / 1e6:.3f}M / {r['params_min'] / 1e6:.3f}M | "
          f"{r['macs_max'] / 1e6:.2f}M / {r['macs_min'] / 1e6:.2f}M ({r['macs_ratio']:.1f}x) | "
          f"{r['top1_max']:.3f} | {r['top1_min']:.3f} | {r['top1_random_mean']:.3f} ({rr[0]:.3f}-{rr[1]:.3f}) |")
    for key, t in r["targets"].items():
        print(f"  {key}: {t['measured']:.3f} (target >= {t['target']}) {'ok' if t['met'] else 'MISSED'}")


if __name__ == "__main__":
    sys.exit(main())
