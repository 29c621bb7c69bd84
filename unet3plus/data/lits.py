"""Turn a LiTS-style folder (``volume-N.nii`` / ``segmentation-N.nii``) into the trainer's image/mask folders.

Like the published preprocessing, each kept slice becomes a 3-channel 8-bit PNG of the network input
(for the ``lits2017`` preset exactly what the published weights saw, see ``presets``) and a mask PNG,
but cases are paired by name (not by listing order), split into train/val by patient (not by slice),
the first slice has no wrap-around, and masks are written as labels 0/1 (0/1/2 with ``keep_tumour``)
that ``unet3plus train`` reads directly.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional

import numpy as np

from ..errors import InputError
from ..io.nifti import read_nifti
from ..io.pairing import pair_volumes
from ..io.writers import write_png
from ..transforms.presets import get_preset
from .split import split_by_group


@dataclass
class PreprocessSummary:
    cases: Dict[str, List[str]]  # split -> case names
    slices: Dict[str, int]  # split -> slices written


def label_slice_range(labels: np.ndarray) -> Optional[range]:
    """Slices from the first to the last one with any label (what the published script kept)."""
    present = np.flatnonzero(labels.reshape(labels.shape[0], -1).any(axis=1))
    return range(int(present[0]), int(present[-1]) + 1) if present.size else None


def to_uint8_image(channels: np.ndarray) -> np.ndarray:
    """``C x H x W`` network input in [0, 1] to an ``H x W x C`` 8-bit image (exact for ``lits2017``)."""
    return np.uint8(np.rint(np.clip(channels, 0.0, 1.0) * 255.0)).transpose(1, 2, 0)


def preprocess_lits(source: Path, out: Path, *, preset: str = "lits2017", val_fraction: float = 0.2, seed: int = 0,
                    all_slices: bool = False, keep_tumour: bool = False) -> PreprocessSummary:
    """Write ``out/{train,val}/{images,masks}/<case>_<slice>.png``; returns what went where."""
    cases = pair_volumes(source, source)
    names = [case for case, _, _ in cases]
    if len(cases) >= 2 and val_fraction > 0:
        train_index, val_index = split_by_group(names, val_fraction, seed, group_key=lambda name: name)
    else:
        train_index, val_index = list(range(len(cases))), []
    split_of = {names[i]: "train" for i in train_index}
    split_of.update({names[i]: "val" for i in val_index})
    summary = PreprocessSummary(cases={"train": [], "val": []}, slices={"train": 0, "val": 0})
    preset_ = get_preset(preset)
    for case, volume_path, label_path in cases:
        volume, labels = read_nifti(volume_path).data, np.rint(read_nifti(label_path).data).astype(np.int64)
        if volume.shape != labels.shape:
            raise InputError(f"{volume_path.name} has shape {volume.shape} but {label_path.name} has {labels.shape}; "
                             "each volume needs labels of the same size")
        keep = range(volume.shape[0]) if all_slices else label_slice_range(labels)
        if keep is None:
            continue  # no liver in this case: nothing the published recipe would keep
        inputs = preset_(volume)
        split = split_of[case]
        folder = Path(out) / split
        for z in keep:
            mask = labels[z] if keep_tumour else (labels[z] > 0)
            write_png(folder / "images" / f"{case}_{z:04d}.png", to_uint8_image(inputs[z]))
            write_png(folder / "masks" / f"{case}_{z:04d}.png", mask.astype(np.uint8))
        summary.cases[split].append(case)
        summary.slices[split] += len(keep)
    return summary
