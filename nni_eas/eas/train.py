"""Train the architecture generator against a trained supernet (a Lightning run with checkpoints).

:func:`train_generator` is what the generator stage of the EAS pipeline runs (in an NNI trial
or in-process): it loads the supernet, builds the cost tables of the budgeted metrics, trains
:class:`~nni_eas.eas.generator.GeneratorModule` for ``generator.steps`` steps (Lightning
progress bar, atomic checkpoints every validation, resumable), reports each validation to NNI
as an intermediate result (``{'default': task top-1 of the generated archs, 'budget_use', ...}``)
and writes ``generator.pt`` plus ``generator_curves.png`` / ``.json``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Optional

import numpy as np
import pytorch_lightning as pl
import torch

from ..io import atomic_write_json, save_figure
from .budget import CostTable, cost_tables, load_tables
from .config import GeneratorConfig

__all__ = ["train_generator", "GeneratorResult", "load_tables"]

_log = logging.getLogger(__name__)


@dataclass
class GeneratorResult:
    path: Path
    metrics: dict[str, float]
    history: list[dict[str, float]] = field(default_factory=list)
    seconds: float = 0.0


class _GeneratorCurves(pl.Callback):
    """``generator_curves.json`` / ``.png``: validation task top-1 and budget use per step."""

    def __init__(self, out_dir: Path):
        self.out_dir = out_dir

    def on_validation_end(self, trainer: pl.Trainer, pl_module: "pl.LightningModule") -> None:
        hist = getattr(pl_module, "history", [])
        if not hist or trainer.sanity_checking:
            return
        atomic_write_json(self.out_dir / "generator_curves.json", hist)
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        steps = [h["step"] for h in hist]
        fig, (a1, a2) = plt.subplots(1, 2, figsize=(9, 3.4))
        a1.plot(steps, [h["task_top1"] for h in hist], marker="o")
        a1.set(xlabel="step", ylabel="task top-1 (val)", title="generated archs, fixed scenarios")
        a2.plot(steps, [h["budget_use"] for h in hist], marker="o")
        a2.axhline(1.0, color="gray", lw=0.8, ls="--")
        a2.set(xlabel="step", ylabel="cost / budget (after repair)", title="budget use")
        save_figure(fig, self.out_dir / "generator_curves.png")


def train_generator(supernet_path: str | Path, config: GeneratorConfig | Mapping[str, Any], out_dir: str | Path, *,
                    dataset: str | None = None, latency_table: str | None = None, resume: bool = True,
                    progress: bool = True, nni_report: Optional[bool] = None, threads: int | None = None) -> GeneratorResult:
    """Train a generator for the supernet at ``supernet_path`` on ``dataset`` (default: the
    supernet's training dataset); returns the path of ``generator.pt`` and the last validation."""
    import time

    from ..checkpoint import file_sha256, load_supernet
    from ..config import validate
    from ..search.subnet_eval import load_eval_data
    from ..training.callbacks import NNIReportCallback
    from ..training.run import build_trainer
    from .generator import ArchGenerator, GeneratorModule, save_generator

    t0 = time.perf_counter()
    config = config if isinstance(config, GeneratorConfig) else validate(GeneratorConfig, dict(config), "generator")
    if threads:
        torch.set_num_threads(threads)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    supernet, info = load_supernet(supernet_path)
    cfg = supernet.config
    dataset = dataset or info["meta"].get("dataset") or "digits"
    tables = load_tables(cfg, config.metrics, cfg.num_classes, latency_table)
    pl.seed_everything(config.seed, workers=True, verbose=False)
    gen = ArchGenerator(cfg, cfg.num_classes, config.metrics, {m: t.minmax() for m, t in tables.items()}, config.hidden)
    res = max(cfg.resolutions)
    x, y = load_eval_data(dataset, "train", res, cfg.in_chans, config.train_images)
    val = load_eval_data(dataset, "val", res, cfg.in_chans)
    module = GeneratorModule(gen, supernet, tables, config, val_data=val)
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=min(config.batch_size, len(x)),
                                         shuffle=True, drop_last=True,
                                         generator=torch.Generator().manual_seed(config.seed))
    val_loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(val[0][:1], val[1][:1]), batch_size=1)
    trainer = build_trainer(out_dir, max_epochs=-1, progress=progress, nni_report=nni_report, curves=False,
                            extra_callbacks=[_GeneratorCurves(out_dir)], max_steps=config.steps,
                            val_check_interval=min(config.val_every, config.steps), check_val_every_n_epoch=None,
                            report_default_key="task_top1")
    last = out_dir / "checkpoints" / "last.ckpt"
    trainer.fit(module, train_dataloaders=loader, val_dataloaders=val_loader,
                ckpt_path=str(last) if resume and last.exists() else None, weights_only=True)
    if not module.history or module.history[-1]["step"] != trainer.global_step:
        trainer.validate(module, dataloaders=val_loader, verbose=False)
    path = save_generator(out_dir / "generator.pt", gen, info["classes"], meta={
        "supernet": str(supernet_path), "supernet_sha256": file_sha256(supernet_path), "dataset": dataset,
        "steps": int(trainer.global_step), "latency_table": latency_table, "val": dict(module.last_val_metrics),
        "config": config.model_dump(mode="json")})
    return GeneratorResult(path, dict(module.last_val_metrics), list(module.history), time.perf_counter() - t0)
