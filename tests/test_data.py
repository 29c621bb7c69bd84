"""Data: pairing, reading, checks with clear errors before training, seeded pipeline, group split."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from unet3plus.data import (Augmentation, DataOptions, DatasetError, EpochSampler, SegmentationDataset,
                            check_batch_size, default_group_key, group_key_from_pattern, make_loader,
                            split_by_group, synthetic_organs)


def write_pairs(root: Path, n=4, size=(32, 32), mask_value=255, image_ext=".png", mask_ext=".png", mode="L"):
    images, masks = root / "images", root / "masks"
    images.mkdir(parents=True, exist_ok=True)
    masks.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for i in range(n):
        stem = f"patient{i // 2}_slice{i % 2:03d}"
        pixels = rng.integers(0, 255, size=size + ((3,) if mode == "RGB" else ()), dtype=np.uint8)
        mask = np.zeros(size, np.uint8)
        mask[4:12, 4:12] = mask_value
        save(images / (stem + image_ext), pixels)
        save(masks / (stem + mask_ext), mask)
    return images, masks


def save(path: Path, array: np.ndarray) -> None:
    if path.suffix == ".npy":
        np.save(path, array)
    else:
        Image.fromarray(array).save(path)


def test_folders_with_label_map_and_grayscale_repeated(tmp_path):
    images, masks = write_pairs(tmp_path)
    data = SegmentationDataset.from_folders(images, masks, DataOptions(n_classes=1, label_map={255: 1}))
    assert len(data) == 4 and data.names[0] == "patient0_slice000"
    image, labels = data[0]
    assert image.shape == (3, 32, 32) and image.dtype == np.float32 and 0 <= image.min() and image.max() <= 1
    np.testing.assert_array_equal(image[0], image[2])  # grayscale repeated to the 3 pretrained channels
    assert labels.dtype == np.int32 and set(np.unique(labels)) == {0, 1} and labels[5, 5] == 1
    single = SegmentationDataset.from_folders(images, masks, DataOptions(in_channels=1, label_map={255: 1}))
    assert single[0][0].shape == (1, 32, 32)


def test_tiff_jpeg_and_npy_files(tmp_path):
    images, masks = write_pairs(tmp_path / "a", image_ext=".tif", mask_ext=".npy", mask_value=1)
    assert SegmentationDataset.from_folders(images, masks)[1][0].shape == (3, 32, 32)
    images, masks = write_pairs(tmp_path / "b", image_ext=".jpg", mask_ext=".png", mask_value=1, mode="RGB")
    assert SegmentationDataset.from_folders(images, masks)[0][0].shape == (3, 32, 32)


def test_in_memory_arrays_multiclass():
    images, masks = synthetic_organs(3, (32, 32), channels=3, n_classes=3, seed=0, empty_fraction=0)
    data = SegmentationDataset.from_arrays(images, masks, DataOptions(n_classes=3))
    image, labels = data[2]
    assert image.shape == (3, 32, 32) and set(np.unique(labels)) <= {0, 1, 2}
    np.testing.assert_allclose(image, np.transpose(images[2], (2, 0, 1)))


def test_empty_folder_is_an_error(tmp_path):
    (tmp_path / "images").mkdir()
    (tmp_path / "masks").mkdir()
    with pytest.raises(DatasetError, match=r"image folder .*images holds no .*png.* files"):
        SegmentationDataset.from_folders(tmp_path / "images", tmp_path / "masks")
    with pytest.raises(DatasetError, match="does not exist"):
        SegmentationDataset.from_folders(tmp_path / "nope", tmp_path / "masks")


def test_unpaired_files_are_listed(tmp_path):
    images, masks = write_pairs(tmp_path, mask_value=1)
    (masks / "patient0_slice000.png").unlink()
    save(masks / "stray.png", np.zeros((32, 32), np.uint8))
    with pytest.raises(DatasetError) as error:
        SegmentationDataset.from_folders(images, masks)
    message = str(error.value)
    assert "1 image(s) without a mask" in message and "patient0_slice000.png" in message
    assert "1 mask(s) without an image" in message and "stray.png" in message


def test_unreadable_image_is_named(tmp_path):
    images, masks = write_pairs(tmp_path, mask_value=1)
    (images / "patient1_slice001.png").write_bytes(b"not a png at all")
    with pytest.raises(DatasetError, match=r"cannot read image .*patient1_slice001\.png"):
        SegmentationDataset.from_folders(images, masks)


def test_unexpected_mask_labels_suggest_the_mapping(tmp_path):
    images, masks = write_pairs(tmp_path, mask_value=255)
    with pytest.raises(DatasetError, match=r"label value\(s\) \[255\] outside the expected \[0, 1\].*--label-map 255:1"):
        SegmentationDataset.from_folders(images, masks)
    with pytest.raises(DatasetError, match=r"\[3\] outside the expected \[0, 1, 2\]"):
        SegmentationDataset.from_arrays([np.zeros((16, 16))], [np.full((16, 16), 3)], DataOptions(n_classes=3))


def test_size_mismatch_between_image_and_mask(tmp_path):
    images, masks = write_pairs(tmp_path, mask_value=1)
    save(masks / "patient0_slice001.png", np.zeros((32, 48), np.uint8))
    with pytest.raises(DatasetError, match=r"patient0_slice001\.png is 32x32 but its mask .* is 32x48"):
        SegmentationDataset.from_folders(images, masks)


def test_channel_mismatch_with_the_network():
    rgb = [np.zeros((16, 16, 3), np.uint8)]
    mask = [np.zeros((16, 16), np.uint8)]
    with pytest.raises(DatasetError, match=r"has 3 channel\(s\) but the network takes 1.*--in-channels 3"):
        SegmentationDataset.from_arrays(rgb, mask, DataOptions(in_channels=1))
    with pytest.raises(DatasetError, match=r"has 1 channel\(s\) but the network takes 3.*--in-channels 1"):
        SegmentationDataset.from_arrays([np.zeros((16, 16))], mask, DataOptions(repeat_grayscale=False))


def test_mixed_or_invalid_sizes_need_the_size_option():
    masks = [np.zeros((32, 32)), np.zeros((48, 32))]
    with pytest.raises(DatasetError, match=r"2 sizes: 32x32 .*48x32.*--size H W"):
        SegmentationDataset.from_arrays([np.zeros((32, 32)), np.zeros((48, 32))], masks)
    with pytest.raises(DatasetError, match=r"40x40 but UNet3\+ needs H and W divisible by 16.*--size 48 48"):
        SegmentationDataset.from_arrays([np.zeros((40, 40))], [np.zeros((40, 40))])
    resized = SegmentationDataset.from_arrays([np.zeros((32, 32)), np.ones((48, 32))], masks,
                                              DataOptions(size=(32, 32)))
    assert resized[1][0].shape == (3, 32, 32) and resized[1][1].shape == (32, 32)
    with pytest.raises(DatasetError, match="multiples of 16"):
        DataOptions(size=(30, 32))


def test_batch_size_larger_than_dataset():
    with pytest.raises(DatasetError, match=r"batch size 8 is larger than the 5 training images.*--batch-size 5"):
        check_batch_size(5, 8)
    with pytest.raises(DatasetError, match=r"larger than the 3 training images per worker \(2 workers\)"):
        check_batch_size(5, 4, num_shards=2)


def test_sampler_is_seeded_and_shards_are_disjoint_and_equal():
    first = EpochSampler(10, epoch=3, seed=7).indices()
    np.testing.assert_array_equal(first, EpochSampler(10, epoch=3, seed=7).indices())
    assert not np.array_equal(first, EpochSampler(10, epoch=4, seed=7).indices())
    shards = [EpochSampler(9, epoch=0, seed=1, num_shards=2, shard_id=k).indices() for k in range(2)]
    assert len(shards[0]) == len(shards[1]) == 5
    assert set(shards[0]) | set(shards[1]) == set(range(9))


def test_augmentation_moves_image_and_mask_together():
    labels = np.zeros((32, 32), np.int32)
    labels[3:9, 5:20] = 1
    image = np.stack([labels.astype(np.float32)] * 2)
    geometric = Augmentation(brightness=0.0, contrast=0.0, scale_range=(1.0, 1.0))
    scaled = Augmentation(brightness=0.0, contrast=0.0, scale_range=(0.8, 1.3))
    for seed in range(8):
        out_image, out_labels = geometric(image, labels, np.random.default_rng(seed))
        np.testing.assert_array_equal(out_image[0], out_labels)
        out_image, out_labels = scaled(image, labels, np.random.default_rng(seed))
        agreement = np.mean((out_image[1] > 0.5) == (out_labels == 1))
        assert agreement > 0.97, agreement


def test_loader_batches_and_is_identical_across_worker_counts():
    images, masks = synthetic_organs(6, (32, 32), seed=1)
    data = SegmentationDataset.from_arrays(images, masks, DataOptions(in_channels=1))

    def epoch(workers):
        loader = make_loader(data, 2, epoch=1, augmentation=Augmentation(), seed=5, num_workers=workers)
        return [(x.asnumpy(), y.asnumpy()) for x, y in loader.create_tuple_iterator(num_epochs=1)]

    one, two = epoch(1), epoch(2)
    assert len(one) == 3 and one[0][0].shape == (2, 1, 32, 32) and one[0][1].shape == (2, 32, 32)
    for (x1, y1), (x2, y2) in zip(one, two):
        np.testing.assert_array_equal(x1, x2)
        np.testing.assert_array_equal(y1, y2)


def test_group_split_keeps_patients_together():
    names = [f"volume-{p}_slice_{s:03d}" for p in range(6) for s in range(4)]
    assert default_group_key("volume-12_slice_045") == "volume-12"
    assert default_group_key("patient01_005") == "patient01"
    assert default_group_key("0042") == "0042"
    train, val = split_by_group(names, val_fraction=0.34, seed=0)
    assert sorted(train + val) == list(range(24)) and len(val) == 8
    train_groups = {default_group_key(names[i]) for i in train}
    assert not train_groups & {default_group_key(names[i]) for i in val}
    key = group_key_from_pattern(r"volume-(\d+)")
    assert key("volume-3_slice_001") == "3"
    with pytest.raises(DatasetError, match="does not match the group pattern"):
        key("other")
    with pytest.raises(DatasetError, match="one group"):
        split_by_group(["a_1", "a_2"])
