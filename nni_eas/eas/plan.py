"""What an EAS run will do, worked out from its config alone: space, classes, dataset, scenarios.

:func:`plan_eas` is the first step of :class:`~nni_eas.eas.EASCore` and of the checks that run
before an experiment starts (:mod:`nni_eas.preflight`), so a bad recipe, dataset, class, metric
or budget fails the same way everywhere, before anything trains. It imports no torch: the space
comes from the recipe (or the supernet file's header), the classes from ``sources.yml``, the
budgets from analytic cost tables.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from ..config import ConfigError
from ..data.sources import check_dataset
from ..spaces.config import OFAMobileNetV3Config, load_space_config
from .budget import CostTable, load_tables
from .config import EASConfig, eas_config
from .scenario import Scenario, resolve_scenarios

__all__ = ["EASPlan", "plan_eas", "space_of_recipe"]


@dataclass
class EASPlan:
    cfg: OFAMobileNetV3Config
    class_names: list[str]
    dataset: str
    tables: dict[str, CostTable]
    scenarios: list[Scenario]


def space_of_recipe(recipe: Any, class_names: list[str] | None = None) -> tuple[OFAMobileNetV3Config, list[str]]:
    """The space a recipe trains and its class names (from the recipe's dataset)."""
    from ..data.sources import dataset_classes
    from ..training.recipe import load_recipe

    r = load_recipe(recipe)
    check_dataset(r.data.dataset, "recipe data.dataset")
    if class_names is None:
        class_names = dataset_classes(r.data.dataset)
    if class_names is None:  # read from the data (Omniglot): this loads it
        from ..data import load_dataset

        class_names = list(load_dataset(r.data.dataset, "val", resolution=8, channels=1).classes)
    overrides = {**r.space_overrides, "num_classes": len(class_names)}
    return load_space_config(r.space, **overrides), list(class_names)


def plan_eas(config: EASConfig | Mapping[str, Any], source: str = "EAS config") -> EASPlan:
    """Validate an EAS config against its space and data; raise :class:`ConfigError` naming the field."""
    c = config if isinstance(config, EASConfig) else eas_config(dict(config), source)
    if c.supernet:
        from ..checkpoint import CheckpointError, read_header

        try:
            head = read_header(c.supernet)
        except CheckpointError as e:
            raise ConfigError(f"{source}: supernet: {e}") from None
        cfg, class_names = head.space, head.classes
        dataset = c.evaluation.dataset or head.meta.get("dataset") or "digits"
    else:
        from ..training.recipe import load_recipe

        try:
            recipe = load_recipe(c.recipe)
        except ConfigError as e:
            raise ConfigError(f"{source}: recipe: {e}") from None
        cfg, class_names = space_of_recipe(recipe)
        dataset = c.evaluation.dataset or recipe.data.dataset
    check_dataset(dataset, f"{source}: evaluation.dataset")
    if c.latency_table and not Path(c.latency_table).exists():
        raise ConfigError(f"{source}: latency_table: file not found: {c.latency_table}")
    tables = load_tables(cfg, c.generator.metrics, cfg.num_classes, c.latency_table)
    try:
        scenarios = resolve_scenarios(c.scenarios, c.scenario_rule, class_names, tables)
    except ConfigError as e:
        raise ConfigError(f"{source}: {e}") from None
    return EASPlan(cfg, list(class_names), dataset, tables, scenarios)
