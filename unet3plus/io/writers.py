"""Write predictions: mask PNG / NIfTI (with the input's affine and header) / .npy, probabilities, overlay.

Every file goes through ``atomic_path``: a crash leaves no half-written file under its final name.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import List, Optional

import numpy as np

from .._atomic import atomic_path
from .._optional import require
from ..errors import InputError
from .dicom import can_write_segmentation, write_segmentation
from .prediction import Prediction, foreground_class_names, label_table
from .volume import Volume

OVERLAY_COLOUR = (255, 40, 40)
DISPLAY_WINDOW_HU = (-200.0, 200.0)


def mask_to_png_values(mask: np.ndarray) -> np.ndarray:
    """Binary masks as 0/255 (visible in any viewer); label maps with more classes keep their labels."""
    mask = np.asarray(mask)
    return (mask > 0).astype(np.uint8) * 255 if mask.max(initial=0) <= 1 else mask.astype(np.uint8)


def write_png(path: Path, array: np.ndarray) -> Path:
    image_module = require("PIL.Image", "image", "Writing PNG files")
    with atomic_path(path) as temporary:
        image_module.fromarray(np.ascontiguousarray(array)).save(temporary, format="PNG")
    return Path(path)


def write_npy(path: Path, array: np.ndarray) -> Path:
    with atomic_path(path) as temporary:
        np.save(temporary, array)
    return Path(path)


def on_input_grid(volume: np.ndarray, source: Volume) -> np.ndarray:
    """``volume`` (``Z x H x W [x C]`` slices in the training orientation ``source`` was read in) in the
    voxel order of the input's own grid (``metadata["to_file_orientation"]``, recorded by the reader): the
    NIfTI file's, or a DICOM series' stored slice order (the order its SEG frames reference)."""
    back = source.metadata.get("to_file_orientation")
    if back is None:
        return volume
    nibabel = require("nibabel", "nifti", "Writing masks on the input's grid")
    on_grid = nibabel.orientations.apply_orientation(np.swapaxes(volume, 0, 2), back)  # X x Y x Z [x C]
    return np.swapaxes(on_grid, 0, 2)


def _series_affine(source: Volume) -> np.ndarray:
    """The RAS affine of a DICOM series' stored grid (``source.affine`` is that of the training orientation;
    the recorded way back gives the stored grid's)."""
    back = source.metadata.get("to_file_orientation")
    if back is None:
        return np.asarray(source.affine, float)
    nibabel = require("nibabel", "nifti", "Writing masks on the input's grid")
    shape = np.asarray(source.data).shape[::-1][:3]  # X x Y x Z of the training orientation
    return np.asarray(source.affine, float) @ nibabel.orientations.inv_ornt_aff(back, shape)


def write_nifti_like(path: Path, volume: np.ndarray, source: Volume, dtype) -> Path:
    """``volume`` (``Z x H x W [x C]`` slices in the training orientation) as NIfTI on the input's own grid:
    ``X x Y x Z``, or ``X x Y x Z x C`` for several channels (NIfTI keeps vector components last), with a
    NIfTI source's affine and header, or the affine of a DICOM series' stored grid."""
    nibabel = require("nibabel", "nifti", "Writing NIfTI masks")
    # Views, not copies: the transposed slices are the Fortran-ordered array nibabel writes.
    data = np.swapaxes(on_input_grid(volume, source), 0, 2)
    if source.nifti is not None:
        header = source.nifti.header.copy()
        header.set_data_dtype(dtype)
        header.set_slope_inter(1.0, 0.0)
        image = type(source.nifti)(data.astype(dtype, copy=False), source.nifti.affine, header)
    else:
        affine = _series_affine(source)
        image = nibabel.Nifti1Image(data.astype(dtype, copy=False), affine)
        image.set_qform(affine, code=1)  # scanner coordinates
        image.set_sform(affine, code=1)
    with atomic_path(path) as temporary:
        nibabel.save(image, str(temporary))
    return Path(path)


def display_slice(data: np.ndarray, index: int, *, hounsfield: bool) -> np.ndarray:
    """An 8-bit grey or RGB picture of slice ``index``: HU in the [-200, 200] window, 8-bit images as
    they are, other images stretched to their own range."""
    data = np.asarray(data)
    if hounsfield:
        slice_ = data[index] if data.ndim == 3 else data
        low, high = DISPLAY_WINDOW_HU
        return np.uint8(np.rint(255 * (np.clip(slice_, low, high) - low) / (high - low)))
    picture = data[..., :3] if data.ndim == 3 else data
    if picture.dtype == np.uint8:
        return picture
    picture = picture.astype(np.float32)
    low, high = float(picture.min()), float(picture.max())
    return np.uint8(np.rint(255 * (picture - low) / max(high - low, 1e-6)))


def contour(mask: np.ndarray) -> np.ndarray:
    """Boolean outline of the foreground (foreground pixels with a background 4-neighbour)."""
    ndimage = require("scipy.ndimage", "postprocess", "Drawing the overlay contour")
    foreground = np.asarray(mask) > 0
    return foreground & ~ndimage.binary_erosion(foreground, border_value=0)


