"""Pair CT volumes with their label volumes by name (``volume-N`` with ``segmentation-N``, or same stem)."""
from __future__ import annotations

import re
from pathlib import Path
from typing import Dict, List, Tuple

from ..errors import InputError
from .readers import NIFTI_EXTENSIONS, _extension, _stem

LABEL_PREFIX, VOLUME_PREFIX = "segmentation", "volume"
MAX_LISTED = 10


def _nifti_files(folder: Path) -> List[Path]:
    return sorted(p for p in Path(folder).rglob("*") if p.is_file() and _extension(p) in NIFTI_EXTENSIONS
                  and not p.name.startswith("."))  # macOS "._" companions (the Decathlon tarballs hold them)


NNUNET_CHANNEL = re.compile(r"_0000$")  # nnU-Net: imagesTr/case_0000.nii.gz pairs with labelsTr/case.nii.gz


def case_key(stem: str) -> str:
    """``segmentation-12`` -> ``volume-12`` (LiTS naming), ``case_0000`` -> ``case`` (nnU-Net's first
    channel); other stems are their own key."""
    if stem.lower().startswith(LABEL_PREFIX):
        return VOLUME_PREFIX + stem[len(LABEL_PREFIX):]
    return NNUNET_CHANNEL.sub("", stem)


def _by_key(files: List[Path], role: str, folder: Path) -> Dict[str, Path]:
    found: Dict[str, Path] = {}
    for path in files:
        key = case_key(_stem(path))
        if key in found:
            raise InputError(f"two {role} files for case '{key}' under {folder}: {found[key]} and {path}; keep one")
        found[key] = path
    return found


def pair_volumes(volumes_dir: Path, labels_dir: Path) -> List[Tuple[str, Path, Path]]:
    """``(case, volume, labels)`` for every NIfTI volume under ``volumes_dir`` (searched recursively).

    Labels are found by name under ``labels_dir``: ``segmentation-N`` for ``volume-N`` (LiTS), or the
    same stem. When both folders are the same, files named ``segmentation*`` are the labels. Unpaired
    files are an error that lists them.
    """
    volumes_dir, labels_dir = Path(volumes_dir), Path(labels_dir)
    for folder in (volumes_dir, labels_dir):
        if not folder.is_dir():
            raise InputError(f"{folder} is not a folder; check the path")
    is_label = lambda p: _stem(p).lower().startswith(LABEL_PREFIX)  # noqa: E731
    same = volumes_dir.resolve() == labels_dir.resolve()
    volume_files = [p for p in _nifti_files(volumes_dir) if not (same and is_label(p))]
    label_files = [p for p in _nifti_files(labels_dir) if is_label(p) or not same]
    if not volume_files:
        raise InputError(f"no NIfTI volumes (.nii, .nii.gz) under {volumes_dir}; point at the folder holding them")
    volumes, labels = _by_key(volume_files, "volume", volumes_dir), _by_key(label_files, "label", labels_dir)
    unpaired = sorted(set(volumes) ^ set(labels))
    if unpaired:
        listed = ", ".join(unpaired[:MAX_LISTED]) + (f" and {len(unpaired) - MAX_LISTED} more" if
                                                      len(unpaired) > MAX_LISTED else "")
        raise InputError(f"{len(unpaired)} case(s) have a volume without labels or labels without a volume: "
                         f"{listed}. Volumes pair with labels named segmentation-N for volume-N, or the same name.")
    return [(key, volumes[key], labels[key]) for key in sorted(volumes, key=_natural)]


def _natural(name: str):
    """Sort ``volume-2`` before ``volume-10``."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name)]
