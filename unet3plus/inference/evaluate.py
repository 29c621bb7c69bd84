"""Evaluate a model on labelled cases: hard Dice/IoU per case and over all cases (``unet3plus.metrics``)."""
from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, List, Optional, Tuple

import numpy as np

from .._atomic import atomic_path
from ..errors import InputError
from ..metrics import OverlapResult, SegmentationMetrics, confusion_counts, dice_from_counts, iou_from_counts
from .predict import predict
from .readers import read_input


@dataclass
class Evaluation:
    """Per-case rows and the aggregate scores (``SegmentationMetrics.result()``)."""

    rows: List[dict]
    summary: OverlapResult

    def table(self) -> str:
        """A plain-text table: one line per case, then the mean over cases and the global (pooled) score."""
        columns = list(self.rows[0]) if self.rows else ["case"]
        lines = ["  ".join(f"{c:>12}" if c != "case" else f"{c:<24}" for c in columns)]
        for row in self.rows:
            lines.append("  ".join(_cell(column, row[column]) for column in columns))
        lines.append(f"mean over cases: Dice {self.summary.mean_dice:.4f}  IoU {self.summary.mean_iou:.4f}")
        lines.append(f"global (pooled): Dice {self.summary.global_dice:.4f}  IoU {self.summary.global_iou:.4f}")
        return "\n".join(lines)

    def write_csv(self, path: Path) -> Path:
        with atomic_path(path) as temporary, open(temporary, "w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(self.rows[0]))
            writer.writeheader()
            writer.writerows(self.rows)
            for label in ("mean", "global"):
                writer.writerow({key: (label if key == "case" else _aggregate(self.summary, label, key))
                                 for key in self.rows[0]})
        return Path(path)


def _cell(column: str, value: Any) -> str:
    if column == "case":
        return f"{value:<24}"
    return f"{value:>12.4f}" if isinstance(value, float) else f"{value:>12}"


def _aggregate(summary: OverlapResult, label: str, key: str):
    if key in ("dice", "iou"):
        return getattr(summary, f"{label}_{key}")
    for metric in ("dice", "iou"):
        prefix = f"{metric}_class"
        if key.startswith(prefix):
            index = summary.classes.index(int(key[len(prefix):]))
            return float(getattr(summary, f"{label}_{metric}_per_class")[index])
    return ""


def _target_labels(path: Path, n_classes: int) -> np.ndarray:
    loaded = read_input(path)
    data = np.asarray(loaded.data)
    if loaded.kind == "image" and data.ndim == 3:
        data = data[..., 0]  # a grey mask saved as RGB
    labels = np.rint(data).astype(np.int64)
    # One-channel models: anything non-zero is foreground (0/255 PNGs; liver and tumour in LiTS labels).
    return (labels > 0).astype(np.int64) if n_classes == 1 else labels


def evaluate(model: Any, cases: Iterable[Tuple[str, Path, Path]], *, n_classes: Optional[int] = None,
             preset: str = "lits2017", threshold: float = 0.5, batch_size: int = 4, keep_largest: bool = False,
             allow_thin: bool = False, progress: bool = False) -> Evaluation:
    """Predict every ``(name, input, target)`` case with ``model`` (a backend, network or .onnx path) and score it.

    Binary models are scored on the foreground only (``include_background=False``); multi-class models
    on every class but background. Cases whose target has no foreground get NaN (MONAI's ``ignore_empty``).
    ``n_classes`` (the model's output channels) is read from the first prediction unless given.
    """
    metrics: Optional[SegmentationMetrics] = None
    rows = []
    for name, input_path, target_path in cases:
        prediction = predict(model, input_path, preset=preset, threshold=threshold, batch_size=batch_size,
                             keep_largest=keep_largest, allow_thin=allow_thin, progress=progress)
        channels = prediction.probabilities.shape[-3]
        n_classes = n_classes or channels
        if n_classes != channels:
            raise InputError(f"n_classes={n_classes} but the model gives {channels} output channel(s)")
        if metrics is None:
            metrics = SegmentationMetrics(n_classes=max(n_classes, 2), include_background=False)
        target = _target_labels(Path(target_path), n_classes)
        if target.shape != prediction.mask.shape:
            raise InputError(f"labels {target_path} have shape {target.shape} but the prediction for {input_path} "
                             f"has {prediction.mask.shape}; check that they belong together")
        predicted, target = prediction.mask[np.newaxis].astype(np.int64), target[np.newaxis]
        metrics.update(predicted, target)
        counts = confusion_counts(predicted, target, metrics.n_classes, include_background=False)
        dice, iou = dice_from_counts(counts)[0], iou_from_counts(counts)[0]
        row = {"case": name}
        if len(counts.classes) == 1:
            row.update(dice=float(dice[0]), iou=float(iou[0]))
        else:
            row.update({f"dice_class{c}": float(d) for c, d in zip(counts.classes, dice)})
            row.update({f"iou_class{c}": float(v) for c, v in zip(counts.classes, iou)})
        row.update(predicted=int(np.count_nonzero(prediction.mask)), target=int(np.count_nonzero(target)))
        rows.append(row)
    if metrics is None:
        raise InputError("no cases to evaluate; check the input folders")
    return Evaluation(rows, metrics.result())

