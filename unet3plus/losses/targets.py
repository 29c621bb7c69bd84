"""Turn integer label maps into the targets each loss compares against."""
from __future__ import annotations

from mindspore import Tensor, ops
import mindspore as ms


def probabilities(logits: Tensor) -> Tensor:
    """Sigmoid for a 1-channel (binary) network, softmax over channels for a multi-class one."""
    if logits.shape[1] == 1:
        return ops.sigmoid(logits)
    return ops.softmax(logits, axis=1)


def dense_targets(labels: Tensor, n_channels: int) -> Tensor:
    """Float targets shaped like the logits ``N x C x H x W`` from class indices ``N x H x W``.

    One output channel means binary segmentation: the target is ``labels == 1``. Otherwise one-hot.
    """
    labels = labels.astype(ms.int32).expand_dims(1)
    if n_channels == 1:
        return (labels == 1).astype(ms.float32)
    classes = ops.arange(n_channels, dtype=ms.int32).reshape((1, n_channels, 1, 1))
    return (labels == classes).astype(ms.float32)


def class_presence_targets(labels: Tensor, n_channels: int) -> Tensor:
    """``N x C`` float: 1 where the class occurs anywhere in the image (the CGM's target)."""
    return dense_targets(labels, n_channels).max(axis=(2, 3))


def per_image_sums(values: Tensor) -> Tensor:
    """Sum over the spatial axes: ``N x C x H x W`` -> ``N x C``."""
    return values.sum(axis=(2, 3))
