"""Train directly on 3-D CT volumes: every slice of every case is an item, cut lazily with a preset's context.

>>> from unet3plus.data import VolumeDataset, VolumeOptions
>>> data = VolumeDataset.from_folder("Task03_Liver/", options=VolumeOptions(classes=("liver", "tumour")))
>>> image, labels = data[0]      # 3 x H x W float32 (the preset's [z, z-1, z-2] or [z-1, z, z+1]), H x W int32

The item interface is ``SegmentationDataset``'s (``names``, ``options``, ``len``, ``[i]``, ``subset``), so
the trainer and ``make_loader`` take either; an item's group (for the patient-level split) is its case.
Reading goes through ``unet3plus.io`` (the NIfTI axis convention of ``io.nifti``, the DICOM series
reader, the input presets), so a slice looks in training exactly as it will in ``predict``; volumes are
read lazily (``volume_io``) and checked up front (``volume_checks``).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

from ..io.layouts import VolumeCase, find_cases
from ..networks import SIZE_MULTIPLE
from ..transforms.presets import CONTEXT_SLICES, InputPreset, get_preset, window_preset
from .dataset import DataOptions, apply_label_map
from .io import DatasetError
from .sampling import CLASS_BALANCED, ForegroundSampler, check_fractions, check_sampling, default_sampling
from .volume_checks import check_cases
from .volume_io import CaseInfo, CaseReader

logger = logging.getLogger(__name__)

# A preset's neighbours lie within CONTEXT_SLICES - 1 of z, so the preset applied to the slices
# [z - r, z + r] (clamped to the volume) gives slice z the input it gets from the whole volume.
CONTEXT_RADIUS = CONTEXT_SLICES - 1
SLICE_RANGES = ("all", "labelled")


@dataclass(frozen=True)
class VolumeOptions(DataOptions):
    """How volumes become network inputs (on top of ``DataOptions``' ``label_map``).

    Attributes:
        classes: foreground class names, label value i+1 for ``classes[i]`` after ``label_map``. One class
            trains a sigmoid (``n_classes=1``), several a softmax over background + classes. LiTS:
            ``("liver", "tumour")``; the published binary convention (liver including tumour) is
            ``classes=("liver",), label_map={2: 1}``.
        preset: ``lits2017``, ``standard`` (see ``unet3plus.transforms.presets``); ``window`` overrides it.
        window: ``(low, high)`` HU window scaled to [0, 1], slices ``[z-1, z, z+1]``.
        slices: ``all`` slices, or ``labelled``: from the first to the last slice with foreground (what the
            published preprocessing kept).
        allow_empty_cases: accept cases whose labels are all background (an error otherwise: usually a
            broken export).
        foreground_fraction / empty_fraction: see ``unet3plus.data.sampling.ForegroundSampler``.
        sampling: how the foreground share is drawn: ``any-foreground`` (every slice with a label alike) or
            ``class-balanced`` (a class first, uniformly, then a slice holding it, as nnU-Net); None: class-balanced
            with several classes, any-foreground with one (``sampling.default_sampling``).
    """

    classes: Tuple[str, ...] = ("foreground",)
    preset: str = "lits2017"
    window: Optional[Tuple[float, float]] = None
    slices: str = "all"
    allow_empty_cases: bool = False
    foreground_fraction: float = 1.0 / 3.0
    empty_fraction: Optional[float] = None
    sampling: Optional[str] = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "classes", tuple(self.classes))
        object.__setattr__(self, "n_classes", 1 if len(self.classes) == 1 else len(self.classes) + 1)
        object.__setattr__(self, "in_channels", CONTEXT_SLICES)
        super().__post_init__()
        if not self.classes or len(set(self.classes)) != len(self.classes):
            raise DatasetError(f"classes must be distinct names, got {list(self.classes)}")
        if self.size is not None:
            raise DatasetError("volumes are not resized (in-plane resampling is not implemented); resample them "
                               "to one grid beforehand and leave size unset")
        if self.slices not in SLICE_RANGES:
            raise DatasetError(f"slices must be one of {', '.join(SLICE_RANGES)}, got {self.slices!r}")
        check_fractions(self.foreground_fraction, self.empty_fraction)
        if self.sampling is None:
            object.__setattr__(self, "sampling", default_sampling(len(self.classes)))
        check_sampling(self.sampling)
        self.input_preset  # an unknown preset or a bad window fails here, before any file is read

    @property
    def class_names(self) -> Tuple[str, ...]:
        """One name per label value, background first (what the checkpoints' model config records)."""
        return ("background",) + self.classes

    def input_config(self):
        """The checkpoints' record of how CT became network input: the preset, or the HU window."""
        from ..hub.model_config import InputConfig

        if self.window is not None:
            return InputConfig(preset=None, window=tuple(self.window))
        return InputConfig(preset=self.preset)

    @property
    def input_preset(self) -> InputPreset:
        return window_preset(*self.window) if self.window is not None else get_preset(self.preset)


@dataclass
class VolumeDataset:
    """2.5-D slices of checked 3-D cases; build with :meth:`from_folder` or :meth:`from_cases`."""

    cases: List[CaseInfo]
    items: List[Tuple[int, int]]  # (case index, slice index)
    options: VolumeOptions = field(default_factory=VolumeOptions)
    _readers: Dict[int, CaseReader] = field(default_factory=dict, repr=False)
    _class_index: Optional[Dict[str, np.ndarray]] = field(default=None, repr=False)

    @classmethod
    def from_folder(cls, volumes: Union[str, Path], labels: Union[str, Path, None] = None,
                    options: Optional[VolumeOptions] = None) -> "VolumeDataset":
        """Every case of a LiTS, Decathlon, nnU-Net or DICOM-with-NIfTI-labels folder (see ``volume_layouts``)."""
        return cls.from_cases(find_cases(Path(volumes), Path(labels) if labels is not None else None), options)

    @classmethod
    def from_cases(cls, cases: Sequence[VolumeCase], options: Optional[VolumeOptions] = None) -> "VolumeDataset":
        """Check every case (all problems of the whole dataset in one error), then index its slices."""
        options = options or VolumeOptions()
        infos = check_cases(cases, options)
        items = []
        for index, info in enumerate(infos):
            if options.slices == "labelled":
                present = np.flatnonzero(info.foreground)
                kept = range(int(present[0]), int(present[-1]) + 1) if present.size else range(0)
            else:
                kept = range(info.shape[0])
            items += [(index, z) for z in kept]
        return cls(infos, items, options)

    # -- SegmentationDataset's interface ----------------------------------------------------------
    @property
    def names(self) -> List[str]:
        return [f"{self.cases[c].name}_slice_{z:04d}" for c, z in self.items]

    def group_key(self, name: str) -> str:
        """The case of an item name (the trainer's patient-level split groups by it)."""
        return name.rsplit("_slice_", 1)[0]

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> Tuple[np.ndarray, np.ndarray]:
        case_index, z = self.items[index]
        reader = self.reader(case_index)
        n_slices = self.cases[case_index].shape[0]
        start, stop = max(0, z - CONTEXT_RADIUS), min(n_slices, z + CONTEXT_RADIUS + 1)
        image = self.options.input_preset(reader.hu(start, stop))[z - start]
        labels = apply_label_map(reader.labels(z, z + 1)[0], self.options.label_map)
        return pad_to_multiple(image, labels.astype(np.int32))

    def subset(self, indices: Sequence[int]) -> "VolumeDataset":
        return VolumeDataset(self.cases, [self.items[i] for i in indices], self.options)

    @property
    def spatial_size(self) -> Tuple[int, int]:
        return tuple(self[0][1].shape)

    # -- whole cases ------------------------------------------------------------------------------
    def reader(self, case_index: int) -> CaseReader:
        if case_index not in self._readers:
            self._readers[case_index] = CaseReader(self.cases[case_index].case)
        return self._readers[case_index]

    def case_indices(self) -> List[int]:
        """The cases this dataset's items come from, in order."""
        return sorted({c for c, _ in self.items})

    def read_case(self, case_index: int) -> Tuple[np.ndarray, np.ndarray]:
        """The whole case: HU ``Z x H x W`` float32 and mapped labels ``Z x H x W`` int64."""
        reader = self.reader(case_index)
        return reader.hu(), apply_label_map(reader.labels(), self.options.label_map)

    def has_foreground(self) -> np.ndarray:
        """Per item: whether its slice holds any foreground label."""
        return np.array([bool(self.cases[c].foreground[z]) for c, z in self.items], bool)

    def class_index(self) -> Dict[str, np.ndarray]:
        """Per foreground class, per item: whether its slice holds that class (from the up-front check, no file
        read). Built once per dataset; a class none of these slices holds is logged (once) and left out of
        class-balanced draws, e.g. when the split put every tumour case on the validation side."""
        if self._class_index is None:
            held = np.array([self.cases[c].slice_classes[z] for c, z in self.items], bool)
            held = held.reshape(len(self.items), len(self.options.classes))
            self._class_index = dict(zip(self.options.classes, held.T))
            missing = [name for name, flags in self._class_index.items() if not flags.any()]
            if missing:
                logger.warning("class-balanced sampling: no training slice holds %s; the forced foreground share "
                               "is drawn among the other classes", ", ".join(missing))
        return self._class_index

    def epoch_sampler(self, *, epoch: int, seed: int, num_shards: int = 1, shard_id: int = 0) -> ForegroundSampler:
        """The training order of an epoch: foreground-aware (``make_loader`` calls this when shuffling)."""
        classes = self.class_index() if self.options.sampling == CLASS_BALANCED else None
        return ForegroundSampler(self.has_foreground(), foreground_fraction=self.options.foreground_fraction,
                                 empty_fraction=self.options.empty_fraction, epoch=epoch, seed=seed,
                                 num_shards=num_shards, shard_id=shard_id, classes=classes)

    def __getstate__(self):  # worker processes open their own files
        return dict(self.__dict__, _readers={})


def pad_to_multiple(image: np.ndarray, labels: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """Zero-pad ``C x H x W`` and ``H x W`` at the bottom/right to multiples of 16, as ``predict`` does."""
    height, width = labels.shape
    pad_h, pad_w = -height % SIZE_MULTIPLE, -width % SIZE_MULTIPLE
    if pad_h or pad_w:
        image = np.pad(image, ((0, 0), (0, pad_h), (0, pad_w)))
        labels = np.pad(labels, ((0, pad_h), (0, pad_w)))
    return np.ascontiguousarray(image, np.float32), np.ascontiguousarray(labels)
