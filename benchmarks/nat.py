"""Benchmark of neural architecture transfer (NAT, see docs/nat.md).

A source supernet is trained on CIFAR-10 (``../shared/data``) and transferred to 17 Flowers and
to Fashion-MNIST. For each target, three fronts of top-1 (held-out test split) against MACs:

(a) **NAT**: warm-up adaptation, initial archive, surrogate-assisted search iterations, each
    followed by supernet adaptation on the target (subnets drawn from the archive's good archs)
    and re-measuring the archive.
(b) **source supernet, no adaptation**: the same loop with the backbone frozen: only a new
    classifier is trained (for as many epochs as NAT adapts in total), never the supernet.
(c) **fine-tuned fixed MobileNetV3s**: three fixed nets of the same space (smallest, middle,
    largest), each trained on CIFAR-10 alone for as many epochs as the supernet, then
    fine-tuned on the target for as many epochs as NAT adapts in total; evaluated as timm
    ``MobileNetV3`` models (``nni_eas.spaces.to_timm``).

Hypervolume (top-1 x MACs, normalised by the reference box: top-1 0, MACs 1.05x the largest
seen) of each front on the test split, how many (b)/(c) points NAT's front dominates, and the
surrogate's Kendall tau per iteration (cross-validated on the archive, and on the archs it
proposed, measured afterwards).

    python benchmarks/nat.py --config reduced            # what fits this shared 2-core CPU
    python benchmarks/nat.py --config cpu                # CPU-sized (hours here)
    python benchmarks/nat.py --config gpu                # GPU-sized
    python benchmarks/nat.py --config gpu --stage source # only the source supernet + fixed nets
    python benchmarks/nat.py --config gpu --stage transfer --targets flowers17

Every stage caches its outputs under ``--work`` and resumes (NAT from its checkpoint).
Writes ``benchmarks/results/nat_<config>.json`` and PNG plots next to it.
"""

from __future__ import annotations

import argparse
import copy
import json
import logging
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
from pymoo.indicators.hv import HV  # noqa: E402

from nni_eas.encodings import arch_to_genome  # noqa: E402
from nni_eas.io import atomic_write_json, save_figure  # noqa: E402
from nni_eas.search.front import non_dominated  # noqa: E402
from nni_eas.spaces.arch import Arch, max_arch, min_arch  # noqa: E402
from nni_eas.spaces.config import load_space_config  # noqa: E402
from nni_eas.training.policies import Phase, SubnetPolicy  # noqa: E402

