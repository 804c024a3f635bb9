"""RepNAS: latency of fused vs multi-branch vs plain nets, and CIFAR-10 accuracy of searched blocks.

Latency (onnxruntime, batch 1, fixed intra-op threads, every model timed round-robin in one loop
so that other load on the shared machine hits them alike; medians of many runs):

* ``fused``: the searched net with every layer fused into one 3x3 conv,
* ``plain``: a single-branch (3x3 conv + BN + ReLU) net of the same shape,
* ``unfused``: the searched multi-branch net (same weights as ``fused``),
* ``dbb_unfused``: the all-branches diverse-branch net.

Targets: fused within 5 % of plain, and at least 2x faster than unfused. Measured on
``repnas_small`` at 32 px (with the mask found by the accuracy run, when it ran) and on
``repnas_repvgg_a0`` at 224 px (a random mask at the preset's budget: latency does not depend
on training).

Accuracy on CIFAR-10 at equal epochs, one training code path (:class:`RepNASModule`) for all:

* ``repnas``: one-stage RepNAS under the branch budget (the base 3x3 conv always on; random
  top-k warm-up, search with straight-through gates, then the fixed mask goes on training with
  the weights it has), then fused: search and training share the epochs,
* ``repnas_retrained``: the blocks ``repnas`` found, trained from scratch for the epochs (the
  search's epochs come on top),
* ``dbb``: every branch on for the epochs, then fused (the hand-designed all-branches block),
* ``plain``: 3x3 conv + BN per layer for the epochs.

``--ablations`` adds ``repnas_sparse`` (gradients only for the kept branches, as the RepNAS code)
and ``repnas_all_warmup`` (every branch on during warm-up).

Profiles are data (``PROFILES``): ``cpu`` (a stratified 10k-image subset, 10 epochs, two torch
threads; 23 min wall on 2 cores) runs here; ``gpu`` (the full 45k train split, 150 epochs: 15 random
warm-up epochs as the RepNAS code's default, 35 search, 100 retrain) is for a GPU machine and not
run here. Run it alone (latency and training are heavy)::

    flock /tmp/nni-eas-heavy.lock nice -n 5 .venv/bin/python benchmarks/repnas.py --profile cpu

Writes ``benchmarks/results/repnas.json`` and ``repnas.png``.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from nni_eas.io import atomic_write_json, save_figure  # noqa: E402
from nni_eas.repnas import BranchSearch, RepNASNet, load_repnas_config  # noqa: E402
from nni_eas.repnas.deploy import compare_latency, export_onnx, model_costs, onnx_op_counts  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"

# Configs as data. Epochs are equal across variants: warmup + search + retrain for RepNAS.
PROFILES: dict[str, dict[str, Any]] = {
    "cpu": {
        "space": "repnas_small", "dataset": "cifar10", "resolution": 32,
        "train_images": 10000, "val_images": 1000, "test_images": None,
        "recipe": {"warmup_epochs": 2, "search_epochs": 3, "retrain_epochs": 5, "batch_size": 128, "lr": 0.1,
                   "momentum": 0.9, "weight_decay": 5e-4, "arch_lr": 0.05, "augment": "weak",
                   "bn_recalibration_batches": 20, "seed": 0},
        "threads": 2,
    },
    "gpu": {
        "space": "repnas_small", "dataset": "cifar10", "resolution": 32,
        "train_images": None, "val_images": None, "test_images": None,
        "recipe": {"warmup_epochs": 15, "search_epochs": 35, "retrain_epochs": 100, "batch_size": 256, "lr": 0.2,
                   "momentum": 0.9, "weight_decay": 5e-4, "arch_lr": 1e-3, "augment": "weak",
                   "bn_recalibration_batches": 50, "seed": 0},
        "threads": 8,
    },
}
# a minute-long check of the whole pipeline (not a measurement)
PROFILES["smoke"] = {**PROFILES["cpu"], "train_images": 512, "val_images": 256, "test_images": 1000,
                     "recipe": {**PROFILES["cpu"]["recipe"], "warmup_epochs": 1, "search_epochs": 1, "retrain_epochs": 1,
                                "bn_recalibration_batches": 2}}
# what each accuracy variant trains: a search (recipe overrides) or a fixed net (its branches)
VARIANTS: dict[str, dict[str, Any]] = {
    "repnas": {"search": {}},
    "repnas_retrained": {"fixed": "sample_of:repnas"},
    "dbb": {"fixed": None},
    "plain": {"fixed": ["conv_kxk"]},
}
ABLATIONS: dict[str, dict[str, Any]] = {
    "repnas_sparse": {"search": {"dense_gradients": False}},
    "repnas_all_warmup": {"search": {"warmup_mode": "all"}},
}


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--profile", choices=sorted(PROFILES), default="cpu", help="accuracy profile (default: %(default)s)")
    p.add_argument("--skip-accuracy", action="store_true", help="latency only")
    p.add_argument("--skip-latency", action="store_true", help="accuracy only")
    p.add_argument("--ablations", action="store_true", help="also train the RepNAS ablations (%s)" % ", ".join(ABLATIONS))
    p.add_argument("--latency-threads", type=int, default=1, help="onnxruntime intra-op threads (default: %(default)s)")
    p.add_argument("--runs", type=int, default=400, help="timed runs per model at 32 px (default: %(default)s)")
    p.add_argument("--runs-a0", type=int, default=40, help="timed runs per model for RepVGG-A0 at 224 px (default: %(default)s)")
    p.add_argument("--no-a0", action="store_true", help="skip the RepVGG-A0 latency comparison")
    p.add_argument("--out", type=Path, default=RESULTS, help="results folder (default: benchmarks/results)")
    return p.parse_args(argv)


# --------------------------------------------------------------------------------------------
# accuracy
# --------------------------------------------------------------------------------------------
def _split(dataset: str, split: str, resolution: int, limit: int | None, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    from nni_eas.data import load_dataset

    ds = load_dataset(dataset, split=split, resolution=resolution)
    if limit is not None and limit < len(ds):
        from nni_eas.data import stratified_split

        _, keep = stratified_split(ds.targets, limit / len(ds), seed)  # the held-out share is the subset
        ds = ds.subset(keep)
    return ds.tensors()


@torch.no_grad()
def _top1(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    model.eval()
    hits = sum(int((model(x[i:i + 500]).argmax(1) == y[i:i + 500]).sum()) for i in range(0, len(y), 500))
    return hits / len(y)


def train_variant(spec: dict[str, Any], prof: dict[str, Any], data: dict[str, tuple],
                  done: dict[str, Any] | None = None) -> dict[str, Any]:
    """Train one variant (a :data:`VARIANTS` entry) with :class:`RepNASModule`; returns its metrics and sample."""
    import pytorch_lightning as pl
    from torch.utils.data import DataLoader, TensorDataset

    from nni_eas.repnas import RepNASModule

    cfg = load_repnas_config(prof["space"])
    recipe = dict(prof["recipe"])
    epochs = recipe["warmup_epochs"] + recipe["search_epochs"] + recipe["retrain_epochs"]
    torch.manual_seed(recipe["seed"])  # the same initial weights whatever ran before
    if "search" in spec:
        net = RepNASNet(cfg)
        recipe.update(spec["search"])
    else:  # a fixed net trained the same number of epochs: every branch it has stays on
        branches = spec["fixed"]
        if isinstance(branches, str) and branches.startswith("sample_of:"):
            branches = (done or {})[branches.split(":", 1)[1]]["sample"]
        net = RepNASNet(cfg, branches=branches)
        recipe.update(warmup_epochs=0, search_epochs=0, retrain_epochs=epochs, budget=1.0)
    module = RepNASModule(net, recipe)
    trainer = pl.Trainer(max_epochs=epochs, accelerator="cpu", devices=1, logger=False, enable_checkpointing=False,
                         enable_progress_bar=False, enable_model_summary=False, num_sanity_val_steps=0)
    g = torch.Generator().manual_seed(recipe["seed"])
    t0 = time.perf_counter()
    trainer.fit(module, DataLoader(TensorDataset(*data["train"]), batch_size=recipe["batch_size"], shuffle=True,
                                   generator=g),
                DataLoader(TensorDataset(*data["val"]), batch_size=500))
    train_s = time.perf_counter() - t0
    searched = module.searched_net().eval()
    fused = searched.fuse()
    sample = module.searched_sample()
    return {
        "top1": _top1(fused, *data["test"]),
        "top1_unfused": _top1(searched, *data["test"]),
        "val_top1": float(trainer.callback_metrics.get("val_acc", float("nan"))),
        "branches_kept": sum(len(v) for v in sample.values()),  # always-on conv_kxk included
        "searched_kept": int(module.search.mask().sum()),  # what the budget counts
        "budget_k": module.search.k if "search" in spec else None,
        "layer_branches": cfg.num_layer_branches,
        "epochs": epochs,
        "train_seconds": round(train_s, 1),
        **{f"fused_{k}": v for k, v in model_costs(fused, prof["resolution"], cfg.in_chans).items()},
        **{f"train_{k}": v for k, v in model_costs(searched, prof["resolution"], cfg.in_chans).items()},
        "sample": sample,
    }


def run_accuracy(prof: dict[str, Any], ablations: bool = False) -> dict[str, Any]:
    torch.set_num_threads(prof["threads"])
    seed = prof["recipe"]["seed"]
    data = {
        "train": _split(prof["dataset"], "train", prof["resolution"], prof["train_images"], seed),
        "val": _split(prof["dataset"], "val", prof["resolution"], prof["val_images"], seed),
        "test": _split(prof["dataset"], "test", prof["resolution"], prof["test_images"], seed),
    }
    out: dict[str, Any] = {"images": {k: len(v[1]) for k, v in data.items()}}
    for variant, spec in {**VARIANTS, **(ABLATIONS if ablations else {})}.items():
        print(f"[accuracy] training {variant} ...", flush=True)
        out[variant] = train_variant(spec, prof, data, out)
        print(f"[accuracy] {variant}: top1 {out[variant]['top1']:.4f} ({out[variant]['train_seconds']} s)", flush=True)
    return out


# --------------------------------------------------------------------------------------------
# latency
# --------------------------------------------------------------------------------------------
def _randomize_bn(net: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """Random BN statistics (so fusion is not trivial) and small scales (so 22 layers stay finite)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.weight.fill_(0.3)
                m.running_var.copy_(0.5 + torch.rand(m.running_var.shape, generator=g))
                m.running_mean.normal_(0, 0.1, generator=g)
    return net


