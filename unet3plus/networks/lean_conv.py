"""A 3x3 convolution with the same forward pass as ``nn.Conv2d`` and a backward pass that needs far less memory.

Why: MindSpore 2.10's CPU kernels for the two convolution gradients (``Conv2DBackpropInput``,
``Conv2DBackpropFilter``, oneDNN GEMM convolutions under the package's AVX2 cap) each keep an im2col-sized
buffer of their own, outside the memory pool, for as long as the compiled graph lives: about 1 GB for
every 80-channel convolution at 512x512, batch 2. Across UNet3+'s 45 convolutions that made a
fine-tuning step peak at 14 GB. This backward pass uses kernels that keep nothing:

* input gradient: the ordinary forward convolution of the output gradient with the weights flipped and
  transposed (a 3x3 'same' convolution's adjoint);
* weight gradient: nine batched matrix products, one per kernel tap, of the output gradient shifted by that
  tap's offset with the input read in place (see ``weight_gradient``), computed before the input gradient
  so that one layer's buffers are gone before the next layer's exist.

It also avoids broadcasting element-wise products, whose CPU kernel keeps two 8-byte index arrays per
output element. The decoder's up-sampling branches (bilinear up-sampling, then a 3x3 convolution) go
further: ``upsample_then_conv3x3`` and ``_UpsampleConv3x3Function`` compute their output and both gradients
at the input's low resolution, so neither pass builds the up-sampled image (up to 256 channels at full
resolution) or its gradient, for a fraction of the arithmetic; the numbers differ from up-sampling first
only by float32 rounding (~1e-6 relative). Measured effect: ``benchmarks/RESULTS.md``; gradients equal the stock ones to float32 rounding
(``tests/test_lean_conv.py``).
"""
from __future__ import annotations

import functools
from typing import Optional, Tuple

import numpy as np

from mindspore import Tensor, nn, ops

from .resize import interpolation_matrix, resize_bilinear_align_corners

KERNEL = 3
PADDING = 1


class _Conv3x3Function(nn.Cell):
    """``conv3x3(x, weight)`` as a differentiable function with a hand-written ``bprop``."""

    def __init__(self, forward_conv: ops.Conv2D, in_channels: int) -> None:
        super().__init__()
        self.forward_conv = forward_conv  # nn.Conv2d's own primitive: same kernel, and ONNX export knows it
        self.adjoint_conv = ops.Conv2D(in_channels, KERNEL, pad_mode="pad", pad=PADDING)
        self.batch_matmul_bt = ops.BatchMatMul(transpose_b=True)

    def construct(self, x: Tensor, weight: Tensor) -> Tensor:
        return self.forward_conv(x, weight)

    def bprop(self, x: Tensor, weight: Tensor, out: Tensor, dout: Tensor):
        dweight = self.weight_gradient(x, dout)
        # The layers below wait for this one's weight gradient, so its buffers are gone before theirs exist.
        return self.input_gradient(weight, ops.depend(dout, dweight)), dweight

    def input_gradient(self, weight: Tensor, dout: Tensor) -> Tensor:
        flipped = ops.flip(weight, (2, 3)).transpose(1, 0, 2, 3)  # (in, out, 3, 3), taps reversed
        return self.adjoint_conv(dout, flipped)

    def weight_gradient(self, x: Tensor, dout: Tensor) -> Tensor:
        """``dW[o, c, i, j] = sum over n, p, q of x[n, c, p, q] * dout[n, o, p - di, q - dj]``, ``(di, dj) = (i - 1, j - 1)``.

        Each tap is one batched product of the output gradient, shifted by the tap with zeros coming in,
        with the input read in place (both flattened to one axis). The shift is built in two steps that
        only ever copy along the last axis, which MindSpore's CPU slicing does fast: the columns of each row
        first, then whole rows (a move along the flattened axis by a multiple of the width, which cannot
        wrap). The taps run one after another so that at most two shifted copies exist at a time.
        """
        batch, out_channels, height, width = dout.shape
        in_channels = x.shape[1]
        x_flat = x.reshape(batch, in_channels, height * width)
        taps = []
        for dj in range(-PADDING, PADDING + 1):
            # Each copy waits for the previous tap: ``depend`` on a copy's *result* would still let the
            # scheduler make every copy up front and hold them all at once.
            source = ops.depend(dout, taps[-1]) if taps else dout
            columns_moved = _shift_last_axis(source, dj).reshape(batch, out_channels, height * width)
            for di in range(-PADDING, PADDING + 1):
                source = ops.depend(columns_moved, taps[-1]) if taps else columns_moved
                shifted = _shift_last_axis(source, di * width)
                taps.append(self.batch_matmul_bt(shifted, x_flat).sum(0))  # (out, in)
        by_column_then_row = ops.stack(taps, 2).reshape(out_channels, in_channels, KERNEL, KERNEL)
        return by_column_then_row.transpose(0, 1, 3, 2)


