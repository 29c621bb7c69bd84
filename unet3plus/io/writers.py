"""Write predictions: mask PNG / NIfTI (with the input's affine and header) / .npy, probabilities, overlay.

Every file goes through ``atomic_path``: a crash leaves no half-written file under its final name.
``output_types`` choose the mask files (:data:`OUTPUT_TYPES`): ``nifti`` one multilabel mask (NIfTI on the
input's grid, ``.npy`` for a volume without one), ``per-class`` one binary NIfTI per class in ``<name>/``
(TotalSegmentator's default layout), ``seg`` a DICOM SEG (DICOM series only), ``png`` the mask of a 2-D input.
"""
from __future__ import annotations

import json
from pathlib import Path
import re
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

import numpy as np

from .._atomic import atomic_path
from .._optional import install_hint, require
from ..errors import InputError
from .dicom import can_write_segmentation, write_segmentation
from .prediction import Prediction, foreground_class_names, label_table
from .volume import Volume

OVERLAY_COLOUR = (255, 40, 40)
DISPLAY_WINDOW_HU = (-200.0, 200.0)
OUTPUT_TYPES = ("nifti", "per-class", "seg", "png")


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


def output_names(name: str, source: Volume, volume_slices: int, *, probabilities_dtype=np.float32,
                 class_names: Sequence[str] = ()) -> Dict[str, str]:
    """The file names one input's results get (so callers can check collisions before writing).

    Probabilities on a NIfTI grid are NIfTI float32; float16 ones (NIfTI has no float16 type) are ``.npy``
    in ``predict``'s ``Z x C x H x W`` slice order, like those of inputs without a grid. A NIfTI mask gets its
    label table beside it (``labels``: which value is which class, ``io.prediction.label_table``). With
    ``class_names`` (``io.prediction.foreground_class_names``), an input on a grid also gets the per-class
    files ``<name>/<class>.nii.gz`` (keys ``class:<class>``) in the folder ``classes`` (``<name>/``, named for
    every input on a grid, so that no input inside it is overwritten); ``statistics`` and ``preview`` always."""
    names = {"overlay": f"{name}_overlay.png", "statistics": f"{name}_statistics.json",
             "preview": f"{name}_preview.png"}
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
    if _on_a_grid(source):
        names["classes"] = f"{name}/"
        files: List[str] = []
        for value, label in enumerate(class_names, start=1):  # names that differ only in odd characters stay apart
            file = class_file_name(label)
            files.append(f"{file}_{value}" if file in files else file)
            names[f"class:{label}"] = f"{name}/{files[-1]}.nii.gz"
    return names


def class_file_name(class_name: str) -> str:
    """A class name as a file name: characters other than letters, digits, ``.``, ``_``, ``-`` become ``_``."""
    return re.sub(r"[^A-Za-z0-9._-]", "_", class_name.strip()).strip(".") or "class"


def mask_form(source: Volume, volume_slices: int) -> str:
    """The output type of an input's one mask file: ``nifti`` (NIfTI on a grid, ``.npy`` for a volume without
    one) or ``png`` (one 2-D slice without a grid)."""
    return "nifti" if _on_a_grid(source) or volume_slices > 1 else "png"


def default_output_types(source: Volume, volume_slices: int) -> Tuple[str, ...]:
    """The mask in its form, and a DICOM SEG beside it for a DICOM series."""
    return (mask_form(source, volume_slices),) + (("seg",) if source.metadata.get("dicom_files") else ())


