"""What ``unet3plus predict`` is pointed at, turned into a checked list of inputs before anything is written.

A file is one input. A folder holding DICOM files is one DICOM series (``--series UID`` picks one of several).
Any other folder gives one input per NIfTI, PNG/JPEG/TIFF/BMP or ``.npy`` file in it, and one per subfolder
that holds a DICOM series; other entries are skipped with a warning. Every input gets the preset of its kind:
CT in HU (NIfTI, DICOM, ``.npy`` arrays other than ``uint8``) a volume preset, 2-D pictures (image files,
``uint8`` arrays) an image preset. :func:`check_input` reads an input completely and runs its preset's
checks, so a corrupt file is found before the first output is written.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable, List, Optional, Sequence, Tuple, Union

import numpy as np

from ..errors import InputError
from ..io.files import (DICOM_EXTENSIONS, IMAGE_EXTENSIONS, NIFTI_EXTENSIONS, NUMPY_EXTENSIONS, extension_of, listing,
                        stem_of)
from ..io.readers import read_input
from ..io.volume import Volume, is_dicom_file
from ..io.writers import output_names
from ..transforms.presets import CONTEXT_SLICES, InputPreset, check_volume, input_kind
from .predict import network_input, padded_size

logger = logging.getLogger(__name__)

__all__ = ["CheckedInput", "InputItem", "check_input", "error_with_path", "expand_inputs", "is_prediction_output",
           "prediction_file_names"]

FILE_EXTENSIONS = NIFTI_EXTENSIONS + IMAGE_EXTENSIONS + NUMPY_EXTENSIONS
SEGMENTATION_SUFFIX = "_seg.dcm"  # output_names gives it only when highdicom is installed; outputs of other hosts


def prediction_file_names(name: str) -> List[str]:
    """Every file name ``predict`` may write for an input named ``name``, whatever its kind: asked of
    ``io.writers.output_names`` itself, so the list cannot drift from what is written."""
    grid = Volume(name, "volume", np.zeros((1, 1, 1)), affine=np.eye(4))
    names = {f"{name}{SEGMENTATION_SUFFIX}"}
    for source, slices in ((grid, 2), (replace(grid, affine=None), 2), (replace(grid, affine=None), 1)):
        for dtype in (np.float32, np.float16):
            names.update(output_names(name, source, slices, probabilities_dtype=dtype).values())
    return sorted(names)


OUTPUT_SUFFIXES = tuple(prediction_file_names(""))  # "_mask.nii.gz", "_overlay.png"...


def is_prediction_output(path: Path) -> bool:
    """Whether ``path`` is named like one of ``predict``'s outputs (``<name>_mask.nii.gz``, ``_overlay.png``...):
    a folder of inputs is never read as holding this package's own results."""
    return any(path.name.endswith(suffix) and len(path.name) > len(suffix) for suffix in OUTPUT_SUFFIXES)


@dataclass(frozen=True)
class InputItem:
    """One input: a file or a DICOM series folder, and the name its outputs get (``<name>_mask...``)."""

    path: Path
    name: str


@dataclass
class CheckedInput:
    """An input read and checked: its pixels (``source``; callers may drop them and read the input again
    when its turn comes), its preset, and whether a single slice is repeated."""

    item: InputItem
    source: Optional[Volume]
    preset: InputPreset
    allow_thin: bool


def _is_dicom(path: Path) -> bool:
    return extension_of(path) in DICOM_EXTENSIONS or is_dicom_file(path)


def _holds_dicom(folder: Path) -> bool:
    return any(p.is_file() and not p.name.startswith(".") and not is_prediction_output(p) and _is_dicom(p)
               for p in folder.iterdir())


def _series_item(folder: Path) -> InputItem:
    others = sorted(p.name for p in folder.iterdir() if p.is_file() and extension_of(p) in FILE_EXTENSIONS)
    if others:
        logger.warning("%s holds DICOM files, so it is read as one DICOM series; its other files are not "
                       "predicted (point at them on their own): %s", folder, listing(others))
    return InputItem(folder, folder.name)


