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

from .._lazy import lazy_exports

__all__, __getattr__, __dir__ = lazy_exports(__name__, {
    'algorithms': ('ALGORITHMS', 'make_algorithm', 'reference_directions',),
    'config': ('SearchConfig', 'build_driver', 'build_emo_driver', 'EvaluationConfig',),
    'core': ('SearchCore',),
    'decision': ('best_for_budget', 'high_tradeoff_points', 'knee_point', 'pseudo_weights_choice',),
    'driver': ('Batch', 'SearchDriver', 'SearchResult',),
    'evaluators': ('CostEvaluator', 'FunctionEvaluator', 'LatencyEvaluator', 'LatencyModel',
                   'MeasuredLatencyEvaluator', 'MetricEvaluator', 'PredictorEvaluator',
                   'SupernetEvaluator'),
    'front': ('Front', 'FrontEntry',),
    'genome': ('GenomeLayout', 'canonical_genomes', 'random_genomes',),
    'objectives': ('OBJECTIVES', 'Budget', 'Objective', 'parse_budgets', 'parse_objectives',),
    'operators': ('GenomeCrossover', 'GenomeDuplicateElimination', 'GenomeMutation', 'GenomeRepair',
                  'GenomeSampling'),
    'problem': ('ArchProblem',),
    'subnet_eval': ('SubnetEvaluation',),
})
