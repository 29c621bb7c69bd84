"""Segmentation losses on logits ``N x C x H x W`` and integer labels ``N x H x W`` (all return scalars).

* :class:`BCEDiceLoss`: the published ``0.5 * BCE + Dice loss``, for any batch and image size;
* :class:`DiceCELoss`: cross-entropy + Dice for several classes;
* :class:`HybridLoss`: the paper's focal + MS-SSIM (as a loss) + IoU (with epsilon);
* :class:`DeepSupervisionLoss`, :class:`ClassPresenceLoss` and :class:`UNet3PlusLoss` for the variants;
* :func:`build_loss` picks one by name (what the CLI's ``--loss`` uses).
"""
from __future__ import annotations

from typing import Callable, Dict

from mindspore import nn

from .composite import ClassPresenceLoss, DeepSupervisionLoss, UNet3PlusLoss
from .segmentation import (BCEDiceLoss, DiceCELoss, FocalLoss, HybridLoss, IoULoss, MSSSIMLoss,
                           soft_dice_loss)
from .targets import class_presence_targets, dense_targets, probabilities

LOSSES: Dict[str, Callable[[], nn.Cell]] = {
    "bce_dice": BCEDiceLoss,
    "dice_ce": DiceCELoss,
    "hybrid": HybridLoss,
}


def build_loss(name: str) -> nn.Cell:
    """A segmentation loss by name: ``bce_dice`` (published), ``dice_ce`` or ``hybrid``."""
    try:
        return LOSSES[name]()
    except KeyError:
        raise ValueError(f"unknown loss {name!r}; choose one of {', '.join(sorted(LOSSES))}") from None


__all__ = [
    "BCEDiceLoss", "ClassPresenceLoss", "DeepSupervisionLoss", "DiceCELoss", "FocalLoss", "HybridLoss",
    "IoULoss", "LOSSES", "MSSSIMLoss", "UNet3PlusLoss", "build_loss", "class_presence_targets",
    "dense_targets", "probabilities", "soft_dice_loss",
]
