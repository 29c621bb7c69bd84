"""Fine-tuning: checks before training, checkpoints, resume after a kill, early stopping, variants."""
from __future__ import annotations

import json
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
from unet3plus import UNet3Plus, load_checkpoint
from unet3plus.cli import main
from unet3plus.data import DataOptions, SegmentationDataset, synthetic_organs
from unet3plus.hub.model_config import CONFIG_ENTRY
from unet3plus.training import (BEST, LAST, METRICS_CSV, RESUME, ResumeError, TrainConfig, Trainer,
                                load_resume_state, read_metrics_csv, train)

SIZE = (32, 32)


def write_dataset(root: Path, n_images=8, size=SIZE, seed=0, channels=1) -> tuple:
    """Synthetic organs as 8-bit PNGs, masks saved 0/255 (so --label-map 255:1 is needed)."""
    images, masks = synthetic_organs(n_images, size, channels=channels, seed=seed, empty_fraction=0)
    image_dir, mask_dir = root / "images", root / "masks"
    image_dir.mkdir(parents=True)
    mask_dir.mkdir(parents=True)
    for i, (image, mask) in enumerate(zip(images, masks)):
        stem = f"patient{i // 2}_slice{i % 2:02d}"
        Image.fromarray((image * 255).astype(np.uint8)).save(image_dir / f"{stem}.png")
        Image.fromarray((mask * 255).astype(np.uint8)).save(mask_dir / f"{stem}.png")
    return image_dir, mask_dir


def cli_args(images, masks, out, *extra):
    return ["train", "--images", str(images), "--masks", str(masks), "--out", str(out), "--label-map", "255:1",
            "--in-channels", "1", "--batch-size", "2", "--no-progress", *map(str, extra)]


@pytest.fixture
def folders(tmp_path):
    return write_dataset(tmp_path / "data")


def test_bad_input_fails_before_training_with_one_clear_line(tmp_path, folders, capsys):
    images, masks = folders
    out = tmp_path / "run"
    empty = tmp_path / "empty"
    empty.mkdir()
    rgb_images = tmp_path / "rgb"
    rgb_images.mkdir()
    for path in images.iterdir():
        Image.open(path).convert("RGB").save(rgb_images / path.name)
    cases = [
        (cli_args(empty, masks, out), "image folder .*empty holds no"),
        (cli_args(images, masks, out)[:-7] + ["--batch-size", "2"], r"label value\(s\) \[255\].*--label-map 255:1"),
        (cli_args(rgb_images, masks, out), r"has 3 channel\(s\) but the network takes 1"),
        (cli_args(images, masks, out, "--batch-size", "64"), "batch size 64 is larger than the 6 training images"),
        (cli_args(images, masks, out, "--resume"), "nothing to resume"),
        (cli_args(images, masks, out, "--val-images", images), "--val-images and --val-masks go together"),
    ]
    for argv, pattern in cases:
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert err.startswith("unet3plus train: error: ") and len(err.strip().splitlines()) == 1, err
        import re
        assert re.search(pattern, err), (pattern, err)
    assert not out.exists()  # nothing written before the checks pass


def test_unpaired_unreadable_and_size_mismatch_from_the_cli(tmp_path, folders, capsys):
    images, masks = folders
    (masks / "patient0_slice00.png").rename(masks / "orphan.png")
    assert main(cli_args(images, masks, tmp_path / "run")) == 2
    err = capsys.readouterr().err
    assert "patient0_slice00.png" in err and "orphan.png" in err
    (masks / "orphan.png").rename(masks / "patient0_slice00.png")
    (images / "patient1_slice01.png").write_bytes(b"\x89PNG broken")
    assert main(cli_args(images, masks, tmp_path / "run")) == 2
    assert "cannot read image" in capsys.readouterr().err
    Image.fromarray(np.zeros((32, 48), np.uint8)).save(images / "patient1_slice01.png")
    assert main(cli_args(images, masks, tmp_path / "run")) == 2
    assert "is 32x48 but its mask" in capsys.readouterr().err


