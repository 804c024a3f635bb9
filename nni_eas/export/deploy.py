"""From a supernet and an arch to a deployable file: extract, specialize, export, measure, describe.

:func:`deploy_subnet` is what ``nni-eas export``, ``nni-eas specialize`` and ``nni-eas eas`` run:
extract the subnet with inherited weights, recalibrate its BatchNorm statistics (OFA's step
before any evaluation; ``bn``: on every class, the task's classes, a mix, or ``"auto"``: the
mode decided on the validation split by :func:`~nni_eas.eas.specialize.specialize_subnet`),
keep only the task's logits, export and verify the ONNX graph, time it with onnxruntime, and
write the model card beside it.

The ONNX file and its card are committed together: both are written to temporary files in the
destination folder and renamed into place only when everything succeeded, the card last. A
failure or a kill on the way leaves the previous ``.onnx`` + ``.card.json`` pair as it was, and the
card records the ONNX file's SHA-256 (``onnx.sha256``; :func:`~nni_eas.export.card.verify_model_card`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

import torch
import torch.nn as nn

from ..config import ConfigError
from ..costs import count_params, measure_macs
from ..spaces.arch import Arch, validate_arch
from ..spaces.ofa_mbv3 import MobileNetV3Subnet, OFAMobileNetV3
from .card import (
    AccuracyInfo,
    ArchInfo,
    ClassesInfo,
    CostsInfo,
    MeasuredLatency,
    ModelCard,
    PredictedLatency,
    SourceInfo,
    card_path,
    model_card_json,
)
from .lut import LatencyTable, LatencyTableError
from .onnx_export import DEFAULT_OPSET, ExportCheckError, ExportReport, export_onnx
from .runtime import DEFAULT_THREADS, measure_latency

__all__ = ["DeployResult", "deploy_subnet", "load_task_data"]


@dataclass
class DeployResult:
    onnx_path: Path
    card_path: Path
    card: ModelCard
    report: ExportReport
    model: nn.Module
    specialization: dict[str, Any] | None = None  # the BN decision (see deploy_subnet), when data was given


def load_task_data(name: str, split: str, resolution: int, channels: int,
                   max_images: int | None = None) -> tuple[torch.Tensor, torch.Tensor, dict[str, Any]]:
    """``(images, labels, info)`` of a dataset of :mod:`nni_eas.data` at the subnet's input size.

    Raises :class:`~nni_eas.config.ConfigError` naming the datasets available when ``name`` is
    unknown, or saying that :mod:`nni_eas.data` is missing from this installation.
    """
    try:
        from ..data import available_datasets, load_dataset
    except ImportError as e:  # pragma: no cover - depends on the installation
        raise ConfigError(f"--data needs the nni_eas.data package, which cannot be imported here ({e})") from None
    names = list(available_datasets())
    if name not in names:
        raise ConfigError(f"--data: unknown dataset {name!r}; allowed: {', '.join(names)}")
    ds = load_dataset(name, split, resolution=resolution, channels=channels)
    x, y = ds.tensors()
    if max_images is not None and len(x) > max_images:
        g = torch.Generator().manual_seed(0)
        keep = torch.randperm(len(x), generator=g)[:max_images].sort().values
        x, y = x[keep], y[keep]
    info = {"dataset": name, "split": split, "images": len(x), "classes": list(ds.classes),
            "mean": list(ds.mean), "std": list(ds.std), "source": getattr(ds, "source", name)}
    return x, y, info


def _write_synced(path: Path, text: str) -> None:
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())


def _fsync_dir(folder: Path) -> None:
    """Make the renames durable (best effort: not every platform can open a folder)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def deploy_subnet(supernet: OFAMobileNetV3, arch: Arch | Mapping[str, Any], path: str | os.PathLike, *,
                  classes: Sequence[int] | None = None, class_names: Sequence[str] | None = None,
                  supernet_path: str | os.PathLike | None = None, supernet_sha256: str | None = None,
                  data: str | None = None, calib_split: str = "train", eval_split: str = "test",
                  calib_images: int = 2000, eval_images: int | None = 10000,
                  batch_size: int = 1, dynamic_batch: bool = False, opset: int = DEFAULT_OPSET, atol: float = 1e-4,
                  measure: bool = True, threads: int = DEFAULT_THREADS, warmup: int = 10, runs: int = 50,
                  table: LatencyTable | None = None, front: Mapping[str, Any] | None = None,
                  extra: Mapping[str, Any] | None = None, bn: str | None = None, val_split: str = "val",
                  task_calibration: bool = False) -> DeployResult:
    """Extract ``arch`` from ``supernet``, specialize it, export ``path`` (+ card). See module docstring.

    Args:
        classes: supernet class indices the deployed logits keep, in order (default: all).
        class_names: names of the supernet's classes (from the checkpoint).
        data: a dataset of :mod:`nni_eas.data`: BN statistics are recalibrated on ``calib_split``
            and top-1 measured on ``eval_split`` (only the task's classes), both recorded.
        table: a latency table of the space; its prediction is recorded beside the measurement.
        front: ``{"path", "index", "metrics"}`` when the arch came from a front file.
        bn: which ``calib_split`` images BN statistics are recalibrated on (with ``data``):
            ``"all"`` (every class; the default), ``"task"`` (``classes`` only), ``"mix"`` (the
            task's images and as many others) or ``"auto"`` (what EAS uses): decided on the
            task's ``val_split`` images by :func:`~nni_eas.eas.specialize.specialize_subnet`
            (``"all"`` unless another mode is better beyond noise; then the classifier may be
            fitted to the task, kept by the same rule). The decision, the validation scores and
            the baseline's ``eval_split`` top-1 are recorded in the card's
            ``extra["specialization"]`` and in :attr:`DeployResult.specialization`.
        val_split: the split ``bn="auto"`` decides on (never the ``eval_split``).
        task_calibration: the former switch for ``bn="task"`` (kept for old callers; task-only
            statistics lost to ``"all"`` on most tasks measured, see docs/eas.md).
    """
    from ..eas.specialize import BN_MODES, specialize_subnet
    from ..encodings import arch_to_genome, arch_to_nat

    if task_calibration:
        if bn not in (None, "task"):
            raise ConfigError(f"task_calibration=True means bn='task'; it contradicts bn={bn!r} (pass bn only)")
        bn = "task"
    bn = bn or "all"
    if bn != "auto" and bn not in BN_MODES:
        raise ConfigError(f"bn: unknown BatchNorm calibration mode {bn!r}; allowed: auto, {', '.join(BN_MODES)}")
    if bn == "auto" and val_split == eval_split:
        raise ConfigError(f"bn='auto' decides on the {val_split!r} split, which is also the evaluation split; "
                          "give another val_split (e.g. 'val')")
    cfg = supernet.config
    arch = validate_arch(cfg, arch)
    path = Path(path)
    if path.suffix != ".onnx":
        raise ConfigError(f"output path must end in .onnx, got {str(path)!r}")
    if path.is_dir() or card_path(path).is_dir():
        raise ConfigError(f"output path {path} (or its card {card_path(path).name}) is a directory; "
                          "give a file name ending in .onnx")
    names = list(class_names) if class_names is not None else [str(i) for i in range(cfg.num_classes)]
    if len(names) != cfg.num_classes:
        raise ConfigError(f"class_names has {len(names)} names for a {cfg.num_classes}-class supernet")
    if classes is not None:
        classes = [int(c) for c in classes]
        bad = [c for c in classes if not 0 <= c < cfg.num_classes]
        if bad or len(set(classes)) != len(classes) or not classes:
            raise ConfigError(f"--classes must be distinct class indices in 0..{cfg.num_classes - 1} "
                              f"(or class names: {', '.join(names)}); got {classes}")

    accuracy: AccuracyInfo | None = None
    check_images = None
    normalization = None
    spec: dict[str, Any] | None = None
    extra = dict(extra or {})
    if data is not None:
        # BN recalibration, the restricted classifier and both top-1s: one function decides and
        # measures for every caller (nni_eas.eas.specialize.specialize_subnet)
        x_cal, y_cal, _ = load_task_data(data, calib_split, arch.r, cfg.in_chans, None)
        val = None
        if bn == "auto" and classes is not None:
            x_val, y_val, _ = load_task_data(data, val_split, arch.r, cfg.in_chans, None)
            val = (x_val, y_val)
        x_ev, y_ev, ev_info = load_task_data(data, eval_split, arch.r, cfg.in_chans, eval_images)
        normalization = {"mean": ev_info["mean"], "std": ev_info["std"], "dataset": data}
        try:
            out = specialize_subnet(supernet, arch, classes, (x_cal, y_cal), (x_ev, y_ev), val, bn=bn,
                                    calib_images=calib_images)
        except ConfigError as e:
            raise ConfigError(f"{data}: {e}") from None
        subnet: MobileNetV3Subnet = out["model"]
        chosen = out["bn"]
        accuracy = AccuracyInfo(top1=out["top1"], dataset=data, split=eval_split, images=out["test_images"],
                                classes=classes,
                                bn_recalibration={"dataset": data, "split": calib_split,
                                                  "images": out["calib_images"][chosen], "mode": chosen,
                                                  "task_only": chosen == "task" and classes is not None})
        spec = {"bn": chosen, "head": out["head"], "requested": bn, "decided_on": out["decided_on"],
                "val_split": val_split if out["val_scores"] else None, "val_images": out["val_images"],
                "val_top1": out["val_top1"], "val_baseline_top1": out["val_baseline_top1"],
                "val_scores": out["val_scores"], "top1": out["top1"], "baseline_top1": out["baseline_top1"],
                "rule": "the classifier keeps the task's classes; BN recalibrated on every class ('all', the "
                        "baseline) unless 'mix' or 'task' is better on the validation split beyond noise; then the "
                        "classifier fitted to the task's training images if that is better on validation too"}
        extra.setdefault("specialization", spec)
        check_images = x_ev[:16]
    else:
        subnet = supernet.extract(arch).eval()
        if classes is not None:
            subnet.restrict_classes(classes)

    # The pair is committed together: the ONNX file and its card are written to temporary files in
    # the destination folder (checked and timed there), then renamed into place, the card last. A
    # kill before the renames leaves the previous pair untouched; the card records the ONNX file's
    # SHA-256 (``onnx.sha256``), so a reader can verify the pair (:func:`~.card.verify_model_card`).
    final_card = card_path(path)
    tmp_onnx = path.with_name(f".{path.stem}.tmp-{os.getpid()}.onnx")
    tmp_card = final_card.with_name(f".{final_card.name}.tmp-{os.getpid()}")
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        try:
            report = export_onnx(subnet, tmp_onnx, batch_size=batch_size, dynamic_batch=dynamic_batch, opset=opset,
                                 atol=atol, images=check_images,
                                 images_source=None if check_images is None else f"{len(check_images)} {data} {eval_split} images")
        except ExportCheckError as e:  # name the destination, not the temporary file
            raise ExportCheckError(str(e).replace(str(tmp_onnx), str(path))) from None
        report.path = path
        latency = None
        if measure:
            m = measure_latency(tmp_onnx, batch_size=batch_size, threads=threads, warmup=warmup, runs=runs)
            latency = MeasuredLatency(median_ms=m.median_ms, p90_ms=m.p90_ms, std_ms=m.std_ms, runs=m.runs,
                                      warmup=m.warmup, batch_size=batch_size, device=m.device, device_key=m.device.key)
        predicted = None
        if table is not None:
            try:
                ms = table.predict(arch, cfg, subnet.num_classes)
            except LatencyTableError:  # a table built for the full classifier: charge that one
                ms = table.predict(arch, cfg)
            predicted = PredictedLatency(ms=ms, table=table.source or table.scheme, device_key=table.device.key)
        try:
            nat = arch_to_nat(cfg, arch)
        except ConfigError:
            nat = None
        out_names = [names[c] for c in classes] if classes is not None else names
        card = ModelCard(
            name=path.stem,
            onnx=report.to_dict(),
            input={"shape": report.to_dict()["input_shape"], "layout": "NCHW", "dtype": "float32",
                   "resolution": arch.r, "channels": cfg.in_chans, "normalization": normalization},
            arch=ArchInfo(space=cfg.name, arch=arch.to_dict(), genome=[int(g) for g in arch_to_genome(cfg, arch)],
                          nat=nat, space_config=cfg.model_dump(mode="json")),
            classes=ClassesInfo(num_outputs=subnet.num_classes, names=out_names, indices=classes),
            costs=CostsInfo(macs=measure_macs(subnet, arch.r, cfg.in_chans), params=count_params(subnet)),
            latency=latency,
            predicted_latency=predicted,
            accuracy=accuracy,
            source=SourceInfo(supernet=None if supernet_path is None else str(supernet_path),
                              supernet_sha256=supernet_sha256,
                              front=None if front is None else str(front.get("path")),
                              front_index=None if front is None else front.get("index"),
                              front_metrics=None if front is None else dict(front.get("metrics") or {})),
            extra=extra,
        )
        _write_synced(tmp_card, model_card_json(card))
        os.replace(tmp_onnx, path)
        os.replace(tmp_card, final_card)  # the card last: it names the ONNX file's sha256
        _fsync_dir(path.parent)
    finally:
        for tmp in (tmp_onnx, tmp_card):
            tmp.unlink(missing_ok=True)
    card_file = final_card
    return DeployResult(onnx_path=path, card_path=card_file, card=card, report=report, model=subnet,
                        specialization=spec)
