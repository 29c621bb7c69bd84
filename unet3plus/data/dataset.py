"""A random-access segmentation dataset from folders or in-memory arrays, checked before training.

Every item is ``(image, labels)``: image float32 ``C x H x W`` with ``C`` the network's input channels,
labels int32 ``H x W`` class indices (0 = background). Construction reads every pair once and raises a
``DatasetError`` naming the file and the fix for: unreadable files, image/mask size mismatch, channel
mismatch with the network, and mask labels outside the expected classes.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np

from ..networks import SIZE_MULTIPLE
from ..transforms.geometry import resize_pair
from ..transforms.intensity import NORMALIZATIONS, prepare_image
from .folder import pair_files
from .io import DatasetError, channels_of, read_array, spatial_shape

Source = Union[Path, np.ndarray]


@dataclass(frozen=True)
class DataOptions:
    """How files become network inputs.

    Attributes:
        n_classes: network output channels; 1 means binary masks (labels 0/1), K >= 2 means labels 0..K-1.
        in_channels: network input channels; images must have them, except grayscale ones, which are
            repeated to 3 channels when ``repeat_grayscale`` (the pretrained network takes 3).
        label_map: mask values to replace before checking, e.g. ``{255: 1}``.
        size: ``(H, W)`` to resize every pair to (image bilinear, mask nearest); needed when sizes differ or
            are not multiples of 16. None keeps the files' own size.
        normalize: ``auto`` (integer images divided by their dtype's maximum, float kept), ``none``,
            ``minmax`` or ``zscore`` (per image).
    """

    n_classes: int = 1
    in_channels: int = 3
    repeat_grayscale: bool = True
    label_map: Optional[Mapping[int, int]] = None
    size: Optional[Tuple[int, int]] = None
    normalize: str = "auto"

    def __post_init__(self) -> None:
        if self.n_classes < 1 or self.in_channels < 1:
            raise DatasetError(f"n_classes and in_channels must be >= 1, got {self.n_classes}, {self.in_channels}")
        if self.normalize not in NORMALIZATIONS:
            raise DatasetError(f"unknown normalize={self.normalize!r}; choose one of {', '.join(NORMALIZATIONS)}")
        if self.size is not None and any(s % SIZE_MULTIPLE or s <= 0 for s in self.size):
            raise DatasetError(f"size {tuple(self.size)} must be positive multiples of {SIZE_MULTIPLE} "
                               "(UNet3+ halves the image four times)")

    @property
    def n_labels(self) -> int:
        """Number of label values including background (2 for binary)."""
        return max(2, self.n_classes)


def apply_label_map(labels: np.ndarray, label_map: Optional[Mapping[int, int]]) -> np.ndarray:
    """int64 labels with every ``label_map`` key replaced by its value (all at once: ``{1: 2, 2: 1}`` swaps)."""
    labels = np.asarray(labels).astype(np.int64)
    if not label_map:
        return labels
    mapped = labels.copy()
    for source_value, target_value in label_map.items():
        mapped[labels == source_value] = target_value
    return mapped


@dataclass
class SegmentationDataset:
    """Pairs of (image, mask) sources with the options that turn them into network inputs.

    Build with :meth:`from_folders` or :meth:`from_arrays`; both check every pair up front.
    """

    names: List[str]
    images: List[Source]
    masks: List[Source]
    options: DataOptions = field(default_factory=DataOptions)
    validate: bool = True

    def __post_init__(self) -> None:
        if not (len(self.names) == len(self.images) == len(self.masks)):
            raise DatasetError("names, images and masks must have the same length")
        if not self.names:
            raise DatasetError("the dataset is empty; give it at least one image and mask")
        if self.validate:
            self._check_all()

    # -- construction ---------------------------------------------------------------------------
    @classmethod
    def from_folders(cls, images_dir: Union[str, Path], masks_dir: Union[str, Path],
                     options: Optional[DataOptions] = None) -> "SegmentationDataset":
        """Images and masks paired by file stem (PNG/JPEG/TIFF/BMP via Pillow, or ``.npy``)."""
        pairs = pair_files(Path(images_dir), Path(masks_dir))
        return cls([p[0] for p in pairs], [p[1] for p in pairs], [p[2] for p in pairs],
                   options or DataOptions())

    @classmethod
    def from_arrays(cls, images: Sequence[np.ndarray], masks: Sequence[np.ndarray],
                    options: Optional[DataOptions] = None, names: Optional[Sequence[str]] = None,
                    ) -> "SegmentationDataset":
        """In-memory images ``N x H x W`` or ``N x H x W x C`` (channels last) and masks ``N x H x W``."""
        if len(images) != len(masks):
            raise DatasetError(f"got {len(images)} images but {len(masks)} masks; give one mask per image")
        names = list(names) if names is not None else [f"array_{i:05d}" for i in range(len(images))]
        return cls(names, [np.asarray(a) for a in images], [np.asarray(m) for m in masks], options or DataOptions())

    def subset(self, indices: Sequence[int]) -> "SegmentationDataset":
        """The items at ``indices`` (already checked: no second pass over the files)."""
        pick = lambda items: [items[i] for i in indices]  # noqa: E731
        return SegmentationDataset(pick(self.names), pick(self.images), pick(self.masks), self.options, validate=False)

    # -- access ---------------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.names)

    def __getitem__(self, index: int) -> Tuple[np.ndarray, np.ndarray]:
        image, mask = self._read(index)
        return self._prepare(image, mask)

    @property
    def spatial_size(self) -> Tuple[int, int]:
        """``(H, W)`` of the prepared items."""
        return tuple(self[0][1].shape)

    # -- internals ------------------------------------------------------------------------------
    def _describe(self, index: int, source: Source) -> str:
        return str(source) if isinstance(source, Path) else f"{self.names[index]} (in-memory item {index})"

    def _read(self, index: int) -> Tuple[np.ndarray, np.ndarray]:
        image, mask = self.images[index], self.masks[index]
        image = read_array(image) if isinstance(image, Path) else image
        mask = read_array(mask, mask=True) if isinstance(mask, Path) else mask
        return image, mask

    def _map_labels(self, mask: np.ndarray) -> np.ndarray:
        if mask.ndim == 3:  # e.g. an RGB-saved gray mask: fine when every channel agrees
            mask = mask[:, :, 0]
        return apply_label_map(mask, self.options.label_map)

    def _prepare(self, image: np.ndarray, mask: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
        options = self.options
        image = prepare_image(image, options.normalize, options.in_channels, options.repeat_grayscale)
        labels = self._map_labels(mask).astype(np.int32)
        if self.options.size is not None:
            image, labels = resize_pair(image, labels, tuple(self.options.size))
        return np.ascontiguousarray(image, np.float32), np.ascontiguousarray(labels)

    def _check_all(self) -> None:
        options = self.options
        sizes: Dict[Tuple[int, int], int] = {}
        non_finite: List[str] = []
        for index in range(len(self)):
            image, mask = self._read(index)
            where = self._describe(index, self.images[index])
            non_finite += [self._describe(index, source) for source, array in
                           ((self.images[index], image), (self.masks[index], mask)) if not _all_finite(array)]
            mask_where = self._describe(index, self.masks[index])
            if mask.ndim == 3 and not all(np.array_equal(mask[:, :, 0], mask[:, :, c]) for c in range(mask.shape[2])):
                raise DatasetError(f"mask {mask_where} has {mask.shape[2]} differing channels; masks must be "
                                   "single-channel label maps (one class index per pixel)")
            if spatial_shape(image) != spatial_shape(mask):
                raise DatasetError(f"image {where} is {spatial_shape(image)[0]}x{spatial_shape(image)[1]} but its mask "
                                   f"{mask_where} is {spatial_shape(mask)[0]}x{spatial_shape(mask)[1]} (HxW); "
                                   "they must be the same size")
            channels = channels_of(image)
            fits = channels == options.in_channels or (
                channels == 1 and options.in_channels == 3 and options.repeat_grayscale)
            if not fits:
                hint = _channel_hint(channels, options.in_channels)
                raise DatasetError(f"image {where} has {channels} channel(s) but the network takes "
                                   f"{options.in_channels}; {hint}")
            labels = self._map_labels(mask)
            unexpected = sorted(set(np.unique(labels).tolist()) - set(range(options.n_labels)))
            if unexpected:
                meaning = ("binary masks with labels 0 and 1" if options.n_classes == 1
                           else f"labels 0..{options.n_classes - 1}")
                raise DatasetError(
                    f"mask {mask_where} has label value(s) {unexpected[:10]} outside the expected "
                    f"{list(range(options.n_labels))} (n_classes={options.n_classes} means {meaning}); map them "
                    f"with label_map (e.g. --label-map {unexpected[0]}:1) or set n_classes (--n-classes)")
            sizes.setdefault(spatial_shape(image), index)
        if non_finite:
            listed = ", ".join(non_finite[:5]) + (f" and {len(non_finite) - 5} more" if len(non_finite) > 5 else "")
            raise DatasetError(f"{len(non_finite)} file(s) hold NaN or infinite values: {listed}; one would poison "
                               "every weight in the first step: fix or remove them before training")
        if options.size is None:
            if len(sizes) > 1:
                listed = ", ".join(f"{h}x{w} ({self.names[i]})" for (h, w), i in list(sizes.items())[:5])
                raise DatasetError(f"images come in {len(sizes)} sizes: {listed}; pass size=(H, W) "
                                   "(--size H W) to resize them all to one size")
            (height, width), = sizes
            if height % SIZE_MULTIPLE or width % SIZE_MULTIPLE:
                suggestion = tuple(-(-s // SIZE_MULTIPLE) * SIZE_MULTIPLE for s in (height, width))  # round up: no detail lost
                raise DatasetError(f"images are {height}x{width} but UNet3+ needs H and W divisible by "
                                   f"{SIZE_MULTIPLE}; pass size={suggestion} (--size {suggestion[0]} {suggestion[1]})")


def _all_finite(array: np.ndarray) -> bool:
    array = np.asarray(array)
    return not np.issubdtype(array.dtype, np.inexact) or bool(np.isfinite(array).all())


def _channel_hint(channels: int, in_channels: int) -> str:
    """What to change when images have ``channels`` but the network takes ``in_channels``."""
    if channels == 4 and in_channels == 3:
        return "drop the alpha channel (save the images as RGB), or pass in_channels=4 (--in-channels 4)"
    if channels > in_channels:
        return (f"convert the images to {in_channels} channel(s), or pass in_channels={channels} "
                f"(--in-channels {channels})")
    return (f"pass in_channels={channels} (--in-channels {channels})"
            + (" or allow repeating grayscale to 3 channels" if channels == 1 else ""))