class _UpsampleConv3x3Function(nn.Cell):
    """``conv3x3(upsample(x), weight)`` whose forward and backward passes never build a full-resolution image.

    Both gradients are linear in the output gradient ``dout`` and the up-sampling is ``rows @ x @ columns.T``,
    so every sum over the large image can be moved to the small one: for each kernel tap ``(di, dj)``,
    ``z = rows_di.T @ dout @ columns_dj`` is the output gradient shifted by the tap and taken back to the
    input's resolution (``rows_di`` is ``rows`` moved by ``di``, which is the tap's shift and its zero
    padding in one constant matrix). Then ``dW[:, :, tap] = z . x`` and ``dx = sum over taps of
    W[:, :, tap].T @ z``. The stock gradients would build the up-sampled image (80 or 256 channels at full
    resolution) and its gradient; this needs only ``dout`` (16 channels) and nine low-resolution ``z``.
    """

    def __init__(self, factor: int) -> None:
        super().__init__()
        self.factor = factor
        self.batch_matmul_bt = ops.BatchMatMul(transpose_b=True)

    def upsampled_size(self, x: Tensor) -> Tuple[int, int]:
        return x.shape[2] * self.factor, x.shape[3] * self.factor

    def construct(self, x: Tensor, weight: Tensor) -> Tensor:
        return upsample_then_conv3x3(x, weight, self.factor)

    def bprop(self, x: Tensor, weight: Tensor, out: Tensor, dout: Tensor):
        batch, channels, height, width = x.shape
        out_channels = weight.shape[0]
        size = self.upsampled_size(x)
        by_column = [ops.matmul(dout, Tensor(columns))  # (N, O, H, w)
                     for columns in moved_interpolation_matrices(width, size[1])]
        taps = []
        for rows in moved_interpolation_matrices(height, size[0]):
            rows_t = Tensor(rows.T)
            for column_product in by_column:
                taps.append(ops.matmul(rows_t, column_product))  # (N, O, h, w)
        z = ops.stack(taps, 2).reshape(batch, out_channels * KERNEL * KERNEL, height * width)  # (N, O*9, h*w)
        x_flat = x.reshape(batch, channels, height * width)
        dweight = self.batch_matmul_bt(z, x_flat).sum(0)  # (O*9, C)
        dweight = dweight.reshape(out_channels, KERNEL * KERNEL, channels).transpose(0, 2, 1)
        weight_by_tap = weight.reshape(out_channels, channels, KERNEL * KERNEL).transpose(1, 0, 2)
        dx = ops.matmul(weight_by_tap.reshape(channels, -1), z)  # (N, C, h*w)
        return dx.reshape(x.shape), dweight.reshape(weight.shape)


