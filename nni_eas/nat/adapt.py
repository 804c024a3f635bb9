"""NAT's online supernet adaptation: train the supernet on the target data, on the archs that matter.

Uniform sampling (OFA, SPOS) spends the target data on every subnet alike; NAT spends it on the
part of the space its search is converging to. :class:`ArchiveDistribution` is a per-gene
categorical distribution estimated from the archive's best archs (kernel and expand genes only
from the archs where that slot runs), smoothed towards uniform so the rest of the space is not
forgotten; :class:`ArchiveDistributionPolicy` is a
:class:`~nni_eas.training.policies.SubnetPolicy` that draws every training step's subnets from
it, so :class:`~nni_eas.training.SupernetModule` trains with it unchanged.

An adaptation step is a self-contained JSON *job* (input supernet, output path, epochs, the
archs the distribution is built from, training settings): :func:`adapt_supernet` runs one in
this process, and an NNI trial runs the same function (``nni_eas.nat.trial``).
"""

from __future__ import annotations

import logging
import shutil
import time
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import torch

from ..config import ConfigError
from ..encodings import arch_from_genome, genome_bounds
from ..search.genome import GenomeLayout
from ..spaces.arch import Arch, max_arch, min_arch
from ..spaces.config import OFAMobileNetV3Config
from ..training.policies import Phase, SubnetPolicy

__all__ = ["ArchiveDistribution", "ArchiveDistributionPolicy", "prepare_target_supernet", "adapt_supernet",
           "target_classes"]

_logger = logging.getLogger(__name__)


class ArchiveDistribution:
    """Independent categorical distribution per gene, fitted to a set of good genomes.

    ``smoothing`` mixes each gene's frequencies with the uniform distribution
    (``p = (1 - s) * freq + s / choices``); no genomes at all gives the uniform distribution.
    """

    def __init__(self, cfg: OFAMobileNetV3Config, genomes: np.ndarray | Sequence[Sequence[int]] | None = None,
                 smoothing: float = 0.1):
        if not 0 <= smoothing <= 1:
            raise ConfigError(f"distribution smoothing must be in [0, 1], got {smoothing}")
        self.cfg, self.smoothing = cfg, float(smoothing)
        self.layout = GenomeLayout(cfg)
        lo, hi = genome_bounds(cfg)
        self.choices = (hi - lo + 1).astype(np.int64)
        G = np.zeros((0, self.layout.length), np.int64) if genomes is None or len(genomes) == 0 \
            else np.atleast_2d(np.asarray(genomes, dtype=np.int64))
        active = np.ones(G.shape, dtype=bool)
        if len(G):
            slots = self.layout.active(G)
            active[:, self.layout.kernel] = slots
            active[:, self.layout.expand] = slots
        self.probs: list[np.ndarray] = []
        for j, n in enumerate(self.choices):
            counts = np.bincount(G[active[:, j], j], minlength=n).astype(np.float64)
            freq = counts / counts.sum() if counts.sum() else np.full(n, 1.0 / n)
            s = self.smoothing if counts.sum() else 1.0
            self.probs.append((1 - s) * freq + s / n)
        self.n = len(G)

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """``n`` genomes, every gene drawn independently."""
        out = np.empty((n, self.layout.length), dtype=np.int64)
        for j, p in enumerate(self.probs):
            out[:, j] = rng.choice(len(p), size=n, p=p)
        return out

    def entropy(self) -> float:
        """Mean entropy per gene relative to uniform (1 = uniform, 0 = one arch)."""
        h = [-(p * np.log(p + 1e-300)).sum() / np.log(len(p)) for p in self.probs if len(p) > 1]
        return float(np.mean(h)) if h else 0.0


