"""Read what users point ``predict`` at: PNG/JPEG, ``.npy``, NIfTI volumes, DICOM files and series.

Every reader returns a :class:`~unet3plus.io.volume.Volume`. Volumes are ``Z x H x W`` in HU (float32, or the
stored integer type of an unscaled integer NIfTI such as int16 CT) in the training orientation
(``io.nifti``); :func:`read_input` chooses the reader by extension or content.
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional, Union

import numpy as np

from ..errors import MissingDependencyError
from .dicom import read_dicom_file, read_series
from .files import (DICOM_EXTENSIONS, IMAGE_EXTENSIONS, NIFTI_EXTENSIONS, NUMPY_EXTENSIONS, extension_of,
                    read_image_file, stem_of)
from .nifti import read_nifti
from .volume import ReadError, Volume, is_dicom_file, unreadable

SUPPORTED = IMAGE_EXTENSIONS + NIFTI_EXTENSIONS + DICOM_EXTENSIONS + NUMPY_EXTENSIONS + ("a DICOM series folder",)


def read_input(path: Union[str, Path], *, series: Optional[str] = None) -> Volume:
    """Read one input file (or DICOM series folder; ``series``: its SeriesInstanceUID when it holds several),
    choosing the reader by extension or content."""
    path = Path(path)
    if not path.exists():
        raise ReadError(f"input {path} does not exist; check the path")
    if path.is_dir():
        return read_series(path, series)
    extension = extension_of(path)
    if extension in NIFTI_EXTENSIONS:
        return read_nifti(path)
    if extension in DICOM_EXTENSIONS or is_dicom_file(path):
        return read_dicom_file(path)
    if extension in IMAGE_EXTENSIONS:
        return read_image(path)
    if extension in NUMPY_EXTENSIONS:
        return read_npy(path)
    raise ReadError(f"cannot tell what kind of file {path} is (extension '{path.suffix}'); supported: "
                    f"{', '.join(SUPPORTED)}. Convert it or give it the right extension.")



def read_image(path: Path) -> Volume:
    try:
        array = read_image_file(path)
    except MissingDependencyError:
        raise
    except Exception as error:  # Pillow raises many types for broken files
        raise unreadable(path, "an image", error) from error
    return Volume(stem_of(path), "image", array, path)



def read_npy(path: Path) -> Volume:
    try:
        array = np.load(path, allow_pickle=False)
    except Exception as error:
        raise unreadable(path, "a NumPy .npy array", error) from error
    return Volume(stem_of(path), "array", array, path)
