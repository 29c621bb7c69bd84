"""Small building blocks of UNet3+, named so that parameters keep the published checkpoint's names."""
from __future__ import annotations

from typing import Optional, Sequence

from mindspore import Tensor, nn

from .lean_conv import Conv3x3
from .resize import interpolation_matrix, resize_bilinear_align_corners  # noqa: F401  (public here too)


def conv3x3(in_channels: int, out_channels: int, upsample_factor: Optional[int] = None,
            lean_backward: bool = True) -> nn.Conv2d:
    """3x3 'same' convolution without bias, He-normal initialised, as in the published model.

    An ``nn.Conv2d`` whose backward pass needs a fraction of the stock kernels' memory (``lean_conv``);
    ``upsample_factor`` adds its fused up-sample-then-convolve path.
    """
    return Conv3x3(in_channels, out_channels, weight_init="HeNormal", upsample_factor=upsample_factor,
                   lean_backward=lean_backward)


def batch_norm(channels: int) -> nn.BatchNorm2d:
    """BatchNorm with MindSpore's defaults (eps 1e-5, momentum 0.9), the published settings."""
    return nn.BatchNorm2d(channels, gamma_init="ones")


class UNetConv2(nn.Cell):
    """Two (conv3x3 -> BN -> ReLU) layers; parameters ``conv.{0,1,3,4}.*`` as published."""

    def __init__(self, in_channels: int, out_channels: int, n_layers: int = 2, lean_backward: bool = True) -> None:
        super().__init__()
        layers = []
        for _ in range(n_layers):
            conv = conv3x3(in_channels, out_channels, lean_backward=lean_backward)
            layers += [conv, batch_norm(out_channels), nn.ReLU()]
            in_channels = out_channels
        self.conv = nn.SequentialCell(layers)

    def construct(self, x: Tensor) -> Tensor:
        return self.conv(x)


def nearest_multiples(value: int, multiple: int) -> Sequence[int]:
    """The valid sizes just below and above ``value`` (below omitted when it would be 0)."""
    below = (value // multiple) * multiple
    above = below + multiple
    return [below, above] if below > 0 else [above]
