"""Pair image and mask files by file stem (``liver_012.png`` with ``liver_012.png`` or ``.npy``)."""
from __future__ import annotations

from pathlib import Path
from typing import Dict, List, Tuple

from .io import SUPPORTED_EXTENSIONS, DatasetError, is_supported

MAX_LISTED = 10


def _files_by_stem(folder: Path, role: str) -> Dict[str, Path]:
    folder = Path(folder)
    if not folder.is_dir():
        raise DatasetError(f"{role} folder {folder} does not exist or is not a folder; check the path")
    files = sorted(p for p in folder.iterdir() if p.is_file() and is_supported(p))
    if not files:
        raise DatasetError(f"{role} folder {folder} holds no {'/'.join(SUPPORTED_EXTENSIONS)} files; "
                           "point it at the folder with your data")
    by_stem: Dict[str, Path] = {}
    for path in files:
        if path.stem in by_stem:
            raise DatasetError(f"{role} folder {folder} has two files with the stem '{path.stem}' "
                               f"({by_stem[path.stem].name}, {path.name}); keep one")
        by_stem[path.stem] = path
    return by_stem


def _listing(names: List[str]) -> str:
    shown = ", ".join(names[:MAX_LISTED])
    return shown + (f" and {len(names) - MAX_LISTED} more" if len(names) > MAX_LISTED else "")


def pair_files(images_dir: Path, masks_dir: Path) -> List[Tuple[str, Path, Path]]:
    """``(stem, image_path, mask_path)`` for every stem, sorted; unpaired files are an error listing them."""
    images = _files_by_stem(images_dir, "image")
    masks = _files_by_stem(masks_dir, "mask")
    without_mask = sorted(set(images) - set(masks))
    without_image = sorted(set(masks) - set(images))
    if without_mask or without_image:
        problems = []
        if without_mask:
            problems.append(f"{len(without_mask)} image(s) without a mask in {masks_dir}: "
                            f"{_listing([images[s].name for s in without_mask])}")
        if without_image:
            problems.append(f"{len(without_image)} mask(s) without an image in {images_dir}: "
                            f"{_listing([masks[s].name for s in without_image])}")
        raise DatasetError("images and masks are paired by file stem, but " + "; ".join(problems)
                           + ". Add the missing files or move the unpaired ones out.")
    return [(stem, images[stem], masks[stem]) for stem in sorted(images)]