def run_latency(space: str, resolution: int, sample: dict | None, threads: int, runs: int, workdir: Path) -> dict[str, Any]:
    """Export the four variants of one space and time them side by side."""
    cfg = load_repnas_config(space)
    supernet = _randomize_bn(RepNASNet(cfg)).eval()
    if sample is None:
        search = BranchSearch(supernet, cfg.budget, always_on=cfg.always_on, min_per_layer=cfg.min_branches_per_layer,
                              min_spatial=cfg.min_spatial_branches, seed=0)
        sample = search.to_sample(search.random_mask())
    searched = supernet.select(sample).eval()
    models = {
        "fused": searched.fuse(),
        "plain": _randomize_bn(RepNASNet(cfg, branches=["conv_kxk"])).eval(),
        "unfused": searched,
        "dbb_unfused": supernet,
    }
    shape = (cfg.in_chans, resolution, resolution)
    paths, ops, costs = {}, {}, {}
    for name, model in models.items():
        print(f"[latency] {space}: exporting {name} ...", flush=True)
        paths[name] = export_onnx(model, workdir / f"{space}_{name}.onnx", shape, atol=1e-3)
        ops[name] = onnx_op_counts(paths[name])
        costs[name] = model_costs(model, resolution, cfg.in_chans)
    print(f"[latency] {space}: timing {runs} round-robin runs ...", flush=True)
    lat = compare_latency(paths, threads=threads, runs=runs, warmup=max(5, runs // 10))
    med = {name: r["median_ms"] for name, r in lat["models"].items()}
    return {
        "space": space, "resolution": resolution, "threads": threads, "runs": runs,
        "sample": sample, "branches_kept": sum(len(v) for v in sample.values()),
        "layer_branches": cfg.num_layer_branches,
        "latency": lat["models"], "device": lat["device"], "onnx_ops": ops, "costs": costs,
        "ratios": {
            "fused_over_plain": med["fused"] / med["plain"],
            "unfused_over_fused": med["unfused"] / med["fused"],
            "dbb_unfused_over_fused": med["dbb_unfused"] / med["fused"],
        },
        "targets": {
            "fused_within_5pct_of_plain": abs(med["fused"] / med["plain"] - 1) <= 0.05,
            "fused_2x_faster_than_searched_unfused": med["unfused"] / med["fused"] >= 2.0,
            "fused_2x_faster_than_dbb_unfused": med["dbb_unfused"] / med["fused"] >= 2.0,
        },
    }


# --------------------------------------------------------------------------------------------
# report
# --------------------------------------------------------------------------------------------
def print_tables(result: dict[str, Any]) -> None:
    for lat in result.get("latency", []):
        print(f"\nLatency, {lat['space']} @ {lat['resolution']} px, onnxruntime {lat['threads']} thread(s), "
              f"median of {lat['runs']} round-robin runs ({lat['branches_kept']}/{lat['layer_branches']} branches kept)")
        print(f"{'model':<12} {'median ms':>10} {'p10 ms':>8} {'p90 ms':>8} {'MMACs':>9} {'params':>10}  ONNX ops")
        for name, r in lat["latency"].items():
            c, o = lat["costs"][name], lat["onnx_ops"][name]
            ops = ", ".join(f"{k}:{v}" for k, v in sorted(o.items()) if k in ("Conv", "Add", "BatchNormalization", "Pad"))
            print(f"{name:<12} {r['median_ms']:>10.3f} {r['p10_ms']:>8.3f} {r['p90_ms']:>8.3f} "
                  f"{c['macs'] / 1e6:>9.2f} {c['params']:>10,}  {ops}")
        r, t = lat["ratios"], lat["targets"]
        print(f"fused / plain = {r['fused_over_plain']:.3f} (target within 5 %: {t['fused_within_5pct_of_plain']}); "
              f"unfused / fused = {r['unfused_over_fused']:.2f}x (>= 2x: {t['fused_2x_faster_than_searched_unfused']}); "
              f"all-branches / fused = {r['dbb_unfused_over_fused']:.2f}x (>= 2x: {t['fused_2x_faster_than_dbb_unfused']})")
    acc = result.get("accuracy")
    if acc:
        print(f"\nCIFAR-10 top-1 (test {acc['images']['test']} images; trained on {acc['images']['train']}, "
              f"{acc['repnas']['epochs']} epochs each, profile {result['profile']})")
        print(f"{'variant':<17} {'top1':>7} {'unfused':>8} {'branches':>9} {'train MMACs':>12} {'fused MMACs':>12} {'train s':>8}")
        for v in _variants(acc):
            r = acc[v]
            print(f"{v:<17} {r['top1']:>7.4f} {r['top1_unfused']:>8.4f} {r['branches_kept']:>4}/{r['layer_branches']:<4} "
                  f"{r['train_macs'] / 1e6:>12.2f} {r['fused_macs'] / 1e6:>12.2f} {r['train_seconds']:>8.0f}")


def _variants(acc: dict[str, Any]) -> list[str]:
    return [v for v in {**VARIANTS, **ABLATIONS} if v in acc]


def plot(result: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    lats = result.get("latency", [])
    acc = result.get("accuracy")
    n = len(lats) + (1 if acc else 0)
    if n == 0:
        return
    fig, axes = plt.subplots(1, n, figsize=(4.2 * n, 3.4), squeeze=False)
    for ax, lat in zip(axes[0], lats):
        names = list(lat["latency"])
        ax.bar(names, [lat["latency"][k]["median_ms"] for k in names], color=["C2", "C0", "C1", "C3"][:len(names)])
        ax.set_title(f"{lat['space']} @ {lat['resolution']} px")
        ax.set_ylabel("onnxruntime median latency (ms)")
        ax.tick_params(axis="x", rotation=20)
    if acc:
        ax = axes[0][-1]
        names = _variants(acc)
        ax.bar(names, [100 * acc[v]["top1"] for v in names], color=["C2", "C5", "C1", "C0", "C4", "C6"][:len(names)])
        ax.tick_params(axis="x", rotation=20)
        lo = min(100 * acc[v]["top1"] for v in names)
        ax.set_ylim(max(0, lo - 10), None)
        ax.set_title(f"CIFAR-10 top-1, {acc['repnas']['epochs']} epochs ({result['profile']})")
        ax.set_ylabel("top-1 (%)")
    save_figure(fig, path, dpi=110)


def main(argv=None) -> int:
    args = parse_args(argv)
    prof = PROFILES[args.profile]
    result: dict[str, Any] = {"format": "nni-eas-benchmark-repnas/1", "profile": args.profile, "profile_config": prof,
                              "started": time.strftime("%Y-%m-%d %H:%M:%S")}
    if not args.skip_accuracy:
        result["accuracy"] = run_accuracy(prof, args.ablations)
    if not args.skip_latency:
        torch.set_num_threads(prof["threads"])
        sample = result.get("accuracy", {}).get("repnas", {}).get("sample")
        with tempfile.TemporaryDirectory() as tmp:
            result["latency"] = [run_latency(prof["space"], prof["resolution"], sample, args.latency_threads, args.runs,
                                             Path(tmp))]
            if not args.no_a0:
                a0 = load_repnas_config("repnas_repvgg_a0")
                result["latency"].append(run_latency(a0.name, a0.resolution, None, args.latency_threads, args.runs_a0,
                                                     Path(tmp)))
    result["finished"] = time.strftime("%Y-%m-%d %H:%M:%S")
    args.out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(args.out / "repnas.json", result)
    plot(result, args.out / "repnas.png")
    print_tables(result)
    print(f"\nwrote {args.out / 'repnas.json'} and {args.out / 'repnas.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
