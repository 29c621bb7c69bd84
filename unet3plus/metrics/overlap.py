"""Overlap metrics on label maps: Dice and IoU per case and class, MONAI's conventions (the training metric).

Inputs are integer label maps (class indices, 0 = background) of shape ``(N, *spatial)`` for N cases.

* ``include_background`` (default True, as MONAI): whether class 0 is scored. For binary masks pass
  ``n_classes=2, include_background=False`` to get the usual foreground Dice.
* ``ignore_empty`` (default True, as MONAI): a case whose ground truth lacks a class gets NaN for that
  class and is left out of the means. With ``ignore_empty=False`` it scores 1 if the prediction is empty
  too, else 0.
* Mean per case (MONAI's ``reduction="mean"``): score each case and class, then average ignoring NaN.
  Global (also "micro"): pool true/false positives and negatives over all cases, then score once per class.

The LiTS benchmark's metrics in millimetres (with their own empty-case rules) are in :mod:`.cases`.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import List, Optional

import numpy as np

__all__ = [
    "ConfusionCounts", "OverlapResult", "SegmentationMetrics", "confusion_counts", "dice_from_counts",
    "dice_per_case", "iou_from_counts", "iou_per_case", "nan_mean",
]


@dataclass
class ConfusionCounts:
    """Per case and class (``N x K``) true positives, false positives and false negatives."""

    true_positive: np.ndarray
    false_positive: np.ndarray
    false_negative: np.ndarray
    classes: List[int]

    @property
    def target_volume(self) -> np.ndarray:
        return self.true_positive + self.false_negative


def _check_labels(prediction: np.ndarray, target: np.ndarray, n_classes: int) -> None:
    if prediction.shape != target.shape:
        raise ValueError(f"prediction shape {prediction.shape} differs from target shape {target.shape}; "
                         "pass label maps of the same shape (use labels_from_logits on logits)")
    if n_classes < 2:
        raise ValueError(f"n_classes counts background too and must be >= 2, got {n_classes}")
    for name, labels in (("prediction", prediction), ("target", target)):
        if labels.size and (labels.min() < 0 or labels.max() >= n_classes):
            raise ValueError(f"{name} holds labels outside 0..{n_classes - 1} "
                             f"(min {labels.min()}, max {labels.max()}); check n_classes")


def confusion_counts(prediction: np.ndarray, target: np.ndarray, n_classes: int,
                     include_background: bool = True) -> ConfusionCounts:
    """Count TP/FP/FN per case (first axis) and class for integer label maps of equal shape."""
    prediction, target = np.asarray(prediction), np.asarray(target)
    _check_labels(prediction, target, n_classes)
    classes = list(range(0 if include_background else 1, n_classes))
    n_cases = prediction.shape[0] if prediction.ndim else 1
    flat_prediction = prediction.reshape(n_cases, -1)
    flat_target = target.reshape(n_cases, -1)
    shape = (n_cases, len(classes))
    tp, fp, fn = np.zeros(shape, np.int64), np.zeros(shape, np.int64), np.zeros(shape, np.int64)
    for column, label in enumerate(classes):
        predicted, actual = flat_prediction == label, flat_target == label
        tp[:, column] = np.sum(predicted & actual, axis=1)
        fp[:, column] = np.sum(predicted & ~actual, axis=1)
        fn[:, column] = np.sum(~predicted & actual, axis=1)
    return ConfusionCounts(tp, fp, fn, classes)


def _score(numerator: np.ndarray, denominator: np.ndarray, target_volume: np.ndarray,
           ignore_empty: bool) -> np.ndarray:
    numerator, denominator = np.asarray(numerator, np.float64), np.asarray(denominator, np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        score = numerator / denominator
    empty_target = np.asarray(target_volume) == 0
    if ignore_empty:
        return np.where(empty_target, np.nan, score)
    # MONAI: an empty target scores 1 when the prediction is empty too, else 0.
    return np.where(empty_target, np.where(denominator == 0, 1.0, 0.0), score)


def dice_from_counts(counts: ConfusionCounts, ignore_empty: bool = True) -> np.ndarray:
    tp, fp, fn = counts.true_positive, counts.false_positive, counts.false_negative
    return _score(2 * tp, 2 * tp + fp + fn, counts.target_volume, ignore_empty)


def iou_from_counts(counts: ConfusionCounts, ignore_empty: bool = True) -> np.ndarray:
    tp, fp, fn = counts.true_positive, counts.false_positive, counts.false_negative
    return _score(tp, tp + fp + fn, counts.target_volume, ignore_empty)


def dice_per_case(prediction: np.ndarray, target: np.ndarray, n_classes: int, *,
                  include_background: bool = True, ignore_empty: bool = True) -> np.ndarray:
    """Hard Dice ``N x K`` (cases x scored classes); NaN where ignored (see module docstring)."""
    return dice_from_counts(confusion_counts(prediction, target, n_classes, include_background), ignore_empty)


def iou_per_case(prediction: np.ndarray, target: np.ndarray, n_classes: int, *,
                 include_background: bool = True, ignore_empty: bool = True) -> np.ndarray:
    """Hard IoU (Jaccard) ``N x K``; NaN where ignored (see module docstring)."""
    return iou_from_counts(confusion_counts(prediction, target, n_classes, include_background), ignore_empty)


def nan_mean(values: np.ndarray, axis: Optional[int] = None):
    """Mean ignoring NaN; NaN (without a warning) where every value is NaN."""
    values = np.asarray(values, np.float64)
    valid = ~np.isnan(values)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(valid, values, 0.0).sum(axis=axis) / valid.sum(axis=axis)
    return float(mean) if axis is None else mean


@dataclass
class SegmentationMetrics:
    """Accumulates hard Dice/IoU over batches; ``result()`` gives per-class and overall aggregates.

    >>> metrics = SegmentationMetrics(n_classes=2, include_background=False)
    >>> metrics.update(predicted_labels, true_labels)   # any number of times
    >>> metrics.result().mean_dice
    """

    n_classes: int
    include_background: bool = True
    ignore_empty: bool = True
    _counts: List[ConfusionCounts] = field(default_factory=list, repr=False)

    def update(self, prediction: np.ndarray, target: np.ndarray) -> "SegmentationMetrics":
        self._counts.append(confusion_counts(prediction, target, self.n_classes, self.include_background))
        return self

    def reset(self) -> None:
        self._counts.clear()

    @property
    def n_cases(self) -> int:
        return sum(c.true_positive.shape[0] for c in self._counts)

    def counts(self) -> ConfusionCounts:
        if not self._counts:
            raise ValueError("no cases yet: call update(prediction, target) first")
        stack = lambda name: np.concatenate([getattr(c, name) for c in self._counts])  # noqa: E731
        return ConfusionCounts(stack("true_positive"), stack("false_positive"), stack("false_negative"),
                               self._counts[0].classes)

    def result(self) -> "OverlapResult":
        """Per-case scores, their means per class and overall, and global scores from pooled counts."""
        counts = self.counts()
        dice, iou = dice_from_counts(counts, self.ignore_empty), iou_from_counts(counts, self.ignore_empty)
        pooled = ConfusionCounts(counts.true_positive.sum(0, keepdims=True),
                                 counts.false_positive.sum(0, keepdims=True),
                                 counts.false_negative.sum(0, keepdims=True), counts.classes)
        global_dice = dice_from_counts(pooled, self.ignore_empty)[0]
        global_iou = iou_from_counts(pooled, self.ignore_empty)[0]
        return OverlapResult(
            classes=counts.classes, dice_per_case=dice, iou_per_case=iou,
            mean_dice_per_class=nan_mean(dice, axis=0), mean_iou_per_class=nan_mean(iou, axis=0),
            mean_dice=nan_mean(dice), mean_iou=nan_mean(iou),
            global_dice_per_class=global_dice, global_iou_per_class=global_iou,
            global_dice=nan_mean(global_dice), global_iou=nan_mean(global_iou))


@dataclass(frozen=True)
class OverlapResult:
    """What :meth:`SegmentationMetrics.result` gives: ``*_per_case`` are ``N x K`` (cases x ``classes``),
    ``*_per_class`` have ``K`` entries; ``mean_*`` average per case, ``global_*`` score pooled counts."""

    classes: List[int]
    dice_per_case: np.ndarray
    iou_per_case: np.ndarray
    mean_dice_per_class: np.ndarray
    mean_iou_per_class: np.ndarray
    mean_dice: float
    mean_iou: float
    global_dice_per_class: np.ndarray
    global_iou_per_class: np.ndarray
    global_dice: float
    global_iou: float
