"""Small building blocks of UNet3+, named so that parameters keep the published checkpoint's names."""
from __future__ import annotations

from typing import Sequence, Tuple

import numpy as np

from mindspore import Tensor, nn, ops


def conv3x3(in_channels: int, out_channels: int) -> nn.Conv2d:
    """3x3 'same' convolution without bias, He-normal initialised, as in the published model."""
    return nn.Conv2d(in_channels, out_channels, 3, pad_mode="pad", padding=1, weight_init="HeNormal")


def batch_norm(channels: int) -> nn.BatchNorm2d:
    """BatchNorm with MindSpore's defaults (eps 1e-5, momentum 0.9), the published settings."""
    return nn.BatchNorm2d(channels, gamma_init="ones")


class UNetConv2(nn.Cell):
    """Two (conv3x3 -> BN -> ReLU) layers; parameters ``conv.{0,1,3,4}.*`` as published."""

    def __init__(self, in_channels: int, out_channels: int, n_layers: int = 2) -> None:
        super().__init__()
        layers = []
        for _ in range(n_layers):
            layers += [conv3x3(in_channels, out_channels), batch_norm(out_channels), nn.ReLU()]
            in_channels = out_channels
        self.conv = nn.SequentialCell(layers)

    def construct(self, x: Tensor) -> Tensor:
        return self.conv(x)


def interpolation_matrix(in_size: int, out_size: int) -> np.ndarray:
    """``(out_size, in_size)`` weights of 1-D linear interpolation with ``align_corners=True``."""
    matrix = np.zeros((out_size, in_size), np.float32)
    if in_size == 1 or out_size == 1:
        matrix[:, 0] = 1.0
        return matrix
    source = np.arange(out_size) * (in_size - 1) / (out_size - 1)
    lower = np.minimum(np.floor(source).astype(np.int64), in_size - 2)
    fraction = (source - lower).astype(np.float32)
    rows = np.arange(out_size)
    matrix[rows, lower] = 1.0 - fraction
    matrix[rows, lower + 1] += fraction
    return matrix


def resize_bilinear_align_corners(x: Tensor, size: Tuple[int, int]) -> Tensor:
    """Bilinear resize with ``align_corners=True`` (what the published ``nn.ResizeBilinear`` call did).

    Written as two matrix products with constant interpolation matrices rather than MindSpore's resize
    op: the numbers agree with ``ops.interpolate`` to ~1e-6, the speed is the same, and unlike the resize
    op it exports to ONNX. Shapes are static in GRAPH mode, so the matrices become compile-time constants.
    """
    rows = Tensor(interpolation_matrix(x.shape[2], size[0]))
    columns_t = Tensor(interpolation_matrix(x.shape[3], size[1]).T)
    return ops.matmul(ops.matmul(rows, x), columns_t)


def spatial_size(x: Tensor) -> Tuple[int, int]:
    return x.shape[2], x.shape[3]


def nearest_multiples(value: int, multiple: int) -> Sequence[int]:
    """The valid sizes just below and above ``value`` (below omitted when it would be 0)."""
    below = (value // multiple) * multiple
    above = below + multiple
    return [below, above] if below > 0 else [above]
