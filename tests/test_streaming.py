"""Whole-volume inference in bounded memory: streamed batches give the whole-stack result, probabilities only
on request (float16 on disk), and peak memory grows per slice with the int16 input and its uint8 mask."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import unet3plus
from unet3plus import predict
from unet3plus.errors import InputError
from unet3plus.io import read_input, write_prediction
from unet3plus.runtime import InferenceBackend
from unet3plus.transforms import get_preset
from unet3plus.transforms.postprocess import labels_from_probabilities, probabilities_from_logits

nibabel = pytest.importorskip("nibabel")


class MixingBackend(InferenceBackend):
    """A deterministic, batch-independent stand-in for the network that uses every channel and pixel position."""

    def __init__(self, fixed_shape=None):
        self.fixed_shape = fixed_shape
        self.calls = []

    def __call__(self, batch):
        self.calls.append(batch.shape)
        mixed = batch[:, 0:1] * 3.0 - batch[:, 1:2] * 2.0 + batch[:, 2:3] - 0.4
        return np.concatenate([mixed, np.roll(mixed, 1, axis=3) * 0.5], axis=1)  # two channels: softmax


def old_lits2017_stack(volume):
    """The whole-volume float32 stack the unstreamed path built (``[z, z-1, z-2]``, edge slices repeated)."""
    intensity = (np.rint(np.clip(volume.astype(np.float32), 0.0, 200.0)) / np.float32(255.0)).astype(np.float32)
    index = np.clip(np.arange(len(volume))[:, None] - np.arange(3)[None, :], 0, len(volume) - 1)
    return intensity[index]


def unstreamed(backend, volume, padded_shape):
    """Reference: every slice's input built at once, one forward pass over all of them, then the mask."""
    stack = old_lits2017_stack(volume)
    padded = np.zeros((len(stack), 3) + padded_shape, np.float32)
    padded[:, :, :volume.shape[1], :volume.shape[2]] = stack
    probabilities = probabilities_from_logits(backend(padded)[:, :, :volume.shape[1], :volume.shape[2]])
    return labels_from_probabilities(probabilities), probabilities


def ct(shape, seed=0):
    return np.random.default_rng(seed).integers(-300, 400, size=shape).astype(np.int16)


@pytest.mark.parametrize("batch_size", [1, 3, 7])
def test_streamed_batches_give_the_unstreamed_mask_and_probabilities(batch_size):
    volume = ct((7, 20, 27))
    mask, probabilities = unstreamed(MixingBackend(), volume, (32, 32))
    backend = MixingBackend()
    prediction = predict(backend, volume, batch_size=batch_size, probabilities=True)
    np.testing.assert_array_equal(prediction.mask, mask)
    np.testing.assert_array_equal(prediction.probabilities, probabilities)
    assert prediction.mask.dtype == np.uint8 and prediction.channels == 2
    assert set(backend.calls) == {(batch_size, 3, 32, 32)}  # every batch one fixed shape, the last one padded
    without = predict(MixingBackend(), volume, batch_size=batch_size)
    assert without.probabilities is None and without.channels == 2
    np.testing.assert_array_equal(without.mask, mask)


def test_a_fixed_shape_model_streams_in_its_own_batch():
    volume = ct((5, 20, 27), seed=1)
    mask, _ = unstreamed(MixingBackend(), volume, (32, 48))
    backend = MixingBackend(fixed_shape=(2, 3, 32, 48))
    np.testing.assert_array_equal(predict(backend, volume, batch_size=4).mask, mask)
    assert set(backend.calls) == {(2, 3, 32, 48)}


@pytest.mark.parametrize("name", ["lits2017", "standard"])
def test_preset_slices_equal_the_whole_stack(name):
    volume = ct((6, 5, 4), seed=2)
    preset = get_preset(name)
    whole = preset(volume)
    if name == "lits2017":
        np.testing.assert_array_equal(whole, old_lits2017_stack(volume))
    for start, stop in [(0, 1), (0, 4), (1, 3), (4, 6), (5, 6), (0, 6)]:
        np.testing.assert_array_equal(preset.slices(volume, start, stop), whole[start:stop])
    np.testing.assert_array_equal(whole, preset(volume.astype(np.float32)))  # int16 and float32 CT alike


