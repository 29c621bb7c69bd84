"""Resize-first alternatives to the package's low-resolution up-sampling branches, kept for benchmarking.

``InferenceUNet3Plus`` computes each up-sampling branch (bilinear align-corners resize, then a 3x3 conv) at
the input's low resolution. These variants resize first and then convolve: two dense matrix products
("matmul"), a two-tap gather-and-blend ("gather": 1.5x slower, 4x the memory) or MindSpore's own resize
kernel ("interpolate": does not export to ONNX). Same numbers to float32 rounding; ``bench_levers.py
--groups fusion`` and ``bench_inference.py`` measure them (benchmarks/RESULTS.md).
"""
from __future__ import annotations

from typing import Tuple

import numpy as np
from mindspore import Tensor, ops

from unet3plus.networks import UNet3Plus
from unet3plus.networks.fusion import InferenceUNet3Plus, fuse_batchnorm
from unet3plus.networks.resize import interpolation_matrix, resize_bilinear_align_corners

UPSAMPLING_MODES = ("low-resolution", "matmul", "gather", "interpolate")


def _two_tap_table(in_size: int, out_size: int) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Lower/upper source indices and the upper weight of 1-D align-corners interpolation."""
    matrix = interpolation_matrix(in_size, out_size)
    lower = np.argmax(matrix > 0, axis=1).astype(np.int32)
    upper = np.minimum(lower + 1, in_size - 1).astype(np.int32)
    weight_upper = matrix[np.arange(out_size), upper] * (upper != lower)
    return lower, upper, weight_upper.astype(np.float32)


def resize_bilinear_two_tap(x: Tensor, size: Tuple[int, int]) -> Tensor:
    """Align-corners bilinear resize as gathers of the two neighbours and a blend, rows then columns."""
    for axis, out_size in ((2, size[0]), (3, size[1])):
        lower, upper, weight = _two_tap_table(x.shape[axis], out_size)
        shape = [1, 1, 1, 1]
        shape[axis] = out_size
        low = ops.gather(x, Tensor(lower), axis)
        high = ops.gather(x, Tensor(upper), axis)
        x = low + (high - low) * Tensor(weight.reshape(shape))
    return x


def resize_bilinear_interpolate(x: Tensor, size: Tuple[int, int]) -> Tensor:
    """MindSpore's own resize kernel (fast on CPU, but does not export to ONNX)."""
    return ops.interpolate(x, size=size, mode="bilinear", align_corners=True)


class ResizeFirstUNet3Plus(InferenceUNet3Plus):
    """The BatchNorm-folded network whose up-sampling branches resize first, then convolve."""

    def __init__(self, source: UNet3Plus, upsampling: str) -> None:
        if upsampling not in UPSAMPLING_MODES[1:]:
            raise ValueError(f"upsampling must be one of {UPSAMPLING_MODES[1:]}, got {upsampling!r}")
        super().__init__(source)
        self.upsampling = upsampling

    def _upsample_and_convolve(self, name: str, x: Tensor, size: Tuple[int, int]) -> Tensor:
        return getattr(self, name + "_conv")(self._resize(x, size))

    def _resize(self, x: Tensor, size: Tuple[int, int]) -> Tensor:
        if self.upsampling == "gather":
            return resize_bilinear_two_tap(x, size)
        if self.upsampling == "interpolate":
            return resize_bilinear_interpolate(x, size)
        return resize_bilinear_align_corners(x, size)  # GRAPH mode resolves the branch at compile time


def fuse_with_upsampling(net: UNet3Plus, upsampling: str) -> InferenceUNet3Plus:
    """``fuse_batchnorm(net)`` ("low-resolution", what the package runs) or a resize-first variant."""
    return fuse_batchnorm(net) if upsampling == "low-resolution" else ResizeFirstUNet3Plus(net, upsampling)
