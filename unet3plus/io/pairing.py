"""Pair CT volumes with their label volumes by name (``volume-N`` with ``segmentation-N``, or same stem)."""
from __future__ import annotations

import re
from pathlib import Path
from typing import List, Tuple

from ..errors import InputError
from .files import NIFTI_EXTENSIONS, extension_of, pair_by_key, stem_of

LABEL_PREFIX, VOLUME_PREFIX = "segmentation", "volume"


def _nifti_files(folder: Path) -> List[Path]:
    return sorted(p for p in Path(folder).rglob("*") if p.is_file() and extension_of(p) in NIFTI_EXTENSIONS
                  and not p.name.startswith("."))  # macOS "._" companions (the Decathlon tarballs hold them)


NNUNET_CHANNEL = re.compile(r"_0000$")  # nnU-Net: imagesTr/case_0000.nii.gz pairs with labelsTr/case.nii.gz


def case_key(stem: str) -> str:
    """``segmentation-12`` -> ``volume-12`` (LiTS naming), ``case_0000`` -> ``case`` (nnU-Net's first
    channel); other stems are their own key."""
    if stem.lower().startswith(LABEL_PREFIX):
        return VOLUME_PREFIX + stem[len(LABEL_PREFIX):]
    return NNUNET_CHANNEL.sub("", stem)


def is_label_file(path: Path) -> bool:
    """A LiTS label volume (``segmentation-N``)."""
    return stem_of(path).lower().startswith(LABEL_PREFIX)


def without_lits_volumes(files: List[Path]) -> List[Path]:
    """The label files of a folder: in a LiTS folder (``volume-N`` beside ``segmentation-N``) only the
    ``segmentation-N`` files; in any other folder every file."""
    if not any(is_label_file(path) for path in files):
        return list(files)
    return [path for path in files if is_label_file(path) or not stem_of(path).lower().startswith(VOLUME_PREFIX)]


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
    same = volumes_dir.resolve() == labels_dir.resolve()
    volume_files = [p for p in _nifti_files(volumes_dir) if not (same and is_label_file(p))]
    label_files = [p for p in _nifti_files(labels_dir) if is_label_file(p) or not same]
    if not volume_files:
        raise InputError(f"no NIfTI volumes (.nii, .nii.gz) under {volumes_dir}; point at the folder holding them")
    pairs = pair_by_key(volume_files, label_files, roles=("volume", "label"), folders=(volumes_dir, labels_dir),
                        key=lambda path: case_key(stem_of(path)), rule="name (segmentation-N for volume-N, "
                        "or the same name)")
    return sorted(pairs, key=lambda pair: _natural(pair[0]))


def _natural(name: str) -> list:
    """Sort ``volume-2`` before ``volume-10``."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name)]
