"""Segmentation metrics in NumPy/SciPy: a functional core and stateful accumulators (MONAI's layout).

* :mod:`.overlap`: Dice/IoU on label maps with MONAI's conventions (``SegmentationMetrics``; training).
* :mod:`.cases`: one case scored as the LiTS benchmark does, per class, distances in mm from the voxel
  spacing, with documented empty-case rules (``score_case``, ``score_class``).
* :mod:`.surface`: ASSD, RMSD, MSSD, HD95 between two masks (``surface_distances``).
* :mod:`.lesions`: lesion detection from 3-D connected components (``detect_lesions``).
* :mod:`.classes`: what each class is (``lits_classes``: liver = labels 1 and 2, tumour = label 2).
* :mod:`.report`: many cases (``CaseMetrics`` -> ``MetricsReport``: means per case, global Dice).
"""
from .cases import METRICS, CaseScores, ClassScores, score_case, score_class
from .classes import ScoredClass, binary_classes, label_classes, lits_classes
from .lesions import LesionDetection, detect_lesions
from .overlap import (ConfusionCounts, OverlapResult, SegmentationMetrics, confusion_counts, dice_from_counts,
                      dice_per_case, iou_from_counts, iou_per_case, nan_mean)
from .report import CaseMetrics, MetricsReport
from .surface import SurfaceDistances, surface_distances

__all__ = [
    "METRICS", "CaseMetrics", "CaseScores", "ClassScores", "ConfusionCounts", "LesionDetection", "MetricsReport",
    "OverlapResult", "ScoredClass", "SegmentationMetrics", "SurfaceDistances", "binary_classes", "confusion_counts",
    "detect_lesions", "dice_from_counts", "dice_per_case", "iou_from_counts", "iou_per_case", "label_classes",
    "lits_classes", "nan_mean", "score_case", "score_class", "surface_distances",
]
