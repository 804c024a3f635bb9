"""Shared fixtures: reference data beside the checkout, a tiny supernet, small deterministic helpers.

Helpers for tests that run nnictl experiments are in nnictl_helpers.py, for NNI's web UI in webui.py."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("NNI_EAS_SHARED", ROOT.parent / "shared"))
REFERENCE = SHARED / "reference"


@pytest.fixture(scope="session")
def reference_dir() -> Path:
    if not REFERENCE.is_dir():
        pytest.skip(f"published reference data not found at {REFERENCE} (set NNI_EAS_SHARED)")
    return REFERENCE


@pytest.fixture(scope="module")
def tiny_supernet(tmp_path_factory) -> Path:
    """A tiny (untrained) digits supernet checkpoint: 8 px inputs keep every evaluation cheap."""
    from nnictl_helpers import save_tiny_supernet

    return save_tiny_supernet(tmp_path_factory.mktemp("supernet") / "supernet.pt")


@pytest.fixture(autouse=True)
def _deterministic():
    torch.manual_seed(0)
    torch.set_num_threads(2)
    yield


def randomize_(model: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """Random weights, BN statistics and kernel transforms, so equivalence tests mean something."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "transform_" in name:
                p.add_(0.1 * torch.randn(p.shape, generator=g))
            elif p.dim() == 1:
                p.copy_(0.5 + torch.rand(p.shape, generator=g) if name.endswith("weight") else 0.1 * torch.randn(p.shape, generator=g))
        for name, b in model.named_buffers():
            if name.endswith("running_mean"):
                b.copy_(0.1 * torch.randn(b.shape, generator=g))
            elif name.endswith("running_var"):
                b.copy_(0.5 + torch.rand(b.shape, generator=g))
    return model
