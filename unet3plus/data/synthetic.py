"""Synthetic "organ" images for tests, benchmarks and demos: textured, noisy ellipses.

Each image has a smooth textured background; most contain an organ-like ellipse (label 1) brighter than
the background with its own texture, and, for 3-class data, a darker lesion-like ellipse inside the
organ (label 2). Some images are empty. Pixel noise keeps a single threshold from solving the task.
"""
from __future__ import annotations

from typing import Tuple

import numpy as np


def _ellipse(height: int, width: int, centre, axes, angle: float) -> np.ndarray:
    rows, columns = np.mgrid[0:height, 0:width].astype(np.float32)
    y, x = rows - centre[0], columns - centre[1]
    cos, sin = np.cos(angle), np.sin(angle)
    u, v = (x * cos + y * sin) / axes[1], (-x * sin + y * cos) / axes[0]
    return u * u + v * v <= 1.0


def _texture(rng: np.random.Generator, height: int, width: int, waves: int = 4) -> np.ndarray:
    rows, columns = np.mgrid[0:height, 0:width].astype(np.float32)
    texture = np.zeros((height, width), np.float32)
    for _ in range(waves):
        fy, fx = rng.uniform(0.05, 0.5, size=2)
        texture += np.sin(fy * rows + fx * columns + rng.uniform(0, 2 * np.pi)).astype(np.float32)
    return texture / waves


def synthetic_organs(n_images: int, size: Tuple[int, int] = (64, 64), channels: int = 1, n_classes: int = 1,
                     seed: int = 0, empty_fraction: float = 0.1, noise: float = 0.08
                     ) -> Tuple[np.ndarray, np.ndarray]:
    """``(images, masks)``: float32 ``N x H x W`` (channels 1) or ``N x H x W x C``, and int32 ``N x H x W``.

    ``n_classes`` follows the network convention: 1 = binary organ masks, 3 = background/organ/lesion.
    """
    rng = np.random.default_rng(seed)
    height, width = size
    images = np.zeros((n_images, height, width, channels), np.float32)
    masks = np.zeros((n_images, height, width), np.int32)
    for i in range(n_images):
        base = 0.35 + 0.1 * _texture(rng, height, width)
        image = base.copy()
        if rng.random() >= empty_fraction:
            centre = (rng.uniform(0.3, 0.7) * height, rng.uniform(0.3, 0.7) * width)
            axes = (rng.uniform(0.15, 0.3) * height, rng.uniform(0.15, 0.3) * width)
            organ = _ellipse(height, width, centre, axes, rng.uniform(0, np.pi))
            image[organ] += 0.25 + 0.05 * _texture(rng, height, width)[organ]
            masks[i][organ] = 1
            if n_classes >= 3:
                lesion_centre = (centre[0] + rng.uniform(-0.3, 0.3) * axes[0],
                                 centre[1] + rng.uniform(-0.3, 0.3) * axes[1])
                lesion = _ellipse(height, width, lesion_centre, (axes[0] * 0.4, axes[1] * 0.4),
                                  rng.uniform(0, np.pi)) & organ
                image[lesion] -= 0.18
                masks[i][lesion] = 2
        for c in range(channels):
            tint = 1.0 + 0.1 * (c - (channels - 1) / 2)
            images[i, :, :, c] = image * tint + rng.normal(0.0, noise, size=(height, width))
    images = np.clip(images, 0.0, 1.0)
    return (images[..., 0] if channels == 1 else images), masks


def synthetic_liver_volume(shape: Tuple[int, int, int] = (12, 64, 64), seed: int = 0, n_tumours: int = 2,
                           noise_hu: float = 12.0) -> Tuple[np.ndarray, np.ndarray]:
    """``(hu, labels)``, both ``Z x H x W``: a CT-like volume (float32 HU) with an ellipsoid 'liver'
    (label 1, ~110 HU) holding darker spherical 'tumours' (label 2, ~55 HU), in ~25 HU soft tissue.
    The liver leaves the first and last slices empty, like an abdominal scan."""
    rng = np.random.default_rng(seed)
    depth, height, width = shape
    z, y, x = np.mgrid[0:depth, 0:height, 0:width].astype(np.float32)
    centre = np.array([depth / 2, rng.uniform(0.4, 0.6) * height, rng.uniform(0.4, 0.6) * width])
    axes = np.array([depth * 0.35, rng.uniform(0.22, 0.32) * height, rng.uniform(0.22, 0.32) * width])
    liver = ((z - centre[0]) / axes[0]) ** 2 + ((y - centre[1]) / axes[1]) ** 2 + ((x - centre[2]) / axes[2]) ** 2 <= 1
    labels = liver.astype(np.uint8)
    for _ in range(n_tumours):
        spot = centre + rng.uniform(-0.45, 0.45, 3) * axes
        radius = rng.uniform(0.2, 0.3) * min(axes[1], axes[2])
        blob = ((z - spot[0]) / max(radius / 3, 1.2)) ** 2 + ((y - spot[1]) / radius) ** 2 + \
            ((x - spot[2]) / radius) ** 2 <= 1
        labels[blob & liver] = 2
    hu = np.full(shape, 25.0, np.float32) + 15.0 * _texture(rng, height, width)[None]
    hu[labels == 1] = 110.0
    hu[labels == 2] = 55.0
    hu += rng.normal(0.0, noise_hu, size=shape).astype(np.float32)
    return hu.astype(np.float32), labels
