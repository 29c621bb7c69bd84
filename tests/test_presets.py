"""Input presets, checked against the published preprocessing run literally (OpenCV write, scikit-image read)."""
from __future__ import annotations

import numpy as np
import pytest

from unet3plus.transforms import PresetError, get_preset, list_presets


def synthetic_hu_volume(seed: int = 0, shape=(9, 24, 20)) -> np.ndarray:
    """Integer HU (int16, what the published script read) spanning air to bone, with a smooth organ."""
    rng = np.random.default_rng(seed)
    volume = rng.integers(-1000, 1200, size=shape).astype(np.int16)
    z, y, x = np.mgrid[: shape[0], : shape[1], : shape[2]]
    organ = ((y - 12) ** 2 + (x - 10) ** 2) < 40
    volume[organ] = (60 + 5 * z[organ] + rng.integers(-30, 30, size=organ.sum())).astype(np.int16)
    return volume


def published_pipeline(ct_array: np.ndarray, mask_array: np.ndarray, folder) -> dict:
    """The published dataset_preprocess.py steps for one volume, then the published Dataset reader.

    Returns {volume slice index: network input C x H x W float32} for every slice the script writes.
    """
    cv2 = pytest.importorskip("cv2")
    skimage_io = pytest.importorskip("skimage.io")
    ct_array = ct_array.copy()
    ct_array[ct_array > 200] = 200
    ct_array[ct_array < -200] = -200
    z = np.any(mask_array, axis=(1, 2))
    start_slice, end_slice = np.where(z)[0][[0, -1]]
    ct_crop = ct_array[start_slice - 1:end_slice + 1, :, :]
    mask_crop = mask_array[start_slice:end_slice + 1, :, :]
    inputs = {}
    for n_slice in range(mask_crop.shape[0]):
        stack = np.zeros((ct_crop.shape[1], ct_crop.shape[2], 3), np.float64)
        stack[:, :, 0] = ct_crop[n_slice - 1, :, :]
        stack[:, :, 1] = ct_crop[n_slice, :, :]
        stack[:, :, 2] = ct_crop[n_slice + 1, :, :]
        path = str(folder / f"0_{n_slice}.png")
        assert cv2.imwrite(path, stack)
        image = skimage_io.imread(path).astype("float32") / 255  # the published reader
        inputs[start_slice + n_slice] = image.transpose(2, 0, 1)  # HWC2CHW
    return inputs


def test_lits2017_preset_matches_the_published_pipeline_run_literally(tmp_path):
    volume = synthetic_hu_volume()
    mask = np.zeros(volume.shape, np.uint8)
    mask[3:7, 8:16, 6:14] = 1
    published = published_pipeline(volume, mask, tmp_path)
    ours = get_preset("lits2017")(volume.astype(np.float32))
    assert ours.shape == (volume.shape[0], 3) + volume.shape[1:] and ours.dtype == np.float32
    first, *inner = sorted(published)
    assert first == 3 and inner == [4, 5, 6]
    for z in inner:
        np.testing.assert_array_equal(ours[z], published[z])
    # The published first slice: its z-2 channel wrapped around to the crop's last slice; ours is the real z-2.
    np.testing.assert_array_equal(ours[first][:2], published[first][:2])
    assert not np.array_equal(ours[first][2], published[first][2])
    np.testing.assert_array_equal(published[first][2], np.clip(volume[6], 0, 200).astype(np.float32) / 255)
    np.testing.assert_array_equal(ours[first][2], ours[first - 2][0])
    # What the literal pipeline implies: negative HU all became 0, 200 HU and above became 200/255.
    assert published[4].min() == 0 and published[4].max() == np.float32(200) / np.float32(255)


def test_lits2017_edge_rule_repeats_the_first_slice():
    volume = synthetic_hu_volume(1, (4, 8, 8)).astype(np.float32)
    ours = get_preset("lits2017")(volume)
    expected = np.rint(np.clip(volume, 0, 200)) / np.float32(255)
    for z, channels in enumerate([(0, 0, 0), (1, 0, 0), (2, 1, 0), (3, 2, 1)]):
        for channel, source in enumerate(channels):
            np.testing.assert_array_equal(ours[z, channel], expected[source])


def test_standard_preset_window_and_neighbours():
    volume = np.stack([np.full((4, 4), hu, np.float32) for hu in (-1000, -200, 0, 200, 500)])
    ours = get_preset("standard")(volume)
    assert ours.shape == (5, 3, 4, 4)
    np.testing.assert_allclose(ours[:, 1, 0, 0], [0, 0, 0.5, 1, 1])  # the middle channel is slice z
    np.testing.assert_allclose(ours[2, :, 0, 0], [0, 0.5, 1])  # [z-1, z, z+1]
    np.testing.assert_allclose(ours[0, :, 0, 0], [0, 0, 0])  # edge: z-1 clamped to 0
    np.testing.assert_allclose(ours[4, :, 0, 0], [1, 1, 1])  # edge: z+1 clamped to the last slice


def test_image_preset_scales_and_repeats_grey():
    grey = np.array([[0, 255], [51, 102]], np.uint8)
    ours = get_preset("image")(grey)
    assert ours.shape == (1, 3, 2, 2)
    np.testing.assert_allclose(ours[0, 0], grey / 255.0, rtol=1e-6)
    np.testing.assert_array_equal(ours[0, 0], ours[0, 2])
    rgb = np.dstack([grey, grey // 2, grey // 3])
    np.testing.assert_allclose(get_preset("image")(rgb)[0, 1], (grey // 2) / 255.0, rtol=1e-6)


@pytest.mark.parametrize("volume, message", [
    (np.zeros((0, 8, 8), np.float32), "empty"),
    (np.full((4, 8, 8), np.nan, np.float32), "NaN/Inf"),
    (np.array([[[0, np.inf]]] * 4, np.float32), "NaN/Inf"),
    (np.zeros((2, 8, 8), np.float32), "fewer than the 3"),
    (np.zeros((8, 8), np.float32), "fewer than the 3"),
    (np.zeros((2, 3, 8, 8), np.float32), "Z x H x W"),
])
def test_volume_presets_reject_bad_volumes(volume, message):
    with pytest.raises(PresetError, match=message):
        get_preset("lits2017")(volume)


def test_thin_volume_allowed_on_request_repeats_the_slice():
    slice_ = synthetic_hu_volume(2, (1, 8, 8)).astype(np.float32)
    ours = get_preset("lits2017")(slice_[0], allow_thin=True)
    assert ours.shape == (1, 3, 8, 8)
    np.testing.assert_array_equal(ours[0, 0], ours[0, 2])


def test_image_preset_rejects_volumes_and_unknown_presets():
    with pytest.raises(PresetError, match="looks like a volume"):
        get_preset("image")(np.zeros((8, 16, 16), np.float32))
    with pytest.raises(PresetError, match="lits2017, standard, image"):
        get_preset("nope")
    assert list_presets() == ("lits2017", "standard", "image")
