"""predict: golden logits through the engine, padding and cropping, batching, outputs, CLI and bad input."""
from __future__ import annotations

import numpy as np
import pytest

from unet3plus import create_network, predict
from unet3plus.cli import main
from unet3plus.io import read_input
from unet3plus.runtime import MindSporeBackend, forward
from unet3plus.transforms import PresetError, get_preset, keep_largest_component

nibabel = pytest.importorskip("nibabel")


@pytest.fixture(scope="module")
def golden_net(golden_checkpoint):
    return create_network(checkpoint=golden_checkpoint)


def sigmoid(x):
    return 1 / (1 + np.exp(-x.astype(np.float64)))


def hu_volume(shape, seed=0):
    return np.random.default_rng(seed).integers(-300, 400, size=shape).astype(np.float32)


def test_engine_reproduces_the_golden_logits(golden_net, golden_io):
    logits = forward(MindSporeBackend(golden_net, mode="pynative", optimize=True), golden_io["input"])
    assert np.abs(logits - golden_io["logits"]).max() < 1e-4


def test_any_size_is_padded_to_16_and_cropped_back(golden_net):
    volume = hu_volume((3, 40, 52))
    prediction = predict(golden_net, volume, batch_size=3, mode="pynative", probabilities=True)
    assert prediction.mask.shape == (3, 40, 52) and prediction.probabilities.shape == (3, 1, 40, 52)
    padded = np.zeros((3, 3, 48, 64), np.float32)
    padded[:, :, :40, :52] = get_preset("lits2017")(volume)
    expected = sigmoid(forward(MindSporeBackend(golden_net, mode="pynative", optimize=True), padded))[:, :, :40, :52]
    np.testing.assert_allclose(prediction.probabilities, expected, atol=2e-6)
    np.testing.assert_array_equal(prediction.mask, (prediction.probabilities[:, 0] > 0.5).astype(np.uint8))


def test_batch_size_and_graph_mode_do_not_change_the_result(golden_net):
    volume = hu_volume((3, 32, 32), seed=1)
    one = predict(golden_net, volume, batch_size=1, mode="pynative", probabilities=True).probabilities
    graph = predict(golden_net, volume, batch_size=2, mode="graph", probabilities=True).probabilities  # 2 batches, last padded
    np.testing.assert_allclose(one, graph, atol=1e-5)


def test_threshold_and_largest_component(golden_net):
    volume = hu_volume((3, 32, 32), seed=2)
    low = predict(golden_net, volume, threshold=0.1, mode="pynative", probabilities=True)
    high = predict(golden_net, volume, threshold=0.9, mode="pynative")
    assert (low.mask >= high.mask).all()
    np.testing.assert_array_equal(high.mask, (low.probabilities[:, 0] > 0.9).astype(np.uint8))
    mask = np.zeros((2, 8, 8), np.uint8)
    mask[0, :3, :3] = 1       # 9 voxels, joined to the next slice: 18 in 3-D
    mask[1, :3, :3] = 1
    mask[0, 6:, 5:] = 1       # 6 voxels on their own
    kept = keep_largest_component(mask)
    assert kept.sum() == 18 and kept[0, 6:, 5:].sum() == 0
    assert keep_largest_component(mask, per_slice=True)[0].sum() == 9


def test_predict_reads_files_and_rejects_the_wrong_kind(golden_net, tmp_path):
    from PIL import Image

    Image.fromarray(np.full((20, 24), 90, np.uint8)).save(tmp_path / "slice.png")
    with pytest.raises(PresetError, match="2-D image without HU.*--preset image"):
        predict(golden_net, tmp_path / "slice.png", preset="lits2017")
    prediction = predict(golden_net, tmp_path / "slice.png", preset="image", mode="pynative", probabilities=True)
    assert prediction.mask.shape == (20, 24) and prediction.probabilities.shape == (1, 20, 24)
    by_kind = predict(golden_net, tmp_path / "slice.png", mode="pynative", probabilities=True)  # resolve_preset
    assert by_kind.preset == "image" and np.array_equal(by_kind.probabilities, prediction.probabilities)
    np.save(tmp_path / "volume.npy", hu_volume((4, 16, 16)))
    with pytest.raises(PresetError, match="looks like a volume"):
        predict(golden_net, tmp_path / "volume.npy", preset="image")


