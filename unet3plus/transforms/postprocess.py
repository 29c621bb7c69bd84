"""From logits to masks: sigmoid/softmax, threshold or arg-max, keep the largest connected component."""
from __future__ import annotations

import math

import numpy as np

from .._optional import require


def probabilities_from_logits(logits: np.ndarray) -> np.ndarray:
    """Sigmoid for one channel (binary), softmax over channels (axis 1) otherwise."""
    logits = np.asarray(logits, np.float32)
    if logits.shape[1] == 1:
        return (0.5 * (1.0 + np.tanh(0.5 * logits))).astype(np.float32)  # sigmoid without overflow
    shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
    return (shifted / shifted.sum(axis=1, keepdims=True)).astype(np.float32)


def _hard_labels(scores: np.ndarray, cut: float) -> np.ndarray:
    """``N x *spatial`` uint8 labels from ``N x C x *spatial`` scores: ``score > cut`` for one channel,
    arg-max over channels otherwise (the one place that rule lives)."""
    scores = np.asarray(scores)
    if scores.shape[1] == 1:
        return (scores[:, 0] > cut).astype(np.uint8)
    return scores.argmax(axis=1).astype(np.uint8)


def labels_from_probabilities(probabilities: np.ndarray, threshold: float = 0.5) -> np.ndarray:
    """``N x H x W`` uint8 labels: ``p > threshold`` for one channel, arg-max over channels otherwise."""
    return _hard_labels(probabilities, threshold)


def labels_from_logits(logits: np.ndarray, threshold: float = 0.5) -> np.ndarray:
    """The labels :func:`labels_from_probabilities` gives for these logits' probabilities, without computing
    them: the sigmoid is monotonic (``p > t`` exactly when ``logit > log(t / (1 - t))``) and the softmax
    keeps the arg-max. ``threshold`` is a probability."""
    if threshold <= 0.0 or threshold >= 1.0:
        cut = -math.inf if threshold <= 0.0 else math.inf
    else:
        cut = math.log(threshold / (1.0 - threshold))
    return _hard_labels(logits, cut)


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
