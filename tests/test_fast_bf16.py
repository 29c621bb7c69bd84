"""``predict --fast`` in bf16 through OpenVINO (issue 22): the engine runs the verified cached export, and bf16
is kept only after the CT's first batch with foreground agreed with fp32.

Whether bf16 is used depends on the CPU (OpenVINO's ``OPTIMIZATION_CAPABILITIES``); the tests below make it
available so that the engine, the calibration and the fallback run on every CPU (where the CPU has no bf16
units OpenVINO computes in fp32 and the comparison still holds). On a bf16 CPU one test also checks that the
answer really differs from fp32, i.e. that bf16 ran.
"""
from __future__ import annotations

import logging

import numpy as np
import pytest

from unet3plus import predict
from unet3plus.networks.fusion import optimize_for_inference
from unet3plus.runtime import cropping, openvino_runtime
from unet3plus.runtime.cropping import WindowedNetwork

from test_whole_ct import network, synthetic_ct  # noqa: F401  (network: the seeded 3-class fixture)

pytest.importorskip("openvino")  # in the test extra: installed wherever the suite is

CALIBRATION = "bf16 (OpenVINO) against fp32"
CPU_HAS_BF16 = openvino_runtime.bf16_engine_available()


@pytest.fixture
def bf16_available(monkeypatch):
    monkeypatch.setattr(openvino_runtime, "bf16_engine_available", lambda: True)


def test_openvino_runs_the_cached_export_close_to_fp32(network, tmp_path, bf16_available, caplog):
    windowed = WindowedNetwork(optimize_for_inference(network), onnx=True, cache_dir=tmp_path)
    x = np.random.default_rng(4).random((1, 3, 96, 96)).astype(np.float32)
    fp32 = windowed(x, (128, 128), (16, 32))
    low = windowed(x, (128, 128), (16, 32), bf16=True)
    assert low.shape == fp32.shape
    assert np.abs(low - fp32).max() <= 0.05 * np.abs(fp32).max()
    assert len(list((tmp_path / "onnx").glob("*.onnx"))) == 1  # both engines run the one verified export
    fell_back = [r for r in caplog.records if "cannot compile the cropped network in bf16" in r.getMessage()]
    if CPU_HAS_BF16 and not fell_back:  # fell back: e.g. a user's own ONEDNN_MAX_CPU_ISA=AVX2 hides the units
        assert not np.array_equal(low, fp32)  # bf16 really ran


@pytest.mark.parametrize("minimum, kept", [(0.0, True), (1.01, False)])
def test_fast_keeps_bf16_only_after_the_first_foreground_batch_agrees_with_fp32(
        network, isolated_cache, bf16_available, monkeypatch, caplog, minimum, kept):
    monkeypatch.setattr(cropping, "BF16_MIN_DICE", minimum)
    volume = synthetic_ct(n_slices=12)
    with caplog.at_level(logging.INFO, logger="unet3plus.runtime.cropping"):
        fast = predict(network, volume, strategy="fast", backend="auto")
    lines = [record for record in caplog.records if CALIBRATION in record.getMessage()]
    assert len(lines) == 1, [record.getMessage() for record in caplog.records]
    message = lines[0].getMessage()
    assert "Dice liver " in message and ", tumour " in message  # per class, by name (the published names here)
    assert message.endswith("bf16 for the rest") == kept
    assert (lines[0].levelno == logging.WARNING) == (not kept)
    if not kept:  # the fallback gives exactly what fp32 gives
        monkeypatch.setattr(openvino_runtime, "bf16_engine_available", lambda: False)
        caplog.clear()
        fp32 = predict(network, volume, strategy="fast", backend="auto")
        np.testing.assert_array_equal(fast.mask, fp32.mask)
        assert not [record for record in caplog.records if CALIBRATION in record.getMessage()]


class FakeWindowed:
    """A cropped network's stand-in: no export, no engine, background logits (the reason is logged first)."""
    onnx, can_run_bf16 = True, False

    def __call__(self, batch, size, offset, bf16=False):
        return np.zeros((batch.shape[0], 3) + batch.shape[2:], np.float32)


@pytest.mark.parametrize("onnx, installed, reason", [
    (True, True, "OpenVINO reports no bf16 units on this CPU"),
    (True, False, "OpenVINO is not installed (pip install -e '.[openvino]'"),
    (False, True, "this network runs on MindSpore")])
def test_fast_says_why_it_runs_fp32(monkeypatch, caplog, onnx, installed, reason):
    from unet3plus.transforms.presets import get_preset

    monkeypatch.setattr(openvino_runtime, "engine_available", lambda: installed)
    volume = synthetic_ct(n_slices=10)
    windowed = FakeWindowed()
    windowed.onnx = onnx
    run = cropping.PlannedRun(windowed, None, lambda a, b: get_preset("lits2017").slices(volume, a, b), volume,
                              volume.shape[1:], 1, "fast", 0.5)
    with caplog.at_level(logging.INFO, logger="unet3plus.runtime.cropping"):
        assert sum(len(scores) for _, scores, _ in run) == len(volume)
    lines = [record.getMessage() for record in caplog.records if "--fast: fp32 throughout" in record.getMessage()]
    assert len(lines) == 1 and reason in lines[0], lines
