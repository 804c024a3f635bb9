"""EAS: one architecture generator answers many deployment scenarios (task + budget) at once.

Pipeline (``strategies/eas.yml``, the :class:`~nni_eas.strategies.EAS` strategy, ``make demo``):
train the supernet with task dropout -> train the generator against it -> specialize every
scenario (one generator pass: proposals repaired into the budget and filled up to it, the best on
validation kept; extraction, BN recalibration and classifier decided on validation,
task-restricted classifier, ONNX). See docs/eas.md.
"""

from __future__ import annotations

from .._lazy import lazy_exports

__all__, __getattr__, __dir__ = lazy_exports(__name__, {
    'budget': ('METRICS', 'CostTable', 'cost_tables', 'load_tables',),
    'config': ('EASConfig', 'GeneratorConfig', 'ScenarioRule', 'ScenarioSpec', 'SpecializeConfig',
               'eas_config'),
    'propose': ('Proposal', 'propose', 'pool_by_task', 'choose', 'fill'),
    'generator': ('ArchGenerator', 'GeneratorModule', 'load_generator', 'save_generator',),
    'scenario': ('Scenario', 'format_budget', 'parse_budget', 'resolve_scenarios',),
    'specialize': ('Generated', 'generate', 'repair', 'specialize', 'task_data',),
    'train': ('GeneratorResult', 'train_generator',),
})
