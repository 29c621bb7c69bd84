"""Read what users point ``predict`` at: PNG/JPEG, ``.npy``, NIfTI volumes, DICOM files and series.

Every reader returns a :class:`LoadedInput`. Volumes are ``Z x H x W`` float32 in HU with each slice in
the orientation the published preprocessing used (SimpleITK's ``GetArrayFromImage``: rows = the second
voxel axis, columns = the first), so a NIfTI slice looks here as it did to the published network.

Training orientation: the published preprocessing did not reorient, so the network learnt the voxel order
of DICOM-derived CT, which :data:`TRAINING_ORIENTATION` names (voxel axes towards patient Left, Posterior,
Superior: rows run anterior to posterior, columns patient right to left, the radiological view). A NIfTI
stored in another orientation is brought to it on reading (nibabel's orientation tools) and its masks are
written back on the file's own grid, so the same anatomy gives the same mask whatever the storage order.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Optional, Tuple, Union

import numpy as np

from .._optional import require
from ..errors import InputError, MissingDependencyError
from ..files import (DICOM_EXTENSIONS, IMAGE_EXTENSIONS, NIFTI_EXTENSIONS, NUMPY_EXTENSIONS, extension_of,
                     read_image_file, stem_of)

TRAINING_ORIENTATION = ("L", "P", "S")  # NIfTI axis codes of the voxel order the network was trained in
SUPPORTED = IMAGE_EXTENSIONS + NIFTI_EXTENSIONS + DICOM_EXTENSIONS + NUMPY_EXTENSIONS + ("a DICOM series folder",)


class ReadError(InputError):
    """A file that cannot be read as an input; the message names the file and what to do."""


@dataclass
class LoadedInput:
    """One input: its pixels and what is needed to write results that line up with it.

    ``kind``: ``"volume"`` (``data`` is ``Z x H x W`` HU), ``"image"`` (``H x W [x C]`` as stored) or
    ``"array"`` (a ``.npy``; a volume preset reads it as HU ``[Z x] H x W``, the image preset as an image).
    ``nifti`` is the source NIfTI image (its affine and header go into the written mask).
    ``spacing``: mm between voxel centres along each axis of ``data`` (``Z x H x W`` order for volumes), as
    the file states it (NIfTI zooms; DICOM slice spacing and PixelSpacing); None where the format has none.
    ``affine``: the NIfTI (RAS) voxel-to-world map of ``slices_to_nifti(data)`` (NIfTI and DICOM series).
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


def read_input(path: Union[str, Path], *, series: Optional[str] = None) -> LoadedInput:
    """Read one input file (or DICOM series folder; ``series``: its SeriesInstanceUID when it holds several),
    choosing the reader by extension or content."""
    path = Path(path)
    if not path.exists():
        raise ReadError(f"input {path} does not exist; check the path")
    if path.is_dir():
        return read_dicom_series(path, series)
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


def _unreadable(path: Path, what: str, error: Exception) -> ReadError:
    return ReadError(f"cannot read {path} as {what}: {error}. Check that the file is complete and of that type.")


def read_image(path: Path) -> LoadedInput:
    try:
        array = read_image_file(path)
    except MissingDependencyError:
        raise
    except Exception as error:  # Pillow raises many types for broken files
        raise _unreadable(path, "an image", error) from error
    return LoadedInput(stem_of(path), "image", array, path)


def read_npy(path: Path) -> LoadedInput:
    try:
        array = np.load(path, allow_pickle=False)
    except Exception as error:
        raise _unreadable(path, "a NumPy .npy array", error) from error
    return LoadedInput(stem_of(path), "array", array, path)


def read_nifti(path: Path) -> LoadedInput:
    nibabel = require("nibabel", "nifti", "Reading NIfTI volumes")
    try:
        image = nibabel.load(str(path))
        data = np.asarray(image.get_fdata(dtype=np.float32))  # applies scl_slope / scl_inter
    except Exception as error:
        raise _unreadable(path, "a NIfTI volume", error) from error
    while data.ndim > 3 and data.shape[-1] == 1:
        data = data[..., 0]
    if data.ndim == 2:
        data = data[:, :, np.newaxis]
    if data.ndim != 3:
        raise ReadError(f"{path} holds a {data.ndim}-D image of shape {data.shape}; expected one 3-D CT volume")
    return nifti_input(nibabel, image, data, path)


def nifti_input(nibabel: Any, image: Any, data: np.ndarray, path: Path, kind: str = "volume") -> LoadedInput:
    """``data`` (the ``X x Y x Z`` voxels of the NIfTI ``image``) as a :class:`LoadedInput` in the training
    orientation. DICOM SEG masks come through here too, so they land on the grid their NIfTI labels do."""
    data, affine, spacing, back = _to_training_orientation(nibabel, image, data)
    return LoadedInput(stem_of(path), kind, nifti_to_slices(data), path, nifti=image, spacing=spacing,
                       affine=affine, metadata={"to_file_orientation": back})


