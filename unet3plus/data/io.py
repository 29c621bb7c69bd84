"""Read 2-D training images and masks: PNG/JPEG/TIFF/BMP (``unet3plus.files``' reader) and ``.npy``."""
from __future__ import annotations

from pathlib import Path
from typing import Tuple

import numpy as np

from ..errors import DatasetError
from ..io.files import IMAGE_EXTENSIONS, NUMPY_EXTENSIONS, extension_of, read_image_file

SUPPORTED_EXTENSIONS = IMAGE_EXTENSIONS + NUMPY_EXTENSIONS


def is_supported(path: Path) -> bool:
    return extension_of(path) in SUPPORTED_EXTENSIONS


def read_array(path: Path, *, mask: bool = False) -> np.ndarray:
    """The file's pixels as ``H x W`` or ``H x W x C`` (channels last), in the file's own dtype.

    Palette images give their palette indices for masks (label maps are often saved that way) and RGB
    for images.
    """
    path = Path(path)
    try:
        if extension_of(path) in NUMPY_EXTENSIONS:
            array = np.load(path, allow_pickle=False)
        else:
            array = read_image_file(path, labels=mask)
    except (OSError, ValueError, SyntaxError) as error:
        kind = "mask" if mask else "image"
        raise DatasetError(f"cannot read {kind} {path}: {error}. Replace or remove the file "
                           f"(supported: {', '.join(SUPPORTED_EXTENSIONS)}).") from error
    if array.ndim not in (2, 3) or array.size == 0:
        raise DatasetError(f"{path} holds an array of shape {array.shape}; expected H x W or H x W x C "
                           "(2-D images, channels last)")
    return array


def channels_of(array: np.ndarray) -> int:
    return 1 if array.ndim == 2 else array.shape[2]


def spatial_shape(array: np.ndarray) -> Tuple[int, int]:
    return int(array.shape[0]), int(array.shape[1])
