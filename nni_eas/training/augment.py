"""Batch augmentations on normalised image tensors, vectorised and driven by a seeded generator.

Working on whole batches keeps small-image training CPU-friendly and, because every random
draw comes from a generator seeded by (seed, step), makes a resumed run bit-identical.
``weak`` = random crop (padding: zeros, or the replicated border, which paints no grey frame of
normalised zeros into the picture) + horizontal flip; ``strong`` adds per-image brightness /
contrast jitter and a random-erasing patch (the strong view of FixMatch / TOFA).
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F

__all__ = ["weak_augment", "strong_augment"]


PaddingMode = Literal["zeros", "replicate"]


def _crop_flip(x: torch.Tensor, g: torch.Generator, padding: float, flip: bool,
               padding_mode: PaddingMode = "zeros") -> torch.Tensor:
    n, _, h, w = x.shape
    pad = int(round(padding * h))
    if pad > 0:
        padded = F.pad(x, (pad, pad, pad, pad), mode="replicate" if padding_mode == "replicate" else "constant")
        dy = torch.randint(0, 2 * pad + 1, (n,), generator=g)
        dx = torch.randint(0, 2 * pad + 1, (n,), generator=g)
        rows = (dy[:, None] + torch.arange(h)[None, :]).to(x.device)           # [N, H]
        cols = (dx[:, None] + torch.arange(w)[None, :]).to(x.device)           # [N, W]
        idx = torch.arange(n, device=x.device)[:, None, None]
        x = padded.permute(0, 2, 3, 1)[idx, rows[:, :, None], cols[:, None, :]].permute(0, 3, 1, 2)
    if flip:
        mask = (torch.rand(n, generator=g) < 0.5).to(x.device)
        x = torch.where(mask[:, None, None, None], x.flip(3), x)
    return x.contiguous()


def weak_augment(x: torch.Tensor, g: torch.Generator, padding: float = 0.125, flip: bool = True,
                 padding_mode: PaddingMode = "zeros") -> torch.Tensor:
    return _crop_flip(x, g, padding, flip, padding_mode)


def strong_augment(x: torch.Tensor, g: torch.Generator, padding: float = 0.125, flip: bool = True,
                   jitter: float = 0.4, erase: float = 0.5, padding_mode: PaddingMode = "zeros") -> torch.Tensor:
    x = _crop_flip(x, g, padding, flip, padding_mode)
    n, _, h, w = x.shape
    dev = x.device
    brightness = ((torch.rand(n, generator=g) * 2 - 1) * jitter).to(dev)[:, None, None, None]
    contrast = (1 + (torch.rand(n, generator=g) * 2 - 1) * jitter).to(dev)[:, None, None, None]
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    x = (x - mean) * contrast + mean + brightness
    # random erasing: one square of side `erase * size` per image, at a random place
    side = max(1, int(round(erase * h)))
    top = torch.randint(0, h - side + 1, (n,), generator=g).to(dev)
    left = torch.randint(0, w - side + 1, (n,), generator=g).to(dev)
    rows = torch.arange(h, device=dev)[None, :]
    cols = torch.arange(w, device=dev)[None, :]
    inside = ((rows >= top[:, None]) & (rows < top[:, None] + side))[:, :, None] & \
             ((cols >= left[:, None]) & (cols < left[:, None] + side))[:, None, :]
    return x.masked_fill(inside[:, None], 0.0)
