"""UNet 3+ (Huang et al., ICASSP 2020, arXiv 2004.08790), parameter-for-parameter the MindSpore
model-zoo network behind the published LiTS2017 checkpoint, rewritten for MindSpore 2.x.

Every decoder stage ``d`` (4, 3, 2, 1) fuses five 16-channel branches, one per encoder level ``l``:

* ``l < d``:  ``h{l}_PT_hd{d}``  max-pool encoder feature h_l by ``2**(d-l)`` then conv-BN-ReLU;
* ``l == d``: ``h{l}_Cat_hd{d}`` conv-BN-ReLU on h_d as it is;
* ``l > d``:  ``hd{l}_UT_hd{d}`` bilinear (align-corners) up-sampling of decoder feature hd_l
  (hd5 is the bottom encoder feature) then conv-BN-ReLU;

concatenated in level order and fused by ``conv{d}d_1`` / ``bn{d}d_1`` + ReLU. The twenty branches are
built by one loop under exactly those published attribute names, so both the published training-step
checkpoint and a network-only checkpoint load strictly.
"""
from __future__ import annotations

from typing import List, NamedTuple, Sequence, Tuple

from mindspore import Tensor, nn, ops

from .blocks import UNetConv2, batch_norm, conv3x3, nearest_multiples, resize_bilinear_align_corners

ENCODER_WIDTHS: Tuple[int, ...] = (16, 32, 64, 128, 256)
BRANCH_CHANNELS = 16
SIZE_MULTIPLE = 2 ** (len(ENCODER_WIDTHS) - 1)  # four 2x poolings


class Branch(NamedTuple):
    """One decoder branch: where its input comes from and how it is resampled."""

    name: str  # published attribute prefix, e.g. "h1_PT_hd4"
    level: int  # 1..5, the level its input lives at
    resample: str  # "pool", "none" or "up"
    factor: int  # pooling kernel/stride, or up-sampling factor (1 for "none")


def decoder_branches(stage: int, n_levels: int = len(ENCODER_WIDTHS)) -> List[Branch]:
    """The five branches feeding decoder stage ``stage``, in the published concatenation order."""
    branches = []
    for level in range(1, n_levels + 1):
        if level < stage:
            branches.append(Branch(f"h{level}_PT_hd{stage}", level, "pool", 2 ** (stage - level)))
        elif level == stage:
            branches.append(Branch(f"h{level}_Cat_hd{stage}", level, "none", 1))
        else:
            branches.append(Branch(f"hd{level}_UT_hd{stage}", level, "up", 2 ** (level - stage)))
    return branches