def write_nifti(path, volume_zyx):
    affine = np.array([[-0.8, 0, 0, 100], [0, -0.8, 0, -50], [0, 0, 2.0, 7], [0, 0, 0, 1]])  # L, P, S voxel axes
    image = nibabel.Nifti1Image(np.transpose(volume_zyx, (2, 1, 0)).astype(np.int16), affine)
    image.header["descrip"] = b"synthetic CT"
    nibabel.save(image, str(path))
    return image


@pytest.mark.compat
def test_cli_writes_nifti_with_the_input_geometry_png_and_overlay(golden_checkpoint, tmp_path):
    from PIL import Image

    volume = hu_volume((4, 24, 20), seed=3)
    source = write_nifti(tmp_path / "case.nii.gz", volume)
    Image.fromarray(np.full((20, 24, 3), 120, np.uint8)).save(tmp_path / "photo.png")
    out = tmp_path / "out"
    code = main(["predict", str(tmp_path / "case.nii.gz"), "--out", str(out), "--checkpoint", str(golden_checkpoint),
                 "--probabilities", "--no-progress", "--mode", "pynative"])
    assert code == 0
    mask = nibabel.load(str(out / "case_mask.nii.gz"))
    np.testing.assert_allclose(mask.affine, source.affine)
    assert mask.header["descrip"].tobytes().startswith(b"synthetic CT") and mask.get_data_dtype() == np.uint8
    assert mask.shape == (20, 24, 4)
    expected = predict(create_network(checkpoint=golden_checkpoint), read_input(tmp_path / "case.nii.gz"), mode="pynative",
                       probabilities=True)
    np.testing.assert_array_equal(np.asarray(mask.dataobj), np.transpose(expected.mask, (2, 1, 0)))
    probabilities = nibabel.load(str(out / "case_probabilities.nii.gz")).get_fdata()
    np.testing.assert_allclose(probabilities, np.transpose(expected.probabilities[:, 0], (2, 1, 0)), atol=1e-6)
    overlay = np.array(Image.open(out / "case_overlay.png"))
    assert overlay.shape == (24, 20, 3)
    # png input with the image preset: a 0/255 mask PNG and an overlay
    code = main(["predict", str(tmp_path / "photo.png"), "--out", str(out), "--overwrite", "--preset", "image",
                 "--checkpoint", str(golden_checkpoint), "--no-progress", "--mode", "pynative"])
    assert code == 0
    png_mask = np.array(Image.open(out / "photo_mask.png"))
    assert png_mask.shape == (20, 24) and set(np.unique(png_mask)) <= {0, 255}
    assert sorted(p.name for p in out.iterdir()) == ["case_mask.json", "case_mask.nii.gz", "case_overlay.png",
                                                     "case_probabilities.nii.gz", "photo_mask.png", "photo_overlay.png"]


def test_overlay_draws_the_mask_contour():
    from unet3plus.io.writers import overlay

    mask = np.zeros((10, 10), np.uint8)
    mask[2:8, 3:7] = 1
    picture = overlay(np.full((10, 10), 50, np.uint8), mask)
    red = (picture == (255, 40, 40)).all(axis=2)
    assert red[2, 3] and red[7, 6] and not red[4, 4] and not red[0, 0]


def run_cli(argv, capsys):
    code = main(argv)
    return code, capsys.readouterr().err


