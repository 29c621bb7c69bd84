"""In-plane spacing: the training range in the model config (published: LiTS's; recorded when training on volumes),
one warning naming --resample for an input far outside it, and ``resample`` there and back on a synthetic blob."""
from __future__ import annotations

import json
import logging

import numpy as np
import pytest

from unet3plus import predict
from unet3plus.errors import InputError
from unet3plus.hub.model_config import Architecture, InputConfig, ModelConfig, ModelConfigError
from unet3plus.hub.registry import published_model_config
from unet3plus.io.volume import Volume
from unet3plus.metrics import dice_per_case
from unet3plus.runtime import InferenceBackend
from unet3plus.transforms.spacing import check_resamplable, far_outside, spacing_range

TRAINED = (0.55, 1.0)


class BlobBackend(InferenceBackend):
    """Foreground where the middle channel is bright; remembers the slice sizes it was given."""

    def __init__(self, spacing=TRAINED):
        self.model_config = ModelConfig(input=InputConfig(preset="standard", spacing_range=spacing))
        self.sizes = []

    def __call__(self, batch):
        self.sizes.append(batch.shape[2:])
        return (batch[:, 1:2] - 0.5) * 10.0


def blob_volume(spacing_mm=2.5, size=40):
    """A disc of 30 mm radius at ``spacing_mm`` in-plane on 4 slices (HU 150 inside, -100 outside)."""
    centre = (size - 1) / 2
    rows, columns = np.mgrid[:size, :size]
    disc = np.hypot(rows - centre, columns - centre) * spacing_mm <= 30
    hu = np.where(disc, 150, -100).astype(np.int16)
    return Volume("blob", "volume", np.repeat(hu[None], 4, axis=0), spacing=(3.0, spacing_mm, spacing_mm),
                  affine=np.diag([-spacing_mm, -spacing_mm, 3.0, 1.0]))


def test_the_published_config_states_lits_spacing_and_the_field_is_checked():
    assert published_model_config().input.spacing_range == TRAINED
    text = ModelConfig(input=InputConfig(spacing_range=(0.6, 0.9))).to_json()
    assert ModelConfig.from_dict(json.loads(text)).input.spacing_range == (0.6, 0.9)
    with pytest.raises(ModelConfigError, match="input.spacing_range"):
        ModelConfig.from_dict({"input": {"spacing_range": [0.9, 0.6]}})


def test_range_and_far_rule():
    assert spacing_range([(2.5, 0.7, 0.8), None, (5.0, 0.6, 0.6), (1.0, float("nan"), 0.9)]) == (0.6, 0.9)
    assert spacing_range([None]) is None
    assert far_outside((2.5, 2.5), TRAINED) and far_outside((0.2, 0.7), TRAINED)
    assert not far_outside((1.9, 1.9), TRAINED) and not far_outside((0.3, 0.3), TRAINED)


def test_far_outside_warns_once_naming_resample(caplog):
    with caplog.at_level(logging.WARNING, logger="unet3plus.transforms.spacing"):
        predict(BlobBackend(), blob_volume(2.5))
        warnings = [record.getMessage() for record in caplog.records]
        assert len(warnings) == 1 and "--resample" in warnings[0] and "2.5 x 2.5 mm" in warnings[0]
        caplog.clear()
        predict(BlobBackend(), blob_volume(0.8))
        assert not caplog.records


def test_resample_runs_the_network_at_the_training_spacing_and_returns_the_input_grid(caplog):
    source = blob_volume(2.5)
    plain = predict(BlobBackend(), source)
    backend = BlobBackend()
    caplog.clear()  # the run without resample warned
    with caplog.at_level(logging.WARNING):
        resampled = predict(backend, source, resample=True, probabilities=True)
    assert not [r for r in caplog.records if "--resample" in r.getMessage()]
    assert backend.sizes[0] == (112, 112)  # 40 px at 2.5 mm -> 100 px at 1.0 mm, padded to a multiple of 16
    assert resampled.mask.shape == plain.mask.shape == source.data.shape and resampled.source is source
    assert resampled.probabilities.shape == (4, 1, 40, 40)
    dice = dice_per_case(resampled.mask.astype(np.int64), plain.mask.astype(np.int64), n_classes=2,
                         include_background=False)
    assert np.nanmean(dice) > 0.95 and resampled.mask.sum() > 0


def test_resample_needs_a_spacing_and_in_range_inputs_are_left_alone():
    backend = BlobBackend()
    predict(backend, blob_volume(0.8), resample=True)
    assert backend.sizes[0] == (48, 48)  # 40 px, within the range: not resampled
    with pytest.raises(InputError, match="drop --resample"):
        check_resamplable(Volume("array", "array", np.zeros((3, 8, 8), np.float32)))


def test_training_on_volumes_records_the_cases_in_plane_spacing(tmp_path):
    from volume_data import case, write_nifti

    from unet3plus.data import VolumeDataset, VolumeOptions
    from unet3plus.training import TrainConfig, Trainer

    def write_cases(folder, spacings):
        for index, (row, column) in enumerate(spacings):
            affine = np.diag([-column, -row, 2.5, 1.0])
            hu, labels = case(index)
            write_nifti(folder / f"volume-{index}.nii", hu, affine)
            write_nifti(folder / f"segmentation-{index}.nii.gz", labels, affine)
        return VolumeDataset.from_folder(folder, options=VolumeOptions(classes=("liver", "tumour"), preset="standard"))

    trainer = Trainer(write_cases(tmp_path / "train", ((0.7, 0.8), (0.9, 0.65))),
                      write_cases(tmp_path / "val", ((0.5, 0.5),)), TrainConfig(tmp_path / "run", progress=False),
                      log=lambda message: None)
    config = trainer.model_config({"best_dice": None, "best_epoch": None, "epoch": 0})
    assert config.input.spacing_range == (0.65, 0.9)  # the training cases' rows and columns, not the validation's
    assert ModelConfig.from_dict(json.loads(config.to_json())).input.spacing_range == (0.65, 0.9)
