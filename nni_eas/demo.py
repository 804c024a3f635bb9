"""``make demo``: train once, specialize instantly, on scikit-learn's digits (2 CPU cores, minutes).

1. trains the elastic supernet with EAS task dropout (recipe ``eas_small_digits``), with a
   progress bar, atomic checkpoints and ``curves.png``;
2. searches it once for the accuracy / MACs Pareto front (NSGA-II on pymoo, BN recalibration
   per subnet) -> ``front.json`` / ``.csv`` / ``.png``;
3. answers deployment scenarios (a subset of the digits + a MACs budget): picks the best front
   arch within the budget, restricts the classifier to the task's classes, recalibrates BN,
   measures task top-1, exports ONNX (checked against PyTorch) with a model card and its
   onnxruntime latency, and prints a table.

Everything lands in ``--out`` (default ``runs/demo``); a second run resumes the training.
The EAS architecture generator and the nnictl job (``strategies/eas.yml``) are issue #6: this
demo uses the multi-objective search core for step 2 until then.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path
from typing import Any, Sequence

__all__ = ["main", "DEFAULT_SCENARIOS"]

# (task name, digit classes, MACs budget as a fraction of the way from the smallest to the largest subnet)
DEFAULT_SCENARIOS: list[tuple[str, list[int], float]] = [
    ("all digits, tiny", list(range(10)), 0.1),
    ("all digits, large", list(range(10)), 1.0),
    ("0 vs 1", [0, 1], 0.0),
    ("odd digits", [1, 3, 5, 7, 9], 0.3),
    ("3 / 5 / 8", [3, 5, 8], 0.6),
]


def _parse(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m nni_eas.demo", description=__doc__.split("\n\n")[0])
    p.add_argument("--out", default="runs/demo", help="output folder (default: runs/demo)")
    p.add_argument("--epochs", type=int, default=None, help="supernet training epochs (default: the recipe's)")
    p.add_argument("--pop-size", type=int, default=16, help="NSGA-II population (default: 16)")
    p.add_argument("--generations", type=int, default=4, help="NSGA-II generations (default: 4)")
    p.add_argument("--threads", type=int, default=2, help="torch threads (default: 2)")
    p.add_argument("--no-onnx", action="store_true", help="skip ONNX export and latency measurement")
    args = p.parse_args(argv)
    for name in ("epochs", "pop_size", "generations", "threads"):
        if getattr(args, name) is not None and getattr(args, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be >= 1, got {getattr(args, name)}")
    return args


def _fmt(v: float) -> str:
    return f"{v / 1e6:.2f}M"


def run(args: argparse.Namespace) -> dict[str, Any]:
    import torch

    from .checkpoint import file_sha256
    from .costs import CostModel
    from .evaluation import accuracy, recalibrate_bn
    from .search import CostEvaluator, SupernetEvaluator, build_driver
    from .search.subnet_eval import load_eval_data
    from .training.recipe import load_recipe
    from .training.run import train_supernet

    torch.set_num_threads(args.threads)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()

    recipe = load_recipe("eas_small_digits", **({"policy.epochs": args.epochs} if args.epochs else {}))
    print(f"[1/3] training the elastic supernet with task dropout on digits ({recipe.policy.epochs} epochs) -> {out / 'supernet'}")
    trained = train_supernet(recipe, out / "supernet", progress=True, nni_report=False)
    supernet = trained.module.supernet.eval()
    cfg = supernet.config
    t_train = time.perf_counter() - t0
    print(f"      largest subnet top-1 {trained.metrics.get('top1_max', float('nan')):.3f}, "
          f"smallest {trained.metrics.get('top1_min', float('nan')):.3f} ({t_train:.0f} s)")

    print(f"[2/3] searching the accuracy/MACs front once (NSGA-II, {args.pop_size} x {args.generations})")
    res = max(cfg.resolutions)
    calib = load_eval_data("digits", "train", res, cfg.in_chans, 500)
    val = load_eval_data("digits", "val", res, cfg.in_chans)
    driver = build_driver({"pop_size": args.pop_size, "generations": args.generations, "objectives": ["top1", "macs"]},
                          cfg, [CostEvaluator(cfg), SupernetEvaluator(supernet, calib, val, calib_images=500)],
                          workdir=out / "search", resume=False)
    driver.run()
    files = driver.write_results()
    front = driver.front()
    print(f"      {len(front)} archs on the front -> {files.get('json', out / 'search')}")

    print("[3/3] specializing deployment scenarios (task classes + MACs budget)")
    cm = CostModel(cfg)
    lo, hi = cm.min_max_macs()
    test = load_eval_data("digits", "test", res, cfg.in_chans)
    rows = []
    sha = file_sha256(trained.supernet_path)
    for name, classes, frac in DEFAULT_SCENARIOS:
        budget = lo + frac * (hi - lo)
        entry = front.best_for_budget("top1", macs=budget)
        from .spaces.arch import validate_arch

        arch = validate_arch(cfg, entry.arch)
        keep = torch.isin(calib[1], torch.tensor(classes))
        task_calib = (calib[0][keep], calib[1][keep])
        sub = supernet.extract(arch)
        recalibrate_bn(sub, task_calib, resolution=arch.r)
        sub.eval().restrict_classes(classes)
        tkeep = torch.isin(test[1], torch.tensor(classes))
        x, y = test[0][tkeep], test[1][tkeep]
        remap = {c: i for i, c in enumerate(classes)}
        y_task = torch.tensor([remap[int(v)] for v in y])
        top1 = accuracy(sub, (x, y_task), resolution=arch.r)
        row: dict[str, Any] = {"scenario": name, "classes": classes, "macs_budget": budget, "macs": cm.macs(arch),
                               "params": cm.params(arch), "top1": top1, "test_images": len(y), "arch": arch.to_dict()}
        if not args.no_onnx:
            from .export.deploy import deploy_subnet

            slug = name.replace(" ", "_").replace("/", "").replace(",", "")
            dep = deploy_subnet(supernet, arch, out / "models" / f"{slug}.onnx", classes=classes, data="digits",
                                supernet_path=trained.supernet_path, supernet_sha256=sha, calib_images=500, runs=30,
                                extra={"scenario": name, "macs_budget": budget})
            row["latency_ms"] = dep.card.latency.median_ms if dep.card.latency else None
            row["onnx"] = str(dep.onnx_path)
        rows.append(row)

    from .io import atomic_write_json

    summary = {"format": "nni-eas-demo/1", "supernet": str(trained.supernet_path), "supernet_sha256": sha,
               "train_metrics": trained.metrics, "front": str(files.get("json")), "scenarios": rows,
               "seconds": round(time.perf_counter() - t0, 1)}
    atomic_write_json(out / "scenarios.json", summary)
    _print_table(rows)
    print(f"\nresults: {out.resolve()}\n  supernet      {trained.supernet_path}\n  curves        {out / 'supernet' / 'curves.png'}"
          f"\n  front         {files.get('json')} (+ .csv, .png)\n  scenarios     {out / 'scenarios.json'}"
          + ("" if args.no_onnx else f"\n  ONNX + cards  {out / 'models'}")
          + f"\n  TensorBoard   tensorboard --logdir {out / 'supernet' / 'tb'}\ndone in {summary['seconds']:.0f} s")
    return summary


def _print_table(rows: list[dict[str, Any]]) -> None:
    head = f"{'scenario':<20} {'classes':<18} {'budget':>9} {'MACs':>9} {'params':>8} {'latency':>9} {'top-1':>7}"
    print("\n" + head + "\n" + "-" * len(head))
    for r in rows:
        lat = f"{r['latency_ms']:.3f}ms" if r.get("latency_ms") is not None else "-"
        cls = ",".join(map(str, r["classes"]))
        print(f"{r['scenario']:<20} {cls:<18} {_fmt(r['macs_budget']):>9} {_fmt(r['macs']):>9} "
              f"{r['params'] / 1e3:>7.1f}k {lat:>9} {r['top1']:>7.3f}")


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    args = _parse(argv)
    try:
        run(args)
    except KeyboardInterrupt:
        print("\ninterrupted: checkpoints in the output folder are intact; run again to resume", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
