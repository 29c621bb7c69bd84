"""It learns: from scratch, a few epochs on tiny synthetic organs lift held-out Dice far above its start."""
from __future__ import annotations

import pytest

from unet3plus.data import DataOptions, SegmentationDataset, synthetic_organs
from unet3plus.training import TrainConfig, Trainer


@pytest.mark.slow  # half a minute of training
def test_held_out_dice_rises_well_above_its_start(tmp_path):
    options = DataOptions(in_channels=1)
    train_data = SegmentationDataset.from_arrays(*synthetic_organs(24, (32, 32), seed=1, empty_fraction=0), options)
    held_out = SegmentationDataset.from_arrays(*synthetic_organs(8, (32, 32), seed=2, empty_fraction=0), options)
    trainer = Trainer(train_data, held_out, TrainConfig(tmp_path / "run", epochs=4, batch_size=2, lr=2e-3,
                                                        progress=False, seed=0), log=lambda message: None)
    start = trainer.validate()["mean_dice"]
    result = trainer.fit()
    final = result.history[-1]["val_dice"]
    print(f"held-out Dice: start {start:.3f}, after {result.epochs_run} epochs {final:.3f}, best {result.best_dice:.3f}")
    assert start < 0.5
    assert result.best_dice > 0.8 and result.best_dice > start + 0.4
