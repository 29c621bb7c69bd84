"""Hard Dice/IoU follow MONAI's conventions (values worked out by hand)."""
from __future__ import annotations

import numpy as np
import pytest

from unet3plus.metrics import SegmentationMetrics, dice_per_case, iou_per_case
from unet3plus.transforms import labels_from_logits


def test_dice_and_iou_by_hand():
    target = np.array([[[1, 1, 0, 0]]])
    prediction = np.array([[[1, 0, 1, 0]]])  # tp 1, fp 1, fn 1 for class 1; tp 1 fp 1 fn 1 for class 0
    dice = dice_per_case(prediction, target, 2)
    assert dice.shape == (1, 2)
    np.testing.assert_allclose(dice, [[0.5, 0.5]])
    np.testing.assert_allclose(iou_per_case(prediction, target, 2, include_background=False), [[1 / 3]])


def test_empty_ground_truth_follows_monai_ignore_empty():
    target = np.zeros((2, 4, 4), int)
    prediction = np.zeros((2, 4, 4), int)
    prediction[1, 0, 0] = 1  # case 1 predicts a false positive
    ignored = dice_per_case(prediction, target, 2, include_background=False)
    assert np.isnan(ignored).all()
    scored = dice_per_case(prediction, target, 2, include_background=False, ignore_empty=False)
    np.testing.assert_array_equal(scored, [[1.0], [0.0]])
    np.testing.assert_array_equal(iou_per_case(prediction, target, 2, include_background=False,
                                               ignore_empty=False), [[1.0], [0.0]])


def test_mean_per_case_differs_from_global_and_skips_nan():
    target = np.zeros((3, 10), int)
    prediction = np.zeros((3, 10), int)
    target[0, :8] = 1; prediction[0, :8] = 1          # perfect big case: dice 1
    target[1, :2] = 1; prediction[1, :1] = 1          # small case: tp 1, fn 1 -> dice 2/3
    prediction[2, :5] = 1                             # empty ground truth: ignored
    metrics = SegmentationMetrics(n_classes=2, include_background=False)
    metrics.update(prediction[:2], target[:2]).update(prediction[2:], target[2:])
    result = metrics.result()
    assert metrics.n_cases == 3
    assert result.dice_per_case.shape == (3, 1) and np.isnan(result.dice_per_case[2, 0])
    assert result.mean_dice == pytest.approx((1 + 2 / 3) / 2)
    # Global pools all cases: tp 9, fp 5, fn 1 -> 18 / 24
    assert result.global_dice == pytest.approx(18 / 24)
    assert result.global_iou == pytest.approx(9 / 15)
    np.testing.assert_allclose(result.mean_iou_per_class, [(1 + 0.5) / 2])
    assert result.classes == [1]


def test_multiclass_include_background_and_3d_volumes():
    rng = np.random.default_rng(0)
    target = rng.integers(0, 3, size=(2, 4, 5, 6))
    prediction = target.copy()
    prediction[0, 0] = 0
    with_background = dice_per_case(prediction, target, 3)
    without = dice_per_case(prediction, target, 3, include_background=False)
    assert with_background.shape == (2, 3) and without.shape == (2, 2)
    np.testing.assert_array_equal(with_background[:, 1:], without)
    assert np.all(without[1] == 1.0) and np.all(without[0] < 1.0)


def test_labels_from_logits_and_bad_input():
    logits = np.array([[[[-1.0, 2.0]]]])
    np.testing.assert_array_equal(labels_from_logits(logits), [[[0, 1]]])
    multi = np.array([[[[0.0]], [[3.0]], [[1.0]]]])
    np.testing.assert_array_equal(labels_from_logits(multi), [[[1]]])
    # threshold is a probability, as for predict: logit 0.5 is p 0.62, above 0.6 but not above 0.7
    np.testing.assert_array_equal(labels_from_logits(np.array([[[[0.5]]]]), threshold=0.6), [[[1]]])
    np.testing.assert_array_equal(labels_from_logits(np.array([[[[0.5]]]]), threshold=0.7), [[[0]]])
    with pytest.raises(ValueError, match="differs from target shape"):
        dice_per_case(np.zeros((1, 2, 2), int), np.zeros((1, 2, 3), int), 2)
    with pytest.raises(ValueError, match="outside 0..1"):
        dice_per_case(np.full((1, 2), 2), np.zeros((1, 2), int), 2)
    with pytest.raises(ValueError, match="call update"):
        SegmentationMetrics(2).result()
