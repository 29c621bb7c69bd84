"""Losses that combine the outputs of the network variants: deep supervision and the CGM."""
from __future__ import annotations

from typing import Optional, Sequence, Tuple

from mindspore import Tensor, nn, ops

from .targets import class_presence_targets


def normalised_weights(weights: Sequence[float]) -> Tuple[float, ...]:
    """Weights scaled to sum to 1, so adding side outputs does not change the loss' scale."""
    weights = tuple(float(w) for w in weights)
    if not weights or sum(weights) <= 0 or any(w < 0 for w in weights):
        raise ValueError(f"deep-supervision weights must be >= 0 with a positive sum, got {weights}")
    total = sum(weights)
    return tuple(w / total for w in weights)


class DeepSupervisionLoss(nn.Cell):
    """``sum_k w_k * loss(outputs[k], labels)`` over the full-size outputs (main head first).

    ``weights`` defaults to equal weights (the paper sums the side losses); they are normalised to sum 1.
    """

    def __init__(self, loss: nn.Cell, n_outputs: int, weights: Optional[Sequence[float]] = None) -> None:
        super().__init__()
        self.loss = loss
        self.weights = normalised_weights(weights if weights is not None else [1.0] * n_outputs)
        if len(self.weights) != n_outputs:
            raise ValueError(f"got {len(self.weights)} deep-supervision weights for {n_outputs} outputs")

    def construct(self, outputs: Tuple[Tensor, ...], labels: Tensor) -> Tensor:
        total = self.weights[0] * self.loss(outputs[0], labels)
        for index in range(1, len(self.weights)):
            total = total + self.weights[index] * self.loss(outputs[index], labels)
        return total


class ClassPresenceLoss(nn.Cell):
    """The CGM's classification term: BCE between class logits ``N x C`` and "class occurs in the mask"."""

    def construct(self, class_logits: Tensor, labels: Tensor) -> Tensor:
        targets = class_presence_targets(labels, class_logits.shape[1])
        return ops.binary_cross_entropy_with_logits(class_logits, targets)


class UNet3PlusLoss(nn.Cell):
    """The training loss for whatever ``UNet3Plus.construct`` returns in training mode.

    Args:
        segmentation_loss: loss on full-size logits and labels (e.g. ``BCEDiceLoss()``).
        output_names: the network's ``train_output_names``.
        deep_supervision_weights: per segmentation output (main first); equal when None.
        cgm_weight: weight of the CGM's :class:`ClassPresenceLoss` term.
    """

    def __init__(self, segmentation_loss: nn.Cell, output_names: Sequence[str] = ("logits",),
                 deep_supervision_weights: Optional[Sequence[float]] = None, cgm_weight: float = 1.0) -> None:
        super().__init__()
        self.output_names = tuple(output_names)
        self.has_cgm = self.output_names[-1] == "class_logits"
        self.n_segmentation = len(self.output_names) - int(self.has_cgm)
        self.segmentation = DeepSupervisionLoss(segmentation_loss, self.n_segmentation, deep_supervision_weights)
        self.class_presence = ClassPresenceLoss()
        self.cgm_weight = cgm_weight
        self.plain = self.output_names == ("logits",)

    def construct(self, outputs, labels: Tensor) -> Tensor:
        if self.plain:
            return self.segmentation.loss(outputs, labels)
        loss = self.segmentation(outputs[:self.n_segmentation], labels)
        if self.has_cgm:
            loss = loss + self.cgm_weight * self.class_presence(outputs[-1], labels)
        return loss
