"""Multi-objective architecture search with pymoo: problems, operators, driver, fronts.

* :class:`ArchProblem` (pymoo problem over integer genomes) with pluggable metric evaluators
  (:mod:`~nni_eas.search.evaluators`), objectives and budgets (:mod:`~nni_eas.search.objectives`).
* Genome operators (:mod:`~nni_eas.search.operators`) and NSGA-II / SMS-EMOA / NSGA-III
  (:func:`make_algorithm`).
* :class:`SearchDriver`: the ask/tell core shared by in-process search, NNI strategies and
  nnictl tuners; hypervolume per generation, atomic checkpoints, resume, failed evaluations.
* :class:`Front` (``front.json``/``.csv``/``.png``) and a-posteriori choices
  (:mod:`~nni_eas.search.decision`).
"""

from __future__ import annotations

from .algorithms import ALGORITHMS, make_algorithm, reference_directions
from .config import SearchConfig, build_driver, build_emo_driver
from .core import SearchCore
from .decision import best_for_budget, high_tradeoff_points, knee_point, pseudo_weights_choice
from .driver import Batch, SearchDriver, SearchResult
from .evaluators import (
    CostEvaluator,
    FunctionEvaluator,
    LatencyEvaluator,
    LatencyModel,
    MeasuredLatencyEvaluator,
    MetricEvaluator,
    PredictorEvaluator,
    SupernetEvaluator,
)
from .front import Front, FrontEntry
from .genome import GenomeLayout, canonical_genomes, random_genomes
from .objectives import OBJECTIVES, Budget, Objective, parse_budgets, parse_objectives
from .operators import GenomeCrossover, GenomeDuplicateElimination, GenomeMutation, GenomeRepair, GenomeSampling
from .problem import ArchProblem
from .subnet_eval import EvaluationConfig, SubnetEvaluation

__all__ = [
    "ALGORITHMS",
    "ArchProblem",
    "Batch",
    "Budget",
    "CostEvaluator",
    "EvaluationConfig",
    "Front",
    "FrontEntry",
    "FunctionEvaluator",
    "GenomeCrossover",
    "GenomeDuplicateElimination",
    "GenomeLayout",
    "GenomeMutation",
    "GenomeRepair",
    "GenomeSampling",
    "LatencyEvaluator",
    "LatencyModel",
    "MeasuredLatencyEvaluator",
    "MetricEvaluator",
    "OBJECTIVES",
    "Objective",
    "PredictorEvaluator",
    "SearchConfig",
    "SearchCore",
    "SearchDriver",
    "SearchResult",
    "SubnetEvaluation",
    "SupernetEvaluator",
    "best_for_budget",
    "build_driver",
    "build_emo_driver",
    "canonical_genomes",
    "high_tradeoff_points",
    "knee_point",
    "make_algorithm",
    "parse_budgets",
    "parse_objectives",
    "pseudo_weights_choice",
    "random_genomes",
    "reference_directions",
]
