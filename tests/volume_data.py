"""Synthetic CT cases written as NIfTI in the layouts people download (for the volume tests)."""
from __future__ import annotations

from pathlib import Path
from typing import Optional, Tuple

import nibabel
import numpy as np

from unet3plus.data.synthetic import synthetic_liver_volume
from unet3plus.io.nifti import slices_to_nifti

SHAPE = (12, 64, 64)  # Z x H x W
TRAINING_ORIENTED = np.diag([-1.0, -1.0, 1.0, 1.0])  # voxel axes L, P, S: the reader's training orientation


def write_nifti(path: Path, slices: np.ndarray, affine: Optional[np.ndarray] = None) -> Path:
    """``Z x H x W`` slices saved in NIfTI voxel order; with the default affine (the training orientation)
    the package's reader gives them back unchanged."""
    path.parent.mkdir(parents=True, exist_ok=True)
    affine = TRAINING_ORIENTED if affine is None else affine
    nibabel.save(nibabel.Nifti1Image(slices_to_nifti(slices), affine), str(path))
    return path


def case(seed: int, shape: Tuple[int, int, int] = SHAPE) -> Tuple[np.ndarray, np.ndarray]:
    hu, labels = synthetic_liver_volume(shape, seed=seed)
    return np.rint(hu).astype(np.int16), labels


def write_lits(folder: Path, n_cases: int, shape=SHAPE, first_seed: int = 0,
               affine: Optional[np.ndarray] = None) -> Path:
    for index in range(n_cases):
        hu, labels = case(first_seed + index, shape)
        write_nifti(folder / f"volume-{index}.nii", hu, affine)
        write_nifti(folder / f"segmentation-{index}.nii.gz", labels, affine)
    return folder


def write_decathlon(folder: Path, n_cases: int, nnunet: bool = False) -> Path:
    for index in range(n_cases):
        hu, labels = case(index)
        image_name = f"liver_{index:03d}_0000.nii.gz" if nnunet else f"liver_{index}.nii.gz"
        write_nifti(folder / "imagesTr" / image_name, hu)
        write_nifti(folder / "labelsTr" / (f"liver_{index:03d}.nii.gz" if nnunet else f"liver_{index}.nii.gz"), labels)
    return folder
