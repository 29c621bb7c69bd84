"""predict on anything a user points at: mixed inputs with the preset of their kind (the README's call), folders,
inputs checked before anything is written, --keep-going, and the bad inputs of issue 14 (one line each); evaluate
scoring DICOM SEG predictions; a single DICOM file's spacing."""
from __future__ import annotations

import json

import numpy as np
import pytest

from unet3plus import create_network, predict
from unet3plus.cli import main
from unet3plus.io import read_input

nibabel = pytest.importorskip("nibabel")
pydicom = pytest.importorskip("pydicom")
Image = pytest.importorskip("PIL.Image")

# test_dicom registers the threshold-test stand-in backend
from test_dicom import COLUMN_SPACING, ROW_SPACING, SLICE_STEP, ct, write_series  # noqa: E402

STAND_IN = ["--backend", "threshold-test", "--no-progress"]  # the network's weights load; the stand-in predicts


def hu_volume(shape, seed=0):
    return np.random.default_rng(seed).integers(-300, 400, size=shape).astype(np.int16)


def save_nifti(path, zyx):
    affine = np.array([[-0.8, 0, 0, 100], [0, -0.8, 0, -50], [0, 0, 2.0, 7], [0, 0, 0, 1]])  # L, P, S voxel axes
    nibabel.save(nibabel.Nifti1Image(np.transpose(zyx, (2, 1, 0)), affine), str(path))


def save_png(path, seed=0, shape=(20, 24)):
    Image.fromarray(np.random.default_rng(seed).integers(0, 255, size=shape).astype(np.uint8)).save(path)


def nifti_mask(path):
    return np.transpose(np.asarray(nibabel.load(str(path)).dataobj), (2, 1, 0))


@pytest.mark.compat
def test_the_readme_mixed_call_gives_each_input_the_preset_of_its_kind(golden_checkpoint, tmp_path, capsys, caplog):
    """``unet3plus predict volume-0.nii.gz dicom_series/ slice.png`` with published-format weights, plus a single
    HU slice (.npy), which is repeated as its own neighbours with a warning, as the demo does."""
    save_nifti(tmp_path / "volume-0.nii.gz", hu_volume((3, 24, 20), seed=1))
    write_series(tmp_path / "dicom_series", hu_volume((3, 16, 20), seed=2))
    save_png(tmp_path / "slice.png", seed=3)
    np.save(tmp_path / "one.npy", hu_volume((16, 16), seed=4).astype(np.float32))
    inputs = [tmp_path / name for name in ("volume-0.nii.gz", "dicom_series", "slice.png", "one.npy")]
    out = tmp_path / "masks"
    code = main(["predict", *map(str, inputs), "--out", str(out), "--checkpoint", str(golden_checkpoint),
                 "--no-progress", "--mode", "pynative"])
    assert code == 0, capsys.readouterr().err
    assert "one.npy is a single slice; the 'lits2017' preset's 3-slice context repeats it" in caplog.text
    net = create_network(checkpoint=golden_checkpoint)
    expected = {name: predict(net, read_input(path), preset=preset, allow_thin=True, mode="pynative").mask
                for name, path, preset in zip(("volume-0", "dicom_series", "slice", "one"), inputs,
                                              ("lits2017", "lits2017", "image", "lits2017"))}
    np.testing.assert_array_equal(nifti_mask(out / "volume-0_mask.nii.gz"), expected["volume-0"])
    np.testing.assert_array_equal(nifti_mask(out / "dicom_series_mask.nii.gz"), expected["dicom_series"])
    np.testing.assert_array_equal(np.array(Image.open(out / "slice_mask.png")) > 0, expected["slice"] > 0)
    np.testing.assert_array_equal(np.array(Image.open(out / "one_mask.png")) > 0, expected["one"][0] > 0)
    assert expected["slice"].shape == (20, 24) and expected["one"].shape == (1, 16, 16)
    assert {"volume-0_overlay.png", "dicom_series_seg.dcm", "slice_overlay.png", "one_overlay.png"} <= {
        p.name for p in out.iterdir()}