def test_int16_nifti_stays_int16_and_gives_what_float32_gives(tmp_path):
    volume = ct((4, 16, 16), seed=3)
    nibabel.save(nibabel.Nifti1Image(np.transpose(volume, (2, 1, 0)), np.diag([-0.8, -0.8, 2.0, 1.0])),
                 str(tmp_path / "ct.nii.gz"))
    loaded = read_input(tmp_path / "ct.nii.gz")
    assert loaded.data.dtype == np.int16
    np.testing.assert_array_equal(predict(MixingBackend(), loaded).mask,
                                  predict(MixingBackend(), volume.astype(np.float32)).mask)
    with pytest.raises(InputError, match="NaN/Inf"):
        predict(MixingBackend(), np.where(volume == volume.max(), np.nan, volume.astype(np.float32)))


def test_float16_probabilities_on_disk_round_trip(tmp_path):
    volume = ct((5, 20, 24), seed=4)
    nibabel.save(nibabel.Nifti1Image(np.transpose(volume, (2, 1, 0)), np.diag([-0.8, -0.8, 2.0, 1.0])),
                 str(tmp_path / "case.nii.gz"))
    source = read_input(tmp_path / "case.nii.gz")
    in_memory = predict(MixingBackend(), source, batch_size=2, probabilities=True)
    target = tmp_path / "out" / "case_probabilities.npy"
    target.parent.mkdir()
    on_disk = predict(MixingBackend(), source, batch_size=2, probabilities=target, probabilities_dtype="float16")
    assert isinstance(on_disk.probabilities, np.memmap) and on_disk.probabilities.dtype == np.float16
    np.testing.assert_array_equal(on_disk.mask, in_memory.mask)
    reread = np.load(target)
    assert reread.dtype == np.float16 and reread.shape == (5, 2, 20, 24)
    np.testing.assert_allclose(reread, in_memory.probabilities, atol=1e-3)  # float16: 11 significant bits
    written = write_prediction(on_disk, tmp_path / "out", probabilities=True)  # float16 on a grid: .npy, in place
    assert sorted(p.name for p in written) == ["case_mask.json", "case_mask.nii.gz", "case_overlay.png",
                                               "case_probabilities.npy"]
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == sorted(p.name for p in written)  # no partials
    np.testing.assert_array_equal(np.load(target), reread)
    with pytest.raises(InputError, match="holds no probabilities.*probabilities=True"):
        write_prediction(predict(MixingBackend(), source), tmp_path / "again", probabilities=True)
    with pytest.raises(InputError, match="float32 or float16"):
        predict(MixingBackend(), source, probabilities=True, probabilities_dtype="float64")
    with pytest.raises(InputError, match="ending .npy"):
        predict(MixingBackend(), source, probabilities=tmp_path / "p.nii.gz")


# --- peak memory per slice, each size in a fresh process --------------------------------------------------------

RSS_CHILD = r"""
import json, sys
import numpy as np
from unet3plus.runtime import InferenceBackend, register_backend
from unet3plus import predict
from unet3plus.io import read_input, write_prediction

class Cheap(InferenceBackend):  # new logits every batch, as a network returns, for almost no time
    def __init__(self, model=None, **options):
        pass
    def __call__(self, batch):
        return batch[:, 1:2] * 8.0 - 2.0

register_backend("cheap-rss", Cheap)

def end_to_end(path, out):
    # The exact strategy's streaming; the default's peak at 300 slices is in benchmarks/bench_volume.py (its fixed
    # part, a prefetch thread and the body boxes, hides a growth this small at 16-64 slices).
    write_prediction(predict(None, read_input(path), backend="cheap-rss", batch_size=4, strategy="exact"), out)

def status(key):
    return int(next(line for line in open("/proc/self/status") if line.startswith(key)).split()[1])

warm_up, case, out = sys.argv[1:4]
end_to_end(warm_up, out + "/warm")              # lazily imported modules load before the measurement
open("/proc/self/clear_refs", "w").write("5")   # peak RSS := RSS now (Linux)
before = status("VmRSS")
end_to_end(case, out + "/case")
print(json.dumps({"peak_kib": status("VmHWM") - before}))
"""