@pytest.mark.parametrize("make_input, extra, message", [
    (lambda d: np.save(d / "thin.npy", np.zeros((2, 16, 16), np.float32)), [], "fewer than the 3"),
    (lambda d: np.save(d / "nan.npy", np.full((4, 16, 16), np.nan, np.float32)), [], "NaN/Inf"),
    (lambda d: np.save(d / "empty.npy", np.zeros((0, 16, 16), np.float32)), [], "empty"),
    (lambda d: (d / "notes.txt").write_text("hello"), [], "cannot tell what kind of file"),
])
def test_cli_bad_input_is_a_clear_error(golden_checkpoint, tmp_path, capsys, make_input, extra, message):
    make_input(tmp_path)
    (path,) = [p for p in tmp_path.iterdir()]
    code, err = run_cli(["predict", str(path), "--out", str(tmp_path / "out"), "--checkpoint",
                         str(golden_checkpoint), "--no-progress"] + extra, capsys)
    assert code == 2 and message in err and "Traceback" not in err
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_cli_refuses_a_non_empty_output_folder_without_overwrite(golden_checkpoint, tmp_path, capsys):
    np.save(tmp_path / "v.npy", hu_volume((3, 16, 16)))
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("precious")
    code, err = run_cli(["predict", str(tmp_path / "v.npy"), "--out", str(out), "--checkpoint",
                         str(golden_checkpoint)], capsys)
    assert code == 2 and "--overwrite" in err
    assert [p.name for p in out.iterdir()] == ["keep.txt"]


def test_a_crash_while_writing_leaves_no_half_written_outputs(golden_checkpoint, tmp_path, monkeypatch):
    from PIL import Image

    np.save(tmp_path / "v.npy", hu_volume((3, 16, 16)))

    def crash(self, target, *args, **kwargs):
        with open(target, "wb") as handle:  # write part of the file, then fail like a full disk would
            handle.write(b"\x89PNG partial")
        raise OSError("No space left on device")

    monkeypatch.setattr(Image.Image, "save", crash)
    code = main(["predict", str(tmp_path / "v.npy"), "--out", str(tmp_path / "out"), "--checkpoint",
                 str(golden_checkpoint), "--no-progress", "--mode", "pynative"])
    assert code == 4  # the CLI's file-system status, one line (tests/test_cli_errors.py)
    left = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert left == ["v_mask.npy"]  # complete (written before the crash); no overlay, no temporary file
    assert np.load(tmp_path / "out" / "v_mask.npy").shape == (3, 16, 16)


def test_cli_predicts_a_dicom_series_folder(golden_checkpoint, tmp_path):
    pydicom = pytest.importorskip("pydicom")
    from pydicom.data import get_testdata_file

    series = tmp_path / "series"
    series.mkdir()
    for index, z in enumerate([2.0, 0.0, 1.0]):
        dataset = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
        dataset.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
        dataset.ImagePositionPatient = [0.0, 0.0, z]
        dataset.SOPInstanceUID = pydicom.uid.generate_uid()  # three distinct images of one series
        dataset.save_as(series / f"{index}.dcm")
    out = tmp_path / "out"
    assert main(["predict", str(series), "--out", str(out), "--checkpoint", str(golden_checkpoint),
                 "--no-progress", "--mode", "pynative", "--keep-largest"]) == 0
    nibabel = pytest.importorskip("nibabel")
    mask = np.transpose(np.asarray(nibabel.load(out / "series_mask.nii.gz").dataobj), (2, 1, 0))  # on the series' grid
    assert mask.shape == (3, 128, 128) and mask.dtype == np.uint8
    assert (out / "series_seg.dcm").is_file()  # and a DICOM SEG (tests/test_dicom.py reads one back)
    from scipy import ndimage

    assert ndimage.label(mask)[1] <= 1  # --keep-largest leaves one connected region
    assert (out / "series_overlay.png").is_file()


def test_mindspore_backend_folds_batchnorm_only_when_asked_and_leaves_cgm_networks_alone(golden_net):
    from unet3plus import UNet3Plus
    from unet3plus.networks.fusion import InferenceUNet3Plus

    assert MindSporeBackend(golden_net).net is golden_net
    trainable = UNet3Plus().set_train(True)
    assert isinstance(MindSporeBackend(trainable, optimize=True).net, InferenceUNet3Plus)
    assert trainable.training  # the folded copy runs; the caller's network keeps its mode
    assert isinstance(MindSporeBackend(golden_net, optimize=True).net, InferenceUNet3Plus)
    with_cgm = UNet3Plus(cgm=True)
    assert MindSporeBackend(with_cgm, optimize=True).net is with_cgm
