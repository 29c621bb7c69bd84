"""Read one case of a volume dataset lazily, in the slice convention of ``unet3plus.inference.readers``.

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
from ..inference.readers import nifti_to_slices, read_dicom_series
from .volume_layouts import VolumeCase

AFFINE_TOLERANCE_MM = 1e-2
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
def _dicom_volume(folder: str) -> np.ndarray:
    return read_dicom_series(Path(folder)).data


class CaseReader:
    """Slices of one case as ``Z x H x W`` arrays (HU float32; labels int64), read on demand."""

    def __init__(self, case: VolumeCase) -> None:
        self.case = case
        self._image = None if case.is_dicom else _load_nifti(case.image)
        self._labels = _load_nifti(case.labels)

    @property
    def shape(self) -> Tuple[int, int, int]:
        """``(Z, H, W)`` of the CT in the slice convention of ``unet3plus.inference.readers``."""
        if self._image is None:
            return tuple(_dicom_volume(str(self.case.image)).shape)
        x, y, z = self._image.shape
        return z, y, x

    @property
    def label_shape(self) -> Tuple[int, int, int]:
        x, y, z = self._labels.shape
        return z, y, x

    def affines_differ(self) -> bool:
        return self._image is not None and not np.allclose(self._image.affine, self._labels.affine,
                                                           rtol=0, atol=AFFINE_TOLERANCE_MM)

    def hu(self, start: int = 0, stop: Optional[int] = None) -> np.ndarray:
        if self._image is None:
            return _dicom_volume(str(self.case.image))[start:stop]
        return nifti_to_slices(np.asarray(self._image.dataobj[:, :, start:stop], np.float32))

    def labels(self, start: int = 0, stop: Optional[int] = None) -> np.ndarray:
        return nifti_to_slices(np.rint(np.asarray(self._labels.dataobj[:, :, start:stop])).astype(np.int64))


@dataclass
class CaseInfo:
    """What the up-front check learnt about a case: its shape and which slices hold foreground."""

    case: VolumeCase
    shape: Tuple[int, int, int]
    foreground: np.ndarray  # bool per slice
    classes_present: FrozenSet[int] = frozenset()  # label values > 0 found in the case

    @property
    def name(self) -> str:
        return self.case.name
