"""A 3x3 convolution with the same forward pass as ``nn.Conv2d`` and a backward pass that needs far less memory.

Why: MindSpore 2.10's CPU kernels for the two convolution gradients (``Conv2DBackpropInput``,
``Conv2DBackpropFilter``, oneDNN GEMM convolutions under the package's AVX2 cap) each keep an im2col-sized
buffer of their own, outside the memory pool, for as long as the compiled graph lives: about 1 GB for
every 80-channel convolution at 512x512, batch 2. Across UNet3+'s 45 convolutions that made a
fine-tuning step peak at 14 GB. This backward pass uses kernels that keep nothing:

* input gradient: the ordinary forward convolution of the output gradient with the weights flipped and
  transposed (a 3x3 'same' convolution's adjoint);
* weight gradient: nine batched matrix products, one per kernel tap, of the output gradient shifted by that
  tap's offset with the input read in place (see ``weight_gradient``).

It also avoids broadcasting element-wise products, whose CPU kernel keeps two 8-byte index arrays per
output element. The decoder's up-sampling branches go one step further (``upsample_and_convolve``): the
backward pass recomputes the up-sampled image from the small input instead of keeping it from the forward
pass. Measured effect: ``benchmarks/RESULTS.md``; gradients equal the stock ones to float32 rounding
(``tests/test_lean_conv.py``).
"""
from __future__ import annotations

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
        x = ops.depend(x, dout)  # build the padded copy only once the backward pass reaches this layer
        dweight = self.weight_gradient(zero_column_rows(x), dout)
        # The layers below wait for this one's weight gradient, so its buffers are gone before theirs exist.
        return self.input_gradient(weight, ops.depend(dout, dweight)), dweight

    def input_gradient(self, weight: Tensor, dout: Tensor) -> Tensor:
        flipped = ops.flip(weight, (2, 3)).transpose(1, 0, 2, 3)  # (in, out, 3, 3), taps reversed
        return self.adjoint_conv(dout, flipped)

    def weight_gradient(self, x_rows: Tensor, dout: Tensor) -> Tensor:
        """``dW[o, c, i, j] = sum over n, h, w of dout[n, o, h, w] * x[n, c, h + i - 1, w + j - 1]``.

        ``x_rows`` is the input as ``zero_column_rows`` lays it out: rows end to end, each followed by a
        zero, so that moving a pixel by ``(di, dj)`` is moving it by ``di * (W + 1) + dj`` along one axis;
        a one-column move that leaves the image lands on a zero instead of wrapping into the next row, and
        moving past the first or last row brings in zeros. Each tap is then one product of the shifted
        output gradient with the input, and the taps run one after another so that only one shifted copy
        exists at a time.
        """
        _, out_channels, _, width = dout.shape
        in_channels = x_rows.shape[1]
        row = width + 1
        dout_rows = zero_column_rows(dout)
        taps = []
        for di in range(-PADDING, PADDING + 1):
            for dj in range(-PADDING, PADDING + 1):
                # The copy itself must wait for the previous tap: ``depend`` on the copy's *result* would
                # still let the scheduler make all nine copies up front and hold them at once.
                source = ops.depend(dout_rows, taps[-1]) if taps else dout_rows
                shifted = _shift_last_axis(source, di * row + dj)
                taps.append(self.batch_matmul_bt(shifted, x_rows).sum(0))  # (out, in)
        return ops.stack(taps, 2).reshape(out_channels, in_channels, KERNEL, KERNEL)


