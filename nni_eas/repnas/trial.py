"""RepNAS search + retrain + fusion as one run: a Python function and an ``nnictl`` trial.

``nnictl create`` only runs HPO-style experiments (a tuner proposes parameters, a trial command
trains), so ``strategies/repnas.yml`` runs the whole one-shot RepNAS pipeline as a single trial::

    python -m nni_eas.repnas.trial --space repnas_small --dataset digits --resolution 16

Parameters from the tuner (``nni.get_next_parameter()``) override recipe keys (``budget``,
``arch_lr``, ...; unknown keys fail naming the allowed ones). Every validation epoch is reported
as an intermediate result; the final result is
``{'default': top1, 'top1', 'macs', 'params', 'latency_ms', 'branches_kept'}`` of the fused
net on the test split. ``<out>/result.json`` holds it with the searched sample and both configs,
``<out>/fused.onnx`` the deployed graph.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path
from typing import Any, Mapping

import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, TensorDataset

from ..compat import with_default_metric
from ..config import ConfigError
from ..io import atomic_write_json
from ..training.callbacks import in_nni_trial as _in_nni_trial
from .config import RepNASRecipe, SpaceLike, load_recipe, load_repnas_config
from .deploy import compare_latency, export_onnx, model_costs, onnx_op_counts
from .module import RepNASModule
from .net import RepNASNet

__all__ = ["run_repnas", "NNIReporter", "main"]

_log = logging.getLogger(__name__)


class NNIReporter(pl.Callback):
    """Each validation epoch as an NNI intermediate result (``'default'`` = ``val_acc``)."""

    def __init__(self, enabled: bool | None = None):
        self.enabled = _in_nni_trial() if enabled is None else enabled
        self.reported: list[dict[str, float]] = []

    def on_validation_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.sanity_checking:
            return
        m = trainer.callback_metrics
        if "val_acc" not in m:
            return
        net = getattr(pl_module, "net", None)
        kept = sum(len(v) for v in net.sample().values()) if isinstance(net, RepNASNet) else float("nan")
        metric = with_default_metric({
            "val_acc": float(m["val_acc"]), "val_loss": float(m.get("val_loss", float("nan"))),
            "epoch": int(trainer.current_epoch), "branches_kept": float(kept),
        }, "val_acc")
        self.reported.append(metric)
        if self.enabled:
            import nni

            nni.report_intermediate_result(metric)


def _tensors(dataset: str, split: str, resolution: int, channels: int,
             limit: int | None) -> tuple[torch.Tensor, torch.Tensor]:
    from ..data import load_dataset

    x, y = load_dataset(dataset, split=split, resolution=resolution, channels=channels).tensors()
    if limit is not None and limit < len(y):
        idx = torch.randperm(len(y), generator=torch.Generator().manual_seed(0))[:limit]
        x, y = x[idx], y[idx]
    return x, y


@torch.no_grad()
def _top1(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int = 512) -> float:
    model.eval()
    correct = sum(int((model(x[i:i + batch_size]).argmax(1) == y[i:i + batch_size]).sum())
                  for i in range(0, len(y), batch_size))
    return correct / max(1, len(y))


def run_repnas(space: SpaceLike = "repnas_small", recipe: RepNASRecipe | Mapping[str, Any] | str | None = None,
               dataset: str = "digits", resolution: int | None = None, out_dir: str | os.PathLike | None = None,
               max_train_images: int | None = None, max_steps_per_epoch: int | None = None,
               latency_runs: int = 100, threads: int = 1, reporter: NNIReporter | None = None,
               progress: bool = False) -> dict[str, Any]:
    """Search, retrain, fuse, export and measure; returns (and writes) the result dict.

    Args:
        space, recipe: the branch space and the training recipe (see :mod:`nni_eas.repnas.config`).
        dataset: a :func:`nni_eas.data.load_dataset` name; ``train`` / ``val`` / ``test`` splits.
        resolution: input size (default: the space's ``resolution``).
        out_dir: where ``result.json`` and ``fused.onnx`` go (``None``: nothing is written,
            latency is not measured).
        max_train_images, max_steps_per_epoch: shrink the run (tests, smoke runs).
    """
    recipe = load_recipe(recipe)
    cfg = load_repnas_config(space)
    res = resolution or cfg.resolution
    pl.seed_everything(recipe.seed, workers=False, verbose=False)
    train = _tensors(dataset, "train", res, cfg.in_chans, max_train_images)
    val = _tensors(dataset, "val", res, cfg.in_chans, None)
    test = _tensors(dataset, "test", res, cfg.in_chans, None)
    num_classes = int(max(train[1].max(), test[1].max())) + 1
    module = RepNASModule(RepNASNet(cfg, num_classes=num_classes), recipe)
    reporter = reporter or NNIReporter()
    trainer = pl.Trainer(
        max_epochs=recipe.max_epochs, accelerator="cpu", devices=1, logger=False, enable_checkpointing=False,
        enable_progress_bar=progress, enable_model_summary=False, num_sanity_val_steps=0,
        limit_train_batches=max_steps_per_epoch or 1.0, callbacks=[reporter],
    )
    g = torch.Generator().manual_seed(recipe.seed)
    trainer.fit(module, DataLoader(TensorDataset(*train), batch_size=recipe.batch_size, shuffle=True, generator=g),
                DataLoader(TensorDataset(*val), batch_size=512))
    searched = module.searched_net().eval()
    fused = searched.fuse()
    sample = module.searched_sample()
    result: dict[str, Any] = {
        "top1": _top1(fused, *test),
        "top1_unfused": _top1(searched, *test),
        **model_costs(fused, res, cfg.in_chans),
        "latency_ms": None,
        "branches_kept": int(sum(len(v) for v in sample.values())),  # always-on ones included
        "searched_kept": int(module.search.mask().sum()),  # what the budget counts
        "budget_k": module.search.k,
        "searchable_branches": module.search.num_slots,
    }
    if out_dir is not None:
        out = Path(out_dir)
        onnx_path = export_onnx(fused, out / "fused.onnx", (cfg.in_chans, res, res))
        result["onnx_ops"] = onnx_op_counts(onnx_path)
        lat = compare_latency({"fused": onnx_path}, threads=threads, runs=latency_runs)
        result["latency_ms"] = lat["models"]["fused"]["median_ms"]
        atomic_write_json(out / "result.json", {
            "format": "nni-eas-repnas-result/1", "metrics": result, "sample": sample,
            "intermediate": reporter.reported, "dataset": dataset, "resolution": res,
            "space": cfg.model_dump(mode="json"), "recipe": recipe.model_dump(mode="json"),
            "latency": lat,
        })
    result["sample"] = sample
    return result


def _parse_set(items: list[str]) -> dict[str, Any]:
    import yaml

    out = {}
    for item in items:
        if "=" not in item:
            raise ConfigError(f"--set: expected key=value, got {item!r}")
        key, value = item.split("=", 1)
        out[key.strip()] = yaml.safe_load(value)
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m nni_eas.repnas.trial", description=__doc__.split("\n\n")[0])
    p.add_argument("--space", default="repnas_small", help="RepNAS preset name or YAML path")
    p.add_argument("--recipe", default=None, help="recipe YAML (default: RepNASRecipe defaults)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a recipe key")
    p.add_argument("--dataset", default="digits")
    p.add_argument("--resolution", type=int, default=None)
    p.add_argument("--out", default=None, help="output folder (default: $NNI_OUTPUT_DIR or ./repnas-out)")
    p.add_argument("--max-train-images", type=int, default=None)
    p.add_argument("--latency-runs", type=int, default=100)
    p.add_argument("--threads", type=int, default=1, help="onnxruntime intra-op threads for latency")
    p.add_argument("--torch-threads", type=int, default=None,
                   help="PyTorch threads for training (1 on a shared machine: busy cores make threads spin-wait)")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if args.torch_threads:
        torch.set_num_threads(args.torch_threads)
    try:
        overrides = _parse_set(args.set)
        in_nni = _in_nni_trial()
        if in_nni:
            import nni

            overrides.update(nni.get_next_parameter() or {})
        recipe = load_recipe(args.recipe, **overrides)
        out = args.out or os.environ.get("NNI_OUTPUT_DIR") or "repnas-out"
        result = run_repnas(args.space, recipe, args.dataset, args.resolution, out,
                            max_train_images=args.max_train_images, latency_runs=args.latency_runs,
                            threads=args.threads)
    except ConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    keys = ("top1", "macs", "params", "latency_ms", "branches_kept")
    final = with_default_metric({k: result[k] for k in keys}, "top1")
    if in_nni:
        import nni

        nni.report_final_result(final)
    print(final)
    return 0


if __name__ == "__main__":
    sys.exit(main())
