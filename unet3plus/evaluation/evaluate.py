"""Score segmentations against labels with the LiTS metrics (``unet3plus.metrics``): masks that already
exist (:func:`score_masks`, no model needed) or a model's predictions (:func:`evaluate`).

Distances are in mm from each label file's voxel spacing (NIfTI zooms, DICOM spacing); 2-D images have
none, so their distances are in pixels unless a spacing is given. Predictions must lie on their labels'
grid (same shape and, where both have one, the same affine). Surface borders use face connectivity and
HD95 pools both directions by default (medpy's conventions; ``connectivity=26`` and ``hd95="directed-max"``
give the others, see :mod:`unet3plus.metrics.surface`).
"""
from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any, Iterable, List, Optional, Sequence, Tuple

import numpy as np

from ..errors import InputError
from ..io.dicom import is_segmentation_file
from ..io.files import DICOM_EXTENSIONS, IMAGE_EXTENSIONS, NIFTI_EXTENSIONS, extension_of, pair_by_key, stem_of
from ..io.pairing import case_key, without_lits_volumes
from ..io.readers import read_input
from ..io.volume import Volume
from ..metrics import CaseMetrics, ScoredClass, binary_classes, label_classes, lits_classes
from ..metrics.classes import check_label_values
from ..metrics.surface import DEFAULT_CONNECTIVITY, DEFAULT_HD95, check_conventions, check_spacing
from ..runtime.predict import predict
from .scores import Evaluation

MASK_EXTENSIONS = NIFTI_EXTENSIONS + IMAGE_EXTENSIONS
MASK_SUFFIX = re.compile(r"[_-](mask|pred|prediction|seg)$", re.IGNORECASE)
NOT_A_MASK = re.compile(r"_(overlay|probabilities)$")  # predict's other outputs beside its masks
AFFINE_TOLERANCE_MM = 1e-3

logger = logging.getLogger(__name__)

__all__ = ["Evaluation", "evaluate", "pair_predictions", "score_masks", "scored_classes"]


def scored_classes(kind: str) -> List[ScoredClass]:
    """``binary`` (every non-zero label is foreground), ``lits`` (liver = 1 and 2, tumour = 2, lesions) or
    an integer N (labels 1..N-1, each its own class)."""
    if kind == "binary":
        return binary_classes()
    if kind == "lits":
        return lits_classes()
    if str(kind).isdigit():
        return label_classes(int(kind))
    raise InputError(f"unknown classes '{kind}'; use binary, lits, or the number of labels including background")


def _mask_key(path: Path) -> str:
    """``volume-3_mask`` (what predict writes) and ``segmentation-3`` (LiTS labels) both give ``volume-3``."""
    return case_key(MASK_SUFFIX.sub("", stem_of(path)))


def _mask_files(folder: Path, role: str) -> List[Path]:
    if not Path(folder).is_dir():
        raise InputError(f"{folder} is not a folder; --{role} takes a folder of NIfTI, DICOM SEG or PNG masks")
    files = [path for path in sorted(Path(folder).rglob("*")) if path.is_file() and not path.name.startswith(".")
             and not NOT_A_MASK.search(stem_of(path))
             and (extension_of(path) in MASK_EXTENSIONS or is_segmentation_file(path))]
    if role == "labels":
        files = without_lits_volumes(files)  # a LiTS folder holds its CT volumes beside the labels
    if not files:
        raise InputError(f"no masks (NIfTI, DICOM SEG or PNG) under {folder}; point --{role} at the folder holding "
                         "them")
    return _one_file_per_case(files)


def _one_file_per_case(files: List[Path]) -> List[Path]:
    """``predict`` writes a DICOM series' mask twice (``_mask.nii.gz`` and ``_seg.dcm``): the NIfTI is scored."""
    other_keys = {_mask_key(path) for path in files if extension_of(path) not in DICOM_EXTENSIONS}
    kept = [path for path in files
            if extension_of(path) not in DICOM_EXTENSIONS or _mask_key(path) not in other_keys]
    for path in sorted(set(files) - set(kept)):
        logger.info("%s: scoring the NIfTI/PNG mask of the same name instead of this DICOM SEG", path)
    return kept


def pair_predictions(predictions_dir: Path, labels_dir: Path) -> List[Tuple[str, Path, Path]]:
    """``(case, prediction, labels)`` paired by name: the same stem, ignoring a ``_mask`` (or ``_seg``) suffix
    (what ``unet3plus predict`` writes) and reading ``segmentation-N`` as ``volume-N`` (LiTS). Masks are NIfTI,
    PNG or DICOM SEG (read back onto the grid of the images it references)."""
    folders = (Path(predictions_dir), Path(labels_dir))
    return pair_by_key(_mask_files(folders[0], "predictions"), _mask_files(folders[1], "labels"),
                       roles=("prediction", "label"), folders=folders, key=_mask_key,
                       rule="name (a _mask suffix and segmentation-N for volume-N are understood)")


def _read_labels(path: Path, binary: bool) -> Tuple[np.ndarray, Volume]:
    loaded = read_input(path)
    data = np.asarray(loaded.data)
    if loaded.kind == "image" and data.ndim == 3:
        data = data[..., 0]  # a grey mask saved as RGB
    if not np.all(np.isfinite(data)) or np.any(data < 0) or np.any(data != np.rint(data)):
        raise InputError(f"{path} holds values that are not non-negative integer labels; give a label mask")
    labels = data.astype(np.int64)
    # Binary scoring: anything non-zero is foreground (0/255 PNGs; liver and tumour in LiTS labels).
    return ((labels > 0).astype(np.uint8) if binary else labels), loaded