class ArchiveDistributionPolicy(SubnetPolicy):
    """Subnet policy of NAT's adaptation: every step trains ``subnets`` archs drawn from the
    archive's distribution (plus the largest one with ``include_largest``).

    A :class:`~nni_eas.training.policies.SubnetPolicy` (one phase, no teacher, no channel
    sorting); validation reports the largest, the smallest and the archive's best-ranked arch.
    """

    def __init__(self, cfg: OFAMobileNetV3Config, distribution: ArchiveDistribution, epochs: int, subnets: int = 2,
                 include_largest: bool = False, best: Arch | None = None):
        if epochs < 1 or subnets < 1:
            raise ConfigError(f"adaptation needs epochs >= 1 and subnets >= 1, got epochs={epochs}, subnets={subnets}")
        super().__init__(cfg, [Phase(0, "nat_adapt", 0, int(epochs), {}, int(subnets), None, False, False)])
        self.distribution, self.include_largest, self.best = distribution, include_largest, best

    def archs(self, epoch: int, rng: np.random.Generator) -> list[tuple[Arch, str]]:
        genomes = self.distribution.sample(self.phases[0].subnets, rng)
        out = [(arch_from_genome(self.cfg, g), "label") for g in genomes]
        if self.include_largest:
            out.insert(0, (max_arch(self.cfg), "label"))
        return out

    def eval_archs(self) -> dict[str, Arch]:
        out = {"max": max_arch(self.cfg), "min": min_arch(self.cfg)}
        if self.best is not None:
            out["best"] = self.best
        return out


# ------------------------------------------------------------------------------------------------
# the target task's supernet
# ------------------------------------------------------------------------------------------------
def target_classes(dataset: str) -> list[str]:
    """Class names of a dataset (from ``sources.yml``; loads the train split when it has none)."""
    from ..data import dataset_spec, load_dataset

    spec = dataset_spec(dataset)
    if spec.classes:
        return list(spec.classes)
    return list(load_dataset(dataset, "train").classes)


def prepare_target_supernet(source: str | Path, classes: Sequence[str], out: str | Path) -> Path:
    """The source supernet with a classifier for ``classes``: NAT's starting point on a new task.

    The head is kept when the source was trained on exactly these classes; otherwise it is
    replaced by a freshly initialised one (the source's classes mean nothing on the target).
    """
    from ..checkpoint import load_supernet, save_supernet
    from ..spaces.ofa_mbv3 import OFAMobileNetV3

    supernet, info = load_supernet(source)
    classes = [str(c) for c in classes]
    meta = {"source": str(source), "source_sha256": info["sha256"], "source_classes": info["classes"]}
    if list(info["classes"]) == classes:
        return save_supernet(out, supernet, classes=classes, meta={**meta, "head": "kept"})
    torch.manual_seed(0)
    target = OFAMobileNetV3(supernet.config.model_copy(update={"num_classes": len(classes)}))
    state = {k: v for k, v in supernet.state_dict().items() if not k.startswith("classifier.")}
    missing, unexpected = target.load_state_dict(state, strict=False)
    if unexpected or any(not k.startswith("classifier.") for k in missing):
        raise ConfigError(f"cannot transfer {source}: missing {missing[:3]}, unexpected {unexpected[:3]}")
    return save_supernet(out, target, classes=classes, meta={**meta, "head": "new"})


# ------------------------------------------------------------------------------------------------
# one adaptation step
# ------------------------------------------------------------------------------------------------
def _recipe(job: Mapping[str, Any], cfg: OFAMobileNetV3Config):
    from ..training.recipe import load_recipe

    a = job["adapt"]
    opt = {"name": a["optimizer"], "lr": a["lr"], "weight_decay": a["weight_decay"]}
    data = {"dataset": job["dataset"], "resolution": a.get("resolution") or max(cfg.resolutions)}
    for key in ("limit_train", "limit_val"):
        if a.get(key):
            data[key] = a[key]
    return load_recipe({
        "name": f"nat_adapt_{job['iteration']}", "description": "NAT supernet adaptation (policy: archive distribution)",
        "space": cfg.model_dump(mode="json"), "data": data,
        "policy": {"kind": "uniform", "epochs": int(job["epochs"]), "subnets": int(a["subnets"])},  # replaced by ours
        "batch_size": a["batch_size"], "optimizer": opt, "scheduler": {"name": "cosine", "warmup_epochs": 0},
        "label_smoothing": a["label_smoothing"], "bn_calibration_images": a["bn_calibration_images"],
        "seed": int(a.get("seed", 0)) * 1000 + int(job["iteration"]),
    })


