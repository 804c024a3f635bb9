"""Deployment: ONNX export (verified), measured latency, latency lookup tables, model cards.

A specialized network leaves the project as ``<name>.onnx`` plus ``<name>.card.json``; its cost
is measured with onnxruntime on a described device (:mod:`.runtime`) or predicted from a
per-layer latency table (:mod:`.lut`), built here (:mod:`.lut_build`) or published by OFA or
NSGANetV2. See ``docs/deployment.md``.
"""

from __future__ import annotations

from .card import ModelCard, card_path, read_model_card, write_model_card
from .deploy import DeployResult, deploy_subnet, load_task_data
from .layers import Layer, arch_layers, block_layer, fixed_layers, space_layers
from .lut import KEY_SCHEMES, LatencyModel, LatencyTable, LatencyTableError, layer_keys, load_latency_table
from .lut_build import build_latency_table, measure_overhead
from .onnx_export import (
    DEFAULT_OPSET,
    EXPORTER,
    ExportCheckError,
    ExportReport,
    check_onnx,
    export_onnx,
    onnx_bytes,
    onnx_model_proto,
    real_images,
)
from .runtime import DeviceInfo, LatencyResult, Timer, cpu_model, describe_device, make_session, measure_latency

__all__ = [
    "DEFAULT_OPSET",
    "EXPORTER",
    "KEY_SCHEMES",
    "DeployResult",
    "DeviceInfo",
    "ExportCheckError",
    "ExportReport",
    "LatencyModel",
    "LatencyResult",
    "LatencyTable",
    "LatencyTableError",
    "Layer",
    "ModelCard",
    "Timer",
    "arch_layers",
    "block_layer",
    "build_latency_table",
    "card_path",
    "check_onnx",
    "cpu_model",
    "deploy_subnet",
    "describe_device",
    "export_onnx",
    "fixed_layers",
    "layer_keys",
    "load_latency_table",
    "load_task_data",
    "make_session",
    "measure_latency",
    "measure_overhead",
    "onnx_bytes",
    "onnx_model_proto",
    "read_model_card",
    "real_images",
    "space_layers",
    "write_model_card",
]
