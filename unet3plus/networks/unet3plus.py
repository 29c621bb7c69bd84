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

Opt-in variants (off by default; the default network is exactly the published one, 171 parameters):

* ``deep_supervision=True``: side heads ``ds_head2`` .. ``ds_head5`` (3x3 conv with bias) on hd2, hd3, hd4
  and hd5, their logits resized bilinearly to the input size; hd1's head is the published ``outconv1``.
* ``cgm=True``: the classification-guided module ``cgm`` (dropout, 1x1 conv on hd5, global max-pool) that
  predicts, per class, whether the class is present in the image at all.

Their parameters carry new names (``ds_head*``, ``cgm.*``), so the published weights load into the shared
part and the new heads start freshly initialised. What ``construct`` returns:

* default network, any mode: logits ``N x n_classes x H x W``;
* with a variant, in training mode (``net.set_train(True)``): the tuple ``net.train_output_names`` names,
  ``(logits, side logits of hd2..hd5 [deep supervision], class logits N x n_classes [cgm])``;
* with a variant, in eval mode: logits ``N x n_classes x H x W`` only; with the CGM, the logits of classes it
  judges absent are replaced by ``ABSENT_LOGIT`` so that their sigmoid/softmax probability is exactly 0
  (the gate acts on probabilities, not by zeroing logits, which would give probability 0.5).