class _UpsampleConv3x3Function(_Conv3x3Function):
    """``conv3x3(upsample(x), weight)`` whose backward pass never builds a full-resolution image.

    Both gradients are linear in the output gradient ``dout`` and the up-sampling is ``rows @ x @ columns.T``,
    so every sum over the large image can be moved to the small one: for each kernel tap ``(di, dj)``,
    ``z = rows_di.T @ dout @ columns_dj`` is the output gradient shifted by the tap and taken back to the
    input's resolution (``rows_di`` is ``rows`` moved by ``di``, which is the tap's shift and its zero
    padding in one constant matrix). Then ``dW[:, :, tap] = z . x`` and ``dx = sum over taps of
    W[:, :, tap].T @ z``. The stock gradients would build the up-sampled image (80 or 256 channels at full
    resolution) and its gradient; this needs only ``dout`` (16 channels) and nine low-resolution ``z``.
    """

    def __init__(self, forward_conv: ops.Conv2D, in_channels: int, factor: int) -> None:
        super().__init__(forward_conv, in_channels)
        self.factor = factor

    def upsampled_size(self, x: Tensor) -> Tuple[int, int]:
        return x.shape[2] * self.factor, x.shape[3] * self.factor

    def construct(self, x: Tensor, weight: Tensor) -> Tensor:
        return self.forward_conv(resize_bilinear_align_corners(x, self.upsampled_size(x)), weight)

    def bprop(self, x: Tensor, weight: Tensor, out: Tensor, dout: Tensor):
        batch, channels, height, width = x.shape
        out_channels = weight.shape[0]
        size = self.upsampled_size(x)
        rows = interpolation_matrix(height, size[0])  # (H, h)
        columns = interpolation_matrix(width, size[1])  # (W, w)
        offsets = range(-PADDING, PADDING + 1)
        by_column = [ops.matmul(dout, Tensor(_moved_rows(columns, dj))) for dj in offsets]  # (N, O, H, w)
        taps = []
        for di in offsets:
            rows_t = Tensor(_moved_rows(rows, di).T)
            for column_product in by_column:
                taps.append(ops.matmul(rows_t, column_product))  # (N, O, h, w)
        z = ops.stack(taps, 2).reshape(batch, out_channels * KERNEL * KERNEL, height * width)  # (N, O*9, h*w)
        x_flat = x.reshape(batch, channels, height * width)
        dweight = self.batch_matmul_bt(z, x_flat).sum(0)  # (O*9, C)
        dweight = dweight.reshape(out_channels, KERNEL * KERNEL, channels).transpose(0, 2, 1)
        weight_by_tap = weight.reshape(out_channels, channels, KERNEL * KERNEL).transpose(1, 0, 2)
        dx = ops.matmul(weight_by_tap.reshape(channels, -1), z)  # (N, C, h*w)
        return dx.reshape(x.shape), dweight.reshape(weight.shape)


def _moved_rows(matrix: np.ndarray, offset: int) -> np.ndarray:
    """``out[p] = matrix[p + offset]``, zero where ``p + offset`` is outside: a tap's shift and padding."""
    moved = np.zeros_like(matrix)
    length = matrix.shape[0]
    if offset >= 0:
        moved[:length - offset] = matrix[offset:]
    else:
        moved[-offset:] = matrix[:length + offset]
    return moved


def zero_column_rows(x: Tensor) -> Tensor:
    """``(N, C, H, W) -> (N, C, H * (W + 1))``: the rows end to end, each followed by one zero."""
    batch, channels, height, _ = x.shape
    padded = ops.concat((x, ops.zeros((batch, channels, height, 1), x.dtype)), 3)
    return padded.reshape(batch, channels, -1)


def _shift_last_axis(x: Tensor, offset: int) -> Tensor:
    """``y[..., q] = x[..., q - offset]``, zero where ``q - offset`` falls outside the axis."""
    if offset == 0:
        return x
    length = x.shape[-1]
    zeros = ops.zeros(x.shape[:-1] + (abs(offset),), x.dtype)
    if offset > 0:
        return ops.concat((zeros, x[..., :length - offset]), -1)
    return ops.concat((x[..., -offset:], zeros), -1)


class Conv3x3(nn.Conv2d):
    """``nn.Conv2d(in, out, 3, pad_mode="pad", padding=1)`` without bias, with the lean backward pass.

    Same parameter (``weight``), same initialisation and the same forward kernel as ``nn.Conv2d``, so
    checkpoints, BatchNorm folding and export treat it as the plain convolution it computes. With
    ``upsample_factor``, ``upsample_and_convolve(x)`` computes ``conv(upsample(x))`` (align-corners bilinear,
    ``factor`` times larger) without keeping the up-sampled image for the backward pass.
    ``lean_backward=False`` uses MindSpore's stock gradient kernels instead (for comparison, or on a
    device where they are the better choice).
    """

    def __init__(self, in_channels: int, out_channels: int, weight_init: str = "HeNormal",
                 upsample_factor: Optional[int] = None, lean_backward: bool = True) -> None:
        super().__init__(in_channels, out_channels, KERNEL, pad_mode="pad", padding=PADDING, weight_init=weight_init)
        self.lean_backward = bool(lean_backward)
        self.function = _Conv3x3Function(self.conv2d, in_channels)
        if upsample_factor is not None:
            self.upsample_function = _UpsampleConv3x3Function(self.conv2d, in_channels, upsample_factor)

    def construct(self, x: Tensor) -> Tensor:
        if self.lean_backward:
            return self.function(x, self.weight)
        return self.conv2d(x, self.weight)

    def upsample_and_convolve(self, x: Tensor) -> Tensor:
        if self.lean_backward:
            return self.upsample_function(x, self.weight)
        size = self.upsample_function.upsampled_size(x)
        return self.conv2d(resize_bilinear_align_corners(x, size), self.weight)
