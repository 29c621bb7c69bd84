"""Opt-in additions to UNet3+ from the paper: deep-supervision side heads and the classification-guided
module (CGM). They live under parameter names the published checkpoint does not use (``ds_head*``,
``cgm.*``), so pretrained weights load into the shared network and these start freshly initialised.
"""
from __future__ import annotations

from mindspore import Tensor, nn, ops

# Replaces the logits of classes the CGM judges absent: sigmoid(-1e4) and its softmax share are exactly 0.0
# in float32, so gating these logits is the same as multiplying the probabilities by 0.
ABSENT_LOGIT = -1.0e4


def side_head(in_channels: int, n_classes: int) -> nn.Conv2d:
    """A deep-supervision head: 3x3 conv with bias to ``n_classes`` logits (as in the paper's code)."""
    return nn.Conv2d(in_channels, n_classes, 3, pad_mode="pad", padding=1, has_bias=True, weight_init="HeNormal")


class ClassificationGuidedModule(nn.Cell):
    """Predicts per class whether it appears in the image: dropout -> 1x1 conv -> global max-pool.

    Returns class logits ``N x n_classes``; train them with :class:`unet3plus.losses.ClassPresenceLoss`.
    """

    def __init__(self, in_channels: int, n_classes: int, dropout: float = 0.5) -> None:
        super().__init__()
        self.dropout = nn.Dropout(p=dropout)
        self.conv = nn.Conv2d(in_channels, n_classes, 1, has_bias=True, weight_init="HeNormal")

    def construct(self, deepest_features: Tensor) -> Tensor:
        scores = self.conv(self.dropout(deepest_features))
        return scores.max(axis=(2, 3))


def class_presence(class_logits: Tensor, threshold: float = 0.5) -> Tensor:
    """Boolean ``N x C``: the classes the CGM says are present (sigmoid probability >= ``threshold``)."""
    present = ops.sigmoid(class_logits) >= threshold
    if class_logits.shape[1] > 1:  # multi-class (softmax) output: background is always allowed
        present = ops.concat((ops.ones_like(present[:, :1]), present[:, 1:]), 1)
    return present


def gate_logits(logits: Tensor, class_logits: Tensor, threshold: float = 0.5) -> Tensor:
    """Logits whose absent classes are set to ``ABSENT_LOGIT``: their probabilities become exactly 0."""
    present = class_presence(class_logits, threshold).expand_dims(2).expand_dims(3)
    return ops.where(present, logits, ops.full_like(logits, ABSENT_LOGIT))

