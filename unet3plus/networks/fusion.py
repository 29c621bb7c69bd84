"""Inference-only rewrites of UNet3+ that compute the same logits with less work.

* ``fuse_batchnorm``: every conv -> BatchNorm pair becomes one convolution with a bias (eval-mode
  BatchNorm is an affine map per channel, so it folds into the preceding bias-free conv's weights).
* up-sampling: each up-sampling branch (bilinear ``align_corners=True`` resize, then a 3x3 conv) is by
  default computed at the input's low resolution ("low-resolution", ``lean_conv.upsample_then_conv3x3``,
  the same path ``UNet3Plus`` itself takes): a 1x1 conv per kernel tap, then the two interpolation matrices
  moved by the tap, so the up-sampled image is never built. The alternatives resize first: two dense
  matrix products ("matmul"), a two-tap gather-and-blend ("gather", 1.5x slower, 4x the memory) or
  MindSpore's own resize kernel ("interpolate", does not export to ONNX). Same numbers to float32 rounding.

``optimize_for_inference`` applies what measured best (``benchmarks/RESULTS.md``) and is what prediction
and export should call. The result is eval-only: it has no BatchNorm to train.
"""
from __future__ import annotations

from typing import Tuple

import numpy as np

from mindspore import Tensor, nn, ops

from .blocks import interpolation_matrix, resize_bilinear_align_corners
from .lean_conv import upsample_then_conv3x3
from .unet3plus import ENCODER_WIDTHS, UNet3Plus

UPSAMPLING_MODES = ("low-resolution", "matmul", "gather", "interpolate")


def folded_conv(conv: nn.Conv2d, bn: nn.BatchNorm2d) -> nn.Conv2d:
    """A biased convolution equal to ``bn(conv(x))`` with ``bn`` in eval mode."""
    weight = conv.weight.asnumpy().astype(np.float64)
    scale = bn.gamma.asnumpy() / np.sqrt(bn.moving_variance.asnumpy().astype(np.float64) + bn.eps)
    bias = bn.beta.asnumpy() - bn.moving_mean.asnumpy() * scale
    if conv.has_bias:
        bias = bias + conv.bias.asnumpy() * scale
    fused = nn.Conv2d(conv.in_channels, conv.out_channels, conv.kernel_size, stride=conv.stride,
                      pad_mode=conv.pad_mode, padding=conv.padding, dilation=conv.dilation, group=conv.group,
                      has_bias=True, data_format=conv.data_format)
    fused.weight.set_data(Tensor((weight * scale[:, None, None, None]).astype(np.float32)))
    fused.bias.set_data(Tensor(bias.astype(np.float32)))
    return fused


def copied_conv(conv: nn.Conv2d) -> nn.Conv2d:
    """An independent copy of a convolution (the optimised network never shares the trainable one's weights)."""
    copy = nn.Conv2d(conv.in_channels, conv.out_channels, conv.kernel_size, stride=conv.stride,
                     pad_mode=conv.pad_mode, padding=conv.padding, dilation=conv.dilation, group=conv.group,
                     has_bias=conv.has_bias, data_format=conv.data_format)
    copy.weight.set_data(Tensor(conv.weight.asnumpy()))
    if conv.has_bias:
        copy.bias.set_data(Tensor(conv.bias.asnumpy()))
    return copy


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


