"""Training data straight from 3-D volumes: layouts, lazy 2.5-D items equal to predict's input, up-front checks."""
from __future__ import annotations

import logging
import re

import nibabel
import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file
from volume_data import SHAPE, case, write_decathlon, write_lits, write_nifti

from unet3plus.data import DatasetError, VolumeDataset, VolumeOptions, find_cases, make_loader
from unet3plus.data.sampling import ForegroundSampler
from unet3plus.io.nifti import slices_to_nifti
from unet3plus.io.readers import read_input
from unet3plus.training.trainer import split_train_val
from unet3plus.transforms.presets import get_preset, window_preset

LITS = VolumeOptions(classes=("liver", "tumour"))


@pytest.mark.parametrize("stored", ["training orientation", "RAS (reoriented on reading)"])
def test_lits_items_are_what_predict_feeds_the_network(tmp_path, stored):
    affine = None if stored == "training orientation" else np.eye(4)
    data = VolumeDataset.from_folder(write_lits(tmp_path, 3, affine=affine), options=LITS)
    assert len(data) == 3 * SHAPE[0] and data.options.n_classes == 3 and data.options.in_channels == 3
    whole = get_preset("lits2017")(read_input(tmp_path / "volume-1.nii").data)
    labels = np.rint(read_input(tmp_path / "segmentation-1.nii.gz").data).astype(np.int32)
    if affine is None:  # stored as trained: the reader gives the written arrays back
        np.testing.assert_array_equal(labels, case(1)[1])
    for z in range(SHAPE[0]):  # edges included: the clamped context must match the whole-volume preset
        image, label = data[SHAPE[0] + z]
        assert image.dtype == np.float32 and label.dtype == np.int32
        np.testing.assert_array_equal(image, whole[z])
        np.testing.assert_array_equal(label, labels[z])
    assert {0, 1, 2} <= set(np.unique(np.concatenate([data[i][1].ravel() for i in range(len(data))])))


