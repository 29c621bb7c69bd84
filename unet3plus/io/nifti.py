"""NIfTI volumes in the training orientation, and the axis order conversions between NIfTI and slices.

Every reader returns a :class:`Volume`. Volumes are ``Z x H x W`` in HU (float32, or the stored
integer type of an unscaled integer NIfTI such as int16 CT) with each slice in
the orientation the published preprocessing used (SimpleITK's ``GetArrayFromImage``: rows = the second
voxel axis, columns = the first), so a NIfTI slice looks here as it did to the published network.

Training orientation: the published preprocessing did not reorient, so the network learnt the voxel order
of DICOM-derived CT, which :data:`TRAINING_ORIENTATION` names (voxel axes towards patient Left, Posterior,
Superior: rows run anterior to posterior, columns patient right to left, the radiological view). A NIfTI
or DICOM series stored in another orientation (feet first, prone, coronal, ...) is brought to it on reading
by :func:`to_training_orientation` (nibabel's orientation tools) and its masks are written back on the
input's own grid, so the same anatomy gives the same mask whatever the storage order.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Optional, Tuple

import numpy as np

from .._optional import require
from .files import stem_of
from .volume import ReadError, Volume, unreadable

TRAINING_ORIENTATION = ("L", "P", "S")  # NIfTI axis codes of the voxel order the network was trained in


def read_nifti(path: Path) -> Volume:
    nibabel = require("nibabel", "nifti", "Reading NIfTI volumes")
    try:
        image = nibabel.load(str(path))
        data = _nifti_voxels(image)
    except Exception as error:
        raise unreadable(path, "a NIfTI volume", error) from error
    while data.ndim > 3 and data.shape[-1] == 1:
        data = data[..., 0]
    if data.ndim == 2:
        data = data[:, :, np.newaxis]
    if data.ndim != 3:
        raise ReadError(f"{path} holds a {data.ndim}-D image of shape {data.shape}; expected one 3-D CT volume")
    return nifti_input(nibabel, image, data, path)



def nifti_input(nibabel: Any, image: Any, data: np.ndarray, path: Path, kind: str = "volume") -> Volume:
    """``data`` (the ``X x Y x Z`` voxels of the NIfTI ``image``) as a :class:`Volume` in the training
    orientation. DICOM SEG masks come through here too, so they land on the grid their NIfTI labels do."""
    data, affine, spacing, back = to_training_orientation(nibabel, data, np.asarray(image.affine, float),
                                                          nifti_spacing(image))
    return Volume(stem_of(path), kind, nifti_to_slices(data), path, nifti=image, spacing=spacing,
                  affine=affine, metadata={"to_file_orientation": back})



def _nifti_voxels(image: Any) -> np.ndarray:
    """The voxel values: integer CT without scaling (scl_slope 1, scl_inter 0) in its stored type (int16 CT
    takes half the memory of float32, and presets convert it slice by slice), anything else as float32 with
    scl_slope / scl_inter applied. Nothing is cached in ``image`` (a whole float32 copy would stay alive)."""
    proxy = image.dataobj
    stored = image.get_data_dtype()
    if np.issubdtype(stored, np.integer) and float(getattr(proxy, "slope", 1.0)) == 1.0 \
            and float(getattr(proxy, "inter", 0.0)) == 0.0:
        return np.asanyarray(proxy)
    return np.asarray(image.get_fdata(dtype=np.float32, caching="unchanged"))



def to_training_orientation(nibabel: Any, data: np.ndarray, affine: np.ndarray, spacing: Tuple[float, ...]
                            ) -> Tuple[np.ndarray, np.ndarray, Tuple[float, ...], Optional[np.ndarray]]:
    """The one place that decides orientation, for NIfTI volumes, DICOM SEG masks and DICOM series alike:
    ``data`` (``X x Y x Z`` voxels on the grid of the RAS ``affine``, ``spacing`` mm along ``Z x H x W``) in
    :data:`TRAINING_ORIENTATION`, with its affine, its ``Z x H x W`` spacing, and the nibabel orientation
    transform that takes it back to the input's own voxel order (None when it already is in that order or
    the affine has no orientation to read). Writers apply that transform (``writers.on_input_grid``)."""
    orientations = nibabel.orientations
    affine = np.asarray(affine, float)
    file_spacing = np.array(spacing[::-1], float)  # input axis order (X, Y, Z)
    forward = orientation_transform(nibabel, affine)
    if forward is None:
        return data, affine, tuple(float(v) for v in spacing), None
    reoriented_affine = affine @ orientations.inv_ornt_aff(forward, data.shape[:3])
    new_spacing = np.empty(3)
    new_spacing[forward[:, 0].astype(int)] = file_spacing
    back = orientations.ornt_transform(orientations.axcodes2ornt(TRAINING_ORIENTATION),
                                       orientations.io_orientation(affine))
    # a view: the caller's nifti_to_slices makes the one copy
    return (orientations.apply_orientation(data, forward), reoriented_affine,
            tuple(float(v) for v in new_spacing[::-1]), back)



def orientation_transform(nibabel: Any, affine: np.ndarray) -> Optional[np.ndarray]:
    """The nibabel orientation transform from the voxel order of a grid with RAS ``affine`` to
    :data:`TRAINING_ORIENTATION`, or None when it already is in it (or the affine has no orientation)."""
    orientations = nibabel.orientations
    current = orientations.io_orientation(np.asarray(affine, float))
    target = orientations.axcodes2ornt(TRAINING_ORIENTATION)
    if np.isnan(current).any() or np.array_equal(current, target):
        return None
    return orientations.ornt_transform(current, target)



def training_orientation_transform(nibabel: Any, image: Any) -> Optional[np.ndarray]:
    """:func:`orientation_transform` of a NIfTI image. Lazy readers (training on volumes) apply it to the
    blocks they read, so they see what :func:`read_nifti` gives."""
    return orientation_transform(nibabel, image.affine)



def nifti_spacing(image: Any) -> Tuple[float, ...]:
    """mm between voxel centres along ``Z x H x W`` from the header's zooms, NaN on an axis where they
    disagree with the affine's: nibabel silently turns a zero pixdim into 1, and a made-up spacing must
    not reach the distance metrics."""
    zooms = np.ones(3)
    stated = [float(z) for z in image.header.get_zooms()[:3]]
    zooms[: len(stated)] = stated
    from_affine = np.linalg.norm(np.asarray(image.affine, float)[:3, :3], axis=0)
    zooms[~np.isclose(zooms, from_affine, rtol=1e-3, atol=1e-4)] = np.nan
    return tuple(float(z) for z in zooms[::-1])



def nifti_to_slices(data: np.ndarray) -> np.ndarray:
    """NIfTI voxel order ``X x Y x Z`` to ``Z x Y x X`` (what SimpleITK's array gives)."""
    return np.ascontiguousarray(np.transpose(data, (2, 1, 0)))



def slices_to_nifti(volume: np.ndarray) -> np.ndarray:
    """Inverse of :func:`nifti_to_slices`."""
    return np.ascontiguousarray(np.transpose(volume, (2, 1, 0)))
