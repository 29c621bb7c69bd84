"""One case's scores as the LiTS benchmark reports them, per class, in millimetres.

* Dice ``2|A∩B| / (|A|+|B|)``, Jaccard ``|A∩B| / |A∪B|``, VOE ``1 - Jaccard`` (A = prediction, B = reference).
* RVD, signed, relative to the reference: ``(|A| - |B|) / |B|``; positive means over-segmentation. (The
  LiTS evaluation script prints ``(|B| - |A|) / |A|``, which is ``-rvd / (1 + rvd)``.)
* ASSD, RMSD, MSSD (maximum) and HD95 in mm between the surfaces (:mod:`.surface`; its ``connectivity``
  and ``hd95`` conventions pass through ``score_class`` and ``score_case``).
* Volumes in ml (``predicted_ml``, ``reference_ml``): voxel count x voxel volume.

Empty cases follow fixed rules, and every class score carries its ``status`` so nothing is mixed silently:

============================ ============= ===== ===================== ============================
status                       Dice, Jaccard VOE   RVD                   ASSD, RMSD, MSSD, HD95
============================ ============= ===== ===================== ============================
``scored`` (both non-empty)  computed      1 - J computed              computed
``both empty``               1             0     0                     0 (the surfaces agree)
``prediction empty``         0             1     -1                    NaN (no predicted surface)
``reference empty``          0             1     NaN (no reference)    NaN (no reference surface)
============================ ============= ===== ===================== ============================

Means over cases leave NaN out and report how many cases each mean covers (:mod:`.report`).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional, Sequence, Tuple

import numpy as np

from .classes import ScoredClass, binary_classes, check_label_values
from .lesions import LesionDetection, detect_lesions
from .surface import DEFAULT_CONNECTIVITY, DEFAULT_HD95, check_conventions, check_spacing, surface_distances

__all__ = ["BOTH_EMPTY", "METRICS", "PREDICTION_EMPTY", "REFERENCE_EMPTY", "SCORED", "CaseScores", "ClassScores",
           "score_case", "score_class"]

METRICS = ("dice", "jaccard", "voe", "rvd", "assd", "rmsd", "mssd", "hd95")
SCORED, BOTH_EMPTY, PREDICTION_EMPTY, REFERENCE_EMPTY = "scored", "both empty", "prediction empty", "reference empty"
NAN = math.nan


@dataclass(frozen=True)
class ClassScores:
    """One class of one case: the metrics (mm for distances), the voxel counts they came from, the status
    (see the module's empty-case table) and, for lesion classes, the detection counts."""

    name: str
    status: str
    predicted_voxels: int
    reference_voxels: int
    intersection: int
    voxel_volume_mm3: float
    dice: float
    jaccard: float
    voe: float
    rvd: float
    assd: float
    rmsd: float
    mssd: float
    hd95: float
    lesions: Optional[LesionDetection] = None

    def metric(self, name: str) -> float:
        if name not in METRICS:
            raise KeyError(f"unknown metric '{name}'; choose from {', '.join(METRICS)}")
        return getattr(self, name)

    @property
    def predicted_ml(self) -> float:
        """Predicted volume in ml (1 ml = 1000 mm^3); meaningful for 3-D masks with a spacing in mm."""
        return self.predicted_voxels * self.voxel_volume_mm3 / 1000.0

    @property
    def reference_ml(self) -> float:
        """Reference volume in ml, as :attr:`predicted_ml`."""
        return self.reference_voxels * self.voxel_volume_mm3 / 1000.0


@dataclass(frozen=True)
class CaseScores:
    """Every scored class of one case, in the order of the class definitions."""

    name: str
    spacing: Tuple[float, ...]
    classes: Tuple[ClassScores, ...]

    def __getitem__(self, class_name: str) -> ClassScores:
        for scores in self.classes:
            if scores.name == class_name:
                return scores
        raise KeyError(f"no class '{class_name}' in case {self.name}; classes: {[c.name for c in self.classes]}")


def score_class(prediction: np.ndarray, reference: np.ndarray, spacing: Sequence[float], *, name: str = "foreground",
                lesions: bool = False, connectivity: int = DEFAULT_CONNECTIVITY,
                hd95: str = DEFAULT_HD95) -> ClassScores:
    """Score two binary masks of the same shape (``spacing`` in mm per axis) under the empty-case rules;
    ``connectivity`` (6 or 26) and ``hd95`` (pooled or directed-max) as in :mod:`.surface`."""
    check_conventions(connectivity, hd95)
    prediction, reference = np.asarray(prediction, bool), np.asarray(reference, bool)
    if prediction.shape != reference.shape:
        raise ValueError(f"prediction shape {prediction.shape} differs from reference shape {reference.shape}")
    spacing = check_spacing(spacing, prediction.ndim)
    predicted, actual = int(np.count_nonzero(prediction)), int(np.count_nonzero(reference))
    intersection = int(np.count_nonzero(prediction & reference))
    counts = dict(name=name, predicted_voxels=predicted, reference_voxels=actual, intersection=intersection,
                  voxel_volume_mm3=float(np.prod(spacing)),
                  lesions=detect_lesions(prediction, reference) if lesions else None)
    if predicted == 0 and actual == 0:
        return ClassScores(status=BOTH_EMPTY, dice=1.0, jaccard=1.0, voe=0.0, rvd=0.0, assd=0.0, rmsd=0.0, mssd=0.0,
                           hd95=0.0, **counts)
    if predicted == 0 or actual == 0:
        return ClassScores(status=PREDICTION_EMPTY if predicted == 0 else REFERENCE_EMPTY, dice=0.0, jaccard=0.0,
                           voe=1.0, rvd=-1.0 if predicted == 0 else NAN, assd=NAN, rmsd=NAN, mssd=NAN, hd95=NAN,
                           **counts)
    jaccard = intersection / (predicted + actual - intersection)
    distances = surface_distances(prediction, reference, spacing, connectivity=connectivity, hd95=hd95)
    return ClassScores(status=SCORED, dice=2 * intersection / (predicted + actual), jaccard=jaccard, voe=1 - jaccard,
                       rvd=(predicted - actual) / actual, assd=distances.assd, rmsd=distances.rmsd,
                       mssd=distances.mssd, hd95=distances.hd95, **counts)


def score_case(prediction: np.ndarray, reference: np.ndarray, spacing: Sequence[float],
               classes: Optional[Sequence[ScoredClass]] = None, *, name: str = "case",
               connectivity: int = DEFAULT_CONNECTIVITY, hd95: str = DEFAULT_HD95) -> CaseScores:
    """Score two label maps of the same shape per class (default: one foreground class, label 1; use
    :func:`~.classes.lits_classes` for liver and tumour). Labels no class covers are an error. The surface
    ``connectivity`` and ``hd95`` mode are :mod:`.surface`'s."""
    check_conventions(connectivity, hd95)
    prediction, reference = np.asarray(prediction), np.asarray(reference)
    if prediction.shape != reference.shape:
        raise ValueError(f"prediction shape {prediction.shape} differs from reference shape {reference.shape}")
    classes = list(classes) if classes is not None else binary_classes()
    spacing = check_spacing(spacing, prediction.ndim)
    for role, label_map in (("prediction", prediction), ("reference", reference)):
        try:
            check_label_values(label_map, classes)
        except ValueError as error:
            raise ValueError(f"{role} of {name}: {error}; choose the class definitions that match") from None
    return CaseScores(name, spacing, tuple(
        score_class(c.region(prediction), c.region(reference), spacing, name=c.name, lesions=c.lesions,
                    connectivity=connectivity, hd95=hd95)
        for c in classes))
