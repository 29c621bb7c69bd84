"""Read one case of a volume dataset lazily, in the slice convention of ``unet3plus.io.nifti``.

NIfTI volumes are never held whole: nibabel's proxy reads the slices asked for (memory-mapped for
``.nii``; ``.nii.gz`` through indexed_gzip's seek points where it is installed, see
``benchmarks/bench_volume_loading.py``); a DICOM series goes through the package's series reader and the
last few are kept in memory.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import FrozenSet, Optional, Tuple

import numpy as np

from .._optional import require
from ..io.dicom import read_series
from ..io.layouts import VolumeCase
from ..io.nifti import nifti_to_slices, training_orientation_transform
from ..io.volume import Volume

AFFINE_TOLERANCE_MM = 1e-3  # label and image grids must agree to a micrometre
NON_INTEGER_TOLERANCE = 1e-3  # a stored label 0.9999999 is 1; 0.6 is an interpolated label
DICOM_CASES_KEPT = 4


def _load_nifti(path: Path):
    nibabel = require("nibabel", "nifti", "Reading NIfTI volumes")
    # keep_file_open: with indexed_gzip installed (the [nifti] extra), a .nii.gz keeps its seek index, so a
    # slice deep in the volume no longer means decompressing everything before it on every read
    image = nibabel.load(str(path), keep_file_open=True)
    shape = image.shape
    if len(shape) == 4 and shape[3] == 1:
        image = image.slicer[..., 0]
    if len(image.shape) != 3:
        raise ValueError(f"holds a {len(shape)}-D image of shape {shape}; expected one 3-D volume")
    return image


@functools.lru_cache(maxsize=DICOM_CASES_KEPT)
def _dicom_volume(folder: str) -> Volume:
    return read_series(Path(folder))


class CaseReader:
    """Slices of one case as ``Z x H x W`` arrays (HU float32; labels int64), read on demand."""

    def __init__(self, case: VolumeCase) -> None:
        self.case = case
        self._image = None if case.is_dicom else _load_nifti(case.image)
        self._labels = _load_nifti(case.labels)

    @property
    def shape(self) -> Tuple[int, int, int]:
        """``(Z, H, W)`` of the CT in the slice convention of ``unet3plus.io.nifti``."""
        if self._image is None:
            return tuple(_dicom_volume(str(self.case.image)).data.shape)
        return _oriented_shape(self._image)

    @property
    def label_shape(self) -> Tuple[int, int, int]:
        return _oriented_shape(self._labels)

    def affines_differ(self) -> bool:
        """Whether the labels lie elsewhere in the world than their CT, NIfTI or DICOM series (beyond
        ``AFFINE_TOLERANCE_MM``), compared in the training orientation both are read in, so labels stored in
        another axis order pass. A series without geometry is matched by shape only."""
        image = _dicom_volume(str(self.case.image)).affine if self._image is None else _oriented_affine(self._image)
        if image is None:
            return False
        return not np.allclose(image, _oriented_affine(self._labels), rtol=0, atol=AFFINE_TOLERANCE_MM)

    def hu(self, start: int = 0, stop: Optional[int] = None) -> np.ndarray:
        if self._image is None:
            return _dicom_volume(str(self.case.image)).data[start:stop]
        return _read_slices(self._image, start, stop).astype(np.float32, copy=False)

    def label_values(self, start: int = 0, stop: Optional[int] = None) -> np.ndarray:
        """The stored label values, unrounded (the up-front check refuses non-integer ones)."""
        return _read_slices(self._labels, start, stop)

    def labels(self, start: int = 0, stop: Optional[int] = None) -> np.ndarray:
        return np.rint(self.label_values(start, stop)).astype(np.int64)


def _orientation(image):
    return training_orientation_transform(require("nibabel", "nifti", "Reading NIfTI volumes"), image)


def _oriented_affine(image) -> np.ndarray:
    """The affine of ``image`` once in the training orientation (what ``read_nifti`` gives)."""
    nibabel = require("nibabel", "nifti", "Reading NIfTI volumes")
    forward = _orientation(image)
    affine = np.asarray(image.affine, float)
    return affine if forward is None else affine @ nibabel.orientations.inv_ornt_aff(forward, image.shape[:3])


def _oriented_shape(image) -> Tuple[int, int, int]:
    """``(Z, H, W)`` of ``image`` once in the training orientation (what ``read_nifti`` gives)."""
    shape = np.array(image.shape[:3])
    forward = _orientation(image)
    if forward is not None:
        shape[forward[:, 0].astype(int)] = shape.copy()
    return int(shape[2]), int(shape[1]), int(shape[0])


def _read_slices(image, start: int, stop: Optional[int]) -> np.ndarray:
    """Slices ``start:stop`` (training orientation) as ``Z x H x W``, reading only that block of the file."""
    nibabel = require("nibabel", "nifti", "Reading NIfTI volumes")
    forward = _orientation(image)
    if forward is None:
        return nifti_to_slices(np.asarray(image.dataobj[:, :, start:stop]))
    file_axis = int(np.flatnonzero(forward[:, 0] == 2)[0])  # the file axis that becomes the slice axis
    length = image.shape[file_axis]
    stop = length if stop is None else min(stop, length)
    low, high = (length - stop, length - start) if forward[file_axis, 1] < 0 else (start, stop)
    index = [slice(None)] * 3
    index[file_axis] = slice(low, high)
    block = np.asarray(image.dataobj[tuple(index)])
    return nifti_to_slices(nibabel.orientations.apply_orientation(block, forward))


@dataclass
class CaseInfo:
    """What the up-front check learnt about a case: its shape and which slices hold foreground (any label, and
    per class for class-balanced sampling)."""

    case: VolumeCase
    shape: Tuple[int, int, int]
    foreground: np.ndarray  # bool per slice
    classes_present: FrozenSet[int] = frozenset()  # label values > 0 found in the case
    slice_classes: Optional[np.ndarray] = None  # Z x classes bool: slice z holds label k + 1

    @property
    def name(self) -> str:
        return self.case.name
