"""Ready-made search settings from the literature.

:func:`ofa2_setting` is OFA²'s (Ito & Von Zuben, 2023) search problem: OFA's w1.2 MobileNetV3
space at resolutions 160..224 step 16 (those with Note10 tables), objectives Note10 latency (ms)
and top-1 error (%) predicted by OFA's published accuracy predictor, hypervolume reference
point (100 ms, 25 %). Both objectives are vectorised over the population (one MLP call, one
table gather), which is what makes 1000 generations of 100 archs take seconds on a CPU.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..spaces.config import OFAMobileNetV3Config, load_space_config
from .evaluators import LatencyEvaluator, MetricEvaluator, PredictorEvaluator

__all__ = ["OFA2Setting", "ofa2_setting", "OFA2_RESOLUTIONS", "OFA2_REF_POINT"]

OFA2_RESOLUTIONS = (160, 176, 192, 208, 224)
OFA2_REF_POINT = (100.0, 25.0)


@dataclass
class OFA2Setting:
    cfg: OFAMobileNetV3Config
    evaluators: list[MetricEvaluator]
    objectives: list[str]
    ref_point: tuple[float, float]
    predictor: Any
    latency_table: Any


def ofa2_setting(predictor_path: str | os.PathLike, note10_dir: str | os.PathLike, exact_latency: bool = False) -> OFA2Setting:
    """OFA²'s problem from OFA's ``acc_predictor.pth`` and the Note10 ``<res>_lookup_table.yaml`` folder."""
    from ..export.lut import load_latency_table
    from ..predictors import OFAAccuracyPredictor

    cfg = load_space_config("ofa_mbv3_w1.2", resolutions=list(OFA2_RESOLUTIONS))
    predictor = OFAAccuracyPredictor.from_file(predictor_path)
    table = load_latency_table(Path(note10_dir), cfg)
    evaluators: list[MetricEvaluator] = [LatencyEvaluator(table, cfg, exact=exact_latency),
                                         PredictorEvaluator(predictor, cfg, "top1")]
    return OFA2Setting(cfg, evaluators, ["latency_ms", "error_pct"], OFA2_REF_POINT, predictor, table)
