"""Segmentation losses on logits (``N x C x H x W``) and integer labels (``N x H x W``).

Every loss returns a scalar and works for any batch size and image size: terms are computed per image
and channel, then averaged (the published code hard-wired a ``[2, 1, 512, 512]`` BCE weight and returned
its Dice term as a vector). One output channel means binary (sigmoid); several mean classes (softmax).
"""
from __future__ import annotations

from typing import Optional

import numpy as np
from mindspore import Tensor, nn, ops
import mindspore as ms

from .targets import dense_targets, per_image_sums, probabilities

# Added to numerator and denominator of soft Dice. 1.0 rather than MONAI's 1e-5: with 1e-5 an image
# without foreground still costs ~0.2 when the prediction is all but perfect (sigmoid(-20) * 1024 pixels).
DICE_SMOOTH = 1.0


def soft_dice_loss(probs: Tensor, targets: Tensor, smooth: float = DICE_SMOOTH, first_channel: int = 0) -> Tensor:
    """``1 - Dice`` per image and channel (channels from ``first_channel`` on), averaged to a scalar."""
    probs, targets = probs[:, first_channel:], targets[:, first_channel:]
    intersection = per_image_sums(probs * targets)
    denominator = per_image_sums(probs) + per_image_sums(targets)
    return (1.0 - (2.0 * intersection + smooth) / (denominator + smooth)).mean()


def cross_entropy(logits: Tensor, targets: Tensor) -> Tensor:
    """Mean pixel cross-entropy: binary with logits for 1 channel, softmax otherwise (stable log forms)."""
    if logits.shape[1] == 1:
        return ops.binary_cross_entropy_with_logits(logits, targets)
    return -(targets * ops.log_softmax(logits, axis=1)).sum(axis=1).mean()


class BCEDiceLoss(nn.Cell):
    """The published loss, fixed: ``bce_weight * BCE + dice_weight * (1 - soft Dice)`` (0.5 and 1 published)."""

    def __init__(self, bce_weight: float = 0.5, dice_weight: float = 1.0, smooth: float = DICE_SMOOTH) -> None:
        super().__init__()
        self.bce_weight, self.dice_weight, self.smooth = bce_weight, dice_weight, smooth

    def construct(self, logits: Tensor, labels: Tensor) -> Tensor:
        targets = dense_targets(labels, logits.shape[1])  # several channels: sigmoid each, one-hot targets
        bce = ops.binary_cross_entropy_with_logits(logits, targets)
        dice = soft_dice_loss(ops.sigmoid(logits), targets, self.smooth)
        return self.bce_weight * bce + self.dice_weight * dice


class DiceCELoss(nn.Cell):
    """Multi-class ``ce_weight * cross-entropy + dice_weight * (1 - soft Dice)`` on softmax probabilities.

    ``include_background=False`` leaves channel 0 out of the Dice term (as MONAI's DiceCELoss option).
    With one output channel it is binary (sigmoid BCE + Dice).
    """

    def __init__(self, ce_weight: float = 1.0, dice_weight: float = 1.0, include_background: bool = True,
                 smooth: float = DICE_SMOOTH) -> None:
        super().__init__()
        self.ce_weight, self.dice_weight, self.smooth = ce_weight, dice_weight, smooth
        self.include_background = include_background

    def construct(self, logits: Tensor, labels: Tensor) -> Tensor:
        targets = dense_targets(labels, logits.shape[1])
        first = 0 if self.include_background or logits.shape[1] == 1 else 1
        dice = soft_dice_loss(probabilities(logits), targets, self.smooth, first)
        return self.ce_weight * cross_entropy(logits, targets) + self.dice_weight * dice


class FocalLoss(nn.Cell):
    """Focal loss ``-alpha_t (1 - p_t)^gamma log p_t`` (Lin et al.), averaged over pixels.

    ``alpha`` (binary only) weighs the foreground; None weighs both classes equally.
    """

    def __init__(self, gamma: float = 2.0, alpha: Optional[float] = None) -> None:
        super().__init__()
        self.gamma, self.alpha = gamma, alpha

    def construct(self, logits: Tensor, labels: Tensor) -> Tensor:
        targets = dense_targets(labels, logits.shape[1])
        if logits.shape[1] == 1:
            log_p_t = -ops.binary_cross_entropy_with_logits(logits, targets, reduction="none")
        else:
            log_p_t = (targets * ops.log_softmax(logits, axis=1)).sum(axis=1, keepdims=True)
        loss = -ops.pow(1.0 - ops.exp(log_p_t), self.gamma) * log_p_t
        if self.alpha is not None and logits.shape[1] == 1:
            loss = loss * (self.alpha * targets + (1.0 - self.alpha) * (1.0 - targets))
        return loss.mean()


