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

_EXPORTS = {
    'ALGORITHMS': 'algorithms',
    'make_algorithm': 'algorithms',
    'reference_directions': 'algorithms',
    'SearchConfig': 'config',
    'build_driver': 'config',
    'build_emo_driver': 'config',
    'EvaluationConfig': 'config',
    'SearchCore': 'core',
    'best_for_budget': 'decision',
    'high_tradeoff_points': 'decision',
    'knee_point': 'decision',
    'pseudo_weights_choice': 'decision',
    'Batch': 'driver',
    'SearchDriver': 'driver',
    'SearchResult': 'driver',
    'CostEvaluator': 'evaluators',
    'FunctionEvaluator': 'evaluators',
    'LatencyEvaluator': 'evaluators',
    'LatencyModel': 'evaluators',
    'MeasuredLatencyEvaluator': 'evaluators',
    'MetricEvaluator': 'evaluators',
    'PredictorEvaluator': 'evaluators',
    'SupernetEvaluator': 'evaluators',
    'Front': 'front',
    'FrontEntry': 'front',
    'GenomeLayout': 'genome',
    'canonical_genomes': 'genome',
    'random_genomes': 'genome',
    'OBJECTIVES': 'objectives',
    'Budget': 'objectives',
    'Objective': 'objectives',
    'parse_budgets': 'objectives',
    'parse_objectives': 'objectives',
    'GenomeCrossover': 'operators',
    'GenomeDuplicateElimination': 'operators',
    'GenomeMutation': 'operators',
    'GenomeRepair': 'operators',
    'GenomeSampling': 'operators',
    'ArchProblem': 'problem',
    'SubnetEvaluation': 'subnet_eval',
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
