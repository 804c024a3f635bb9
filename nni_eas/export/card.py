"""Model cards: the JSON beside every exported ``.onnx`` saying what it is and what it costs.

A deployed file without its facts is a guess: ``<name>.card.json`` records the architecture
(arch dict and genome), the classes the logits stand for, MACs and parameters, the latency
measured with onnxruntime and the device it was measured on (and a table prediction, if one was
asked for), the accuracy with the data it was measured on, the supernet it came from (SHA-256)
and the export check. Validated by pydantic on read and write, written atomically.

The card names the ONNX file it describes by name and SHA-256 (``onnx.file``, ``onnx.sha256``):
:func:`verify_model_card` checks that a ``.onnx`` and the card beside it belong together.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
from pathlib import Path
from typing import Any, Literal, Optional

from pydantic import Field

from ..config import ConfigError, StrictModel, validate
from ..io import atomic_write_json
from .runtime import DeviceInfo

__all__ = ["FORMAT", "ModelCard", "ArchInfo", "ClassesInfo", "CostsInfo", "MeasuredLatency", "PredictedLatency",
           "AccuracyInfo", "SourceInfo", "card_path", "model_card_json", "read_model_card", "verify_model_card",
           "write_model_card"]

FORMAT = "nni-eas-model-card/1"


class ArchInfo(StrictModel):
    space: str
    arch: dict[str, Any] = Field(description="OFA-style arch dict: ks, e, d, r, w")
    genome: list[int] = Field(description="choice indices, nni_eas.encodings.arch_to_genome")
    nat: Optional[str] = Field(default=None, description="NAT's 23-digit encoding, where the space has one")
    space_config: dict[str, Any] = Field(default_factory=dict, description="the full space preset")


class ClassesInfo(StrictModel):
    """What each output logit means: ``names[i]`` is logit ``i``; ``indices`` are the supernet's."""

    num_outputs: int
    names: list[str]
    indices: Optional[list[int]] = Field(default=None, description="supernet class of each logit (None: all, in order)")


class CostsInfo(StrictModel):
    macs: int
    params: int
    convention: str = "ofa: convolutions and linear layers, batch 1"


class MeasuredLatency(StrictModel):
    median_ms: float
    p90_ms: float
    std_ms: float
    runs: int
    warmup: int
    batch_size: int
    device: DeviceInfo
    device_key: str


class PredictedLatency(StrictModel):
    ms: float
    table: str
    device_key: str


class AccuracyInfo(StrictModel):
    top1: float = Field(ge=0, le=1)
    dataset: str
    split: str
    images: int
    classes: Optional[list[int]] = None
    bn_recalibration: Optional[dict[str, Any]] = None


class SourceInfo(StrictModel):
    supernet: Optional[str] = None
    supernet_sha256: Optional[str] = None
    front: Optional[str] = None
    front_index: Optional[int] = None
    front_metrics: Optional[dict[str, Any]] = None


class ModelCard(StrictModel):
    format: Literal["nni-eas-model-card/1"] = FORMAT
    name: str
    created: str = Field(default_factory=lambda: _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"))
    onnx: dict[str, Any] = Field(description="file, sha256, opset, exporter, input/output names and shape, check")
    input: dict[str, Any] = Field(description="shape (NCHW), dtype, normalisation the model expects")
    arch: Optional[ArchInfo] = None
    classes: ClassesInfo
    costs: CostsInfo
    latency: Optional[MeasuredLatency] = None
    predicted_latency: Optional[PredictedLatency] = None
    accuracy: Optional[AccuracyInfo] = None
    source: SourceInfo = SourceInfo()
    extra: dict[str, Any] = Field(default_factory=dict)


def card_path(onnx_path: str | os.PathLike) -> Path:
    """``model.onnx`` -> ``model.card.json`` (beside it)."""
    p = Path(onnx_path)
    return p.with_name(p.stem + ".card.json")


def model_card_json(card: ModelCard | dict[str, Any]) -> str:
    """The validated card as the JSON text written to ``<name>.card.json``."""
    if not isinstance(card, ModelCard):
        card = validate(ModelCard, card, "model card")
    return json.dumps(card.model_dump(mode="json"), indent=2) + "\n"


def write_model_card(card: ModelCard | dict[str, Any], onnx_path: str | os.PathLike) -> Path:
    """Validate ``card`` and write it beside ``onnx_path`` atomically; returns the card's path."""
    if not isinstance(card, ModelCard):
        card = validate(ModelCard, card, "model card")
    return atomic_write_json(card_path(onnx_path), card.model_dump(mode="json"))


def read_model_card(path: str | os.PathLike) -> ModelCard:
    """Read a card (``model.card.json``, or the ``.onnx`` it describes)."""
    p = Path(path)
    if p.suffix == ".onnx":
        p = card_path(p)
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"model card not found: {p}") from None
    except json.JSONDecodeError as e:
        raise ConfigError(f"{p}: not valid JSON: {e}") from None
    return validate(ModelCard, data, str(p))


def verify_model_card(onnx_path: str | os.PathLike) -> ModelCard:
    """The card of ``onnx_path``, after checking it describes exactly that file.

    Raises :class:`~nni_eas.config.ConfigError` when the card is missing or invalid, names
    another file, or records another SHA-256 than the file's (e.g. a model replaced without its card).
    """
    from ..checkpoint import file_sha256

    p = Path(onnx_path)
    card = read_model_card(card_path(p))
    if not p.is_file():
        raise ConfigError(f"{p}: the ONNX file its card {card_path(p).name} describes is missing")
    recorded = card.onnx.get("sha256")
    if card.onnx.get("file") not in (None, p.name):
        raise ConfigError(f"{card_path(p)} describes {card.onnx.get('file')!r}, not {p.name!r}")
    actual = file_sha256(p)
    if recorded != actual:
        raise ConfigError(f"{card_path(p)} does not describe {p}: the card records sha256 {str(recorded)[:12]}..., "
                          f"the file has {actual[:12]}...; re-export the model to get a matching pair")
    return card
