"""A trainer that cannot be fooled or wedged (issue 13): changed settings on resume, every kill point, poisoned
data and diverging losses, interrupts. Scripted epochs (real checkpoints, no training steps) keep most cases fast."""
from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import mindspore as ms
import numpy as np
import pytest
from PIL import Image

from stock_gradients import cli_command
from test_training import cli_args, scripted_trainer, tiny_arrays, write_dataset
from unet3plus import UNet3Plus, load_checkpoint
from unet3plus.data import DatasetError, DataOptions, SegmentationDataset
from unet3plus.training import (BEST, LAST, METRICS_CSV, RESUME, ResumeError, TrainConfig, Trainer,
                                TrainingStopped, read_metrics_csv)
from unet3plus.training import checkpoints

QUIET = dict(batch_size=2, progress=False)


def scripted(tmp_path, scores, **config):
    return scripted_trainer(tmp_path, scores, **config)


def weights(path: Path) -> dict:
    return {k: v.asnumpy() for k, v in ms.load_checkpoint(str(path)).items() if not isinstance(v, str)}


def test_resume_refuses_each_changed_setting_and_the_override_applies_and_logs_them(tmp_path):
    scripted(tmp_path, [0.5], epochs=1).fit()
    changed = dict(lr=1e-2, batch_size=4, loss="dice_ce", weight_decay=0.1)
    run = Trainer(tiny_arrays(), None, TrainConfig(tmp_path / "run", epochs=2, resume=True, progress=False, **changed),
                  log=lambda m: None)
    with pytest.raises(ResumeError) as caught:
        run.fit()
    message = str(caught.value)
    for fragment in ("lr: was 0.001, now 0.01", "batch_size: was 2, now 4", "loss: was bce_dice, now dice_ce",
                     "weight_decay: was 0.0, now 0.1", "--allow-setting-changes"):
        assert fragment in message, fragment
    with pytest.raises(ResumeError, match=r"val_split: was 0.2, now 0.5.*val_images: was"):  # never overridable
        Trainer(tiny_arrays(), None, TrainConfig(tmp_path / "run", epochs=2, resume=True, val_split=0.5,
                                                 allow_setting_changes=True, **QUIET), log=lambda m: None).fit()
    logged = []
    run = Trainer(tiny_arrays(), None, TrainConfig(tmp_path / "run", epochs=2, resume=True, progress=False,
                                                   allow_setting_changes=True, **changed), log=logged.append)
    run._train_epoch = lambda epoch: 0.5
    run.validate = lambda: {"loss": 0.4, "mean_dice": 0.6, "mean_iou": 0.3, "global_dice": 0.3}
    run.fit()
    assert any("changed settings" in line and "lr: was 0.001, now 0.01" in line for line in logged)
    assert float(run.optimizer.learning_rate.asnumpy()) == pytest.approx(1e-2)  # not the saved 1e-3
    assert [row["lr"] for row in read_metrics_csv(tmp_path / "run" / METRICS_CSV)] == pytest.approx([1e-3, 1e-2])


class Killed(BaseException):
    """Stands in for SIGKILL at one point of an epoch's writes."""


@pytest.mark.parametrize("kill_point", ["before_state", "before_renames"])
def test_every_kill_point_of_the_first_epoch_restarts_or_resumes(tmp_path, monkeypatch, kill_point):
    target = {"before_state": "save_resume_state", "before_renames": "finish_commit"}[kill_point]
    real = getattr(checkpoints, target)

    def killed(*args, **kwargs):
        raise Killed

    monkeypatch.setattr(checkpoints, target, killed)
    with pytest.raises(Killed):
        scripted(tmp_path, [0.5], epochs=2).fit()
    monkeypatch.setattr(checkpoints, target, real)
    out = tmp_path / "run"
    assert not (out / BEST).exists() and not (out / LAST).exists()  # only staged files so far
    for resume in (False, True):  # a fresh start and --resume both work
        if kill_point == "before_renames" and not resume:
            with pytest.raises(ResumeError, match="already holds a run"):  # the state was committed
                scripted(tmp_path, [0.5, 0.7], epochs=2).fit()
            continue
        result = scripted(tmp_path, [0.5, 0.7], epochs=2, resume=resume).fit()
        assert result.epochs_run == 2
    assert [r["epoch"] for r in read_metrics_csv(out / METRICS_CSV)] == [1, 2]
    assert not [p.name for p in out.iterdir() if "staged" in p.name or ".partial" in p.name]
    assert load_checkpoint(UNet3Plus(in_channels=1), out / BEST).complete


def test_best_and_last_always_belong_to_the_committed_epoch(tmp_path, monkeypatch):
    scripted(tmp_path, [0.5], epochs=1).fit()
    out = tmp_path / "run"
    before = weights(out / LAST)
    monkeypatch.setattr(checkpoints, "save_resume_state", lambda *a, **k: (_ for _ in ()).throw(Killed()))
    run = scripted(tmp_path / "second", [], epochs=1)  # only to get other weights into a network
    with pytest.raises(Killed):
        state = {"epoch": 2, "best_dice": None, "best_epoch": None}
        checkpoints.commit_epoch(run.net, run.train_step, state, out, True, run.model_config(state))
    for name, value in weights(out / LAST).items():  # the uncommitted epoch did not touch last.ckpt
        np.testing.assert_array_equal(value, before[name])


