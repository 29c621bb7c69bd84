"""The inference-only form of UNet3+: the same logits with less work.

Every conv -> BatchNorm pair becomes one convolution with a bias (eval-mode BatchNorm is an affine map per
channel, so it folds into the preceding bias-free conv's weights), and each up-sampling branch (bilinear
``align_corners=True`` resize, then a 3x3 conv) is computed at the input's low resolution
(``lean_conv.upsample_then_conv3x3``, the path ``UNet3Plus`` itself takes), so the up-sampled image is never
built. Resize-first alternatives, measured against it, live in ``benchmarks/resize_modes.py``.

``optimize_for_inference`` is what prediction and export call. The result is eval-only: it has no
BatchNorm to train.
"""
from __future__ import annotations

from typing import Any, Optional, Sequence, Tuple

import numpy as np
from mindspore import Tensor, nn

from .base import ENCODER_WIDTHS, SIZE_MULTIPLE, UNet3PlusBase, decoder_plan, up_branches
from .lean_conv import stacked_taps, upsample_then_conv3x3, window_matrix
from .unet3plus import UNet3Plus


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


class InferenceUNet3Plus(UNet3PlusBase):
    """UNet3+ forward with BatchNorm folded into the convolutions; eval-only, same logits.

    Built by ``fuse_batchnorm`` / ``optimize_for_inference`` from a trained ``UNet3Plus``; attribute names
    follow the source network (``conv1.conv.0``, ``h1_PT_hd4_conv``, ...) and every BatchNorm becomes an
    identity, so the forward pass is the shared ``UNet3PlusBase`` walk, not a copy of it.
    """

    def __init__(self, source: UNet3Plus) -> None:
        if not isinstance(source, UNet3Plus):
            raise TypeError(f"fuse_batchnorm expects a unet3plus.UNet3Plus, got {type(source).__name__}")
        if source.has_cgm:
            raise ValueError("fuse_batchnorm / optimize_for_inference do not implement the classification-guided "
                             "module (cgm=True) yet; run that network as it is (net.set_train(False)).")
        super().__init__()
        self.in_channels = source.in_channels
        self.n_classes = source.n_classes
        self.model_config = source.model_config
        self.relu = nn.ReLU()
        self.pool2x = nn.MaxPool2d(kernel_size=2, stride=2)
        for level in range(1, len(ENCODER_WIDTHS) + 1):
            layers = list(getattr(source, f"conv{level}").conv.cell_list)  # conv, bn, relu, conv, bn, relu
            fused = []
            for index in range(0, len(layers), 3):
                fused += [folded_conv(layers[index], layers[index + 1]), nn.ReLU()]
            setattr(self, f"conv{level}", nn.SequentialCell(fused))
        self._decoder_plan = decoder_plan()
        for stage, branches in self._decoder_plan:
            for name, level, resample in branches:
                if resample == "pool":
                    factor = 2 ** (stage - level)
                    setattr(self, name, nn.MaxPool2d(kernel_size=factor, stride=factor))
                setattr(self, name + "_conv", folded_conv(getattr(source, name + "_conv"), getattr(source, name + "_bn")))
                setattr(self, name + "_bn", nn.Identity())
            setattr(self, f"conv{stage}d_1", folded_conv(getattr(source, f"conv{stage}d_1"), getattr(source, f"bn{stage}d_1")))
            setattr(self, f"bn{stage}d_1", nn.Identity())
        self.outconv1 = copied_conv(source.outconv1)
        self.set_train(False)

    def set_train(self, mode: bool = True) -> "InferenceUNet3Plus":
        if mode:
            raise ValueError("InferenceUNet3Plus has no BatchNorm to train; train the original UNet3Plus and "
                             "call optimize_for_inference(net) again afterwards.")
        return super().set_train(False)

    def _upsample_and_convolve(self, name: str, x: Tensor, size: Tuple[int, int], window: Optional[Any] = None) -> Tensor:
        """At ``x``'s low resolution, as ``UNet3Plus`` does, with the folded convolution's bias."""
        conv = getattr(self, name + "_conv")  # folded: a 3x3 nn.Conv2d with a bias
        return upsample_then_conv3x3(x, conv.weight, size[0] // x.shape[2], conv.bias, window)

    def construct(self, x: Tensor) -> Tensor:
        return self.outconv1(self._decode(self.encode(x))[0])

    def forward_window(self, x: Tensor, windows: Sequence[Any]) -> Tensor:
        """Logits of ``x``, a crop of a larger image, whose up-sampling branches use ``windows`` (one
        ``(rows_by_tap, columns_by_tap_t)`` per ``up_branches`` entry) instead of ``x``'s own matrices."""
        return self.outconv1(self._decode(self.encode(x), windows)[0])


def window_layout(crop: Tuple[int, int]) -> Tuple[Tuple[int, int, int, Tuple[int, int], Tuple[int, int]], ...]:
    """Where each up-sampling branch's two matrices lie in the flat vector ``window_vector`` builds for
    crops of ``crop`` = ``(h, w)``: ``(start, middle, stop, rows shape, columns shape)`` per ``up_branches``."""
    layout, start = [], 0
    for stage, level in up_branches():
        out_h, out_w = crop[0] >> (stage - 1), crop[1] >> (stage - 1)
        in_h, in_w = crop[0] >> (level - 1), crop[1] >> (level - 1)
        middle = start + out_h * 3 * in_h
        stop = middle + 3 * in_w * out_w
        layout.append((start, middle, stop, (out_h, 3 * in_h), (3 * in_w, out_w)))
        start = stop
    return tuple(layout)


def window_vector(full: Tuple[int, int], offset: Tuple[int, int], crop: Tuple[int, int]) -> np.ndarray:
    """The flat float32 vector ``PositionedUNet3Plus`` takes for the crop ``offset .. offset + crop`` of an
    image of size ``full`` (all multiples of 16): every branch's ``stacked_taps`` of its ``window_matrix``."""
    if any(value % SIZE_MULTIPLE for value in (*full, *offset, *crop)) or any(
            o < 0 or o + c > f for f, o, c in zip(full, offset, crop)):
        raise ValueError(f"crop {crop} at {offset} must lie inside {full}, all multiples of {SIZE_MULTIPLE}")
    parts = []
    for stage, level in up_branches():
        axes = [window_matrix(f >> (level - 1), f >> (stage - 1), o >> (level - 1), c >> (level - 1),
                              o >> (stage - 1), c >> (stage - 1)) for f, o, c in zip(full, offset, crop)]
        parts += [taps.ravel() for taps in stacked_taps(*axes)]
    return np.concatenate(parts).astype(np.float32)


class PositionedUNet3Plus(nn.Cell):
    """A folded network on crops of one shape ``crop`` cut from larger images, with the larger image's
    up-sampling: ``net(x, window_vector(full, offset, crop))``. Offsets and sizes are multiples of 16, so every
    pooled level lines up with the full image's; given the crop's context (a margin of 32 px or more around
    what matters), the logits inside equal the full image's to float rounding, where a plain crop differs.
    The matrices are an input, so one compiled graph or ONNX export serves every offset of a crop shape."""

    def __init__(self, folded: InferenceUNet3Plus, crop: Tuple[int, int]) -> None:
        super().__init__()
        self.net = folded
        self.model_config = folded.model_config
        self.in_channels, self.n_classes = folded.in_channels, folded.n_classes
        self.crop = (int(crop[0]), int(crop[1]))
        self._layout = window_layout(self.crop)
        self.set_train(False)

    def construct(self, x: Tensor, windows: Tensor) -> Tensor:
        taps = ()
        for start, middle, stop, rows_shape, columns_shape in self._layout:
            taps = taps + ((windows[start:middle].reshape(rows_shape), windows[middle:stop].reshape(columns_shape)),)
        return self.net.forward_window(x, taps)


def fuse_batchnorm(net: UNet3Plus) -> InferenceUNet3Plus:
    """An eval-only copy of ``net`` with every BatchNorm folded into its convolution (same logits).

    ``net`` itself is left untouched (its weights are copied), so it can still be trained. Deep-supervision
    heads are dropped: in eval mode the network returns only the main logits anyway.
    """
    return InferenceUNet3Plus(net)


def optimize_for_inference(net: UNet3Plus) -> InferenceUNet3Plus:
    """The fastest measured eval-only form of ``net`` (see benchmarks/RESULTS.md); same logits to ~1e-5.

    Call it once after loading weights (and again after any further training); keep the original
    ``net`` for training. The result exports to ONNX and MINDIR.
    """
    return fuse_batchnorm(net)