def check_output_types(output_types: Optional[Iterable[str]], source: Volume, volume_slices: int) -> Tuple[str, ...]:
    """The output types for this input (``None``: :func:`default_output_types`); one line naming the input and
    the choice that fits it when a requested type cannot apply, before anything is written."""
    if output_types is None:
        return default_output_types(source, volume_slices)
    chosen = tuple(dict.fromkeys(output_types))
    where = source.path or source.name
    unknown = [kind for kind in chosen if kind not in OUTPUT_TYPES]
    form = mask_form(source, volume_slices)
    if unknown or not chosen:
        raise InputError(f"output type(s) {', '.join(unknown) or '(none)'} unknown; choose from "
                         f"{', '.join(OUTPUT_TYPES)}")
    if "png" in chosen and form != "png":
        raise InputError(f"--output-type png is for 2-D inputs, but {where} is a volume; use --output-type nifti "
                         "(or per-class)")
    if "nifti" in chosen and form != "nifti":
        raise InputError(f"--output-type nifti is for CT volumes, but {where} is one 2-D image; use --output-type "
                         "png")
    if "per-class" in chosen and not _on_a_grid(source):
        raise InputError(f"--output-type per-class writes NIfTI files on the input's grid, but {where} has no "
                         "geometry (NIfTI or DICOM series); use --output-type " + form)
    if "seg" in chosen and not source.metadata.get("dicom_files"):
        raise InputError(f"--output-type seg writes a DICOM SEG that references DICOM images, but {where} is not a "
                         f"DICOM series; use --output-type {form} (or per-class)")
    if "seg" in chosen and not can_write_segmentation():
        raise InputError(f"--output-type seg needs highdicom: {install_hint('dicom')}")
    return chosen


def _on_a_grid(source: Volume) -> bool:
    """NIfTI inputs and DICOM series with a geometry get NIfTI outputs on their grid."""
    return source.nifti is not None or source.affine is not None


def _write_mask(path: Path, slices: np.ndarray, source: Volume) -> Path:
    """The multilabel mask in the input's form: NIfTI on its grid, ``.npy`` for other volumes, PNG for a slice."""
    if _on_a_grid(source):
        return write_nifti_like(path, slices, source, np.uint8)
    if slices.shape[0] > 1:
        return write_npy(path, slices)
    return write_png(path, mask_to_png_values(slices[0]))


def _already_at(values: np.ndarray, path: Path) -> bool:
    """True when ``values`` is the memory-mapped ``.npy`` file ``path`` (``predict(probabilities=path)``)."""
    filename = getattr(values, "filename", None)
    return filename is not None and Path(filename).resolve() == path.resolve()


def write_prediction(prediction: Prediction, out_dir: Path, *, name: Optional[str] = None,
                     probabilities: bool = False, output_types: Optional[Iterable[str]] = None) -> List[Path]:
    """Write the mask, the overlay PNG and (on request) the probabilities of one input; return their paths.

    NIfTI inputs get NIfTI outputs with their affine and header; DICOM series a NIfTI mask with the series'
    affine and a DICOM Segmentation referencing its images; other volumes ``.npy``; single slices PNG. Only
    the uint8 mask and the input are needed, except for the probabilities, which ``predict`` keeps only
    when asked (``probabilities=True``, or a ``.npy`` path that is then used in place). ``output_types``
    (:data:`OUTPUT_TYPES`; default: :func:`default_output_types`) choose the mask files.
    """
    source = prediction.source or Volume("prediction", "array", np.zeros(prediction.mask.shape, np.int16))
    name = name or source.name
    out_dir = Path(out_dir)
    slices = prediction.mask if prediction.mask.ndim == 3 else prediction.mask[np.newaxis]
    values = prediction.probabilities
    if probabilities and values is None:
        raise InputError("the prediction holds no probabilities to write; predict with probabilities=True "
                         "(the CLI does so for --probabilities)")
    kinds = check_output_types(output_types, source, slices.shape[0])
    classes = foreground_class_names(prediction) if "per-class" in kinds else ()
    names = output_names(name, source, slices.shape[0],
                         probabilities_dtype=values.dtype if values is not None else np.float32, class_names=classes)
    written = [_write_mask(out_dir / names["mask"], slices, source)] if {"nifti", "png"} & set(kinds) else []
    for label, class_name in enumerate(classes, start=1):  # TotalSegmentator's one binary file per class
        written.append(write_nifti_like(out_dir / names[f"class:{class_name}"], slices == label, source, np.uint8))
    if "labels" in names and "nifti" in kinds:  # nnU-Net's dataset.json "labels": {"background": 0, "liver": 1, ...}
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
    if "segmentation" in names and "seg" in kinds:
        written.append(write_segmentation(out_dir / names["segmentation"], on_input_grid(slices, source),
                                          source, foreground_class_names(prediction)))
    index = overlay_slice_index(slices)
    picture = display_slice(source.data, index, hounsfield=prediction.preset_kind == "volume")
    written.append(write_png(out_dir / names["overlay"], overlay(picture, slices[index])))
    return written