def test_folders_give_one_output_per_file_and_series(golden_checkpoint, tmp_path, capsys, caplog):
    folder = tmp_path / "inputs"
    folder.mkdir()
    save_png(folder / "a.png")
    np.save(folder / "b.npy", hu_volume((3, 16, 16)).astype(np.float32))       # CT in HU: volume preset
    np.save(folder / "c.npy", np.full((16, 16, 3), 200, np.uint8))              # uint8: an 8-bit picture
    save_nifti(folder / "d.nii.gz", hu_volume((3, 16, 16)))
    write_series(folder / "e_series", ct((3, 16, 20)))                          # a subfolder holding a series
    save_png(folder / "e_series" / "snapshot.png")                              # not part of the series
    (folder / "notes.txt").write_text("not an input")
    out = tmp_path / "out"
    assert main(["predict", str(folder), "--out", str(out), "--checkpoint", str(golden_checkpoint)] + STAND_IN) == 0
    assert "skipped what is not an input (1): notes.txt" in caplog.text
    assert "read as one DICOM series; its other files are not predicted (point at them on their own): snapshot.png" \
        in caplog.text
    names = sorted(p.name for p in out.iterdir())
    assert names == ["a_mask.png", "a_overlay.png", "b_mask.npy", "b_overlay.png", "c_mask.png", "c_overlay.png",
                     "d_mask.json", "d_mask.nii.gz", "d_overlay.png", "e_series_mask.json", "e_series_mask.nii.gz",
                     "e_series_overlay.png",
                     "e_series_seg.dcm"]
    # c.npy went through the image preset: 200/255 in the middle channel is above the stand-in's 0.5
    assert (np.array(Image.open(out / "c_mask.png")) == 255).all()
    assert np.load(out / "b_mask.npy").shape == (3, 16, 16)


def test_two_inputs_of_one_name_are_refused_before_the_model_loads(tmp_path, capsys):
    (tmp_path / "x").mkdir()
    save_png(tmp_path / "case.png")
    save_png(tmp_path / "x" / "case.png")
    code = main(["predict", str(tmp_path / "case.png"), str(tmp_path / "x"), "--out", str(tmp_path / "out"),
                 "--checkpoint", str(tmp_path / "absent.ckpt")])
    err = capsys.readouterr().err
    assert code == 2 and "share the name(s) case" in err and "x/case.png" in err


@pytest.fixture
def folder_with_a_corrupt_file(tmp_path):
    folder = tmp_path / "slices"
    folder.mkdir()
    save_png(folder / "s1.png", seed=1)
    (folder / "s2.png").write_bytes(b"\x89PNG\r\n\x1a\n cut short")  # in the middle of the folder
    save_png(folder / "s3.png", seed=3)
    return folder


def test_a_corrupt_file_in_a_folder_fails_before_anything_is_written(golden_checkpoint, folder_with_a_corrupt_file,
                                                                     tmp_path, capsys):
    out = tmp_path / "out"
    code = main(["predict", str(folder_with_a_corrupt_file), "--out", str(out), "--checkpoint",
                 str(golden_checkpoint)] + STAND_IN)
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1
    assert "1 of 3 inputs cannot be predicted, so nothing was written" in err
    assert "s2.png as an image" in err and "--keep-going" in err
    assert not out.exists() or not any(out.iterdir())


def test_keep_going_predicts_the_readable_inputs_and_names_the_others(golden_checkpoint, folder_with_a_corrupt_file,
                                                                      tmp_path, capsys):
    out = tmp_path / "out"
    (folder_with_a_corrupt_file / "s4.npy").write_bytes(b"\x93NUMPY broken")
    code = main(["predict", str(folder_with_a_corrupt_file), "--out", str(out), "--checkpoint",
                 str(golden_checkpoint), "--keep-going"] + STAND_IN)
    captured = capsys.readouterr()
    assert code == 6  # partly done (unet3plus/cli/__init__.py)
    assert sorted(p.name for p in out.iterdir()) == ["s1_mask.png", "s1_overlay.png", "s3_mask.png", "s3_overlay.png"]
    assert "predicted 2 of 4 inputs; failed:" in captured.out and "s2.png" in captured.out and "s4.npy" in captured.out
    assert "s2.png as an image" in captured.err and "s4.npy as a NumPy" in captured.err
    # nothing readable at all: nothing to keep going with, so the plain error and status 2
    code = main(["predict", str(folder_with_a_corrupt_file / "s2.png"), "--out", str(tmp_path / "out2"),
                 "--checkpoint", str(golden_checkpoint), "--keep-going"] + STAND_IN)
    assert code == 2 and not (tmp_path / "out2").exists()


def test_a_bad_input_after_good_ones_is_found_first(golden_checkpoint, tmp_path, capsys):
    """The README's order (volume first, then others): a bad last input leaves nothing half-done."""
    save_nifti(tmp_path / "v.nii.gz", hu_volume((3, 16, 16)))
    np.save(tmp_path / "bad.npy", np.full((4, 16, 16), np.nan, np.float32))
    out = tmp_path / "out"
    code = main(["predict", str(tmp_path / "v.nii.gz"), str(tmp_path / "bad.npy"), "--out", str(out),
                 "--checkpoint", str(golden_checkpoint)] + STAND_IN)
    err = capsys.readouterr().err
    assert code == 2 and "bad.npy: the volume holds" in err and "NaN/Inf" in err
    assert not out.exists() or not any(out.iterdir())


