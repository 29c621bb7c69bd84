"""Class-balanced foreground sampling (issue 23): a rare tumour gets half of the forced samples, binary draws stay."""
from __future__ import annotations

import logging

import numpy as np
import pytest
from volume_data import case, write_lits, write_nifti

from unet3plus.data import DatasetError, VolumeDataset, VolumeOptions
from unet3plus.data.sampling import SAMPLINGS, ForegroundSampler

LIVER_TUMOUR = VolumeOptions(classes=("liver", "tumour"))


def rare_tumour_index(n_items: int = 1000):
    """400 liver slices, 20 of them (5%) also holding tumour; the rest empty."""
    liver = np.zeros(n_items, bool)
    liver[100:500] = True
    tumour = np.zeros(n_items, bool)
    tumour[200:220] = True
    return liver, {"liver": liver, "tumour": tumour}


def tumour_share(classes, seed: int) -> float:
    liver, index = rare_tumour_index()
    sampler = ForegroundSampler(liver, foreground_fraction=1.0, seed=seed, classes=classes)  # every sample forced
    return float(index["tumour"][sampler.epoch_indices()].mean())


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_rare_tumour_gets_about_half_of_the_forced_samples_where_any_foreground_gives_5_percent(seed):
    _, index = rare_tumour_index()
    # a draw picks tumour with p = 1/2 (and liver's draws land on tumour slices 5% of the time): ~0.525
    assert 0.45 < tumour_share(index, seed) < 0.6
    assert tumour_share(None, seed) < 0.1  # the any-foreground sampler fails the same assertion


def test_foreground_fraction_keeps_its_meaning_and_the_epoch_is_deterministic():
    liver, index = rare_tumour_index()
    balanced = ForegroundSampler(liver, seed=4, epoch=2, classes=index)
    plain = ForegroundSampler(liver, seed=4, epoch=2)
    assert len(balanced.epoch_indices()) == len(liver)
    # a third forced onto foreground slices, the rest uniform: the same share of foreground either way
    assert abs(balanced.realised()["foreground"] - (1 / 3 + 2 / 3 * liver.mean())) < 0.03
    assert abs(balanced.realised()["foreground"] - plain.realised()["foreground"]) < 0.03
    # tumour: ~1/3 * 0.525 + 2/3 * 2% = 19% of the epoch, against ~3% when any foreground slice is alike
    assert balanced.class_shares()["tumour"] > 0.15 > 0.05 > index["tumour"][plain.epoch_indices()].mean()
    np.testing.assert_array_equal(balanced.indices(), ForegroundSampler(liver, seed=4, epoch=2, classes=index).indices())
    assert "class-balanced" in balanced.describe() and "tumour" in balanced.describe()


def test_binary_draws_are_those_of_the_sampler_before_class_balancing():
    has_foreground = np.zeros(30, bool)
    has_foreground[[3, 4, 5, 11, 12, 20]] = True
    # recorded with the any-foreground sampler of commit 0d90dde
    assert ForegroundSampler(has_foreground, epoch=2, seed=7).epoch_indices().tolist() == [
        1, 3, 5, 24, 17, 4, 5, 19, 21, 3, 12, 15, 11, 16, 27, 20, 3, 7, 11, 0, 26, 5, 14, 23, 18, 22, 20, 2, 20, 4]
    assert ForegroundSampler(has_foreground, foreground_fraction=0.5, empty_fraction=0.25, epoch=1,
                             seed=3).epoch_indices().tolist() == [
        15, 3, 3, 11, 4, 20, 16, 4, 2, 18, 5, 29, 26, 5, 26, 6, 3, 13, 20, 10, 12, 5, 14, 21, 12, 11, 24, 15, 19, 4]


def test_default_is_class_balanced_with_several_classes_only():
    assert LIVER_TUMOUR.sampling == "class-balanced"
    assert VolumeOptions(classes=("liver",), label_map={2: 1}).sampling == "any-foreground"
    assert VolumeOptions(classes=("liver", "tumour"), sampling="any-foreground").sampling == "any-foreground"
    with pytest.raises(DatasetError, match="sampling must be one of any-foreground, class-balanced, got 'balanced'"):
        VolumeOptions(classes=("liver", "tumour"), sampling="balanced")


def test_class_index_is_the_labels_per_slice_and_drives_the_dataset_sampler(tmp_path):
    data = VolumeDataset.from_folder(write_lits(tmp_path, 2), options=LIVER_TUMOUR)
    index = data.class_index()
    for k, name in enumerate(("liver", "tumour"), 1):
        expected = np.concatenate([(data.read_case(c)[1] == k).reshape(data.cases[c].shape[0], -1).any(axis=1)
                                   for c in data.case_indices()])
        np.testing.assert_array_equal(index[name], expected)
    assert 0 < index["tumour"].sum() < index["liver"].sum()
    assert data.epoch_sampler(epoch=0, seed=0).classes is not None
    binary = VolumeDataset.from_folder(tmp_path, options=VolumeOptions(classes=("liver",), label_map={2: 1}))
    assert binary.epoch_sampler(epoch=0, seed=0).classes is None
    np.testing.assert_array_equal(binary.epoch_sampler(epoch=1, seed=3).epoch_indices(),
                                  ForegroundSampler(binary.has_foreground(), epoch=1, seed=3).epoch_indices())


def test_a_class_missing_from_the_training_slices_is_logged_once_and_left_out(tmp_path, caplog):
    write_lits(tmp_path, 2)
    hu, labels = case(0)
    write_nifti(tmp_path / "segmentation-0.nii.gz", np.where(labels == 2, 1, labels).astype(labels.dtype))
    data = VolumeDataset.from_folder(tmp_path, options=LIVER_TUMOUR)  # case 1 still holds tumour
    first_case = data.subset([i for i, (c, _) in enumerate(data.items) if c == 0])  # e.g. after the split
    with caplog.at_level(logging.WARNING, logger="unet3plus.data"):
        samplers = [first_case.epoch_sampler(epoch=epoch, seed=0) for epoch in range(3)]
    warnings = [record for record in caplog.records if "no training slice holds tumour" in record.getMessage()]
    assert len(warnings) == 1
    liver = first_case.class_index()["liver"]
    for sampler in samplers:
        assert sampler.class_shares()["tumour"] == 0.0 and len(sampler.epoch_indices()) == len(first_case)
        assert sampler.realised()["foreground"] >= 1 / 3 and liver[sampler.epoch_indices()].mean() >= 1 / 3


def test_cli_option_reaches_the_volume_options_and_lists_every_sampling(tmp_path, capsys):
    from unet3plus.cli import build_parser
    from unet3plus.cli.train import apply_defaults, volume_data

    parser = build_parser()
    with pytest.raises(SystemExit):
        parser.parse_args(["train", "--volumes", "v", "--out", "o", "--sampling", "uniform"])
    refused = capsys.readouterr().err
    assert "--sampling" in refused and all(f"'{name}'" in refused for name in SAMPLINGS)
    write_lits(tmp_path / "data", 2)
    for flags, expected in (([], "class-balanced"), (["--sampling", "any-foreground"], "any-foreground")):
        args = parser.parse_args(["train", "--volumes", str(tmp_path / "data"), "--classes", "liver,tumour",
                                  "--out", str(tmp_path / "run")] + flags)
        apply_defaults(args)
        train_data, _ = volume_data(args)
        assert train_data.options.sampling == expected