@pytest.mark.compat
def test_run_writes_loadable_network_checkpoints_log_and_plot(tmp_path, folders, golden_checkpoint, capsys):
    images, masks = folders
    out = tmp_path / "run"
    assert main(cli_args(images, masks, out, "--epochs", "2", "--checkpoint", golden_checkpoint,
                         "--deep-supervision", "--cgm", "--freeze-encoder", "--loss", "hybrid")) == 0
    assert "best validation Dice" in capsys.readouterr().out
    assert {p.name for p in out.iterdir()} == {"best.ckpt", "last.ckpt", "resume.ckpt", "metrics.csv",
                                              "curves.png", "train_config.json"}
    rows = read_metrics_csv(out / METRICS_CSV)
    assert [r["epoch"] for r in rows] == [1, 2] and all(np.isfinite(r["train_loss"]) for r in rows)
    with Image.open(out / "curves.png") as plot:
        assert plot.format == "PNG" and plot.size[0] > 100
    net = UNet3Plus(in_channels=1, deep_supervision=True, cgm=True)
    report = load_checkpoint(net, out / LAST, strict=True)
    assert report.complete
    # the frozen encoder kept the golden (pretrained) weights, BatchNorm statistics included
    golden = ms.load_checkpoint(str(golden_checkpoint))
    np.testing.assert_array_equal(net.conv2.conv[1].moving_mean.asnumpy(),
                                  golden["network.conv2.conv.1.moving_mean"].asnumpy())
    assert not np.array_equal(net.outconv1.weight.asnumpy(), golden["network.outconv1.weight"].asnumpy())
    assert oct((out / LAST).stat().st_mode & 0o777) != oct(0o400)


def tiny_arrays(n=8, seed=0):
    images, masks = synthetic_organs(n, SIZE, seed=seed, empty_fraction=0)
    names = [f"patient{i // 2}_slice{i % 2}" for i in range(n)]
    return SegmentationDataset.from_arrays(images, masks, DataOptions(in_channels=1), names=names)


def test_resume_refuses_a_run_folder_without_resume_and_a_changed_class_count(tmp_path):
    """Scripted epochs write a real run state; the checks run before any training step."""
    data = tiny_arrays()
    scripted_trainer(tmp_path, [0.5], epochs=1).fit()
    with pytest.raises(ResumeError, match="already holds a run"):
        train(data, None, TrainConfig(tmp_path / "run", epochs=2, batch_size=2), log=lambda m: None)
    other = SegmentationDataset.from_arrays(*synthetic_organs(8, SIZE, n_classes=3, seed=0),
                                            DataOptions(in_channels=1, n_classes=3), names=data.names)
    with pytest.raises(ResumeError, match="n_classes: was 1, now 3"):
        train(other, None, TrainConfig(tmp_path / "run", epochs=3, batch_size=2, resume=True), log=lambda m: None)


def scripted_trainer(tmp_path, dice_per_epoch, **config):
    """A real Trainer whose epochs are replaced by scripted validation scores (tests the loop's logic)."""
    run = Trainer(tiny_arrays(), None, TrainConfig(tmp_path / "run", batch_size=2, progress=False, **config),
                  log=lambda m: None)
    scores = iter(dice_per_epoch)
    run._train_epoch = lambda epoch: 0.5
    run.validate = lambda: {"loss": 0.4, "mean_dice": next(scores), "mean_iou": 0.3, "global_dice": 0.3}
    return run


def test_early_stopping_after_patience_epochs_without_improvement(tmp_path):
    run = scripted_trainer(tmp_path, [0.5, 0.6, 0.55, 0.6, 0.9, 0.95], epochs=6, patience=2)
    result = run.fit()
    assert result.stopped_early and result.epochs_run == 4 and result.best_epoch == 2
    assert result.best_dice == pytest.approx(0.6)
    assert len(read_metrics_csv(tmp_path / "run" / METRICS_CSV)) == 4
    again = scripted_trainer(tmp_path / "b", [0.5, 0.52, 0.53], epochs=3, patience=1, min_delta=0.05)
    assert again.fit().epochs_run == 2  # improvements smaller than min_delta do not count


