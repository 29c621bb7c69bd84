"""From logits to masks: sigmoid/softmax, threshold or arg-max, keep the largest connected component."""
from __future__ import annotations

import numpy as np

from .._optional import require


def probabilities_from_logits(logits: np.ndarray) -> np.ndarray:
    """Sigmoid for one channel (binary), softmax over channels (axis 1) otherwise."""
    logits = np.asarray(logits, np.float32)
    if logits.shape[1] == 1:
        return (0.5 * (1.0 + np.tanh(0.5 * logits))).astype(np.float32)  # sigmoid without overflow
    shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
    return (shifted / shifted.sum(axis=1, keepdims=True)).astype(np.float32)


def labels_from_probabilities(probabilities: np.ndarray, threshold: float = 0.5) -> np.ndarray:
    """``N x H x W`` uint8 labels: ``p > threshold`` for one channel, arg-max over channels otherwise."""
    if probabilities.shape[1] == 1:
        return (probabilities[:, 0] > threshold).astype(np.uint8)
    return probabilities.argmax(axis=1).astype(np.uint8)


def keep_largest_component(labels: np.ndarray, *, per_slice: bool = False) -> np.ndarray:
    """Zero every foreground voxel outside the largest connected foreground region.

    Connectivity is face-adjacency in 3-D over ``Z x H x W`` (or in 2-D per slice with ``per_slice``);
    all non-zero labels count as foreground, and the kept voxels keep their labels.
    """
    ndimage = require("scipy.ndimage", "postprocess", "Keeping the largest connected component")
    labels = np.asarray(labels)
    if per_slice:
        return np.stack([keep_largest_component(s) for s in labels]) if labels.ndim == 3 else \
            keep_largest_component(labels)
    components, count = ndimage.label(labels > 0)
    if count <= 1:
        return labels.copy()
    sizes = np.bincount(components.ravel())
    sizes[0] = 0
    return np.where(components == sizes.argmax(), labels, 0).astype(labels.dtype)