def _peak_rss_kib(tmp_path: Path, slices: int, warm_up: Path, height: int, width: int) -> int:
    volume = np.random.default_rng(slices).integers(-1000, 1000, (width, height, slices)).astype(np.int16)
    case = tmp_path / f"ct{slices}.nii.gz"
    nibabel.save(nibabel.Nifti1Image(volume, np.diag([-0.8, -0.8, 2.0, 1.0])), str(case))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [str(Path(unet3plus.__file__).resolve().parents[1])] + [p for p in [os.environ.get("PYTHONPATH")] if p]))
    result = subprocess.run([sys.executable, "-c", RSS_CHILD, str(warm_up), str(case), str(tmp_path / f"out{slices}")],
                            capture_output=True, text=True, timeout=120, env=env)
    assert result.returncode == 0, result.stderr[-2000:]
    return json.loads(result.stdout.strip().splitlines()[-1])["peak_kib"]


@pytest.mark.skipif(not Path("/proc/self/clear_refs").exists(), reason="peak RSS reset needs Linux /proc")
def test_peak_memory_grows_per_slice_by_about_the_int16_input_and_its_uint8_mask(tmp_path):
    # 256 x 256 slices: at 64 x 64, int16 + uint8 for 48 slices (0.6 MB) would drown in RSS noise.
    height = width = 256
    warm_up = tmp_path / "warm.nii.gz"
    nibabel.save(nibabel.Nifti1Image(np.zeros((width, height, 3), np.int16), np.eye(4)), str(warm_up))
    small, large = 16, 64
    growth = (_peak_rss_kib(tmp_path, large, warm_up, height, width)
              - _peak_rss_kib(tmp_path, small, warm_up, height, width)) / (large - small)
    input_and_mask = height * width * (2 + 1) / 1024          # KiB a slice: int16 CT + uint8 mask
    unstreamed = height * width * (4 + 3 * 4 + 4) / 1024     # float32 CT + 3-slice float32 stack + probabilities
    print(f"peak RSS growth {growth:.0f} KiB/slice; int16 + uint8 {input_and_mask:.0f}; "
          f"float32 stack path at least {unstreamed:.0f}")
    assert growth <= 2.0 * input_and_mask < unstreamed
    assert growth >= 0.5 * input_and_mask  # the measurement sees the volume at all


def test_cli_writes_float16_probabilities_as_npy(golden_checkpoint, tmp_path):
    from unet3plus.cli import main

    volume = ct((3, 16, 16), seed=5)
    nibabel.save(nibabel.Nifti1Image(np.transpose(volume, (2, 1, 0)), np.diag([-0.8, -0.8, 2.0, 1.0])),
                 str(tmp_path / "case.nii.gz"))
    out = tmp_path / "out"
    assert main(["predict", str(tmp_path / "case.nii.gz"), "--out", str(out), "--checkpoint", str(golden_checkpoint),
                 "--probabilities", "--probabilities-dtype", "float16", "--no-progress", "--mode", "pynative"]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["case_mask.json", "case_mask.nii.gz", "case_overlay.png",
                                                     "case_probabilities.npy"]
    probabilities = np.load(out / "case_probabilities.npy")
    assert probabilities.dtype == np.float16 and probabilities.shape == (3, 1, 16, 16)
    mask = np.transpose(np.asarray(nibabel.load(str(out / "case_mask.nii.gz")).dataobj), (2, 1, 0))
    confident = np.abs(probabilities[:, 0].astype(np.float32) - 0.5) > 1e-3  # float16 rounding aside
    np.testing.assert_array_equal(mask[confident], (probabilities[:, 0] > 0.5)[confident])