def test_pretrained_weights_are_fetched_through_the_hub_once(tmp_path, golden_checkpoint, monkeypatch):
    import unet3plus.hub as hub

    calls = []

    def fake_pretrained_checkpoint(config, **kwargs):
        calls.append(config.filename)
        return Path(golden_checkpoint)

    monkeypatch.setattr(hub, "pretrained_checkpoint", fake_pretrained_checkpoint)
    run = Trainer(tiny_arrays(), None, TrainConfig(tmp_path / "run", batch_size=2, pretrained=True, cgm=True),
                  log=lambda m: None)
    assert len(calls) == 1
    assert set(run.load_report.newly_initialised) == {"cgm.conv.weight", "cgm.conv.bias"}
    golden = ms.load_checkpoint(str(golden_checkpoint))
    np.testing.assert_array_equal(run.net.conv3.conv[0].weight.asnumpy(),
                                  golden["network.conv3.conv.0.weight"].asnumpy())


def test_killed_run_leaves_intact_checkpoints_and_resumes_to_the_uninterrupted_result(tmp_path, folders,
                                                                                      stock_gradients):
    images, masks = folders
    out = tmp_path / "run"
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    argv = cli_command(*cli_args(images, masks, out, "--epochs", "30"))
    process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env)
    try:
        deadline = time.time() + 120
        while not (out / RESUME).exists():  # the first epoch has finished: kill in the middle of a later one
            assert process.poll() is None, process.stdout.read().decode()
            assert time.time() < deadline, "no epoch finished in time"
            time.sleep(0.2)
        time.sleep(1.0)
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    for name in (BEST, LAST, RESUME):  # every checkpoint under its final name is complete
        assert len(ms.load_checkpoint(str(out / name))) >= 171
    done = len(read_metrics_csv(out / METRICS_CSV))
    assert 1 <= done < 30
    net = UNet3Plus(in_channels=1)
    assert load_checkpoint(net, out / BEST).complete
    state = load_resume_state(Trainer(tiny_arrays(), tiny_arrays(), TrainConfig(tmp_path / "x", epochs=1, batch_size=2)
                                      ).train_step, out / RESUME)
    # resume.ckpt is the source of truth; the kill may land between the log and resume.ckpt of an epoch
    assert state["epoch"] in (done, done - 1)
    target = state["epoch"] + 2
    assert main(cli_args(images, masks, out, "--epochs", str(target), "--resume")) == 0
    rows = read_metrics_csv(out / METRICS_CSV)
    assert [r["epoch"] for r in rows] == list(range(1, target + 1))  # each epoch logged exactly once
    assert not [p for p in out.iterdir() if ".partial" in p.name]  # temporaries of the killed run are gone

    # the killed and resumed run ends where an uninterrupted run of as many epochs ends
    straight = tmp_path / "straight"
    assert main(cli_args(images, masks, straight, "--epochs", str(target))) == 0
    a, b = ms.load_checkpoint(str(straight / LAST)), ms.load_checkpoint(str(out / LAST))
    assert a.keys() == b.keys()
    config_a, config_b = (json.loads(a.pop(CONFIG_ENTRY)), json.loads(b.pop(CONFIG_ENTRY)))  # text, not weights
    assert config_a["provenance"]["epochs"] == config_b["provenance"]["epochs"] == target
    for name in a:
        np.testing.assert_allclose(b[name].asnumpy(), a[name].asnumpy(), rtol=1e-4, atol=1e-5, err_msg=name)
    straight_rows = read_metrics_csv(straight / METRICS_CSV)
    for resumed_row, straight_row in zip(rows, straight_rows):
        assert resumed_row["val_dice"] == pytest.approx(straight_row["val_dice"], abs=1e-3), resumed_row


def test_memory_pool_is_configured_at_most_once_per_process():
    """MindSpore allows one set_memory per process: a second call (or a user's earlier one) is kept, not replaced."""
    from unet3plus.training.memory import configure_memory_pool

    configure_memory_pool()  # True here, or False if a trainer earlier in this test session set it already
    assert configure_memory_pool() is False


def test_release_free_heap_uses_glibc_malloc_trim():
    import platform

    from unet3plus.training.memory import release_free_heap

    assert release_free_heap() is (platform.libc_ver()[0] == "glibc")