def test_a_forced_preset_of_the_other_kind_is_found_before_writing(golden_checkpoint, tmp_path, capsys):
    save_nifti(tmp_path / "v.nii.gz", hu_volume((3, 16, 16)))
    save_png(tmp_path / "p.png")
    code = main(["predict", str(tmp_path / "v.nii.gz"), str(tmp_path / "p.png"), "--out", str(tmp_path / "out"),
                 "--preset", "lits2017", "--checkpoint", str(golden_checkpoint)] + STAND_IN)
    err = capsys.readouterr().err
    assert code == 2 and "p.png) is a 2-D image without HU values" in err and "--preset image" in err
    assert not (tmp_path / "out").exists()


def test_a_dicom_file_without_pixel_data_is_named_with_the_fix(tmp_path):
    from unet3plus.io import ReadError

    write_series(tmp_path / "one", ct((1, 16, 20)), drop_pixels_of=0)
    (file,) = (tmp_path / "one").iterdir()
    with pytest.raises(ReadError, match="image001.dcm is a DICOM image without pixel data .* the complete file"):
        read_input(file)


def test_zero_pixel_spacing_in_a_dicom_series_is_an_error(tmp_path):
    from unet3plus.io import ReadError

    write_series(tmp_path / "s", ct((3, 16, 20)))
    for file in (tmp_path / "s").iterdir():
        dataset = pydicom.dcmread(file)
        dataset.PixelSpacing = [0.0, COLUMN_SPACING]
        dataset.save_as(file)
    with pytest.raises(ReadError, match="PixelSpacing of .* is 0 x 0.8 mm.*fix the header"):
        read_input(tmp_path / "s")


def test_a_single_dicom_file_states_its_spacing_in_mm(tmp_path):
    write_series(tmp_path / "one", ct((1, 16, 20)))
    (file,) = (tmp_path / "one").iterdir()
    assert read_input(file).spacing == pytest.approx((SLICE_STEP, ROW_SPACING, COLUMN_SPACING))
    dataset = pydicom.dcmread(file)
    del dataset.SliceThickness
    dataset.save_as(file)
    step, row, column = read_input(file).spacing
    assert np.isnan(step) and (row, column) == pytest.approx((ROW_SPACING, COLUMN_SPACING))  # unknown, not made up


def test_evaluate_scores_dicom_seg_predictions_against_nifti_labels(tmp_path, capsys):
    from unet3plus.io import write_prediction

    write_series(tmp_path / "volume-1", ct((4, 16, 20)))
    prediction = predict(None, read_input(tmp_path / "volume-1"), backend="threshold-test", preset="standard")
    predictions, labels = tmp_path / "predictions", tmp_path / "labels"
    write_prediction(prediction, predictions)   # volume-1_mask.nii.gz, volume-1_seg.dcm, overlay
    labels.mkdir()
    (predictions / "volume-1_mask.nii.gz").rename(labels / "segmentation-1.nii.gz")
    truth = nifti_mask(labels / "segmentation-1.nii.gz").copy()
    assert 0 < truth.sum() < truth.size
    # the SEG alone: read back onto the series' grid and paired with segmentation-1 by name
    assert main(["evaluate", "--predictions", str(predictions), "--labels", str(labels), "--json",
                 str(tmp_path / "s.json")]) == 0
    case = json.loads((tmp_path / "s.json").read_text())["cases"][0]
    assert case["case"] == "volume-1" and case["classes"]["foreground"]["dice"] == 1.0
    assert case["spacing"] == pytest.approx([SLICE_STEP, ROW_SPACING, COLUMN_SPACING])
    # a changed label voxel shows: the SEG's frames really are compared voxel by voxel
    truth[0, 0, 0] = 1 - truth[0, 0, 0]
    image = nibabel.load(str(labels / "segmentation-1.nii.gz"))
    nibabel.save(nibabel.Nifti1Image(np.transpose(truth, (2, 1, 0)), image.affine),
                 str(labels / "segmentation-1.nii.gz"))
    assert main(["evaluate", "--predictions", str(predictions), "--labels", str(labels), "--json",
                 str(tmp_path / "s.json"), "--overwrite"]) == 0
    assert json.loads((tmp_path / "s.json").read_text())["cases"][0]["classes"]["foreground"]["dice"] < 1.0
    # what predict writes for a series (NIfTI and SEG of one name) pairs once: the NIfTI is scored
    write_prediction(prediction, predictions)
    assert main(["evaluate", "--predictions", str(predictions), "--labels", str(labels)]) == 0
    assert "volume-1" in capsys.readouterr().out


