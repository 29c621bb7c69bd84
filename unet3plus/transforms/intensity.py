"""Intensity preparation of 2-D images: the one path that training and a trained model's inference share."""
from __future__ import annotations

import numpy as np

from ..hub.model_config import NORMALIZATIONS  # one declared set: checkpoint configs are checked against it

__all__ = ["NORMALIZATIONS", "normalize_intensity", "prepare_image"]


def normalize_intensity(image: np.ndarray, mode: str) -> np.ndarray:
    if mode == "auto" or mode == "none":
        if mode == "auto" and np.issubdtype(image.dtype, np.integer):
            return image.astype(np.float32) / float(np.iinfo(image.dtype).max)
        return image.astype(np.float32)
    image = image.astype(np.float32)
    if mode == "minmax":
        low, high = image.min(), image.max()
        return (image - low) / max(float(high - low), 1e-8)
    return (image - image.mean()) / max(float(image.std()), 1e-8)



def prepare_image(image: np.ndarray, normalize: str, in_channels: int, repeat_grayscale: bool) -> np.ndarray:
    """An ``H x W [x C]`` image as float32 ``C x H x W``: normalised, grey repeated to 3 channels when the
    network takes 3. Training and inference on a trained model's config both go through here."""
    image = normalize_intensity(image, normalize)
    image = image[None] if image.ndim == 2 else np.transpose(image, (2, 0, 1))
    if image.shape[0] == 1 and in_channels == 3 and repeat_grayscale:
        image = np.repeat(image, 3, axis=0)
    return image