def _to_training_orientation(nibabel: Any, image: Any, data: np.ndarray):
    """``data`` (file voxel order) in :data:`TRAINING_ORIENTATION`, with its affine and ``Z x H x W``
    spacing, and the nibabel orientation transform that takes it back to the file's order (None when the
    file is already in that orientation or its affine has no orientation to read)."""
    orientations = nibabel.orientations
    spacing = np.array(nifti_spacing(image)[::-1])  # file axis order
    affine = np.asarray(image.affine, float)
    forward = training_orientation_transform(nibabel, image)
    if forward is None:
        return data, affine, tuple(spacing[::-1]), None
    current = orientations.io_orientation(affine)
    target = orientations.axcodes2ornt(TRAINING_ORIENTATION)
    reoriented_affine = affine @ orientations.inv_ornt_aff(forward, data.shape)
    new_spacing = np.empty(3)
    new_spacing[forward[:, 0].astype(int)] = spacing
    return (np.ascontiguousarray(orientations.apply_orientation(data, forward)), reoriented_affine,
            tuple(float(v) for v in new_spacing[::-1]), orientations.ornt_transform(target, current))


def training_orientation_transform(nibabel: Any, image: Any) -> Optional[np.ndarray]:
    """The nibabel orientation transform from the file's voxel order to :data:`TRAINING_ORIENTATION`, or
    None when the file is already in it (or its affine has no orientation to read). Lazy readers (training
    on volumes) apply it to the blocks they read, so they see what :func:`read_nifti` gives."""
    orientations = nibabel.orientations
    current = orientations.io_orientation(np.asarray(image.affine, float))
    target = orientations.axcodes2ornt(TRAINING_ORIENTATION)
    if np.isnan(current).any() or np.array_equal(current, target):
        return None
    return orientations.ornt_transform(current, target)


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


def _dicom_hu(dataset: Any) -> np.ndarray:
    """Pixels in HU: stored values times RescaleSlope plus RescaleIntercept (frames first)."""
    pixels = dataset.pixel_array.astype(np.float32)
    slope = float(getattr(dataset, "RescaleSlope", 1) or 1)
    intercept = float(getattr(dataset, "RescaleIntercept", 0) or 0)
    hu = pixels * np.float32(slope) + np.float32(intercept)
    frames = int(getattr(dataset, "NumberOfFrames", 1) or 1)
    if hu.ndim == 2:
        return hu[np.newaxis]
    if hu.ndim == 3 and frames > 1:
        return hu
    raise ReadError(f"DICOM pixel data of shape {hu.shape} is not grey-level CT (colour DICOM is not supported)")


def read_dicom_file(path: Path) -> LoadedInput:
    """One DICOM image file (a slice, or a multi-frame volume) in HU, with its spacing in mm where the
    header states it (PixelSpacing; SpacingBetweenSlices or SliceThickness, NaN when neither is given).
    A DICOM Segmentation is read as the mask it holds (``dicom.read_segmentation``)."""
    pydicom = require("pydicom", "dicom", "Reading DICOM files")
    try:
        dataset = pydicom.dcmread(str(path))
    except Exception as error:
        raise _unreadable(path, "a DICOM image", error) from error
    if getattr(dataset, "Modality", "") == "SEG":
        from .dicom import read_segmentation

        return read_segmentation(path)
    if "PixelData" not in dataset and "Rows" in dataset:  # an image header whose pixels were lost or left out
        raise ReadError(f"{path} is a DICOM image without pixel data (a header-only copy?); replace it with the "
                        "complete file")
    if "PixelData" not in dataset:
        raise _unreadable(path, "a DICOM image", ValueError("it holds no image (cut short, or a DICOMDIR or report?)"))
    try:
        volume = _dicom_hu(dataset)
    except ReadError:
        raise
    except Exception as error:
        raise _unreadable(path, "a DICOM image", error) from error
    return LoadedInput(stem_of(path), "volume", volume, path, metadata={"modality": getattr(dataset, "Modality", "")},
                       spacing=dicom_file_spacing(dataset))


def dicom_file_spacing(dataset: Any) -> Optional[Tuple[float, float, float]]:
    """mm along ``Z x H x W`` of one DICOM image: the slice step (SpacingBetweenSlices, else SliceThickness;
    NaN when neither is stated) and PixelSpacing (rows, columns); None without PixelSpacing. A zero or
    negative value is kept, so that the distance metrics refuse it with the file's name."""
    pixel = getattr(dataset, "PixelSpacing", None)
    if pixel is None or len(pixel) != 2:
        return None
    step = getattr(dataset, "SpacingBetweenSlices", None) or getattr(dataset, "SliceThickness", None)
    return (float(step) if step not in (None, "") else float("nan"), float(pixel[0]), float(pixel[1]))


def read_dicom_series(folder: Path, series: Optional[str] = None) -> LoadedInput:
    """One DICOM series of a folder, sorted along the slice normal, with its geometry (see ``dicom``)."""
    from .dicom import read_series

    return read_series(Path(folder), series)
