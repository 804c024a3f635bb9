"""EAS: one architecture generator answers many deployment scenarios (task + budget) at once.

Pipeline (``strategies/eas.yml``, the :class:`~nni_eas.strategies.EAS` strategy, ``make demo``):
train the supernet with task dropout -> train the generator against it -> specialize every
scenario (one generator pass, budget repair, extraction, task BN recalibration, task-restricted
classifier, ONNX). See docs/eas.md.
"""

from .budget import METRICS, CostTable, cost_tables
from .config import EASConfig, GeneratorConfig, ScenarioRule, ScenarioSpec, SpecializeConfig, eas_config
from .generator import ArchGenerator, GeneratorModule, load_generator, save_generator
from .scenario import Scenario, format_budget, parse_budget, resolve_scenarios
from .specialize import Generated, generate, repair, specialize, task_data
from .train import GeneratorResult, load_tables, train_generator

__all__ = [
    "METRICS", "CostTable", "cost_tables", "EASConfig", "GeneratorConfig", "ScenarioRule", "ScenarioSpec",
    "SpecializeConfig", "eas_config", "ArchGenerator", "GeneratorModule", "load_generator", "save_generator",
    "Scenario", "format_budget", "parse_budget", "resolve_scenarios", "Generated", "generate", "repair",
    "specialize", "task_data", "GeneratorResult", "load_tables", "train_generator",
]
