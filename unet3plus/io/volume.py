"""The one type every reader returns: :class:`Volume` (voxels, affine, spacing, source metadata)."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Optional, Tuple

import numpy as np

from ..errors import InputError


class ReadError(InputError):
    """A file that cannot be read as an input; the message names the file and what to do."""



@dataclass
class Volume:
    """One input: its pixels and what is needed to write results that line up with it.

    ``kind``: ``"volume"`` (``data`` is ``Z x H x W`` HU), ``"image"`` (``H x W [x C]`` as stored) or
    ``"array"`` (a ``.npy``; a volume preset reads it as HU ``[Z x] H x W``, the image preset as an image).
    ``nifti`` is the source NIfTI image (its affine and header go into the written mask).
    ``spacing``: mm between voxel centres along each axis of ``data`` (``Z x H x W`` order for volumes), as
    the file states it (NIfTI zooms; DICOM slice spacing and PixelSpacing); None where the format has none.
    ``affine``: the NIfTI (RAS) voxel-to-world map of ``slices_to_nifti(data)`` (NIfTI and DICOM series).
    Volumes with a geometry are read in the training orientation (``io.nifti.to_training_orientation``);
    ``metadata["to_file_orientation"]`` is the nibabel transform back to the input's own grid (None when
    already on it), which writers apply (``io.writers.on_input_grid``).
    """

    name: str
    kind: str
    data: np.ndarray
    path: Optional[Path] = None
    nifti: Any = None
    metadata: Dict[str, Any] = field(default_factory=dict)
    spacing: Optional[Tuple[float, ...]] = None
    affine: Optional[np.ndarray] = None



def is_dicom_file(path: Path) -> bool:
    """True for files with the DICOM preamble magic ``DICM`` at byte 128."""
    try:
        with open(path, "rb") as handle:
            handle.seek(128)
            return handle.read(4) == b"DICM"
    except OSError:
        return False



def unreadable(path: Path, what: str, error: Exception) -> ReadError:
    return ReadError(f"cannot read {path} as {what}: {error}. Check that the file is complete and of that type.")
