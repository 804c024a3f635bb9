"""EAS: one architecture generator answers many deployment scenarios (task + budget) at once.

Pipeline (``strategies/eas.yml``, the :class:`~nni_eas.strategies.EAS` strategy, ``make demo``):
train the supernet with task dropout -> train the generator against it -> specialize every
scenario (one generator pass, budget repair, extraction, task BN recalibration, task-restricted
classifier, ONNX). See docs/eas.md.
"""

from __future__ import annotations

from .._lazy import lazy_exports

_EXPORTS = {
    'METRICS': 'budget',
    'CostTable': 'budget',
    'cost_tables': 'budget',
    'EASConfig': 'config',
    'GeneratorConfig': 'config',
    'ScenarioRule': 'config',
    'ScenarioSpec': 'config',
    'SpecializeConfig': 'config',
    'eas_config': 'config',
    'ArchGenerator': 'generator',
    'GeneratorModule': 'generator',
    'load_generator': 'generator',
    'save_generator': 'generator',
    'Scenario': 'scenario',
    'format_budget': 'scenario',
    'parse_budget': 'scenario',
    'resolve_scenarios': 'scenario',
    'Generated': 'specialize',
    'generate': 'specialize',
    'repair': 'specialize',
    'specialize': 'specialize',
    'task_data': 'specialize',
    'GeneratorResult': 'train',
    'load_tables': 'budget',
    'train_generator': 'train',
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