# ------------------------------------------------------------------------------------------------
# configurations (data sizes, epochs, NAT settings); "reduced" is what ran on the shared CPU
# ------------------------------------------------------------------------------------------------
CONFIGS: dict[str, dict[str, Any]] = {
    "smoke": {  # a few minutes: checks the pipeline, numbers mean nothing
        "space": {"name": "ofa_mbv3_small", "resolutions": [12, 16]},
        "source": {"limit_train": 512, "limit_val": 256, "epochs": 1, "policy": {"kind": "uniform", "subnets": 1}, "batch_size": 64,
                   "lr": 0.05},
        "targets": {"flowers17": {"limit_train": 256, "val_images": 64, "test_images": 128},
                    "fashion_mnist": {"limit_train": 256, "val_images": 64, "test_images": 128}},
        "eval": {"calib_images": 64},
        "nat": {"iterations": 1, "initial_archs": 5, "archs_per_iteration": 2, "pop_size": 8, "generations": 3,
                "surrogate": {"model": "adaptive", "candidates": ["rbf", "rf"], "folds": 2},
                "adapt": {"warmup_epochs": 1, "epochs": 1, "subnets": 1, "top": 3, "lr": 0.02, "batch_size": 64,
                          "bn_calibration_images": 64}},
        "fixed": ["min", "max"],
        "num_workers": 0,
    },
    "reduced": {  # what ran on this shared 2-core CPU (about 20 minutes); see docs/nat.md
        "space": {"name": "ofa_mbv3_small", "resolutions": [16, 20, 24]},
        "source": {"limit_train": 6000, "limit_val": 1000, "epochs": 6, "policy": {"kind": "uniform", "subnets": 1},
                   "batch_size": 64, "optimizer": "adamw", "lr": 0.003},
        "targets": {"flowers17": {"limit_train": None, "val_images": None},
                    "fashion_mnist": {"limit_train": 2000, "val_images": 500, "test_images": 1000}},
        "eval": {"calib_images": 256},
        "nat": {"iterations": 3, "initial_archs": 8, "archs_per_iteration": 4, "pop_size": 24, "generations": 15,
                "surrogate": {"model": "adaptive", "candidates": ["rbf", "gp", "rf", "mlp"], "folds": 4},
                "adapt": {"warmup_epochs": 2, "epochs": 1, "subnets": 2, "top": 6, "optimizer": "adamw", "lr": 0.001,
                          "weight_decay": 0.01, "batch_size": 64, "bn_calibration_images": 256}},
        "fixed": ["min", "mid"],
        "num_workers": 0,
    },
    "cpu": {
        "space": {"name": "ofa_mbv3_small"},
        "source": {"limit_train": 20000, "limit_val": 2000, "epochs": 10, "policy": {"kind": "sandwich", "num_random": 2}, "batch_size": 64,
                   "lr": 0.05},
        "targets": {"flowers17": {"limit_train": None, "val_images": None},
                    "fashion_mnist": {"limit_train": 10000, "val_images": 2000, "test_images": 2000}},
        "eval": {"calib_images": 500},
        "nat": {"iterations": 6, "initial_archs": 16, "archs_per_iteration": 8, "pop_size": 40, "generations": 30,
                "surrogate": {"model": "adaptive", "candidates": ["rbf", "gp", "rf", "mlp"], "folds": 5},
                "adapt": {"warmup_epochs": 3, "epochs": 1, "subnets": 2, "top": 10, "lr": 0.02, "batch_size": 64}},
        "fixed": ["min", "mid", "max"],
        "num_workers": 0,
    },
    "gpu": {
        "space": {"name": "ofa_mbv3_small"},
        "source": {"limit_train": None, "limit_val": 2000, "epochs": 12, "policy": {"kind": "sandwich", "num_random": 2},
                   "batch_size": 256, "lr": 0.1},
        "targets": {"flowers17": {"limit_train": None, "val_images": None},
                    "fashion_mnist": {"limit_train": 15000, "val_images": 2000, "test_images": None}},
        "eval": {"calib_images": 1000},
        "nat": {"iterations": 5, "initial_archs": 24, "archs_per_iteration": 12, "pop_size": 60, "generations": 40,
                "surrogate": {"model": "adaptive", "candidates": ["rbf", "gp", "rf", "mlp"], "folds": 5},
                "adapt": {"warmup_epochs": 4, "epochs": 2, "subnets": 3, "top": 12, "lr": 0.02, "batch_size": 128,
                          "bn_calibration_images": 1000}},
        "fixed": ["min", "mid", "max"],
        "num_workers": 6,
    },
}

_log = logging.getLogger("nat-benchmark")


def _space(conf: dict):
    s = dict(conf["space"])
    return load_space_config(s.pop("name"), **s)