def upsample_then_conv3x3(x: Tensor, weight: Tensor, factor: int, bias: Optional[Tensor] = None,
                          window: Optional[Tuple[Tensor, Tensor]] = None) -> Tensor:
    """``conv3x3(upsample(x), weight) (+ bias)`` without building the up-sampled image.

    ``upsample(x)`` is ``rows @ x @ columns.T``, so each kernel tap ``(di, dj)`` contributes
    ``rows_di @ (W[:, :, tap] x) @ columns_dj.T``: a 1x1 convolution at the input's low resolution, then the
    two interpolation matrices moved by the tap (``moved_interpolation_matrices``: the shift and the zero padding in one
    constant). The nine taps are summed inside two matrix products by stacking the moved matrices. For the
    decoder's 256-channel, 16x branch this is about a twentieth of the arithmetic of up-sampling first, and
    its largest intermediate has the output's 16 channels instead of the input's 256.

    A ``bias`` rides along as one more input channel of ones whose centre-tap weight is the bias: the
    interpolation matrices' rows sum to one, so it comes out as ``+ bias`` everywhere. (``ops.bias_add``
    would be simpler, but MindSpore 2.10 exports it to ONNX as an ``Add`` with mismatched shapes.)

    ``window``: ``(rows_by_tap, columns_by_tap_t)`` as tensors (``stacked_taps`` of ``window_matrix``) for
    ``x`` cut from a larger image: the larger image's up-sampling restricted to the cut. They must be graph
    inputs, not NumPy built here: under ``jit`` those become constants cached per input shape, so every
    offset of one crop shape would silently get the first offset's matrices.
    """
    batch, channels, height, width = x.shape
    out_channels = weight.shape[0]
    if window is None:
        rows_by_tap, columns_by_tap_t = (Tensor(matrix) for matrix in stacked_taps(
            interpolation_matrix(height, height * factor), interpolation_matrix(width, width * factor)))
    else:
        rows_by_tap, columns_by_tap_t = window
    # Rows of the 1x1 convolution ordered (dj, o, di): its output then reshapes, without copying, into
    # (N, dj, O, di * h + row, w), which is what ``rows_by_tap`` multiplies.
    taps_weight = weight.transpose(3, 0, 2, 1).reshape(KERNEL * out_channels * KERNEL, channels)
    x_flat = x.reshape(batch, channels, height * width)
    if bias is not None:
        bias = bias.reshape(-1)  # a plain tensor: ``stack`` refuses to mix a Parameter with tensors
        no_bias = ops.zeros_like(bias)
        centre_row_only = ops.stack((no_bias, bias, no_bias), 1)  # (O, di): the bias at di = 0
        centre_only = ops.stack((ops.zeros_like(centre_row_only), centre_row_only, ops.zeros_like(centre_row_only)))
        taps_weight = ops.concat((taps_weight, centre_only.reshape(-1, 1)), 1)  # rows (dj, o, di), bias at (0, o, 0)
        x_flat = ops.concat((x_flat, ops.ones((batch, 1, height * width), x.dtype)), 1)
    low = ops.matmul(taps_weight, x_flat)
    low = low.reshape(batch, KERNEL, out_channels, KERNEL * height, width)
    tall = ops.matmul(rows_by_tap, low)  # (N, dj, O, H, w)
    tall = tall.transpose(0, 2, 3, 1, 4).reshape(batch, out_channels, rows_by_tap.shape[0], KERNEL * width)
    return ops.matmul(tall, columns_by_tap_t)  # (N, O, H, W)


