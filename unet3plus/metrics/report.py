"""Scores over many cases: a stateful accumulator (MONAI style) and the typed report it gives.

Aggregates, per class: the mean over cases of every metric (NaN cases left out, and ``n_cases_for``
says how many were averaged), the LiTS "Dice global" (and Jaccard) from voxel counts pooled over all
cases, and lesion detection precision/recall from pooled counts.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence

import numpy as np

from .cases import METRICS, CaseScores, ClassScores, score_case
from .classes import ScoredClass
from .lesions import LesionDetection
from .surface import DEFAULT_CONNECTIVITY, DEFAULT_HD95, check_conventions, conventions

__all__ = ["CaseMetrics", "MetricsReport"]

LESION_RATES = ("precision_iou", "recall_iou", "precision_overlap", "recall_overlap")


@dataclass(frozen=True)
class MetricsReport:
    """Per-case scores and their aggregates; build it with :class:`CaseMetrics` or ``MetricsReport(cases)``.
    ``connectivity`` and ``hd95`` record the surface conventions the cases were scored under."""

    cases: List[CaseScores]
    connectivity: int = DEFAULT_CONNECTIVITY
    hd95: str = DEFAULT_HD95

    def __post_init__(self):
        if not self.cases:
            raise ValueError("no cases to report; score at least one case")
        check_conventions(self.connectivity, self.hd95)

    def conventions(self) -> Dict[str, object]:
        """The surface-distance conventions in words (the same masks score differently under others)."""
        return conventions(self.connectivity, self.hd95)

    @property
    def class_names(self) -> List[str]:
        return [c.name for c in self.cases[0].classes]

    def scores(self, class_name: str) -> List[ClassScores]:
        return [case[class_name] for case in self.cases]

    def values(self, class_name: str, metric: str) -> np.ndarray:
        """One value per case (NaN where the empty-case rules leave it undefined)."""
        return np.array([s.metric(metric) for s in self.scores(class_name)], np.float64)

    def mean(self, class_name: str, metric: str) -> float:
        """Mean per case over the cases where the metric is defined (NaN when it is defined nowhere)."""
        values = self.values(class_name, metric)
        defined = values[~np.isnan(values)]
        return float(defined.mean()) if defined.size else math.nan

    def n_cases_for(self, class_name: str, metric: str) -> int:
        return int(np.count_nonzero(~np.isnan(self.values(class_name, metric))))

    def global_dice(self, class_name: str) -> float:
        """LiTS "Dice global": one Dice from voxel counts pooled over all cases (1 when all are empty)."""
        scores = self.scores(class_name)
        total = sum(s.predicted_voxels + s.reference_voxels for s in scores)
        return 2 * sum(s.intersection for s in scores) / total if total else 1.0

    def global_jaccard(self, class_name: str) -> float:
        scores = self.scores(class_name)
        intersection = sum(s.intersection for s in scores)
        union = sum(s.predicted_voxels + s.reference_voxels for s in scores) - intersection
        return intersection / union if union else 1.0

    def pooled_lesions(self, class_name: str) -> Optional[LesionDetection]:
        """Detection counts summed over cases (None for classes without lesion counting)."""
        detections = [s.lesions for s in self.scores(class_name)]
        if any(d is None for d in detections):
            return None
        return LesionDetection(*(sum(getattr(d, f) for d in detections) for f in LesionDetection.__dataclass_fields__))

    def statuses(self, class_name: str) -> Dict[str, int]:
        counts: Dict[str, int] = {}
        for scores in self.scores(class_name):
            counts[scores.status] = counts.get(scores.status, 0) + 1
        return counts

    def summary(self) -> Dict[str, Dict[str, object]]:
        """Per class: ``mean`` and ``n_cases`` of every metric, global Dice/Jaccard, statuses, pooled lesions."""
        result: Dict[str, Dict[str, object]] = {}
        for name in self.class_names:
            entry: Dict[str, object] = {
                "mean": {m: self.mean(name, m) for m in METRICS},
                "n_cases": {m: self.n_cases_for(name, m) for m in METRICS},
                "global_dice": self.global_dice(name), "global_jaccard": self.global_jaccard(name),
                "statuses": self.statuses(name)}
            pooled = self.pooled_lesions(name)
            if pooled is not None:
                entry["lesions"] = dict(vars(pooled), **{rate: getattr(pooled, rate) for rate in LESION_RATES})
            result[name] = entry
        return result


@dataclass
class CaseMetrics:
    """Accumulate per-case scores: ``update(prediction, reference, spacing)`` per case, then ``result()``.
    ``connectivity`` (6 or 26) and ``hd95`` (pooled or directed-max) are :mod:`.surface`'s conventions.

    >>> metrics = CaseMetrics(classes=lits_classes())
    >>> metrics.update(predicted_labels, reference_labels, spacing=(0.7, 0.7, 2.5), name="volume-0")
    >>> metrics.result().mean("liver", "assd")
    """

    classes: Optional[Sequence[ScoredClass]] = None
    connectivity: int = DEFAULT_CONNECTIVITY
    hd95: str = DEFAULT_HD95
    _cases: List[CaseScores] = field(default_factory=list, repr=False)

    def __post_init__(self):
        check_conventions(self.connectivity, self.hd95)  # now, not at the first case

    def update(self, prediction: np.ndarray, reference: np.ndarray, spacing: Sequence[float], *,
               name: Optional[str] = None) -> CaseScores:
        scores = score_case(prediction, reference, spacing, self.classes, name=name or f"case{len(self._cases)}",
                            connectivity=self.connectivity, hd95=self.hd95)
        self._cases.append(scores)
        return scores

    def reset(self) -> None:
        self._cases.clear()

    @property
    def n_cases(self) -> int:
        return len(self._cases)

    def result(self) -> MetricsReport:
        if not self._cases:
            raise ValueError("no cases yet: call update(prediction, reference, spacing) first")
        return MetricsReport(list(self._cases), self.connectivity, self.hd95)
