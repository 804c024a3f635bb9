"""Evaluating a subnet the way OFA does: recalibrate its BatchNorm statistics, then measure top-1.

A subnet's BN statistics inside the supernet are mixtures over every subnet that ran; before an
inherited subnet is evaluated its BN running mean/var are re-estimated on a few hundred training
images (exact averages, not exponential). Nothing else changes. Accuracy on a *task* (a subset of
the classes) uses only the task's images and the task's logits.
"""

from __future__ import annotations

from typing import Iterable, Iterator, Sequence, Union

import torch
import torch.nn as nn
from torch.nn.modules.batchnorm import _BatchNorm

from .spaces.arch import Arch
from .spaces.ofa_mbv3 import OFAMobileNetV3, resize_input

__all__ = ["recalibrate_bn", "accuracy", "evaluate_arch", "iter_batches", "Data"]

# a DataLoader / list of (x, y) batches, or one (X, Y) pair of tensors
Data = Union[Iterable[tuple[torch.Tensor, torch.Tensor]], tuple[torch.Tensor, torch.Tensor]]


def iter_batches(data: Data, batch_size: int = 256) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Batches from a loader, a list of batches, or one ``(X, Y)`` pair of tensors."""
    if isinstance(data, tuple) and len(data) == 2 and isinstance(data[0], torch.Tensor) and data[0].dim() == 4:
        x, y = data
        for i in range(0, len(x), batch_size):
            yield x[i:i + batch_size], y[i:i + batch_size]
    else:
        for batch in data:
            yield batch[0], batch[1]


def _device(model: nn.Module) -> torch.device:
    return next(model.parameters()).device


@torch.no_grad()
def recalibrate_bn(model: nn.Module, data: Data, resolution: int | None = None, max_images: int | None = 2000) -> nn.Module:
    """Re-estimate every BN layer's running mean/var on ``data`` (exact average over batches).

    Only BN buffers change: weights, biases and BN affine parameters are untouched.
    """
    bns = [m for m in model.modules() if isinstance(m, _BatchNorm)]
    momenta = [bn.momentum for bn in bns]
    for bn in bns:
        bn.reset_running_stats()
        bn.momentum = None  # cumulative moving average = exact mean over the batches seen
    was_training = model.training
    model.train()
    device, seen = _device(model), 0
    try:
        for x, _ in iter_batches(data):
            if max_images is not None and seen >= max_images:
                break
            if len(x) < 2 and seen > 0:
                break  # a last batch of one image: BN after global pooling (SE, head) cannot take its statistics
            x = x.to(device)
            if resolution is not None:
                x = resize_input(x, resolution)
            model(x)
            seen += len(x)
    finally:
        for bn, m in zip(bns, momenta):
            bn.momentum = m
        model.train(was_training)
    if seen == 0:
        raise ValueError("BN recalibration needs at least one batch of images")
    return model


@torch.no_grad()
def accuracy(model: nn.Module, data: Data, classes: Sequence[int] | None = None, resolution: int | None = None) -> float:
    """Top-1 accuracy in [0, 1]. With ``classes`` (a task): only images of those classes count
    and the prediction is the arg-max over those classes' logits."""
    was_training = model.training
    model.eval()
    device = _device(model)
    index = torch.as_tensor(sorted(classes), device=device) if classes is not None else None
    correct = total = 0
    try:
        for x, y in iter_batches(data):
            x, y = x.to(device), y.to(device)
            if index is not None:
                keep = torch.isin(y, index)
                x, y = x[keep], y[keep]
                if len(y) == 0:
                    continue
            if resolution is not None:
                x = resize_input(x, resolution)
            logits = model(x)
            if index is not None:
                pred = index[logits[:, index].argmax(1)]
            else:
                pred = logits.argmax(1)
            correct += int((pred == y).sum())
            total += len(y)
    finally:
        model.train(was_training)
    if total == 0:
        raise ValueError("no images to evaluate" + (f" for classes {list(classes)}" if classes is not None else ""))
    return correct / total


def evaluate_arch(supernet: OFAMobileNetV3, arch: Arch, calib_data: Data, val_data: Data,
                  classes: Sequence[int] | None = None, calib_images: int = 2000) -> float:
    """Top-1 of ``arch`` with inherited weights: extract, recalibrate BN, evaluate at ``arch.r``."""
    subnet = supernet.extract(arch)
    recalibrate_bn(subnet, calib_data, resolution=arch.r, max_images=calib_images)
    return accuracy(subnet, val_data, classes=classes, resolution=arch.r)
