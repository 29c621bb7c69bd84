"""Segmentation data: folders or arrays -> checked dataset -> seeded, augmented MindSpore pipeline.

>>> from unet3plus.data import DataOptions, SegmentationDataset, make_loader
>>> data = SegmentationDataset.from_folders("images/", "masks/", DataOptions(n_classes=1, label_map={255: 1}))
>>> for image, label in make_loader(data, batch_size=4, epoch=0).create_tuple_iterator(num_epochs=1): ...
"""
from ..io.layouts import VolumeCase, find_cases
from ..transforms.intensity import normalize_intensity
from .augment import Augmentation
from .dataset import DataOptions, SegmentationDataset
from .folder import pair_files
from .io import SUPPORTED_EXTENSIONS, DatasetError, read_array
from .pipeline import AugmentedSource, EpochSampler, check_batch_size, make_loader
from .split import default_group_key, group_key_from_pattern, split_by_group
from .synthetic import synthetic_organs
from .volumes import VolumeDataset, VolumeOptions

__all__ = [
    "Augmentation", "AugmentedSource", "DataOptions", "DatasetError", "EpochSampler", "SUPPORTED_EXTENSIONS",
    "SegmentationDataset", "check_batch_size", "default_group_key", "group_key_from_pattern", "make_loader",
    "normalize_intensity", "pair_files", "read_array", "split_by_group", "synthetic_organs",
    "VolumeCase", "VolumeDataset", "VolumeOptions", "find_cases",
]