class InferenceUNet3Plus(nn.Cell):
    """UNet3+ forward with BatchNorm folded into the convolutions; eval-only, same logits.

    Built by ``fuse_batchnorm`` / ``optimize_for_inference`` from a trained ``UNet3Plus``; attribute names
    follow the source network (``conv1.conv.0``, ``h1_PT_hd4_conv``, ...) and every BatchNorm becomes an
    identity, so the forward pass is ``UNet3Plus``'s own ``encode``/``decode``, not a copy of it.
    """

    def __init__(self, source: UNet3Plus, upsampling: str = "low-resolution") -> None:
        super().__init__()
        if upsampling not in UPSAMPLING_MODES:
            raise ValueError(f"upsampling must be one of {UPSAMPLING_MODES}, got {upsampling!r}")
        self.in_channels = source.in_channels
        self.n_classes = source.n_classes
        self.upsampling = upsampling
        self.relu = nn.ReLU()
        self.pool2x = nn.MaxPool2d(kernel_size=2, stride=2)
        for level in range(1, len(ENCODER_WIDTHS) + 1):
            layers = list(getattr(source, f"conv{level}").conv.cell_list)  # conv, bn, relu, conv, bn, relu
            fused = []
            for index in range(0, len(layers), 3):
                fused += [folded_conv(layers[index], layers[index + 1]), nn.ReLU()]
            setattr(self, f"conv{level}", nn.SequentialCell(fused))
        for stage, branches in source._decoder_plan:
            for name, _, resample in branches:
                if resample == "pool":
                    setattr(self, name, getattr(source, name))  # MaxPool2d: stateless
                setattr(self, name + "_conv", folded_conv(getattr(source, name + "_conv"), getattr(source, name + "_bn")))
                setattr(self, name + "_bn", nn.Identity())
            setattr(self, f"conv{stage}d_1", folded_conv(getattr(source, f"conv{stage}d_1"), getattr(source, f"bn{stage}d_1")))
            setattr(self, f"bn{stage}d_1", nn.Identity())
        self._decoder_plan = source._decoder_plan
        self.outconv1 = copied_conv(source.outconv1)
        self.set_train(False)

    # The same forward pass and shape checks (with the same messages) as the trainable network.
    _check_input = UNet3Plus._check_input
    encode = UNet3Plus.encode
    decode = UNet3Plus.decode

    def set_train(self, mode: bool = True) -> "InferenceUNet3Plus":
        if mode:
            raise ValueError("InferenceUNet3Plus has no BatchNorm to train; train the original UNet3Plus and "
                             "call optimize_for_inference(net) again afterwards.")
        return super().set_train(False)

    def _upsample_and_convolve(self, name: str, x: Tensor, size: Tuple[int, int]) -> Tensor:
        conv = getattr(self, name + "_conv")  # folded: a 3x3 nn.Conv2d with a bias
        if self.upsampling == "low-resolution":
            return upsample_then_conv3x3(x, conv.weight, size[0] // x.shape[2], conv.bias)
        return conv(self._resize(x, size))

    def _resize(self, x: Tensor, size: Tuple[int, int]) -> Tensor:
        if self.upsampling == "gather":
            return resize_bilinear_two_tap(x, size)
        if self.upsampling == "interpolate":
            return resize_bilinear_interpolate(x, size)
        return resize_bilinear_align_corners(x, size)  # GRAPH mode resolves the branch at compile time

    def construct(self, x: Tensor) -> Tensor:
        return self.outconv1(self.decode(self.encode(x))[0])


def fuse_batchnorm(net: UNet3Plus, upsampling: str = "low-resolution") -> InferenceUNet3Plus:
    """An eval-only copy of ``net`` with every BatchNorm folded into its convolution (same logits).

    ``net`` itself is left untouched (its weights are copied), so it can still be trained. Deep-supervision
    heads are dropped: in eval mode the network returns only the main logits anyway.
    """
    if not isinstance(net, UNet3Plus):
        raise TypeError(f"fuse_batchnorm expects a unet3plus.UNet3Plus, got {type(net).__name__}")
    if getattr(net, "has_cgm", False):
        raise ValueError("fuse_batchnorm / optimize_for_inference do not implement the classification-guided "
                         "module (cgm=True) yet; run that network as it is (net.set_train(False)).")
    return InferenceUNet3Plus(net, upsampling=upsampling)


def optimize_for_inference(net: UNet3Plus) -> InferenceUNet3Plus:
    """The fastest measured eval-only form of ``net`` (see benchmarks/RESULTS.md); same logits to ~1e-5.

    Call it once after loading weights (and again after any further training); keep the original
    ``net`` for training. The result exports to ONNX and MINDIR.
    """
    return fuse_batchnorm(net, upsampling=DEFAULT_UPSAMPLING)


DEFAULT_UPSAMPLING = "low-resolution"  # the fastest measured (RESULTS.md), and it exports to ONNX
