"""Find the (volume, labels) cases of a 3-D dataset folder in the layouts people download.

* LiTS: ``volume-N.nii`` with ``segmentation-N.nii`` (one folder, or ``--labels`` elsewhere);
* Medical Segmentation Decathlon: ``imagesTr/liver_N.nii.gz`` with ``labelsTr/liver_N.nii.gz``;
* nnU-Net raw data: ``imagesTr/case_0000.nii.gz`` (channel 0) with ``labelsTr/case.nii.gz``;
* DICOM: one sub-folder per case holding its series, labels ``<case>.nii[.gz]`` in ``--labels``.

NIfTI pairing is ``unet3plus.io.pairing.pair_volumes`` (the one pairing rule, also used by
``evaluate``); this module only decides which folders to hand it.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional

from ..errors import DatasetError
from .files import DICOM_EXTENSIONS, NIFTI_EXTENSIONS, extension_of, stem_of
from .pairing import case_key, pair_volumes
from .volume import is_dicom_file

DECATHLON_IMAGES, DECATHLON_LABELS = "imagesTr", "labelsTr"


@dataclass(frozen=True)
class VolumeCase:
    """One patient: its CT (a NIfTI file or a DICOM series folder) and its NIfTI label volume."""

    name: str
    image: Path
    labels: Path

    @property
    def is_dicom(self) -> bool:
        return self.image.is_dir()


def _is_dicom_folder(folder: Path) -> bool:
    return any(p.is_file() and (extension_of(p) in DICOM_EXTENSIONS or is_dicom_file(p)) for p in folder.iterdir())


def _dicom_cases(volumes: Path, labels: Path) -> List[VolumeCase]:
    series = {case_key(folder.name): folder for folder in sorted(volumes.iterdir())
              if folder.is_dir() and _is_dicom_folder(folder)}
    label_files = {case_key(stem_of(p)): p for p in sorted(labels.iterdir())
                   if p.is_file() and extension_of(p) in NIFTI_EXTENSIONS and not p.name.startswith(".")}
    unpaired = sorted(set(series) ^ set(label_files))
    if unpaired:
        raise DatasetError(f"{len(unpaired)} DICOM case(s) lack labels or labels lack a DICOM series folder: "
                           f"{', '.join(unpaired[:10])}; name each label file after its series folder "
                           f"(<case>.nii.gz in {labels} for {volumes}/<case>/)")
    return [VolumeCase(name, series[name], label_files[name]) for name in sorted(series)]


def find_cases(volumes: Path, labels: Optional[Path] = None) -> List[VolumeCase]:
    """Every case under ``volumes`` (labels under ``labels``, or found beside them), sorted by name."""
    volumes = Path(volumes)
    if not volumes.is_dir():
        raise DatasetError(f"--volumes {volumes} is not a folder; point it at the dataset folder")
    if labels is not None and not Path(labels).is_dir():
        raise DatasetError(f"--labels {labels} is not a folder; point it at the label volumes")
    if labels is None and (volumes / DECATHLON_IMAGES).is_dir():
        if not (volumes / DECATHLON_LABELS).is_dir():
            raise DatasetError(f"{volumes} has {DECATHLON_IMAGES}/ but no {DECATHLON_LABELS}/; training needs labels "
                               f"(or give them with --labels)")
        volumes, labels = volumes / DECATHLON_IMAGES, volumes / DECATHLON_LABELS
        extra_channels = sorted(stem_of(p) for p in volumes.iterdir() if stem_of(p).endswith("_0001"))
        if extra_channels:
            raise DatasetError(f"{volumes} holds multi-channel nnU-Net cases ({extra_channels[0]}, ...); only "
                               "single-channel CT (_0000) is supported: move the other channels out")
    if labels is not None and _is_dicom_dataset(volumes):
        return _dicom_cases(volumes, Path(labels))
    if _is_dicom_dataset(volumes):
        raise DatasetError(f"{volumes} holds DICOM series folders; give their NIfTI labels with --labels DIR")
    return [VolumeCase(name, image, label) for name, image, label in pair_volumes(volumes, Path(labels or volumes))]


def _is_dicom_dataset(volumes: Path) -> bool:
    """Sub-folders of DICOM files and no NIfTI files at the top."""
    has_nifti = any(p.is_file() and extension_of(p) in NIFTI_EXTENSIONS for p in volumes.iterdir())
    return not has_nifti and any(p.is_dir() and _is_dicom_folder(p) for p in volumes.iterdir())
