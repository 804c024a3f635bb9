"""From a supernet and an arch to a deployable file: extract, specialize, export, measure, describe.

:func:`deploy_subnet` is what ``nni-eas export`` and ``nni-eas specialize`` run: extract the
subnet with inherited weights, optionally recalibrate its BatchNorm statistics on task data
(OFA's step before any evaluation), keep only the task's logits, export and verify the ONNX
graph, time it with onnxruntime, and write the model card beside it.

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


def _task_accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor, classes: Sequence[int] | None) -> tuple[float, int]:
    """Top-1 of ``model`` on the images of ``classes`` (logit ``i`` = ``classes[i]``)."""
    if classes is not None:
        lookup = {c: i for i, c in enumerate(classes)}
        keep = torch.tensor([int(t) in lookup for t in y], dtype=torch.bool)
        x, y = x[keep], torch.tensor([lookup[int(t)] for t in y[keep]], dtype=torch.int64)
    if len(y) == 0:
        raise ConfigError(f"no evaluation images of classes {list(classes or [])}")
    was = model.training
    model.eval()
    correct = 0
    with torch.no_grad():
        for i in range(0, len(x), 256):
            correct += int((model(x[i:i + 256]).argmax(1) == y[i:i + 256]).sum())
    model.train(was)
    return correct / len(y), len(y)


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
                  extra: Mapping[str, Any] | None = None, task_calibration: bool = False) -> DeployResult:
    """Extract ``arch`` from ``supernet``, specialize it, export ``path`` (+ card). See module docstring.

    Args:
        classes: supernet class indices the deployed logits keep, in order (default: all).
        class_names: names of the supernet's classes (from the checkpoint).
        data: a dataset of :mod:`nni_eas.data`: BN statistics are recalibrated on ``calib_split``
            and top-1 measured on ``eval_split`` (only the task's classes), both recorded.
        table: a latency table of the space; its prediction is recorded beside the measurement.
        front: ``{"path", "index", "metrics"}`` when the arch came from a front file.
        task_calibration: recalibrate BN on images of ``classes`` only (EAS: the deployed
            subnet only ever sees the task's classes, so its statistics should be the task's).
    """
    from ..encodings import arch_to_genome, arch_to_nat

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

    subnet: MobileNetV3Subnet = supernet.extract(arch).eval()
    accuracy: AccuracyInfo | None = None
    check_images = None
    normalization = None
    if data is not None:
        if task_calibration and classes is not None:
            x_cal, y_cal, cal_info = load_task_data(data, calib_split, arch.r, cfg.in_chans, None)
            x_cal = x_cal[torch.isin(y_cal, torch.as_tensor(classes))][:calib_images]
            cal_info["images"] = len(x_cal)
            if not len(x_cal):
                raise ConfigError(f"{data} {calib_split} has no images of classes {classes} to recalibrate BN on")
        else:
            x_cal, _, cal_info = load_task_data(data, calib_split, arch.r, cfg.in_chans, calib_images)
        from ..evaluation import recalibrate_bn

        recalibrate_bn(subnet, (x_cal, torch.zeros(len(x_cal), dtype=torch.int64)), max_images=calib_images)
        subnet.eval()
        x_ev, y_ev, ev_info = load_task_data(data, eval_split, arch.r, cfg.in_chans, eval_images)
        normalization = {"mean": ev_info["mean"], "std": ev_info["std"], "dataset": data}
    if classes is not None:
        subnet.restrict_classes(classes)
    if data is not None:
        top1, n = _task_accuracy(subnet, x_ev, y_ev, classes)
        accuracy = AccuracyInfo(top1=top1, dataset=data, split=eval_split, images=n, classes=classes,
                                bn_recalibration={"dataset": data, "split": calib_split, "images": cal_info["images"],
                                                  "task_only": bool(task_calibration and classes is not None)})
        check_images = x_ev[:16]

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
            extra=dict(extra or {}),
        )
        _write_synced(tmp_card, model_card_json(card))
        os.replace(tmp_onnx, path)
        os.replace(tmp_card, final_card)  # the card last: it names the ONNX file's sha256
        _fsync_dir(path.parent)
    finally:
        for tmp in (tmp_onnx, tmp_card):
            tmp.unlink(missing_ok=True)
    card_file = final_card
    return DeployResult(onnx_path=path, card_path=card_file, card=card, report=report, model=subnet)
