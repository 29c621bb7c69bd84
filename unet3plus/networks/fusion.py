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

from typing import Tuple

import numpy as np
from mindspore import Tensor, nn

from .base import ENCODER_WIDTHS, UNet3PlusBase, decoder_plan
from .lean_conv import upsample_then_conv3x3
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

    def _upsample_and_convolve(self, name: str, x: Tensor, size: Tuple[int, int]) -> Tensor:
        """At ``x``'s low resolution, as ``UNet3Plus`` does, with the folded convolution's bias."""
        conv = getattr(self, name + "_conv")  # folded: a 3x3 nn.Conv2d with a bias
        return upsample_then_conv3x3(x, conv.weight, size[0] // x.shape[2], conv.bias)

    def construct(self, x: Tensor) -> Tensor:
        return self.outconv1(self._decode(self.encode(x))[0])


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