def _spacing(loaded: Volume, path: Path, default: Optional[Sequence[float]]) -> Tuple[float, ...]:
    ndim = 2 if loaded.kind == "image" else 3
    spacing = default if default is not None else loaded.spacing
    if spacing is None:
        if loaded.kind == "image":
            return (1.0, 1.0)  # reported as pixels
        raise InputError(f"{path} states no voxel spacing; pass --spacing Z Y X (mm)")
    try:
        return check_spacing(spacing, ndim)
    except ValueError as error:
        raise InputError(f"{path}: {error}; fix the header or pass --spacing Z Y X (mm)") from None


def _check_same_grid(prediction: Volume, labels: Volume, shape: Tuple[int, ...],
                     expected: Tuple[int, ...]) -> None:
    if shape != expected:
        raise InputError(f"{prediction.path} has shape {shape} but its labels {labels.path} have {expected}; "
                         "a mask must be on its volume's grid (resample it, or pair the right files)")
    if prediction.affine is not None and labels.affine is not None and not np.allclose(
            prediction.affine, labels.affine, atol=AFFINE_TOLERANCE_MM):
        raise InputError(f"{prediction.path} and {labels.path} have different affines (voxel-to-world maps); "
                         "a mask must be on its volume's grid (resample it, or pair the right files)")


def _check_conventions(connectivity: int, hd95: str) -> None:
    try:
        check_conventions(connectivity, hd95)
    except ValueError as error:
        raise InputError(str(error)) from None


class _Scorer:
    """Checks and scores one case after another into one :class:`CaseMetrics`."""

    def __init__(self, classes: str, spacing: Optional[Sequence[float]], connectivity: int, hd95: str):
        _check_conventions(connectivity, hd95)
        self.kind, self.spacing = classes, spacing
        self.classes = scored_classes(classes)
        self.metrics = CaseMetrics(self.classes, connectivity, hd95)
        self.units = "mm"

    def score(self, name: str, predicted: np.ndarray, source: Volume, label_path: Path) -> None:
        labels, loaded = _read_labels(Path(label_path), self.kind == "binary")
        _check_same_grid(source, loaded, tuple(predicted.shape), tuple(labels.shape))
        for path, values in ((source.path, predicted), (label_path, labels)):
            try:
                check_label_values(values, self.classes)
            except ValueError as error:
                raise InputError(f"{path}: {error}; pass --classes to match the labels (binary, lits, or the "
                                 "number of labels) or fix the mask") from None
        spacing = _spacing(loaded, Path(label_path), self.spacing)
        if loaded.spacing is None and self.spacing is None:
            self.units = "px"
        self.metrics.update(predicted, labels, spacing, name=name)

    def result(self) -> Evaluation:
        if not self.metrics.n_cases:
            raise InputError("no cases to evaluate; check the input folders")
        return Evaluation(self.metrics.result(), units=self.units)


def score_masks(cases: Iterable[Tuple[str, Path, Path]], *, classes: str = "binary",
                spacing: Optional[Sequence[float]] = None, connectivity: int = DEFAULT_CONNECTIVITY,
                hd95: str = DEFAULT_HD95) -> Evaluation:
    """Score existing ``(name, prediction, labels)`` mask files (NIfTI, DICOM SEG or PNG); no model is involved.
    ``connectivity`` (6 or 26) and ``hd95`` (pooled or directed-max): the surface conventions."""
    scorer = _Scorer(classes, spacing, connectivity, hd95)
    for name, prediction_path, label_path in cases:
        predicted, source = _read_labels(Path(prediction_path), classes == "binary")
        scorer.score(name, predicted, source, Path(label_path))
    return scorer.result()


def evaluate(model: Any, cases: Iterable[Tuple[str, Path, Path]], *, classes: Optional[str] = None,
             spacing: Optional[Sequence[float]] = None, preset: Any = None, threshold: float = 0.5,
             batch_size: Optional[int] = None, keep_largest: bool = False, allow_thin: bool = False,
             progress: bool = False, connectivity: int = DEFAULT_CONNECTIVITY,
             hd95: str = DEFAULT_HD95) -> Evaluation:
    """Predict every ``(name, input, labels)`` case with ``model`` (a backend, network or .onnx path) and score it.

    ``classes`` defaults to ``binary`` for a one-channel model (non-zero labels are foreground) and to the
    channel count (each label its own class) otherwise; ``lits`` scores liver and tumour. ``connectivity``
    and ``hd95``: the surface conventions, as :func:`score_masks`.
    """
    _check_conventions(connectivity, hd95)  # before the first prediction
    scorer: Optional[_Scorer] = None
    for name, input_path, label_path in cases:
        prediction = predict(model, input_path, preset=preset, threshold=threshold, batch_size=batch_size,
                             keep_largest=keep_largest, allow_thin=allow_thin, progress=progress)
        channels = prediction.channels
        if scorer is None:
            scorer = _Scorer(classes or ("binary" if channels == 1 else str(channels)), spacing, connectivity, hd95)
        source = prediction.source or Volume(name, "array", np.zeros(0), Path(input_path))
        scorer.score(name, prediction.mask, source, Path(label_path))
    if scorer is None:
        raise InputError("no cases to evaluate; check the input folders")
    return scorer.result()