class UNet3Plus(nn.Cell):
    """UNet 3+ returning logits (no sigmoid/softmax) of shape ``N x n_classes x H x W``.

    Args:
        in_channels: channels of the input image (3 for the published LiTS2017 weights).
        n_classes: output channels (1 for the published binary liver model).

    H and W must be multiples of 16 (the encoder halves them four times); ``unet3plus.predict`` pads
    arbitrary sizes for you.
    """

    def __init__(self, in_channels: int = 3, n_classes: int = 1) -> None:
        super().__init__()
        if in_channels < 1 or n_classes < 1:
            raise ValueError(f"in_channels and n_classes must be >= 1, got {in_channels} and {n_classes}")
        self.in_channels = in_channels
        self.n_classes = n_classes
        widths = ENCODER_WIDTHS
        n_levels = len(widths)
        fused_channels = BRANCH_CHANNELS * n_levels  # 80

        # Encoder: conv1..conv5, 2x2 max-pool between levels.
        level_in = in_channels
        for level, width in enumerate(widths, start=1):
            setattr(self, f"conv{level}", UNetConv2(level_in, width))
            level_in = width
        self.pool2x = nn.MaxPool2d(kernel_size=2, stride=2)

        # Decoder: stages 4..1, five branches each, then the fusion conv.
        plan = []
        for stage in range(n_levels - 1, 0, -1):
            branches = decoder_branches(stage, n_levels)
            for branch in branches:
                if branch.level <= stage:
                    branch_in = widths[branch.level - 1]
                else:  # up-sampled decoder output; level 5 is the encoder bottom
                    branch_in = widths[-1] if branch.level == n_levels else fused_channels
                if branch.resample == "pool":
                    setattr(self, branch.name, nn.MaxPool2d(kernel_size=branch.factor, stride=branch.factor))
                setattr(self, f"{branch.name}_conv", conv3x3(branch_in, BRANCH_CHANNELS))
                setattr(self, f"{branch.name}_bn", batch_norm(BRANCH_CHANNELS))
            setattr(self, f"conv{stage}d_1", conv3x3(fused_channels, fused_channels))
            setattr(self, f"bn{stage}d_1", batch_norm(fused_channels))
            plan.append((stage, tuple((b.name, b.level, b.resample) for b in branches)))
        self._decoder_plan = tuple(plan)
        self.relu = nn.ReLU()

        self.outconv1 = conv3x3(fused_channels, n_classes)

    # -- pieces usable on their own (backbone use) -------------------------------------------------
    def encode(self, x: Tensor) -> Tuple[Tensor, ...]:
        """Encoder features ``(h1, h2, h3, h4, h5)``, full resolution down to 1/16."""
        self._check_input(x)
        features = [self.conv1(x)]
        for level in range(2, len(ENCODER_WIDTHS) + 1):
            features.append(getattr(self, f"conv{level}")(self.pool2x(features[-1])))
        return tuple(features)

    def decode(self, encoder_features: Sequence[Tensor]) -> Tuple[Tensor, ...]:
        """Decoder features ``(hd1, hd2, hd3, hd4, hd5)``; hd5 is the encoder's bottom feature h5."""
        # at_level[l-1] holds h_l until stage l is decoded, then hd_l: exactly what later stages read.
        at_level = list(encoder_features)
        for stage, branches in self._decoder_plan:
            target_size = (at_level[stage - 1].shape[2], at_level[stage - 1].shape[3])
            outputs = []
            for name, level, resample in branches:
                x = at_level[level - 1]
                if resample == "pool":
                    x = getattr(self, name)(x)
                elif resample == "up":
                    x = resize_bilinear_align_corners(x, target_size)
                x = getattr(self, name + "_conv")(x)
                outputs.append(self.relu(getattr(self, name + "_bn")(x)))
            fused = getattr(self, f"conv{stage}d_1")(ops.cat(outputs, 1))
            at_level[stage - 1] = self.relu(getattr(self, f"bn{stage}d_1")(fused))
        return tuple(at_level)

    def construct(self, x: Tensor) -> Tensor:
        return self.outconv1(self.decode(self.encode(x))[0])

    # -- validation ---------------------------------------------------------------------------------
    def _check_input(self, x: Tensor) -> None:
        if x.ndim != 4:
            raise ValueError(
                f"UNet3Plus expects a 4-D tensor (N, {self.in_channels}, H, W), got a {x.ndim}-D tensor "
                f"of shape {x.shape}; add the batch axis, e.g. x[None] or x.expand_dims(0)."
            )
        if x.shape[1] != self.in_channels:
            raise ValueError(
                f"UNet3Plus was built for {self.in_channels} input channel(s) but got {x.shape[1]} "
                f"(input shape {x.shape}); build it with in_channels={x.shape[1]} or convert the image."
            )
        height, width = x.shape[2], x.shape[3]
        if height % SIZE_MULTIPLE != 0 or width % SIZE_MULTIPLE != 0:
            raise ValueError(
                f"UNet3Plus needs H and W divisible by {SIZE_MULTIPLE}, got H={height}, W={width}; "
                f"nearest valid sizes: H in {nearest_multiples(height, SIZE_MULTIPLE)}, "
                f"W in {nearest_multiples(width, SIZE_MULTIPLE)} "
                f"(pad or resize the image, or use unet3plus.predict, which pads for you)."
            )