class IoULoss(nn.Cell):
    """``1 - (I + eps) / (U + eps)`` of soft probabilities per image and channel.

    The epsilon (missing in the original code) keeps empty masks finite: an all-background image with an
    all-background prediction scores IoU 1, loss 0.
    """

    def __init__(self, epsilon: float = 1.0) -> None:
        super().__init__()
        self.epsilon = epsilon

    def construct(self, logits: Tensor, labels: Tensor) -> Tensor:
        probs = probabilities(logits)
        targets = dense_targets(labels, logits.shape[1])
        intersection = per_image_sums(probs * targets)
        union = per_image_sums(probs) + per_image_sums(targets) - intersection
        return (1.0 - (intersection + self.epsilon) / (union + self.epsilon)).mean()


MS_SSIM_WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)  # Wang et al. 2003


def gaussian_window(size: int, sigma: float) -> np.ndarray:
    coordinates = np.arange(size, dtype=np.float64) - (size - 1) / 2.0
    window = np.exp(-(coordinates ** 2) / (2.0 * sigma ** 2))
    return (window / window.sum()).astype(np.float32)


class MSSSIMLoss(nn.Cell):
    """``1 - MS-SSIM(probabilities, targets)``: a loss, not the similarity (the original code's bug).

    Uses as many of the five standard scales as fit the image (each scale at least ``window_size``
    pixels), with their weights renormalised; contrast terms are clipped at a small positive value
    so fractional powers stay finite. Data range is 1 (probabilities and 0/1 targets).
    """

    def __init__(self, window_size: int = 11, sigma: float = 1.5, k1: float = 0.01, k2: float = 0.03) -> None:
        super().__init__()
        window = gaussian_window(window_size, sigma)
        self.window_rows = Tensor(window.reshape(1, 1, window_size, 1))
        self.window_columns = Tensor(window.reshape(1, 1, 1, window_size))
        self.window_size = window_size
        self.c1, self.c2 = k1 ** 2, k2 ** 2

    def levels(self, height: int, width: int) -> int:
        levels = 0
        while levels < len(MS_SSIM_WEIGHTS) and min(height, width) // (2 ** levels) >= self.window_size:
            levels += 1
        if levels == 0:
            raise ValueError(
                f"MSSSIMLoss needs images of at least {self.window_size}x{self.window_size} pixels, got "
                f"{height}x{width}; use a smaller window_size or larger images.")
        return levels

    def blur(self, x: Tensor) -> Tensor:
        return ops.conv2d(ops.conv2d(x, self.window_rows), self.window_columns)

    def ssim_terms(self, x: Tensor, y: Tensor):
        mu_x, mu_y = self.blur(x), self.blur(y)
        sigma_x = self.blur(x * x) - mu_x * mu_x
        sigma_y = self.blur(y * y) - mu_y * mu_y
        sigma_xy = self.blur(x * y) - mu_x * mu_y
        contrast = (2.0 * sigma_xy + self.c2) / (sigma_x + sigma_y + self.c2)
        luminance = (2.0 * mu_x * mu_y + self.c1) / (mu_x * mu_x + mu_y * mu_y + self.c1)
        return (luminance * contrast).mean(axis=(1, 2, 3)), contrast.mean(axis=(1, 2, 3))

    def construct(self, logits: Tensor, labels: Tensor) -> Tensor:
        n, c, h, w = logits.shape
        x = probabilities(logits).reshape((n * c, 1, h, w))
        y = dense_targets(labels, c).reshape((n * c, 1, h, w))
        levels = self.levels(h, w)
        total = sum(MS_SSIM_WEIGHTS[:levels])
        similarity = ops.ones((n * c,), ms.float32)
        for level in range(levels):
            ssim, contrast = self.ssim_terms(x, y)
            weight = MS_SSIM_WEIGHTS[level] / total
            term = ssim if level == levels - 1 else contrast
            similarity = similarity * ops.pow(ops.clamp(term, min=1e-6), weight)
            if level < levels - 1:
                x, y = ops.avg_pool2d(x, 2, 2), ops.avg_pool2d(y, 2, 2)
        return 1.0 - similarity.mean()


class HybridLoss(nn.Cell):
    """The paper's hybrid loss: focal + MS-SSIM loss + IoU loss, each weighted (1, 1, 1 by default)."""

    def __init__(self, focal_weight: float = 1.0, ms_ssim_weight: float = 1.0, iou_weight: float = 1.0,
                 gamma: float = 2.0, ms_ssim_window: int = 11, iou_epsilon: float = 1.0) -> None:
        super().__init__()
        self.focal, self.ms_ssim, self.iou = FocalLoss(gamma), MSSSIMLoss(ms_ssim_window), IoULoss(iou_epsilon)
        self.weights = (focal_weight, ms_ssim_weight, iou_weight)

    def construct(self, logits: Tensor, labels: Tensor) -> Tensor:
        return (self.weights[0] * self.focal(logits, labels) + self.weights[1] * self.ms_ssim(logits, labels)
                + self.weights[2] * self.iou(logits, labels))

