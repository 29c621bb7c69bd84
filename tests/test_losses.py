"""Losses: scalars for any batch and size, correct values on known cases, finite gradients, variants."""
from __future__ import annotations

import mindspore as ms
import numpy as np
import pytest
from mindspore import nn

from unet3plus.losses import (BCEDiceLoss, ClassPresenceLoss, DeepSupervisionLoss, DiceCELoss, FocalLoss,
                              HybridLoss, IoULoss, MSSSIMLoss, UNet3PlusLoss, build_loss)
from unet3plus.losses.composite import normalised_weights

ALL_LOSSES = [BCEDiceLoss, DiceCELoss, FocalLoss, IoULoss, MSSSIMLoss, HybridLoss]


def sample(n, c, h, w, seed=0):
    rng = np.random.default_rng(seed)
    logits = rng.normal(size=(n, c, h, w)).astype(np.float32)
    labels = rng.integers(0, max(c, 2), size=(n, h, w)).astype(np.int32)
    return logits, labels


@pytest.mark.parametrize("loss_class", ALL_LOSSES)
@pytest.mark.parametrize("channels", [1, 3])
def test_scalar_for_any_batch_and_size_and_mean_of_single_images(loss_class, channels):
    loss = loss_class()
    for n, h, w in [(1, 32, 32), (3, 48, 32)]:
        logits, labels = sample(n, channels, h, w)
        value = loss(ms.Tensor(logits), ms.Tensor(labels))
        assert value.shape == () and np.isfinite(value.asnumpy())
        singles = [loss(ms.Tensor(logits[i:i + 1]), ms.Tensor(labels[i:i + 1])).asnumpy() for i in range(n)]
        if loss_class in (MSSSIMLoss, HybridLoss):
            continue  # MS-SSIM's product over scales is per image, then averaged: also checked below
        np.testing.assert_allclose(value.asnumpy(), np.mean(singles), rtol=1e-4)


def test_bce_dice_matches_published_formula_by_hand():
    logits = np.array([[[[2.0, -1.0], [0.5, -3.0]]]], np.float32)
    labels = np.array([[[1, 0], [1, 0]]], np.int32)
    p = 1 / (1 + np.exp(-logits[0, 0]))
    t = labels[0].astype(np.float64)
    bce = -np.mean(t * np.log(p) + (1 - t) * np.log(1 - p))
    dice = 1 - (2 * np.sum(p * t) + 1.0) / (np.sum(p) + np.sum(t) + 1.0)
    value = BCEDiceLoss()(ms.Tensor(logits), ms.Tensor(labels)).asnumpy()
    assert value == pytest.approx(0.5 * bce + dice, rel=1e-5)


def perfect_logits(labels, channels):
    onehot = np.stack([(labels == k) for k in range(channels)], 1) if channels > 1 else (labels == 1)[:, None]
    return np.where(onehot, 20.0, -20.0).astype(np.float32)


@pytest.mark.parametrize("loss_class", ALL_LOSSES)
def test_near_zero_for_perfect_prediction_including_empty_masks(loss_class):
    labels = np.zeros((2, 32, 32), np.int32)
    labels[0, 8:20, 8:20] = 1  # image 1 is empty: the original IoU without epsilon gave NaN here
    for channels in (1, 2):
        value = loss_class()(ms.Tensor(perfect_logits(labels, channels)), ms.Tensor(labels)).asnumpy()
        assert np.isfinite(value) and value < 1e-3, (loss_class.__name__, channels, value)


def test_ms_ssim_is_a_loss_that_grows_with_error():
    labels = np.zeros((1, 64, 64), np.int32)
    labels[0, 16:48, 16:48] = 1
    good = perfect_logits(labels, 1)
    bad = -good
    loss = MSSSIMLoss()
    assert loss.levels(64, 64) == 3 and loss.levels(176, 200) == 5
    assert loss(ms.Tensor(good), ms.Tensor(labels)).asnumpy() < 1e-3
    assert loss(ms.Tensor(bad), ms.Tensor(labels)).asnumpy() > 0.5
    with pytest.raises(ValueError, match="at least 11x11"):
        loss(ms.Tensor(good[:, :, :8, :8]), ms.Tensor(labels[:, :8, :8]))


@pytest.mark.parametrize("loss_class", ALL_LOSSES)
def test_finite_gradients_in_graph_mode(loss_class, graph_mode):
    logits, labels = sample(2, 1, 32, 32, seed=3)
    loss = loss_class()
    grad = ms.grad(loss)(ms.Tensor(logits), ms.Tensor(labels)).asnumpy()
    assert grad.shape == logits.shape and np.all(np.isfinite(grad)) and np.abs(grad).sum() > 0


def test_deep_supervision_weights_and_cgm_term():
    logits, labels = sample(2, 1, 32, 32)
    other, _ = sample(2, 1, 32, 32, seed=5)
    base = BCEDiceLoss()
    a = base(ms.Tensor(logits), ms.Tensor(labels)).asnumpy()
    b = base(ms.Tensor(other), ms.Tensor(labels)).asnumpy()
    ds = DeepSupervisionLoss(base, 2, weights=[3, 1])
    value = ds((ms.Tensor(logits), ms.Tensor(other)), ms.Tensor(labels)).asnumpy()
    assert value == pytest.approx(0.75 * a + 0.25 * b, rel=1e-5)
    assert normalised_weights([1, 1, 2]) == (0.25, 0.25, 0.5)
    with pytest.raises(ValueError, match="positive sum"):
        normalised_weights([0, 0])

    present = np.zeros((2, 8, 8), np.int32)
    present[0, 2, 2] = 1  # class 1 in image 0 only
    class_logits = np.array([[5.0], [-5.0]], np.float32)
    cgm = ClassPresenceLoss()(ms.Tensor(class_logits), ms.Tensor(present)).asnumpy()
    assert cgm == pytest.approx(np.log1p(np.exp(-5.0)), rel=1e-4)  # both right, confident
    wrong = ClassPresenceLoss()(ms.Tensor(-class_logits), ms.Tensor(present)).asnumpy()
    assert wrong > 4.0

    combined = UNet3PlusLoss(base, ("logits", "side_hd2", "class_logits"), cgm_weight=2.0)
    total = combined((ms.Tensor(logits), ms.Tensor(other), ms.Tensor(np.array([[1.0], [1.0]], np.float32))),
                     ms.Tensor(labels)).asnumpy()
    presence_term = ClassPresenceLoss()(ms.Tensor(np.array([[1.0], [1.0]], np.float32)), ms.Tensor(labels))
    assert total == pytest.approx(0.5 * a + 0.5 * b + 2.0 * presence_term.asnumpy(), rel=1e-5)
    plain = UNet3PlusLoss(base)
    assert plain(ms.Tensor(logits), ms.Tensor(labels)).asnumpy() == pytest.approx(a, rel=1e-6)


def test_build_loss_by_name():
    assert isinstance(build_loss("bce_dice"), BCEDiceLoss)
    assert isinstance(build_loss("hybrid"), HybridLoss)
    with pytest.raises(ValueError, match="choose one of bce_dice, dice_ce, hybrid"):
        build_loss("nope")
    assert isinstance(build_loss("dice_ce"), nn.Cell)
