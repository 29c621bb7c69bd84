"""Every step that can take more than a few seconds says so before it starts: the training step's compilation
(and how long it took), an export, and each step of int8 quantization. The lines are asserted, not timed."""
from __future__ import annotations

import re

import mindspore as ms
import pytest

from unet3plus.cli import main
from unet3plus.data import DataOptions, SegmentationDataset, synthetic_organs
from unet3plus.training import TrainConfig, Trainer
from unet3plus.training.trainer import COMPILING


def test_the_first_training_step_announces_its_compilation_and_reports_its_time(tmp_path):
    images, masks = synthetic_organs(8, (32, 32), seed=0, empty_fraction=0)
    data = SegmentationDataset.from_arrays(images, masks, DataOptions(in_channels=1),
                                           names=[f"patient{i // 2}_slice{i % 2}" for i in range(8)])
    lines = []
    trainer = Trainer(data, None, TrainConfig(tmp_path / "run", epochs=2, batch_size=2, progress=False), log=lines.append)
    steps = []
    trainer._run_step = lambda image, label: steps.append(image.shape) or ms.Tensor(0.5, ms.float32)  # no compile here
    for epoch in (0, 1):
        trainer._train_epoch(epoch)
    assert steps, "the loop ran"
    assert lines[0] == COMPILING and "compiling the training step" in COMPILING
    assert re.fullmatch(r"compiled and ran the training step in \d+\.\d s", lines[1])
    assert len(lines) == 2  # once per run: the second epoch says nothing of it


def test_an_export_says_what_it_exports_before_it_starts(golden_checkpoint, tmp_path, capsys):
    pytest.importorskip("onnxruntime")
    assert main(["export", "--format", "onnx", "--out", str(tmp_path / "m.onnx"), "--checkpoint",
                 str(golden_checkpoint), "--size", "32", "32", "--verify"]) == 0
    err = capsys.readouterr().err
    assert "exporting to ONNX for input 1 x 3 x 32 x 32 ..." in err and "checking it against MindSpore ..." in err


def test_int8_quantization_announces_each_step(golden_checkpoint, tmp_path, capsys):
    pytest.importorskip("onnx")
    pytest.importorskip("onnxruntime")
    assert main(["export", "--format", "onnx", "--quantize", "int8", "--out", str(tmp_path / "q.onnx"),
                 "--checkpoint", str(golden_checkpoint), "--size", "32", "32", "--calibration-slices", "2"]) == 0
    err = capsys.readouterr().err
    steps = re.findall(r"int8 step (\d) of 4: (\w+)", err)
    assert steps == [("1", "preparing"), ("2", "exporting"), ("3", "calibrating"), ("4", "comparing")], err
    assert "calibrating on 2 slice(s) in 2 batch(es) of 1 x 3 x 32 x 32" in err
    assert "calibrate:" in err  # its progress bar (the CLI's default; --no-progress hides it)
    assert re.search(r"quantized in \d+\.\d s", err)
