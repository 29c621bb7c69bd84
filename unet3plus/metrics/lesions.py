"""Lesion detection: reference and predicted lesions are 3-D connected components (full connectivity);
a reference lesion counts as found at IoU > 0.5 when one predicted component overlaps it with
intersection-over-union above 0.5 (such a match is necessarily one-to-one), and at "any overlap" when
they share a voxel.

Precision is the fraction of predicted components that match a reference lesion, recall the fraction
of reference lesions matched. Either is NaN when there is nothing to divide by (no predicted / no
reference lesions): the counts are kept, so pooled scores over cases stay exact.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Tuple

import numpy as np

from .._optional import require

__all__ = ["LesionDetection", "connected_components", "detect_lesions"]

MATCH_IOU = 0.5


@dataclass(frozen=True)
class LesionDetection:
    """Counts for one case. ``*_iou`` matches need IoU > 0.5, ``*_overlap`` matches any shared voxel."""

    reference_lesions: int
    predicted_lesions: int
    found_iou: int  # reference lesions matched at IoU > 0.5 (= predicted components matched that way)
    found_overlap: int  # reference lesions touched by a predicted component
    true_predictions_overlap: int  # predicted components touching a reference lesion

    @property
    def precision_iou(self) -> float:
        return _ratio(self.found_iou, self.predicted_lesions)

    @property
    def recall_iou(self) -> float:
        return _ratio(self.found_iou, self.reference_lesions)

    @property
    def precision_overlap(self) -> float:
        return _ratio(self.true_predictions_overlap, self.predicted_lesions)

    @property
    def recall_overlap(self) -> float:
        return _ratio(self.found_overlap, self.reference_lesions)


def _ratio(numerator: int, denominator: int) -> float:
    return numerator / denominator if denominator else math.nan


def connected_components(mask: np.ndarray) -> Tuple[np.ndarray, int]:
    """Components of a binary mask with full connectivity (26 neighbours in 3-D) and their count."""
    ndimage = require("scipy.ndimage", "postprocess", "Lesion detection")
    mask = np.asarray(mask, bool)
    return ndimage.label(mask, structure=ndimage.generate_binary_structure(mask.ndim, mask.ndim))


def detect_lesions(prediction: np.ndarray, reference: np.ndarray) -> LesionDetection:
    """Match the connected components of two binary masks of the same shape (see the module docstring)."""
    prediction, reference = np.asarray(prediction, bool), np.asarray(reference, bool)
    if prediction.shape != reference.shape:
        raise ValueError(f"prediction shape {prediction.shape} differs from reference shape {reference.shape}")
    reference_ids, n_reference = connected_components(reference)
    predicted_ids, n_predicted = connected_components(prediction)
    both = (reference_ids > 0) & (predicted_ids > 0)
    pairs = reference_ids[both].astype(np.int64) * (n_predicted + 1) + predicted_ids[both]
    pair_ids, intersections = np.unique(pairs, return_counts=True)
    reference_of, predicted_of = np.divmod(pair_ids, n_predicted + 1)
    reference_sizes = np.bincount(reference_ids.ravel(), minlength=n_reference + 1)
    predicted_sizes = np.bincount(predicted_ids.ravel(), minlength=n_predicted + 1)
    unions = reference_sizes[reference_of] + predicted_sizes[predicted_of] - intersections
    matched = intersections > MATCH_IOU * unions
    return LesionDetection(
        reference_lesions=int(n_reference), predicted_lesions=int(n_predicted),
        found_iou=int(np.unique(reference_of[matched]).size),
        found_overlap=int(np.unique(reference_of).size),
        true_predictions_overlap=int(np.unique(predicted_of).size))
