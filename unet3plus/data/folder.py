"""Pair image and mask files by file stem (``liver_012.png`` with ``liver_012.png`` or ``.npy``)."""
from __future__ import annotations

from pathlib import Path
from typing import List, Tuple

from ..io.files import pair_by_key
from .io import SUPPORTED_EXTENSIONS, DatasetError, is_supported


def _data_files(folder: Path, role: str) -> List[Path]:
    folder = Path(folder)
    if not folder.is_dir():
        raise DatasetError(f"{role} folder {folder} does not exist or is not a folder; check the path")
    files = sorted(p for p in folder.iterdir() if p.is_file() and is_supported(p))
    if not files:
        raise DatasetError(f"{role} folder {folder} holds no {'/'.join(SUPPORTED_EXTENSIONS)} files; "
                           "point it at the folder with your data")
    return files


def pair_files(images_dir: Path, masks_dir: Path) -> List[Tuple[str, Path, Path]]:
    """``(stem, image_path, mask_path)`` for every stem, sorted; unpaired files are an error listing them."""
    return pair_by_key(_data_files(images_dir, "image"), _data_files(masks_dir, "mask"), roles=("image", "mask"),
                       folders=(Path(images_dir), Path(masks_dir)), error=DatasetError)