def test_window_option_and_labelled_slices(tmp_path):
    options = VolumeOptions(classes=("liver",), label_map={2: 1}, window=(-100, 300), slices="labelled")
    data = VolumeDataset.from_folder(write_lits(tmp_path, 2), options=options)
    foreground = [case(i)[1].reshape(SHAPE[0], -1).any(axis=1) for i in range(2)]
    assert len(data) == sum(int(np.flatnonzero(f)[-1] - np.flatnonzero(f)[0] + 1) for f in foreground) < 2 * SHAPE[0]
    first = int(np.flatnonzero(foreground[0])[0])
    expected = window_preset(-100, 300)(read_input(tmp_path / "volume-0.nii").data)[first]
    np.testing.assert_array_equal(data[0][0], expected)
    assert set(np.unique(data[len(data) // 4][1])) <= {0, 1}  # tumour merged into liver (LiTS convention)


@pytest.mark.parametrize("layout", ["lits-two-folders", "decathlon", "nnunet"])
def test_layouts_are_recognised(tmp_path, layout):
    if layout == "lits-two-folders":
        write_lits(tmp_path / "all", 2)
        (tmp_path / "labels").mkdir()
        for label in (tmp_path / "all").glob("segmentation-*"):
            label.rename(tmp_path / "labels" / label.name)
        cases = find_cases(tmp_path / "all", tmp_path / "labels")
    else:
        write_decathlon(tmp_path, 2, nnunet=layout == "nnunet")
        (tmp_path / "imagesTr" / "._liver_0.nii.gz").write_bytes(b"macOS resource fork")  # in Decathlon tars
        cases = find_cases(tmp_path)
    assert len(cases) == 2 and all(c.labels.exists() and c.image.exists() for c in cases)
    assert len(VolumeDataset.from_cases(cases, LITS)) == 2 * SHAPE[0]


def test_dicom_series_with_nifti_labels(tmp_path):
    n_slices = 4
    for name in ("patient_a", "patient_b"):
        for index in range(n_slices):
            dataset = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
            dataset.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
            dataset.ImagePositionPatient = [0.0, 0.0, float(index)]
            (tmp_path / "dicom" / name).mkdir(parents=True, exist_ok=True)
            dataset.save_as(tmp_path / "dicom" / name / f"{index}.dcm")
        labels = np.zeros((n_slices, 128, 128), np.uint8)
        labels[1:3, 40:80, 50:90] = 1
        series = read_input(tmp_path / "dicom" / name)  # labels on the series' own grid, as a labelling tool writes
        (tmp_path / "labels").mkdir(exist_ok=True)
        nibabel.save(nibabel.Nifti1Image(slices_to_nifti(labels), series.affine),
                     str(tmp_path / "labels" / f"{name}.nii.gz"))
    data = VolumeDataset.from_folder(tmp_path / "dicom", tmp_path / "labels", VolumeOptions(classes=("liver",)))
    assert len(data) == 2 * n_slices
    hu = read_input(tmp_path / "dicom" / "patient_b").data
    np.testing.assert_array_equal(data[n_slices + 2][0], get_preset("lits2017")(hu)[2])
    assert data[n_slices + 2][1][60, 70] == 1 and data[n_slices][1].max() == 0
    with pytest.raises(DatasetError, match="--labels"):
        find_cases(tmp_path / "dicom")
    shifted = nibabel.load(str(tmp_path / "labels" / "patient_a.nii.gz"))  # the same label 50 mm off the series
    moved = shifted.affine.copy()
    moved[:3, 3] += (50.0, 0.0, 0.0)
    nibabel.save(nibabel.Nifti1Image(np.asarray(shifted.dataobj), moved),
                 str(tmp_path / "labels" / "patient_a.nii.gz"))
    with pytest.raises(DatasetError, match="patient_a"):
        VolumeDataset.from_folder(tmp_path / "dicom", tmp_path / "labels", VolumeOptions(classes=("liver",)))


def test_split_is_by_case(tmp_path):
    data = VolumeDataset.from_folder(write_lits(tmp_path, 5), options=LITS)
    train, val = split_train_val(data, 0.4, seed=0)
    train_cases = {data.cases[c].name for c, _ in train.items}
    val_cases = {data.cases[c].name for c, _ in val.items}
    assert len(val_cases) == 2 and len(train_cases) == 3 and not train_cases & val_cases
    assert len(val) == 2 * SHAPE[0]


def test_every_problem_of_the_dataset_in_one_error(tmp_path):
    write_lits(tmp_path, 8)
    hu, labels = case(0)
    write_nifti(tmp_path / "segmentation-0.nii.gz", labels[:, :32])  # shape differs
    write_nifti(tmp_path / "segmentation-1.nii.gz", case(1)[1], affine=np.diag([2.0, 1, 1, 1]))  # affine differs
    write_nifti(tmp_path / "segmentation-2.nii.gz", np.where(case(2)[1] == 2, 7, case(2)[1]).astype(np.uint8))
    (tmp_path / "volume-3.nii").write_bytes(b"\x5c\x01\x00\x00 not a NIfTI file")
    nan_volume = case(4)[0].astype(np.float32)
    nan_volume[3, 5, 5] = np.nan
    write_nifti(tmp_path / "volume-4.nii", nan_volume)
    write_nifti(tmp_path / "volume-5.nii", case(5)[0][:2])
    write_nifti(tmp_path / "segmentation-5.nii.gz", case(5)[1][:2])
    write_nifti(tmp_path / "segmentation-6.nii.gz", np.zeros(SHAPE, np.uint8))
    out = tmp_path / "run"
    with pytest.raises(DatasetError) as raised:
        VolumeDataset.from_folder(tmp_path, options=LITS)
    message = str(raised.value)
    assert "\n" not in message and message.startswith("7 problem(s)")
    for expected in ["volume-0.nii is 12x64x64 but its labels .*segmentation-0.nii.gz are 12x32x64",
                     "volume-1.nii and its labels .*segmentation-1.nii.gz have different affines",
                     r"segmentation-2.nii.gz has label value\(s\) \[7\] outside 0..2",
                     "cannot read .*volume-3.nii", "volume-4.nii holds 1 NaN/Inf voxel",
                     r"volume-5.nii has 2 slice\(s\), fewer than the 3", "segmentation-6.nii.gz is all background"]:
        assert re.search(expected, message), expected
    assert not out.exists()


def test_dataset_wide_problems(tmp_path):
    write_lits(tmp_path / "a", 2)
    write_lits(tmp_path / "b", 1, shape=(12, 48, 64), first_seed=5)
    (tmp_path / "b" / "volume-0.nii").rename(tmp_path / "a" / "volume-9.nii")
    (tmp_path / "b" / "segmentation-0.nii.gz").rename(tmp_path / "a" / "segmentation-9.nii.gz")
    with pytest.raises(DatasetError, match="2 slice sizes"):
        VolumeDataset.from_folder(tmp_path / "a", options=LITS)
    with pytest.raises(DatasetError, match="no case has any voxel of class.* vessel"):
        VolumeDataset.from_folder(tmp_path / "a", options=VolumeOptions(classes=("liver", "tumour", "vessel")))


@pytest.mark.parametrize("foreground, empty", [(0.8, 0.2), (0.25, 0.75), (0.5, 0.5)])
def test_sampler_realises_the_set_fractions(foreground, empty):
    has_foreground = np.zeros(1000, bool)
    has_foreground[::10] = True  # 10% of the slices show foreground
    sampler = ForegroundSampler(has_foreground, foreground_fraction=foreground, empty_fraction=empty, epoch=3)
    assert sampler.realised() == pytest.approx({"foreground": foreground, "empty": empty}, abs=1e-9)


def test_sampler_default_third_on_top_of_uniform_and_sharded_deterministically():
    has_foreground = np.zeros(999, bool)
    has_foreground[::10] = True
    sampler = ForegroundSampler(has_foreground, epoch=1, seed=4)  # 1/3 forced, the rest uniform
    expected = 1 / 3 + 2 / 3 * has_foreground.mean()
    assert abs(sampler.realised()["foreground"] - expected) < 0.03
    assert ForegroundSampler(has_foreground).realised()["foreground"] < 0.45  # ~0.4 here, not 0.1
    shards = [ForegroundSampler(has_foreground, epoch=1, seed=4, num_shards=2, shard_id=k).indices() for k in (0, 1)]
    assert len(shards[0]) == len(shards[1]) == 500
    np.testing.assert_array_equal(np.sort(np.concatenate(shards)[:999]), np.sort(sampler.epoch_indices()))
    np.testing.assert_array_equal(sampler.indices(), ForegroundSampler(has_foreground, epoch=1, seed=4).indices())
    assert not np.array_equal(sampler.indices(), ForegroundSampler(has_foreground, epoch=2, seed=4).indices())


def test_loader_draws_foreground_and_logs_the_fractions(tmp_path, caplog):
    options = VolumeOptions(classes=("liver", "tumour"), foreground_fraction=0.75, empty_fraction=0.25)
    data = VolumeDataset.from_folder(write_lits(tmp_path, 2), options=options)
    with caplog.at_level(logging.INFO, logger="unet3plus.data"):
        loader = make_loader(data, 4, epoch=0, seed=0)
    assert "75.0% with foreground, 25.0% empty" in caplog.text
    labels = np.concatenate([label.asnumpy() for _, label in loader.create_tuple_iterator(num_epochs=1)])
    shown = labels.reshape(len(labels), -1).max(axis=1) > 0
    assert len(labels) == len(data) and shown.mean() == 0.75
    with pytest.raises(DatasetError, match="empty-slice share"):
        VolumeOptions(foreground_fraction=0.5, empty_fraction=0.7)


def test_checkpoint_input_config_reproduces_the_training_input():
    from unet3plus.transforms.presets import preset_from_input_config

    volume = case(3)[0].astype(np.float32)
    for options in (VolumeOptions(window=(-100, 300)), VolumeOptions(preset="lits2017")):
        preset = preset_from_input_config(options.input_config(), options.in_channels)
        np.testing.assert_array_equal(preset(volume), options.input_preset(volume))
    assert VolumeOptions(classes=("liver", "tumour")).class_names == ("background", "liver", "tumour")