def _folder_items(folder: Path) -> List[InputItem]:
    items, skipped, outputs = [], [], []
    for entry in sorted(p for p in folder.iterdir() if not p.name.startswith(".")):
        if entry.is_file() and is_prediction_output(entry):
            outputs.append(entry.name)
        elif entry.is_dir() and _holds_dicom(entry):
            items.append(_series_item(entry))
        elif entry.is_file() and extension_of(entry) in FILE_EXTENSIONS:
            items.append(InputItem(entry, stem_of(entry)))
        else:
            skipped.append(entry.name)
    if skipped:
        logger.warning("%s: skipped what is not an input (%d): %s", folder, len(skipped), listing(skipped))
    if outputs:
        logger.warning("%s: skipped files named like predict's outputs (%d; name them on their own to predict "
                       "them): %s", folder, len(outputs), listing(outputs))
    if not items:
        also = f" besides files named like predict's outputs ({listing(outputs)})" if outputs else ""
        raise InputError(f"folder {folder} holds no inputs (NIfTI, PNG/JPEG, .npy files, DICOM series){also}; point "
                         "at the files or the folder holding them")
    return items


def expand_inputs(paths: Sequence[Union[str, Path]]) -> List[InputItem]:
    """The inputs behind ``paths`` in order: files as given, DICOM series folders as one input each, other
    folders as their files. Missing paths and two inputs of one output name are one error each."""
    missing = [str(p) for p in paths if not Path(p).exists()]
    if missing:
        raise InputError(f"input(s) not found: {', '.join(missing)}; check the paths")
    items: List[InputItem] = []
    for path in map(Path, paths):
        if path.is_dir() and _holds_dicom(path):
            items.append(_series_item(path))
        elif path.is_dir():
            items.extend(_folder_items(path))
        else:
            items.append(InputItem(path, stem_of(path)))
    names = [item.name for item in items]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        clashing = [str(item.path) for item in items if item.name in duplicates]
        raise InputError(f"several inputs share the name(s) {', '.join(duplicates)} ({listing(clashing)}), so "
                         "their outputs would overwrite each other; rename them or predict them into different "
                         "--out folders")
    return items


def _slice_count(data: np.ndarray) -> int:
    return 1 if data.ndim == 2 else int(data.shape[0])


def check_input(item: InputItem, preset_for: Callable[[str], InputPreset], *, series: Optional[str] = None,
                allow_thin: bool = False, fixed_shape: Optional[Tuple[int, ...]] = None) -> CheckedInput:
    """Read ``item`` whole and check it against the preset of its kind (``preset_for(kind)``): the reader's
    checks (complete file, pixel data, geometry), the preset's own on the first slices, finite values and
    enough slices on all of them, and a model's fixed input size. One slice under a volume preset is
    repeated as its own neighbours, with a warning (as ``unet3plus demo`` does)."""
    source = read_input(item.path, series=series)
    preset = preset_for(input_kind(source))
    data = np.asarray(source.data)
    if preset.kind == "volume" and source.kind != "image" and _slice_count(data) == 1 and not allow_thin:
        logger.warning("%s is a single slice; the '%s' preset's %d-slice context repeats it", item.path, preset.name,
                       CONTEXT_SLICES)
        allow_thin = True
    head = data[:CONTEXT_SLICES] if preset.kind == "volume" and data.ndim == 3 else data
    prepared = network_input(replace(source, data=head), preset, allow_thin=True)  # kind and preset checks
    if preset.kind == "volume":
        check_volume(data, preset.name, allow_thin=allow_thin)  # every slice finite; enough of them
    padded_size(*prepared.shape[2:], fixed_shape)
    return CheckedInput(item, source, preset, allow_thin)


def error_with_path(item: InputItem, error: Exception) -> str:
    """The error's one line, naming the input when the message does not already."""
    text = " ".join(str(error).split())
    return text if str(item.path) in text else f"{item.path}: {text}"

