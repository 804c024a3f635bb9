"""Deployment: ONNX export (verified), measured latency, latency lookup tables, model cards.

A specialized network leaves the project as ``<name>.onnx`` plus ``<name>.card.json``; its cost
is measured with onnxruntime on a described device (:mod:`.runtime`) or predicted from a
per-layer latency table (:mod:`.lut`), built here (:mod:`.lut_build`) or published by OFA or
NSGANetV2. See ``docs/deployment.md``.
"""

from __future__ import annotations

from .._lazy import lazy_exports

__all__, __getattr__, __dir__ = lazy_exports(__name__, {
    'card': ('ModelCard', 'card_path', 'read_model_card', 'write_model_card',),
    'deploy': ('DeployResult', 'deploy_subnet', 'load_task_data',),
    'layers': ('Layer', 'arch_layers', 'block_layer', 'fixed_layers', 'space_layers',),
    'lut': ('KEY_SCHEMES', 'LatencyModel', 'LatencyTable', 'LatencyTableError', 'layer_keys',
            'load_latency_table'),
    'lut_build': ('build_latency_table', 'measure_overhead',),
    'onnx_export': ('DEFAULT_OPSET', 'EXPORTER', 'ExportCheckError', 'ExportReport', 'check_onnx',
                    'export_onnx', 'onnx_bytes', 'onnx_model_proto', 'real_images'),
    'runtime': ('DeviceInfo', 'LatencyResult', 'Timer', 'cpu_model', 'describe_device', 'make_session',
                'measure_latency'),
})
