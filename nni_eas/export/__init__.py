"""Deployment: ONNX export (verified), measured latency, latency lookup tables, model cards.

A specialized network leaves the project as ``<name>.onnx`` plus ``<name>.card.json``; its cost
is measured with onnxruntime on a described device (:mod:`.runtime`) or predicted from a
per-layer latency table (:mod:`.lut`), built here (:mod:`.lut_build`) or published by OFA or
NSGANetV2. See ``docs/deployment.md``.
"""

from __future__ import annotations

from .._lazy import lazy_exports

_EXPORTS = {
    'ModelCard': 'card',
    'card_path': 'card',
    'read_model_card': 'card',
    'write_model_card': 'card',
    'DeployResult': 'deploy',
    'deploy_subnet': 'deploy',
    'load_task_data': 'deploy',
    'Layer': 'layers',
    'arch_layers': 'layers',
    'block_layer': 'layers',
    'fixed_layers': 'layers',
    'space_layers': 'layers',
    'KEY_SCHEMES': 'lut',
    'LatencyModel': 'lut',
    'LatencyTable': 'lut',
    'LatencyTableError': 'lut',
    'layer_keys': 'lut',
    'load_latency_table': 'lut',
    'build_latency_table': 'lut_build',
    'measure_overhead': 'lut_build',
    'DEFAULT_OPSET': 'onnx_export',
    'EXPORTER': 'onnx_export',
    'ExportCheckError': 'onnx_export',
    'ExportReport': 'onnx_export',
    'check_onnx': 'onnx_export',
    'export_onnx': 'onnx_export',
    'onnx_bytes': 'onnx_export',
    'onnx_model_proto': 'onnx_export',
    'real_images': 'onnx_export',
    'DeviceInfo': 'runtime',
    'LatencyResult': 'runtime',
    'Timer': 'runtime',
    'cpu_model': 'runtime',
    'describe_device': 'runtime',
    'make_session': 'runtime',
    'measure_latency': 'runtime',
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