def test_a_segmentation_given_to_predict_is_named_as_the_mask_it_is(golden_checkpoint, tmp_path, capsys):
    from unet3plus.io import write_prediction

    write_series(tmp_path / "s", ct((3, 16, 20)))
    write_prediction(predict(None, read_input(tmp_path / "s"), backend="threshold-test"), tmp_path / "p")
    code = main(["predict", str(tmp_path / "p" / "s_seg.dcm"), "--out", str(tmp_path / "o"), "--checkpoint",
                 str(golden_checkpoint)] + STAND_IN)
    assert code == 2 and "s_seg.dcm is a DICOM Segmentation (a mask), not an image" in capsys.readouterr().err


def test_a_fine_tuned_checkpoint_keeps_its_own_input_for_its_kind(golden_checkpoint, tmp_path, caplog):
    """A checkpoint trained on 2-D images (min-max, 32 x 32) prepares PNGs as in its training; a CT volume in
    the same call gets the published volume preset, with a warning that says so."""
    from unet3plus.hub.model_config import InputConfig, ModelConfig, save_network

    net = create_network(checkpoint=golden_checkpoint)
    tuned = tmp_path / "tuned.ckpt"
    save_network(net, tuned, ModelConfig(input=InputConfig(normalize="minmax", size=(32, 32))))
    save_png(tmp_path / "p.png", shape=(20, 24))
    save_nifti(tmp_path / "v.nii.gz", hu_volume((3, 16, 16)))
    out = tmp_path / "out"
    assert main(["predict", str(tmp_path / "p.png"), str(tmp_path / "v.nii.gz"), "--out", str(out), "--checkpoint",
                 str(tuned), "--no-progress", "--mode", "pynative"]) == 0
    assert "trained on image input" in caplog.text and "volume inputs get the 'lits2017' preset" in caplog.text
    tuned_net = create_network(checkpoint=tuned)
    image = predict(tuned_net, tmp_path / "p.png", mode="pynative", probabilities=True)  # own preset, resized back
    assert image.preset == "checkpoint" and image.mask.shape == (20, 24)
    plain = predict(tuned_net, tmp_path / "p.png", preset="image", mode="pynative", probabilities=True)
    assert np.abs(plain.probabilities - image.probabilities).max() > 1e-3  # the checkpoint's preset made a difference
    np.testing.assert_array_equal(np.array(Image.open(out / "p_mask.png")) > 0, image.mask > 0)
    volume = predict(tuned_net, tmp_path / "v.nii.gz", preset="lits2017", mode="pynative")
    np.testing.assert_array_equal(nifti_mask(out / "v_mask.nii.gz"), volume.mask)


class _FirstOfTwoWorkers:
    """Rank 0 of two msrun workers, whose partner reports ``partner_failures`` bad inputs (no msrun needed)."""

    def __init__(self, partner_failures):
        self.rank, self.world_size, self.enabled, self.partner_failures = 0, 2, True, partner_failures

    def shard(self, items):
        return list(items[0::2])

    def total(self, count):
        return count + self.partner_failures


@pytest.mark.parametrize("partner_failures", [0, 1])
def test_a_worker_predicts_its_share_and_writes_nothing_when_a_partner_found_a_bad_input(
        golden_checkpoint, tmp_path, capsys, monkeypatch, partner_failures):
    from unet3plus.training import distributed

    monkeypatch.setattr(distributed.Distributed, "setup", classmethod(
        lambda cls, enable=None, data_parallel=True: _FirstOfTwoWorkers(partner_failures)))
    for k in range(4):
        save_png(tmp_path / f"s{k}.png", seed=k)
    out = tmp_path / "out"
    code = main(["predict", *(str(tmp_path / f"s{k}.png") for k in range(4)), "--out", str(out), "--checkpoint",
                 str(golden_checkpoint)] + STAND_IN)
    if partner_failures:
        err = capsys.readouterr().err
        assert code == 2 and "1 of 4 inputs cannot be predicted (found by the other msrun workers" in err
        assert not out.exists()
    else:
        assert code == 0 and sorted(p.name for p in out.glob("*_mask.png")) == ["s0_mask.png", "s2_mask.png"]