"""
from __future__ import annotations

from typing import List, Sequence, Tuple

from mindspore import Tensor, nn

from .base import BRANCH_CHANNELS, ENCODER_WIDTHS, FUSED_CHANNELS, UNet3PlusBase, decoder_branches, decoder_plan
from .blocks import UNetConv2, batch_norm, conv3x3, resize_bilinear_align_corners
from .variants import ClassificationGuidedModule, gate_logits, side_head


class UNet3Plus(UNet3PlusBase):
    """UNet 3+ returning logits (no sigmoid/softmax) of shape ``N x n_classes x H x W``.

    Args:
        in_channels: channels of the input image (3 for the published LiTS2017 weights).
        n_classes: output channels (1 for the published binary liver model; K for K classes, softmax).
        deep_supervision: add side heads on hd2..hd5 (returned in training mode only).
        cgm: add the classification-guided module (class logits in training; gating in eval mode).
        cgm_threshold: class-presence probability above which the CGM lets a class through.
        lean_backward: train with the package's lean convolution gradients (``networks/lean_conv.py``: a
            fraction of the memory of MindSpore's stock CPU kernels, same numbers); ``False`` uses the stock
            kernels. The forward pass and the parameters are the same either way.

    H and W must be multiples of 16 (the encoder halves them four times); ``unet3plus.predict`` pads
    arbitrary sizes for you.
    """

    def __init__(
        self,
        in_channels: int = 3,
        n_classes: int = 1,
        *,
        deep_supervision: bool = False,
        cgm: bool = False,
        cgm_threshold: float = 0.5,
        lean_backward: bool = True,
    ) -> None:
        super().__init__()
        if in_channels < 1 or n_classes < 1:
            raise ValueError(f"in_channels and n_classes must be >= 1, got {in_channels} and {n_classes}")
        self.in_channels = in_channels
        self.n_classes = n_classes
        widths = ENCODER_WIDTHS
        n_levels = len(widths)
        fused_channels = FUSED_CHANNELS  # 80

        # Encoder: conv1..conv5, 2x2 max-pool between levels.
        level_in = in_channels
        for level, width in enumerate(widths, start=1):
            setattr(self, f"conv{level}", UNetConv2(level_in, width, lean_backward=lean_backward))
            level_in = width
        self.pool2x = nn.MaxPool2d(kernel_size=2, stride=2)

        # Decoder: stages 4..1, five branches each, then the fusion conv.
        for stage in range(n_levels - 1, 0, -1):
            branches = decoder_branches(stage, n_levels)
            for branch in branches:
                if branch.level <= stage:
                    branch_in = widths[branch.level - 1]
                else:  # up-sampled decoder output; level 5 is the encoder bottom
                    branch_in = widths[-1] if branch.level == n_levels else fused_channels
                if branch.resample == "pool":
                    setattr(self, branch.name, nn.MaxPool2d(kernel_size=branch.factor, stride=branch.factor))
                upsample_factor = branch.factor if branch.resample == "up" else None
                setattr(self, f"{branch.name}_conv", conv3x3(branch_in, BRANCH_CHANNELS, upsample_factor, lean_backward))
                setattr(self, f"{branch.name}_bn", batch_norm(BRANCH_CHANNELS))
            setattr(self, f"conv{stage}d_1", conv3x3(fused_channels, fused_channels, lean_backward=lean_backward))
            setattr(self, f"bn{stage}d_1", batch_norm(fused_channels))
        self._decoder_plan = decoder_plan(n_levels)
        self.relu = nn.ReLU()

        self.outconv1 = conv3x3(fused_channels, n_classes, lean_backward=lean_backward)

        # Opt-in variants, under names the published checkpoint does not use.
        self.deep_supervision = bool(deep_supervision)
        self.has_cgm = bool(cgm)
        self.cgm_threshold = float(cgm_threshold)
        if self.deep_supervision:
            for level in range(2, n_levels + 1):
                level_channels = widths[-1] if level == n_levels else fused_channels
                setattr(self, f"ds_head{level}", side_head(level_channels, n_classes))
        if self.has_cgm:
            self.cgm = ClassificationGuidedModule(widths[-1], n_classes)
        self._has_variants = self.deep_supervision or self.has_cgm
        self._encoder_frozen = False

    @property
    def train_output_names(self) -> Tuple[str, ...]:
        """Names of the tuple ``construct`` returns in training mode (``("logits",)`` means plain logits)."""
        names = ["logits"]
        if self.deep_supervision:
            names += [f"side_hd{level}" for level in range(2, len(ENCODER_WIDTHS) + 1)]
        if self.has_cgm:
            names.append("class_logits")
        return tuple(names)

    def _upsample_and_convolve(self, name: str, x: Tensor, size: Tuple[int, int]) -> Tensor:
        """Computed at ``x``'s low resolution (``lean_conv.upsample_then_conv3x3``): the up-sampled image is
        never built, in either pass."""
        return getattr(self, name + "_conv").upsample_and_convolve(x)

    def construct(self, x: Tensor):
        decoded = self._decode(self.encode(x))
        logits = self.outconv1(decoded[0])
        if not self._has_variants:
            return logits
        if self.training:
            outputs = (logits,)
            if self.deep_supervision:
                outputs = outputs + self.side_logits(decoded, (x.shape[2], x.shape[3]))
            if self.has_cgm:
                outputs = outputs + (self.cgm(decoded[-1]),)
            return outputs
        if self.has_cgm:
            return gate_logits(logits, self.cgm(decoded[-1]), self.cgm_threshold)
        return logits

    def side_logits(self, decoded: Sequence[Tensor], size: Tuple[int, int]) -> Tuple[Tensor, ...]:
        """Deep-supervision logits from hd2..hd5, resized to ``size`` (needs ``deep_supervision=True``)."""
        outputs = ()
        for level in range(2, len(ENCODER_WIDTHS) + 1):
            side = getattr(self, f"ds_head{level}")(decoded[level - 1])
            outputs = outputs + (resize_bilinear_align_corners(side, size),)
        return outputs

    # -- fine-tuning helpers ------------------------------------------------------------------------
    def encoder_cells(self) -> List[nn.Cell]:
        """The encoder blocks ``conv1`` .. ``conv5`` (their parameters keep the published names)."""
        return [getattr(self, f"conv{level}") for level in range(1, len(ENCODER_WIDTHS) + 1)]

    def freeze_encoder(self) -> "UNet3Plus":
        """Stop training the encoder: no gradients for its weights and its BatchNorm statistics fixed.

        BatchNorm layers in the encoder then normalise with their stored running statistics even in
        training mode and never update them. Build the optimizer (``net.trainable_params()``) after this.
        """
        self._set_encoder_frozen(True)
        return self

    def unfreeze_encoder(self) -> "UNet3Plus":
        """Undo :meth:`freeze_encoder`: encoder weights trainable, BatchNorm back to train/eval behaviour."""
        self._set_encoder_frozen(False)
        return self

    @property
    def encoder_frozen(self) -> bool:
        return self._encoder_frozen

    def _set_encoder_frozen(self, frozen: bool) -> None:
        for cell in self.encoder_cells():
            for parameter in cell.get_parameters():
                if "moving_" not in parameter.name:  # statistics are never trainable
                    parameter.requires_grad = not frozen
            for _, sub_cell in cell.cells_and_names():
                if isinstance(sub_cell, nn.BatchNorm2d):
                    sub_cell.use_batch_statistics = False if frozen else None
        self._encoder_frozen = frozen
