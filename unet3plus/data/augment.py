"""Seeded augmentation applied identically to an image and its mask (geometry) or to the image alone
(intensity). Every random choice comes from the ``numpy.random.Generator`` passed in, which the pipeline
derives from (seed, epoch, sample index): results do not depend on worker count or scheduling, and a
resumed run sees the same augmentations as an uninterrupted one.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Tuple

import numpy as np

from ..transforms.geometry import sample_bilinear, sample_nearest, sampling_grid


@dataclass(frozen=True)
class Augmentation:
    """Which augmentations to apply; ``Augmentation.none()`` disables all.

    Attributes:
        flip_probability: chance of each of the horizontal and vertical flips.
        rotate90: rotate by a random multiple of 90 degrees (square images only; skipped otherwise).
        scale_range: zoom factor range for the random crop/scale (>1 zooms in); ``(1, 1)`` disables it.
        brightness: maximum absolute shift added to the image.
        contrast: maximum relative change of contrast around the image mean.
    """

    flip_probability: float = 0.5
    rotate90: bool = True
    scale_range: Tuple[float, float] = (0.85, 1.2)
    brightness: float = 0.1
    contrast: float = 0.1

    @classmethod
    def none(cls) -> "Augmentation":
        return cls(flip_probability=0.0, rotate90=False, scale_range=(1.0, 1.0), brightness=0.0, contrast=0.0)

    def __call__(self, image: np.ndarray, labels: np.ndarray, rng: np.random.Generator):
        """Augmented copies of ``image`` (C x H x W float32) and ``labels`` (H x W)."""
        if rng.random() < self.flip_probability:
            image, labels = image[:, :, ::-1], labels[:, ::-1]
        if rng.random() < self.flip_probability:
            image, labels = image[:, ::-1, :], labels[::-1, :]
        if self.rotate90 and image.shape[1] == image.shape[2]:
            turns = int(rng.integers(4))
            image, labels = np.rot90(image, turns, axes=(1, 2)), np.rot90(labels, turns)
        low, high = self.scale_range
        if high > low or low != 1.0:
            image, labels = self._crop_scale(image, labels, rng.uniform(low, high), rng)
        if self.contrast > 0:
            mean = image.mean(axis=(1, 2), keepdims=True)
            image = (image - mean) * rng.uniform(1.0 - self.contrast, 1.0 + self.contrast) + mean
        if self.brightness > 0:
            image = image + rng.uniform(-self.brightness, self.brightness)
        return np.ascontiguousarray(image, np.float32), np.ascontiguousarray(labels)

    @staticmethod
    def _crop_scale(image, labels, scale: float, rng: np.random.Generator):
        """Sample a region ``1/scale`` the image size at a random place and resize it back (zero padding
        outside the image when zooming out)."""
        height, width = image.shape[1:]
        region_h, region_w = height / scale, width / scale
        top = rng.uniform(min(0.0, height - region_h), max(0.0, height - region_h))
        left = rng.uniform(min(0.0, width - region_w), max(0.0, width - region_w))
        rows, columns = sampling_grid((height, width), (top, left, region_h, region_w))
        return sample_bilinear(image, rows, columns), sample_nearest(labels, rows, columns)