def _fixed_arch(cfg, which: str) -> Arch:
    if which == "min":
        return min_arch(cfg)
    if which == "max":
        return max_arch(cfg)
    mid = lambda seq: seq[len(seq) // 2]  # noqa: E731
    return Arch(ks=(mid(cfg.kernel_sizes),) * cfg.num_slots, e=(mid(cfg.expand_ratios),) * cfg.num_slots,
                d=(mid(cfg.depths),) * cfg.num_stages, r=mid(cfg.resolutions), w=cfg.width_mults[-1])


class FixedArchPolicy(SubnetPolicy):
    """Trains one fixed arch of the supernet: the supernet restricted to it *is* that fixed
    network, so this is ordinary training / fine-tuning of a fixed MobileNetV3."""

    def __init__(self, cfg, arch: Arch, epochs: int):
        super().__init__(cfg, [Phase(0, "fixed", 0, epochs, {}, 1, None, False, False)])
        self.arch = arch

    def archs(self, epoch, rng):
        return [(self.arch, "label")]

    def eval_archs(self):
        return {"max": self.arch}


def _recipe(name: str, cfg, dataset: str, epochs: int, lr: float, batch_size: int, limit_train: int | None,
            policy: dict, num_workers: int, seed: int = 0, limit_val: int | None = None, optimizer: str = "sgd",
            weight_decay: float = 3e-5) -> dict:
    data = {"dataset": dataset, "resolution": max(cfg.resolutions), "num_workers": num_workers}
    if limit_train:
        data["limit_train"] = limit_train
    if limit_val:
        data["limit_val"] = limit_val
    return {"name": name, "space": cfg.model_dump(mode="json"), "data": data, "policy": {**policy, "epochs": epochs},
            "batch_size": batch_size, "optimizer": {"name": optimizer, "lr": lr, "weight_decay": weight_decay},
            "scheduler": {"name": "cosine", "warmup_epochs": 0}, "label_smoothing": 0.1, "seed": seed,
            "bn_calibration_images": 500}


def _train(recipe: dict, out: Path, supernet=None, policy=None, classes=None):
    """Train with nni-eas's Lightning module; returns the trained supernet module."""
    from nni_eas.training.data import SupernetDataModule
    from nni_eas.training.module import SupernetModule
    from nni_eas.training.recipe import load_recipe
    from nni_eas.training.run import build_trainer

    r = load_recipe(recipe)
    dm = SupernetDataModule(r.data, r.batch_size, r.seed)
    dm.setup()
    module = SupernetModule(r, num_classes=dm.num_classes, classes=dm.classes, supernet=supernet, policy=policy)
    epochs = (policy or module.policy).total_epochs
    trainer = build_trainer(out, epochs, progress=False, nni_report=False)
    trainer.fit(module, datamodule=dm)
    return module, dm.classes


# ------------------------------------------------------------------------------------------------
# stage 1: source supernet and fixed nets on CIFAR-10
# ------------------------------------------------------------------------------------------------
def stage_source(conf: dict, work: Path) -> dict:
    from nni_eas.checkpoint import save_supernet
    from nni_eas.spaces.ofa_mbv3 import OFAMobileNetV3

    cfg = _space(conf)
    s = conf["source"]
    out: dict[str, Any] = {}
    path = work / "source" / "supernet.pt"
    if not path.is_file():
        t0 = time.perf_counter()
        recipe = _recipe("nat_source", cfg, "cifar10", s["epochs"], s["lr"], s["batch_size"], s["limit_train"],
                         s["policy"], conf["num_workers"], limit_val=s.get("limit_val"), optimizer=s.get("optimizer", "sgd"))
        module, classes = _train(recipe, work / "source")
        save_supernet(path, module.supernet.cpu(), classes=classes, meta={"dataset": "cifar10", "val": module.last_val_metrics})
        atomic_write_json(work / "source" / "train.json", {"seconds": time.perf_counter() - t0, "val": module.last_val_metrics})
    out["supernet"] = json.loads((work / "source" / "train.json").read_text())
    for which in conf["fixed"]:
        fpath = work / "fixed" / which / "cifar10.pt"
        if not fpath.is_file():
            t0 = time.perf_counter()
            arch = _fixed_arch(cfg, which)
            recipe = _recipe(f"fixed_{which}", cfg, "cifar10", s["epochs"], s["lr"], s["batch_size"], s["limit_train"],
                             {"kind": "uniform", "subnets": 1}, conf["num_workers"], limit_val=s.get("limit_val"),
                             optimizer=s.get("optimizer", "sgd"))
            torch.manual_seed(0)
            net = OFAMobileNetV3(cfg.model_copy(update={"num_classes": 10}))
            module, classes = _train(recipe, fpath.parent / "pretrain", supernet=net,
                                     policy=FixedArchPolicy(net.config, arch, s["epochs"]))
            save_supernet(fpath, module.supernet.cpu(), classes=classes, meta={"fixed_arch": arch.to_dict()})
            atomic_write_json(fpath.with_suffix(".json"), {"seconds": time.perf_counter() - t0, "val": module.last_val_metrics})
        out[f"fixed_{which}"] = json.loads(fpath.with_suffix(".json").read_text())
    return out


# ------------------------------------------------------------------------------------------------
# stage 2: transfer
# ------------------------------------------------------------------------------------------------
def _evaluation(conf: dict, target: str, supernet: Path, split: str = "val") -> dict:
    t = conf["targets"][target]
    ev = {"supernet": str(supernet), "dataset": target, "calib_images": conf["eval"]["calib_images"], "batch_size": 256,
          "val_split": split}
    limit = t.get("test_images") if split == "test" else t.get("val_images")
    if limit:
        ev["val_images"] = limit
    if torch.get_num_threads() == 1:
        ev["threads"] = 1
    return ev


def _run_nat(conf: dict, target: str, work: Path, head_only: bool) -> Any:
    from nni_eas.checkpoint import load_supernet
    from nni_eas.nat import LocalEvaluator, NATCore
    from nni_eas.search.subnet_eval import EvaluationConfig

    nat = copy.deepcopy(conf["nat"])
    a = nat["adapt"]
    a["limit_train"] = conf["targets"][target].get("limit_train")
    a["limit_val"] = conf["targets"][target].get("val_images")
    total = a["warmup_epochs"] + nat["iterations"] * a["epochs"]
    if head_only:  # (b): same loop, the supernet is never adapted; a new classifier gets all the epochs
        a.update(head_only=True, warmup_epochs=total, epochs=0)
    source = work / "source" / "supernet.pt"
    cfg = load_supernet(source)[0].config
    ev = EvaluationConfig(**_evaluation(conf, target, source))
    core = NATCore(cfg, nat, ev, workdir=work / target / ("no_adaptation" if head_only else "nat"))
    device = "cuda" if torch.cuda.is_available() else None
    evaluate = LocalEvaluator(ev, device=device)
    t0 = time.perf_counter()
    core.run(evaluate)
    _log.info("%s %s: %.0f s", target, "no adaptation" if head_only else "NAT", time.perf_counter() - t0)
    return core


def _test_front(conf: dict, target: str, core) -> list[dict]:
    """Every front entry re-measured on the held-out test split (BN recalibrated on train)."""
    from nni_eas.nat import LocalEvaluator
    from nni_eas.search.subnet_eval import EvaluationConfig

    front = core.front()
    ev = EvaluationConfig(**_evaluation(conf, target, Path(core.supernet), split="test"))
    G = np.array([e.genome for e in front.entries], dtype=np.int64)
    res = LocalEvaluator(ev, device="cuda" if torch.cuda.is_available() else None)(G, core.supernet)
    return [{"genome": e.genome, "arch": e.arch, "macs": e.metrics["macs"], "params": e.metrics["params"],
             "top1_val": e.metrics["top1"], "top1_test": r.get("top1")} for e, r in zip(front.entries, res)]


def _fixed_transfer(conf: dict, target: str, work: Path) -> list[dict]:
    """(c): each fixed net fine-tuned on the target, then measured as a timm MobileNetV3."""
    from nni_eas.checkpoint import load_supernet, save_supernet
    from nni_eas.costs import CostModel
    from nni_eas.evaluation import accuracy
    from nni_eas.nat.adapt import prepare_target_supernet, target_classes
    from nni_eas.search.subnet_eval import load_eval_data
    from nni_eas.spaces.ofa_mbv3 import to_timm

    nat = conf["nat"]
    epochs = nat["adapt"]["warmup_epochs"] + nat["iterations"] * nat["adapt"]["epochs"]
    cfg = _space(conf)
    out = []
    for which in conf["fixed"]:
        d = work / target / "fixed" / which
        fpath = d / "finetuned.pt"
        arch = _fixed_arch(cfg, which)
        t0 = time.perf_counter()
        if not fpath.is_file():
            init = prepare_target_supernet(work / "fixed" / which / "cifar10.pt", target_classes(target), d / "init.pt")
            net, info = load_supernet(init)
            recipe = _recipe(f"finetune_{which}", net.config, target, epochs, nat["adapt"]["lr"],
                             nat["adapt"]["batch_size"], conf["targets"][target].get("limit_train"),
                             {"kind": "uniform", "subnets": 1}, conf["num_workers"],
                             limit_val=conf["targets"][target].get("val_images"),
                             optimizer=nat["adapt"].get("optimizer", "sgd"), weight_decay=nat["adapt"].get("weight_decay", 3e-5))
            module, _ = _train(recipe, d, supernet=net, policy=FixedArchPolicy(net.config, arch, epochs),
                               classes=info["classes"])
            save_supernet(fpath, module.supernet.cpu(), classes=info["classes"], meta={"fixed_arch": arch.to_dict()})
        net, _ = load_supernet(fpath)
        timm_net = to_timm(net.extract(arch)).eval()
        import timm.models

        assert isinstance(timm_net, timm.models.MobileNetV3)
        t = conf["targets"][target]
        test = load_eval_data(target, "test", max(cfg.resolutions), cfg.in_chans, t.get("test_images"))
        top1 = accuracy(timm_net, test, resolution=arch.r)
        cost = CostModel(net.config)
        out.append({"net": which, "arch": arch.to_dict(), "genome": arch_to_genome(cfg, arch).tolist(),
                    "macs": float(cost.macs(arch)), "params": float(cost.params(arch)), "top1_test": top1,
                    "epochs": epochs, "seconds": round(time.perf_counter() - t0, 1)})
    return out


def _hv(points: list[tuple[float, float]], ref_macs: float) -> float:
    """Normalised hypervolume of (top1, macs) points: area dominated within [0, 1] x [0, ref_macs]."""
    if not points:
        return 0.0
    F = np.array([[-t, m] for t, m in points], dtype=np.float64)
    F = F[non_dominated(F)]
    return float(HV(ref_point=np.array([0.0, ref_macs]))(F)) / ref_macs


def _dominated_share(front: list[tuple[float, float]], others: list[tuple[float, float]]) -> float:
    """Share of ``others`` weakly dominated by some point of ``front`` (higher top-1, fewer MACs)."""
    if not others:
        return float("nan")
    hit = sum(any(t >= ot and m <= om for t, m in front) for ot, om in others)
    return hit / len(others)


def stage_transfer(conf: dict, target: str, work: Path, out_dir: Path, tag: str) -> dict:
    from nni_eas.search.plot import plot_fronts

    t0 = time.perf_counter()
    nat = _run_nat(conf, target, work, head_only=False)
    base = _run_nat(conf, target, work, head_only=True)
    nat_test, base_test = _test_front(conf, target, nat), _test_front(conf, target, base)
    fixed = _fixed_transfer(conf, target, work)
    cfg = _space(conf)
    from nni_eas.costs import CostModel

    ref_macs = 1.05 * max([CostModel(cfg).min_max_macs()[1]] + [p["macs"] for p in fixed])
    pts = {
        "NAT (a)": [(p["top1_test"], p["macs"]) for p in nat_test if p["top1_test"] is not None],
        "source supernet, no adaptation (b)": [(p["top1_test"], p["macs"]) for p in base_test if p["top1_test"] is not None],
        "fine-tuned fixed MobileNetV3 (c)": [(p["top1_test"], p["macs"]) for p in fixed],
    }
    names = list(pts)
    hv = {k: _hv(v, ref_macs) for k, v in pts.items()}
    tau = [{"iteration": h["iteration"], "chosen": h["surrogate"]["chosen"], "cv_tau": h["surrogate"]["tau"],
            "taus": h["surrogate"]["taus"], "tau_new": h.get("tau_new")} for h in nat.history if h.get("surrogate")]
    res = {
        "target": target, "seconds": round(time.perf_counter() - t0, 1), "ref_macs": ref_macs,
        "hypervolume_test": hv,
        "nat_dominates": {"b": _dominated_share(pts[names[0]], pts[names[1]]),
                          "c": _dominated_share(pts[names[0]], pts[names[2]])},
        "hypervolume_val_per_iteration": {"nat": nat.hv_history, "no_adaptation": base.hv_history},
        "surrogate": tau,
        "adaptation": [{"iteration": h["iteration"], **{k: h[k] for k in ("warmup", "adaptation") if k in h}} for h in nat.history],
        "fronts": {"nat": nat_test, "no_adaptation": base_test, "fixed": fixed},
        "planned_evaluations": nat.planned_evaluations(),
    }
    V = np.array([[t, m] for t, m in pts[names[0]]])
    others = {k: np.array([[t, m] for t, m in v]) for k, v in pts.items() if k != names[0] and v}
    plot_fronts(out_dir / f"nat_{tag}_{target}.png", ["top1", "macs"], [], final=V, others=others,
                title=f"{target}: top-1 (test) vs MACs; line: NAT (a); HV " + ", ".join(f"{k.split(' (')[-1][:-1]} {v:.3f}" for k, v in hv.items()))
    return res


def _plot_tau(path: Path, results: dict) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.4))
    for target, r in results.items():
        its = [s["iteration"] for s in r["surrogate"]]
        ax.plot(its, [s["cv_tau"] for s in r["surrogate"]], "-o", label=f"{target}: cross-validated")
        ax.plot(its, [s["tau_new"] if s["tau_new"] is not None else np.nan for s in r["surrogate"]], "--s",
                label=f"{target}: on proposed archs")
        for s in r["surrogate"]:
            ax.annotate(s["chosen"], (s["iteration"], s["cv_tau"]), xytext=(0, 5), textcoords="offset points",
                        fontsize=7, ha="center")
    ax.axhline(0.7, color="grey", lw=0.8, ls="--")
    ax.set(xlabel="NAT iteration", ylabel="Kendall tau", ylim=(-1, 1), title="surrogate ranking quality")
    ax.legend(fontsize=7)
    save_figure(fig, path, dpi=100)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--config", choices=list(CONFIGS), default="reduced")
    p.add_argument("--stage", choices=["all", "source", "transfer"], default="all")
    p.add_argument("--targets", nargs="+", default=None, help="default: the config's targets")
    p.add_argument("--work", type=Path, default=None, help="default: runs/nat_bench/<config>")
    p.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    p.add_argument("--threads", type=int, default=1, help="torch threads (1 on a shared CPU)")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="[%(asctime)s] %(levelname)s %(name)s: %(message)s")
    logging.getLogger("lightning.pytorch").setLevel(logging.WARNING)
    logging.getLogger("pytorch_lightning").setLevel(logging.WARNING)
    torch.set_num_threads(args.threads)
    conf = CONFIGS[args.config]
    work = args.work or ROOT / "runs" / "nat_bench" / args.config
    args.out.mkdir(parents=True, exist_ok=True)
    result_file = args.out / f"nat_{args.config}.json"
    results = json.loads(result_file.read_text()) if result_file.is_file() else {}
    results.update({"format": "nni-eas-benchmark-nat/1", "config": args.config, "settings": conf,
                    "machine": {"platform": platform.platform(), "cpu_count": os.cpu_count(), "threads": args.threads,
                                "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None}})
    t0 = time.perf_counter()
    if args.stage in ("all", "source"):
        results["source"] = stage_source(conf, work)
        atomic_write_json(result_file, results)
    if args.stage in ("all", "transfer"):
        results.setdefault("targets", {})
        for target in args.targets or list(conf["targets"]):
            results["targets"][target] = stage_transfer(conf, target, work, args.out, args.config)
            atomic_write_json(result_file, results)
            r = results["targets"][target]
            print(f"{target}: HV (test) " + ", ".join(f"{k}: {v:.4f}" for k, v in r["hypervolume_test"].items())
                  + f"; NAT dominates {r['nat_dominates']}; final surrogate "
                  + (f"{r['surrogate'][-1]['chosen']} tau {r['surrogate'][-1]['cv_tau']:.3f}" if r["surrogate"] else "-"),
                  flush=True)
        _plot_tau(args.out / f"nat_{args.config}_tau.png", results["targets"])
    results["seconds_this_run"] = round(time.perf_counter() - t0, 1)
    atomic_write_json(result_file, results)
    print(f"wrote {result_file} ({results['seconds_this_run']} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