def stacked_taps(rows: np.ndarray, columns: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """``(rows_by_tap (H, 3h), columns_by_tap_t (3w, W))``: the row and column interpolation matrices moved
    by each tap and stacked, as ``upsample_then_conv3x3`` multiplies them."""
    rows_by_tap = np.concatenate(moved_matrices(rows), axis=1)
    columns_by_tap_t = np.concatenate([moved.T for moved in moved_matrices(columns)], axis=0)
    return np.ascontiguousarray(rows_by_tap), np.ascontiguousarray(columns_by_tap_t)


def window_matrix(full_in: int, full_out: int, in_offset: int, in_size: int, out_offset: int,
                  out_size: int) -> np.ndarray:
    """The ``full_in -> full_out`` interpolation matrix seen from a crop: rows ``out_offset ..`` and columns
    ``in_offset ..``. The weight an edge row puts on the one coarse pixel beyond the crop moves onto the
    nearest held one (such rows lie in the crop's margin, whose answer is thrown away); rows still sum to one."""
    rows = interpolation_matrix(full_in, full_out)[out_offset:out_offset + out_size]
    window = rows[:, in_offset:in_offset + in_size].copy()
    window[:, 0] += rows[:, :in_offset].sum(1)
    window[:, -1] += rows[:, in_offset + in_size:].sum(1)
    return window


@functools.lru_cache(maxsize=None)
def moved_interpolation_matrices(in_size: int, out_size: int) -> Tuple[np.ndarray, ...]:
    """``moved_matrices`` of the ``(out_size, in_size)`` interpolation matrix. Cached: PyNative calls would
    otherwise rebuild them on every step. Read-only."""
    moved_by_offset = moved_matrices(interpolation_matrix(in_size, out_size))
    for moved in moved_by_offset:
        moved.setflags(write=False)
    return moved_by_offset


def moved_matrices(matrix: np.ndarray) -> Tuple[np.ndarray, ...]:
    """``matrix`` moved by each tap offset -1, 0, 1: row ``p`` of the one for offset ``d`` is row ``p + d``
    of the original, zero where that is outside (the tap's shift and its zero padding)."""
    out_size = matrix.shape[0]
    moved_by_offset = []
    for offset in range(-PADDING, PADDING + 1):
        moved = np.zeros_like(matrix)
        if offset >= 0:
            moved[:out_size - offset] = matrix[offset:]
        else:
            moved[-offset:] = matrix[:out_size + offset]
        moved_by_offset.append(moved)
    return tuple(moved_by_offset)


def _shift_last_axis(x: Tensor, offset: int) -> Tensor:
    """``y[..., q] = x[..., q - offset]``, zero where ``q - offset`` falls outside the axis."""
    if offset == 0:
        return x
    length = x.shape[-1]
    if abs(offset) >= length:  # e.g. a 1-pixel-wide feature map: every tap but the centre reads padding
        return ops.zeros_like(x)
    zeros = ops.zeros(x.shape[:-1] + (abs(offset),), x.dtype)
    if offset > 0:
        return ops.concat((zeros, x[..., :length - offset]), -1)
    return ops.concat((x[..., -offset:], zeros), -1)


class Conv3x3(nn.Conv2d):
    """``nn.Conv2d(in, out, 3, pad_mode="pad", padding=1)`` without bias, with the lean backward pass.

    Same parameter (``weight``), same initialisation and the same forward kernel as ``nn.Conv2d``, so
    checkpoints, BatchNorm folding and export treat it as the plain convolution it computes. With
    ``upsample_factor``, ``upsample_and_convolve(x)`` computes ``conv(upsample(x))`` (align-corners bilinear,
    ``factor`` times larger) at the input's resolution (``upsample_then_conv3x3``), in training and in
    inference. ``lean_backward=False`` trains with MindSpore's stock gradient kernels instead (for
    comparison, or on a device where they are the better choice); up-sampling branches then resize first.
    """

    def __init__(self, in_channels: int, out_channels: int, weight_init: str = "HeNormal",
                 upsample_factor: Optional[int] = None, lean_backward: bool = True) -> None:
        super().__init__(in_channels, out_channels, KERNEL, pad_mode="pad", padding=PADDING, weight_init=weight_init)
        self.lean_backward = bool(lean_backward)
        self.upsample_factor = upsample_factor
        self.function = _Conv3x3Function(self.conv2d, in_channels)
        if upsample_factor is not None:
            self.upsample_function = _UpsampleConv3x3Function(upsample_factor)

    def construct(self, x: Tensor) -> Tensor:
        if self.lean_backward:
            return self.function(x, self.weight)
        return self.conv2d(x, self.weight)

    def upsample_and_convolve(self, x: Tensor) -> Tensor:
        if not self.training:
            return upsample_then_conv3x3(x, self.weight, self.upsample_factor)
        if self.lean_backward:
            return self.upsample_function(x, self.weight)
        size = self.upsample_function.upsampled_size(x)
        return self.conv2d(resize_bilinear_align_corners(x, size), self.weight)
