"""NumPy image operations shared by dataset preparation and augmentation (no extra dependencies).

Images are float32 ``C x H x W``; label maps are integer ``H x W``. Geometry is expressed as a sampling
grid so that an image and its mask always receive exactly the same transformation.
"""
from __future__ import annotations

from typing import Tuple

import numpy as np


def sampling_grid(out_size: Tuple[int, int], region: Tuple[float, float, float, float]) -> Tuple[np.ndarray, np.ndarray]:
    """Source pixel coordinates (rows, columns) mapping the region ``(top, left, height, width)`` of the
    source onto an output of ``out_size`` (pixel centres aligned)."""
    top, left, height, width = region
    rows = top + (np.arange(out_size[0]) + 0.5) * (height / out_size[0]) - 0.5
    columns = left + (np.arange(out_size[1]) + 0.5) * (width / out_size[1]) - 0.5
    return rows, columns


def sample_bilinear(image: np.ndarray, rows: np.ndarray, columns: np.ndarray) -> np.ndarray:
    """Bilinear samples of ``C x H x W`` at the grid; points outside the image read 0 (zero padding)."""
    height, width = image.shape[1:]
    r0, c0 = np.floor(rows).astype(np.int64), np.floor(columns).astype(np.int64)
    fr, fc = (rows - r0).astype(np.float32), (columns - c0).astype(np.float32)
    out = np.zeros((image.shape[0], rows.size, columns.size), np.float32)
    for dr, wr in ((0, 1.0 - fr), (1, fr)):
        rr = r0 + dr
        valid_r = (rr >= 0) & (rr < height)
        for dc, wc in ((0, 1.0 - fc), (1, fc)):
            cc = c0 + dc
            valid_c = (cc >= 0) & (cc < width)
            patch = image[:, np.clip(rr, 0, height - 1)][:, :, np.clip(cc, 0, width - 1)]
            weight = (wr * valid_r)[:, None] * (wc * valid_c)[None, :]
            out += patch * weight[None]
    return out


def sample_nearest(labels: np.ndarray, rows: np.ndarray, columns: np.ndarray, fill: int = 0) -> np.ndarray:
    """Nearest-neighbour samples of an ``H x W`` label map; outside points get ``fill`` (background)."""
    height, width = labels.shape
    rr, cc = np.rint(rows).astype(np.int64), np.rint(columns).astype(np.int64)
    out = labels[np.clip(rr, 0, height - 1)][:, np.clip(cc, 0, width - 1)]
    outside = ((rr < 0) | (rr >= height))[:, None] | ((cc < 0) | (cc >= width))[None, :]
    return np.where(outside, fill, out).astype(labels.dtype)


def _resize_grid(shape: Tuple[int, int], size: Tuple[int, int]) -> Tuple[np.ndarray, np.ndarray]:
    height, width = shape
    rows, columns = sampling_grid(size, (0.0, 0.0, float(height), float(width)))
    return np.clip(rows, 0, height - 1), np.clip(columns, 0, width - 1)  # no padding when resizing


def resize_image(image: np.ndarray, size: Tuple[int, int]) -> np.ndarray:
    """Resize a ``C x H x W`` image (bilinear) to ``size``: what ``resize_pair`` does to the image."""
    if image.shape[1:] == tuple(size):
        return image
    return sample_bilinear(image, *_resize_grid(image.shape[1:], size))


def resize_pair(image: np.ndarray, labels: np.ndarray, size: Tuple[int, int]) -> Tuple[np.ndarray, np.ndarray]:
    """Resize an image (bilinear) and its label map (nearest) to ``size``."""
    if image.shape[1:] == tuple(size):
        return image, labels
    rows, columns = _resize_grid(image.shape[1:], size)
    return sample_bilinear(image, rows, columns), sample_nearest(labels, rows, columns)