def overlay(picture: np.ndarray, mask: np.ndarray, colour=OVERLAY_COLOUR) -> np.ndarray:
    """RGB picture with the mask's contour drawn on it."""
    rgb = np.repeat(picture[:, :, None], 3, axis=2) if picture.ndim == 2 else picture[:, :, :3].copy()
    rgb = np.ascontiguousarray(rgb, dtype=np.uint8)
    rgb[contour(mask)] = colour
    return rgb


def overlay_slice_index(mask: np.ndarray) -> int:
    """For a volume: the slice with the most foreground (the middle slice when there is none)."""
    if mask.ndim == 2:
        return 0
    areas = np.count_nonzero(mask.reshape(mask.shape[0], -1), axis=1)
    return int(areas.argmax()) if areas.any() else mask.shape[0] // 2


def output_names(name: str, source: Volume, volume_slices: int, *, probabilities_dtype=np.float32) -> dict:
    """The file names one input's results get (so callers can check collisions before writing).

    Probabilities on a NIfTI grid are NIfTI float32; float16 ones (NIfTI has no float16 type) are ``.npy``
    in ``predict``'s ``Z x C x H x W`` slice order, like those of inputs without a grid. A NIfTI mask gets its
    label table beside it (``labels``: which value is which class, ``io.prediction.label_table``)."""
    names = {"overlay": f"{name}_overlay.png"}
    grid_probabilities = np.dtype(probabilities_dtype) != np.float16
    if _on_a_grid(source):
        names.update(mask=f"{name}_mask.nii.gz", labels=f"{name}_mask.json",
                     probabilities=f"{name}_probabilities.nii.gz" if grid_probabilities
                     else f"{name}_probabilities.npy")
    elif volume_slices > 1:
        names.update(mask=f"{name}_mask.npy", probabilities=f"{name}_probabilities.npy")
    else:
        names.update(mask=f"{name}_mask.png", probabilities=f"{name}_probabilities.npy")
    if source.metadata.get("dicom_files") and can_write_segmentation():
        names["segmentation"] = f"{name}_seg.dcm"
    return names


def _on_a_grid(source: Volume) -> bool:
    """NIfTI inputs and DICOM series with a geometry get NIfTI outputs on their grid."""
    return source.nifti is not None or source.affine is not None


def _already_at(values: np.ndarray, path: Path) -> bool:
    """True when ``values`` is the memory-mapped ``.npy`` file ``path`` (``predict(probabilities=path)``)."""
    filename = getattr(values, "filename", None)
    return filename is not None and Path(filename).resolve() == path.resolve()


def write_prediction(prediction: Prediction, out_dir: Path, *, name: Optional[str] = None,
                     probabilities: bool = False) -> List[Path]:
    """Write the mask, the overlay PNG and (on request) the probabilities of one input; return their paths.

    NIfTI inputs get NIfTI outputs with their affine and header; DICOM series a NIfTI mask with the series'
    affine and a DICOM Segmentation referencing its images; other volumes ``.npy``; single slices PNG. Only
    the uint8 mask and the input are needed, except for the probabilities, which ``predict`` keeps only
    when asked (``probabilities=True``, or a ``.npy`` path that is then used in place).
    """
    source = prediction.source or Volume("prediction", "array", np.zeros(prediction.mask.shape, np.int16))
    name = name or source.name
    out_dir = Path(out_dir)
    mask = prediction.mask
    slices = mask if mask.ndim == 3 else mask[np.newaxis]
    values = prediction.probabilities
    if probabilities and values is None:
        raise InputError("the prediction holds no probabilities to write; predict with probabilities=True "
                         "(the CLI does so for --probabilities)")
    names = output_names(name, source, slices.shape[0],
                         probabilities_dtype=values.dtype if values is not None else np.float32)
    written = []
    if _on_a_grid(source):
        written.append(write_nifti_like(out_dir / names["mask"], slices, source, np.uint8))
    elif slices.shape[0] > 1:
        written.append(write_npy(out_dir / names["mask"], mask))
    else:
        written.append(write_png(out_dir / names["mask"], mask_to_png_values(slices[0])))
    if "labels" in names:  # nnU-Net's dataset.json "labels": {"background": 0, "liver": 1, ...}
        with atomic_path(out_dir / names["labels"]) as temporary:
            temporary.write_text(json.dumps(label_table(prediction), indent=2) + "\n", encoding="utf-8")
        written.append(out_dir / names["labels"])
    if probabilities:
        target = out_dir / names["probabilities"]
        if target.suffix == ".npy":
            written.append(target if _already_at(values, target) else write_npy(target, values))
        else:
            foreground = values[:, 0] if values.shape[1] == 1 else np.moveaxis(values, 1, -1)
            written.append(write_nifti_like(target, foreground, source, np.float32))
    if "segmentation" in names:
        written.append(write_segmentation(out_dir / names["segmentation"], on_input_grid(slices, source),
                                          source, foreground_class_names(prediction)))
    index = overlay_slice_index(slices)
    picture = display_slice(source.data, index, hounsfield=prediction.preset_kind == "volume")
    written.append(write_png(out_dir / names["overlay"], overlay(picture, slices[index])))
    return written