def adapt_supernet(job: Mapping[str, Any], progress: bool = False, nni_report: bool | None = None,
                   threads: int | None = None) -> dict[str, Any]:
    """Run one adaptation job; writes ``job['output']`` and returns the final validation metrics.

    ``job``: ``input`` / ``output`` supernet paths, ``dataset``, ``epochs``, ``iteration``,
    ``genomes`` (the archs the distribution is fitted to; empty = uniform), ``best`` (a genome
    validated every epoch, or None) and ``adapt`` (:class:`~nni_eas.nat.config.AdaptConfig` fields).
    ``nni_report``: send every epoch's validation metrics to NNI (the trial's learning curve).
    """
    from ..checkpoint import load_supernet, save_supernet
    from ..training.data import SupernetDataModule
    from ..training.module import SupernetModule
    from ..training.run import build_trainer

    t0 = time.perf_counter()
    saved_threads = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    try:
        supernet, info = load_supernet(job["input"])
        supernet.train()
        cfg = supernet.config
        a = job["adapt"]
        recipe = _recipe(job, cfg)
        dm = SupernetDataModule(recipe.data, recipe.batch_size, recipe.seed, in_chans=cfg.in_chans)
        dm.setup()
        if dm.num_classes != cfg.num_classes:
            raise ConfigError(f"adaptation data {job['dataset']!r} has {dm.num_classes} classes, the supernet "
                              f"{cfg.num_classes}; prepare it with prepare_target_supernet")
        if a.get("head_only"):
            for name, p in supernet.named_parameters():
                p.requires_grad_(name.startswith("classifier."))
        dist = ArchiveDistribution(cfg, np.asarray(job.get("genomes") or [], dtype=np.int64).reshape(-1, GenomeLayout(cfg).length),
                                   smoothing=float(a["smoothing"]))
        best = arch_from_genome(cfg, job["best"]) if job.get("best") is not None else None
        policy = ArchiveDistributionPolicy(cfg, dist, int(job["epochs"]), int(a["subnets"]),
                                           include_largest=bool(a.get("include_largest")), best=best)
        module = SupernetModule(recipe, supernet=supernet, classes=info["classes"], policy=policy)
        out_dir = Path(job["work_dir"])
        trainer = build_trainer(out_dir, policy.total_epochs, 1, progress, nni_report)
        trainer.fit(module, datamodule=dm)
        supernet.requires_grad_(True)
        path = save_supernet(job["output"], module.supernet, classes=info["classes"], meta={
            "nat_iteration": job["iteration"], "adapted_from": str(job["input"]), "dataset": job["dataset"],
            "epochs": int(job["epochs"]), "head_only": bool(a.get("head_only")), "val": module.last_val_metrics})
        shutil.rmtree(out_dir / "checkpoints", ignore_errors=True)  # NAT checkpoints the supernet itself
        curves = next((c for c in trainer.callbacks if type(c).__name__ == "CurvesCallback"), None)
        history = list(getattr(curves, "history", []))
        val = {k: float(v) for k, v in module.last_val_metrics.items() if k != "epoch"}
        loss = next((h.get("train/loss_epoch") for h in reversed(history) if h.get("train/loss_epoch") is not None), None)
        return {"default": val.get("top1_best", val.get("top1_max", 0.0)), **val,
                "train_loss": loss, "epochs": int(job["epochs"]), "distribution_entropy": dist.entropy(),
                "seconds": round(time.perf_counter() - t0, 3), "supernet": str(path)}
    finally:
        torch.set_num_threads(saved_threads)
