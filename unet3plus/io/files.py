"""File names, the extension table, the one 2-D image reader and the one file-pairing helper.

Training data (``data``) and inference inputs (``inference``) read the same kinds of files, so they share
these: an image means the same pixels, and ``case.nii.gz`` the same stem, wherever it is read.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable, Dict, List, Mapping, Sequence, Tuple, Type

import numpy as np

from .._optional import require
from ..errors import InputError

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp")
NUMPY_EXTENSIONS = (".npy",)
NIFTI_EXTENSIONS = (".nii", ".nii.gz")
DICOM_EXTENSIONS = (".dcm", ".dicom")
MAX_LISTED = 10

# Pillow modes converted before the pixels become an array: the network takes grey or RGB, so bit maps and
# grey+alpha become grey, and colour spaces other than RGB become RGB. Palette images become RGB too, except
# label maps, which are often saved with a palette and whose palette *indices* are the labels.
_TO_GREY = ("1", "LA")
_TO_RGB = ("CMYK", "YCbCr", "LAB", "HSV")
_PALETTE = ("P", "PA")


def extension_of(path: Path) -> str:
    """The lower-case extension, ``.nii.gz`` counting as one."""
    name = Path(path).name.lower()
    return ".nii.gz" if name.endswith(".nii.gz") else Path(path).suffix.lower()


def stem_of(path: Path) -> str:
    """The file name without :func:`extension_of` (``volume-1.nii.gz`` -> ``volume-1``)."""
    path, extension = Path(path), extension_of(path)
    return path.name[: -len(extension)] if extension else path.name


def read_image_file(path: Path, *, labels: bool = False) -> np.ndarray:
    """A PNG/JPEG/TIFF/BMP file's pixels, ``H x W`` or ``H x W x C`` in the file's dtype.

    ``labels=True`` reads a label map: palette images give their indices instead of colours. Pillow's own
    exceptions pass through (callers word the error for their users).
    """
    image_module = require("PIL.Image", "image", "Reading PNG/JPEG/TIFF images")
    with image_module.open(path) as image:
        if image.mode in _PALETTE:
            image = image.convert("P") if labels else image.convert("RGB")
        elif image.mode in _TO_RGB:
            image = image.convert("RGB")
        elif image.mode in _TO_GREY:
            image = image.convert("L")
        return np.array(image)


def listing(names: Sequence[str]) -> str:
    shown = ", ".join(names[:MAX_LISTED])
    return shown + (f" and {len(names) - MAX_LISTED} more" if len(names) > MAX_LISTED else "")


def _index(files: Sequence[Path], key: Callable[[Path], str], role: str, folder: Path,
           error: Type[InputError]) -> Dict[str, Path]:
    found: Dict[str, Path] = {}
    for path in files:
        name = key(path)
        if name in found:
            raise error(f"{folder} holds two {role} files for '{name}' ({found[name].name}, {path.name}); keep one")
        found[name] = path
    return found


def pair_by_key(first: Sequence[Path], second: Sequence[Path], *, roles: Tuple[str, str],
                folders: Tuple[Path, Path], key: Callable[[Path], str] = stem_of, rule: str = "file stem",
                error: Type[InputError] = InputError) -> List[Tuple[str, Path, Path]]:
    """``(key, first_file, second_file)`` for every key, sorted by key.

    Files pair when ``key`` gives them the same name (described to users by ``rule``). Two files with one key
    on one side, or a file without a partner, is one ``error`` that lists every unpaired file.
    """
    by_key: List[Mapping[str, Path]] = [_index(files, key, role, folder, error)
                                        for files, role, folder in zip((first, second), roles, folders)]
    problems = []
    for this, other in ((0, 1), (1, 0)):
        alone = sorted(set(by_key[this]) - set(by_key[other]))
        if alone:
            article = "an" if roles[other][0] in "aeiou" else "a"
            problems.append(f"{len(alone)} {roles[this]}(s) without {article} {roles[other]} in {folders[other]}: "
                            f"{listing([by_key[this][name].name for name in alone])}")
    if problems:
        raise error(f"{roles[0]}s and {roles[1]}s are paired by {rule}, but " + "; ".join(problems)
                    + ". Add the missing files or move the unpaired ones out.")
    return [(name, by_key[0][name], by_key[1][name]) for name in sorted(by_key[0])]
