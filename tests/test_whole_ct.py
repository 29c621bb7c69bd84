"""predict's three strategies on a whole CT (issue 22): the body box, the position-aware crop, skipped slices, --fast.

A seeded (untrained) network reads context from the whole slice: whatever the preset shows it outside the
crop changes its logits everywhere, which a trained network's do not (benchmarks/bench_volume.py measures
that on a fine-tuned one). So the CTs here hold a body, air and a couch of -300 HU, which the body box must
ignore and which the lits2017 preset maps to 0 like air; the comparisons are made where the network runs.
"""
from __future__ import annotations

import numpy as np
import pytest

import mindspore as ms

from unet3plus import UNet3Plus, predict
from unet3plus.networks.fusion import PositionedUNet3Plus, optimize_for_inference, window_vector
from unet3plus.runtime.cropping import WindowedNetwork
from unet3plus.runtime.interface import InferenceBackend
from unet3plus.transforms import body

SIZE = 256


def synthetic_ct(n_slices: int = 10, size: int = SIZE, seed: int = 0, couch_hu: float = -300.0) -> np.ndarray:
    """int16 ``Z x H x W`` HU: air, an elliptic body ~56% of the width with texture, a brighter liver in some
    slices, a couch below the body; the first and last slices are air only."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[:size, :size] / size - 0.5
    inside = (x / 0.28) ** 2 + (y / 0.2) ** 2 < 1
    liver = ((x + 0.08) / 0.12) ** 2 + ((y + 0.02) / 0.09) ** 2 < 1
    couch = (np.abs(y - 0.3) < 0.015) & (np.abs(x) < 0.45)
    volume = np.full((n_slices, size, size), -1000, np.int16)
    for z in range(1, n_slices - 1):
        hu = np.where(inside, 40 + 30 * np.sin(40 * x + z), -1000.0) + rng.normal(0, 10, inside.shape)
        hu += np.where(inside & liver & (z > n_slices // 3), 60.0, 0.0)
        volume[z] = np.rint(np.where(couch, couch_hu, hu)).astype(np.int16)
    return volume


@pytest.fixture(scope="module")
def network():
    ms.set_seed(0)
    net = UNet3Plus(n_classes=3)
    net.set_train(False)
    return net


def dice(a: np.ndarray, b: np.ndarray) -> float:
    total = a.sum() + b.sum()
    return 1.0 if total == 0 else 2.0 * (a & b).sum() / total


def test_body_boxes_find_the_body_not_the_couch_nor_air():
    volume = synthetic_ct(couch_hu=300.0)  # a dense couch: above BODY_HU, but not the largest region
    boxes = body.body_boxes(volume)
    assert volume.dtype == np.int16
    assert (boxes[[0, -1]] == -1).all()  # air only: no body
    top, bottom, left, right = boxes[1]
    rows, columns = np.flatnonzero((volume[1] > -500).any(1)), np.flatnonzero((volume[1, :180] > -500).any(0))
    assert top <= rows[0] and left <= columns[0] and right > columns[-1]
    assert bottom < int(SIZE * 0.78)  # the couch (rows ~ 0.785 * SIZE) is outside
    assert bottom >= int(SIZE * 0.7) - 1  # the body's lowest row (0.5 + 0.2) is inside


def test_crop_plan_aligns_crops_and_applies_the_rule():
    boxes = body.body_boxes(synthetic_ct())
    plan = body.crop_plan(boxes, (SIZE, SIZE), 1, 16)
    assert plan.cropped and plan.crop[0] % 16 == 0 and plan.crop[1] % 16 == 0
    assert [z for indices, _ in plan.batches for z in indices] == list(range(1, 9))  # air slices skipped
    for (z,), (top, left) in plan.batches:
        assert top % 16 == 0 and left % 16 == 0
        assert top <= boxes[z, 0] - body.MARGIN or top == 0
        assert top + plan.crop[0] >= min(SIZE, boxes[z, 1] + body.MARGIN)
        assert left <= boxes[z, 2] - body.MARGIN and left + plan.crop[1] >= boxes[z, 3] + body.MARGIN
    few = body.crop_plan(boxes[:5], (SIZE, SIZE), 1, 16, n_slices=5)  # too few slices: whole slices
    assert not few.cropped and few.slices.tolist() == [1, 2, 3, 4]
    wide = boxes.copy()
    wide[wide[:, 0] >= 0] = (0, SIZE, 8, SIZE - 8)  # the body fills the slice: nothing to gain
    assert not body.crop_plan(wide, (SIZE, SIZE), 1, 16).cropped


def test_position_aware_crop_equals_the_full_slice_where_a_plain_crop_does_not(network):
    """One compiled graph serves three offsets of one crop shape and each gets its own answer (matrices built
    inside the graph would be cached constants of the first offset)."""
    folded = optimize_for_inference(network)
    rng = np.random.default_rng(1)
    x = np.zeros((1, 3, SIZE, SIZE), np.float32)  # 0 is what the presets make of air
    x[:, :, 96:160, 96:160] = rng.random((1, 3, 64, 64))
    full = folded(ms.Tensor(x)).asnumpy()
    windowed = WindowedNetwork(folded, onnx=False)
    crop = (176, 176)  # 48 px or more of air around the content at each offset
    for top, left in ((48, 48), (32, 48), (48, 32)):
        piece = np.ascontiguousarray(x[:, :, top:top + crop[0], left:left + crop[1]])
        positioned = windowed(piece, (SIZE, SIZE), (top, left))
        plain = folded(ms.Tensor(piece)).asnumpy()
        inside = (slice(None), slice(None), slice(96 - top, 160 - top), slice(96 - left, 160 - left))
        reference = full[:, :, top:top + crop[0], left:left + crop[1]][inside]
        assert np.abs(positioned[inside] - reference).max() < 1e-3
        assert np.abs(plain[inside] - reference).max() > 1e-2  # the test can fail: a plain crop is off
    assert windowed.compiled_shapes == ((1, 3) + crop,)


def test_identity_window_gives_the_unwindowed_logits(network):
    folded = optimize_for_inference(network)
    x = np.random.default_rng(2).random((1, 3, 64, 96)).astype(np.float32)
    positioned = PositionedUNet3Plus(folded, (64, 96))
    got = positioned(ms.Tensor(x), ms.Tensor(window_vector((64, 96), (0, 0), (64, 96)))).asnumpy()
    np.testing.assert_array_equal(got, folded(ms.Tensor(x)).asnumpy())


def test_default_mode_agrees_with_exact_and_skips_air_slices(network):
    volume = synthetic_ct()
    exact = predict(network, volume, strategy="exact")
    default = predict(network, volume, strategy="default", probabilities=True)
    plan = body.crop_plan(body.body_boxes(volume), (SIZE, SIZE), 1, 16)
    assert plan.cropped
    ran = np.zeros(volume.shape, bool)
    for (z,), (top, left) in plan.batches:
        ran[z, top:top + plan.crop[0], left:left + plan.crop[1]] = True
    body_box = np.zeros(volume.shape, bool)
    for z, (top, bottom, left, right) in enumerate(body.body_boxes(volume)):
        if top >= 0:
            body_box[z, top:bottom, left:right] = True
    for label in (1, 2):
        assert dice((exact.mask == label) & body_box, (default.mask == label) & body_box) >= 0.999
    assert (default.mask[~ran] == 0).all()  # skipped slices and the parts outside the crops: background
    assert (exact.mask[~ran] != 0).any()  # the seeded network marks air near the body: the assert above can fail
    np.testing.assert_array_equal(default.probabilities[0, 0], 1.0)
    np.testing.assert_array_equal(predict(network, volume).mask, default.mask)  # default is the default


class HotVoxels(InferenceBackend):
    """A stand-in network whose answer is local: foreground where the lits2017 input's centre channel is
    bright (the liver), so --fast has an organ to find."""

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        return (batch[:, 0:1] - 90 / 255) * 100


def test_fast_mode_finds_the_organ_and_leaves_far_slices_background():
    volume = synthetic_ct(n_slices=40)
    volume[:, :, :] = np.where(volume > -500, np.minimum(volume, 50), volume)  # no liver anywhere ...
    liver = np.zeros_like(volume, dtype=bool)
    liver[18:27, 100:140, 90:130] = True
    volume[liver] = 150  # ... but in slices 18-26
    exact = predict(HotVoxels(), volume, strategy="exact").mask
    fast = predict(HotVoxels(), volume, strategy="fast").mask
    assert exact[18:27].any() and not exact[:17].any()
    agreement = dice(exact == 1, fast == 1)
    assert agreement >= 0.99, agreement
    assert not fast[:10].any() and not fast[35:].any()


def test_unknown_strategy_is_one_line(network):
    from unet3plus.errors import UserFacingError

    with pytest.raises(UserFacingError, match="unknown predict strategy 'quick'; choose one of exact, default, fast"):
        predict(network, synthetic_ct(4, 32), strategy="quick")


def test_onnx_export_of_the_cropped_network_serves_every_offset(network, tmp_path):
    folded = optimize_for_inference(network)
    x = np.zeros((1, 3, 128, 128), np.float32)
    x[:, :, 48:80, 48:80] = np.random.default_rng(3).random((1, 3, 32, 32))
    onnx = WindowedNetwork(folded, onnx=True, cache_dir=tmp_path)
    mindspore = WindowedNetwork(folded, onnx=False)
    for top, left in ((0, 0), (16, 32)):
        piece = np.ascontiguousarray(x[:, :, top:top + 112, left:left + 96])
        np.testing.assert_allclose(onnx(piece, (128, 128), (top, left)), mindspore(piece, (128, 128), (top, left)),
                                   atol=1e-4)
    assert len(list((tmp_path / "onnx").glob("*.onnx"))) == 1


def test_fast_coarse_pass_steps_in_millimetres_from_the_files_slice_spacing(monkeypatch):
    from unet3plus.io import Volume
    from unet3plus.runtime import cropping

    assert [body.coarse_step(s) for s in (2.0, 5.0, 0.7, None, 0.0)] == [8, 3, 23, 4, 4]
    seen = []
    monkeypatch.setattr(cropping, "coarse_step", lambda spacing: seen.append(spacing) or body.coarse_step(spacing))
    volume = synthetic_ct(n_slices=40)
    predict(HotVoxels(), Volume(name="ct", kind="volume", data=volume, spacing=(2.5, 0.8, 0.8)), strategy="fast")
    predict(HotVoxels(), volume, strategy="fast")  # an array states no spacing
    assert seen == [2.5, None]