def test_following_the_advice_for_a_damaged_resume_file_works(tmp_path, capsys):
    scripted(tmp_path, [0.5], epochs=1).fit()
    out = tmp_path / "run"
    (out / RESUME).write_bytes(b"damaged")
    with pytest.raises(ResumeError, match="delete it and run without --resume") as caught:
        scripted(tmp_path, [0.5], epochs=2, resume=True).fit()
    assert str(out / RESUME) in str(caught.value)
    (out / RESUME).unlink()
    assert scripted(tmp_path, [0.5, 0.6], epochs=2).fit().epochs_run == 2


def test_a_nan_in_one_file_is_found_before_the_first_step(tmp_path):
    images, masks = tmp_path / "images", tmp_path / "masks"
    images.mkdir()
    masks.mkdir()
    for i in range(4):
        image = np.random.default_rng(i).random((32, 32)).astype(np.float32)
        if i == 2:
            image[5, 7] = np.nan
        np.save(images / f"p{i}_0.npy", image)
        np.save(masks / f"p{i}_0.npy", np.zeros((32, 32), np.uint8))
    with pytest.raises(DatasetError, match=r"1 file\(s\) hold NaN or infinite values: .*p2_0\.npy"):
        SegmentationDataset.from_folders(images, masks, DataOptions(in_channels=1))


def test_a_non_finite_loss_stops_keeping_the_last_good_checkpoint(tmp_path):
    from unet3plus.cli import exit_status

    scripted(tmp_path, [0.5], epochs=1).fit()
    good = weights(tmp_path / "run" / LAST)
    run = Trainer(tiny_arrays(), None, TrainConfig(tmp_path / "run", epochs=2, resume=True, **QUIET),
                  log=lambda m: None)
    run._run_step = lambda image, label: ms.Tensor(np.float32("nan"))  # the real epoch loop, a poisoned step
    with pytest.raises(TrainingStopped, match=r"training loss became nan in epoch 2, step 1.*last.ckpt") as caught:
        run.fit()
    assert exit_status(caught.value) == 5 and "\n" not in str(caught.value)
    for name, value in weights(tmp_path / "run" / LAST).items():
        np.testing.assert_array_equal(value, good[name])
    assert len(read_metrics_csv(tmp_path / "run" / METRICS_CSV)) == 1


def test_non_finite_weights_are_never_saved(tmp_path):
    run = scripted(tmp_path, [0.5, 0.6], epochs=2)
    real_epoch = run._train_epoch

    def poison(epoch):
        if epoch == 1:
            weight = run.net.outconv1.weight
            weight.set_data(ms.Tensor(np.full(weight.shape, np.inf, np.float32)))
        return real_epoch(epoch)

    run._train_epoch = poison
    with pytest.raises(TrainingStopped, match=r"became NaN or infinite in epoch 2 .*outconv1.weight.*not saved"):
        run.fit()
    assert np.isfinite(weights(tmp_path / "run" / LAST)["outconv1.weight"]).all()
    assert len(read_metrics_csv(tmp_path / "run" / METRICS_CSV)) == 1


def test_an_rgba_image_hint_does_not_repeat_the_default(tmp_path):
    images, masks = tmp_path / "images", tmp_path / "masks"
    images.mkdir()
    masks.mkdir()
    Image.fromarray(np.zeros((32, 32, 4), np.uint8), "RGBA").save(images / "a_0.png")
    Image.fromarray(np.zeros((32, 32), np.uint8)).save(masks / "a_0.png")
    with pytest.raises(DatasetError) as caught:
        SegmentationDataset.from_folders(images, masks, DataOptions(in_channels=3))
    assert "--in-channels 3" not in str(caught.value) and "alpha" in str(caught.value)


def test_ctrl_c_during_training_prints_interrupted_and_leaves_a_resumable_run(tmp_path):
    images, masks = write_dataset(tmp_path / "data")
    out = tmp_path / "run"
    argv = cli_command(*cli_args(images, masks, out, "--epochs", "30"))
    process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               env=dict(os.environ, PYTHONUNBUFFERED="1"))
    try:
        deadline = time.time() + 120
        while not (out / RESUME).exists():
            assert process.poll() is None and time.time() < deadline
            time.sleep(0.2)
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    # 143, not 130: MindSpore's data pipeline answers SIGINT with a SIGTERM to its own process (issue 13's rc -15)
    assert process.returncode in (130, 143) and "unet3plus train: interrupted" in err and "--resume" in err, err
    assert (out / LAST).exists() and not [p.name for p in out.iterdir() if "staged" in p.name]
