"""``predict --output-type``: one multilabel NIfTI, one binary NIfTI per class, a DICOM SEG only, a PNG for 2-D
inputs; a choice that cannot apply is one line before anything is written. With ``--statistics`` and
``--preview`` the CLI's outputs on a NIfTI stored in another orientation than the network's."""
from __future__ import annotations

import json

import numpy as np
import pytest

from unet3plus.cli import main
from unet3plus.runtime import register_backend
from unet3plus.runtime.inputs import is_prediction_output, prediction_file_names

nibabel = pytest.importorskip("nibabel")
pytest.importorskip("highdicom")
Image = pytest.importorskip("PIL.Image")

from test_class_names import TwoClassBackend  # noqa: E402
from test_dicom import ct, write_series  # noqa: E402

register_backend("two-class-test", lambda model=None, **options: TwoClassBackend())

# RAS affine of a NIfTI stored right to left / anterior to posterior reversed from the training orientation
FILE_AFFINE = np.array([[0.8, 0, 0, -40], [0, 0.7, 0, -30], [0, 0, 2.5, 10], [0, 0, 0, 1]])


def write_ct(path):
    hu = np.full((24, 20, 5), -100, np.int16)  # X x Y x Z as stored
    hu[10:22, 3:12, 1:4] = 150  # bright block: the stand-in calls its first 8 columns (training orientation) tumour
    nibabel.save(nibabel.Nifti1Image(hu, FILE_AFFINE), str(path))
    return path


@pytest.fixture
def predict_cli(tmp_path, capsys, golden_checkpoint):
    """``unet3plus predict INPUTS --out tmp/out OPTIONS`` on a stand-in network: ``(exit status, stdout, stderr)``."""
    def run(inputs, *options, preset="standard"):
        options += ("--preset", preset) if preset else ()
        code = main(["predict", *map(str, inputs), "--out", str(tmp_path / "out"), "--checkpoint",
                     str(golden_checkpoint), "--backend", "two-class-test", "--no-progress", *options])
        captured = capsys.readouterr()
        return code, captured.out, captured.err.strip()

    return run


def test_per_class_files_statistics_and_preview_on_the_input_grid(tmp_path, predict_cli):
    code, out, _ = predict_cli([write_ct(tmp_path / "ct.nii.gz")], "--output-type",
                               "nifti,per-class", "--statistics", "--preview")
    folder = tmp_path / "out"
    assert code == 0
    assert sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file()) == [
        "ct/liver.nii.gz", "ct/tumour.nii.gz", "ct_mask.json", "ct_mask.nii.gz", "ct_overlay.png", "ct_preview.png",
        "ct_statistics.json"]
    multilabel = nibabel.load(folder / "ct_mask.nii.gz")
    labels = np.asarray(multilabel.dataobj)
    assert set(np.unique(labels)) == {0, 1, 2}
    for value, name in ((1, "liver"), (2, "tumour")):
        binary = nibabel.load(folder / "ct" / f"{name}.nii.gz")
        np.testing.assert_array_equal(np.asarray(binary.dataobj), labels == value)
        np.testing.assert_allclose(binary.affine, FILE_AFFINE)
    # the statistics, recomputed here from the written mask on the file's own grid and affine
    numbers = json.loads((folder / "ct_statistics.json").read_text())
    voxel_ml = 0.8 * 0.7 * 2.5 / 1000
    assert numbers["liver"]["voxels"] == np.count_nonzero(labels == 1)
    assert numbers["liver"]["volume"] == pytest.approx(np.count_nonzero(labels == 1) * voxel_ml, abs=1e-4)
    assert numbers["liver"]["intensity"] == pytest.approx(150.0)
    tumour = np.argwhere(labels == 2).mean(axis=0)
    assert numbers["tumour"]["lesion_count"] == 1
    assert numbers["tumour"]["lesions"][0]["centroid_mm"] == pytest.approx((FILE_AFFINE @ [*tumour, 1])[:3])
    assert "ct: liver" in out and "ml, mean 150 HU" in out and "tumour" in out
    with Image.open(folder / "ct_preview.png") as preview:
        assert preview.mode == "RGB"


def test_dicom_series_seg_only(tmp_path, predict_cli):
    write_series(tmp_path / "series", ct())
    code, _, _ = predict_cli([tmp_path / "series"], "--output-type", "seg")
    assert code == 0
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["series_overlay.png", "series_seg.dcm"]


@pytest.mark.parametrize("make_input, options, message", [
    (write_ct, ["--output-type", "seg"], "not a DICOM series"),
    (write_ct, ["--output-type", "png"], "is for 2-D inputs"),
    ("png", ["--output-type", "nifti"], "use --output-type png"),
    ("png", ["--output-type", "per-class"], "has no geometry"),
    ("png", ["--statistics"], "--statistics needs a CT volume"),
    ("png", ["--preview"], "drop --preview"),
    ("png", ["--resample"], "drop --resample"),
])
def test_a_choice_that_cannot_apply_is_one_line_before_any_output(tmp_path, predict_cli, make_input, options, message):
    if make_input == "png":
        path = tmp_path / "slice.png"
        Image.fromarray(np.zeros((32, 32), np.uint8)).save(path)
    else:
        path = make_input(tmp_path / "ct.nii.gz")
    code, _, error = predict_cli([path], *options, preset=None if make_input == "png" else "standard")
    assert code == 2 and message in error and "\n" not in error
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_an_unknown_output_type_is_a_usage_error(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["predict", "x.nii.gz", "--out", str(tmp_path), "--output-type", "nifti,nrrd"])
    assert exit_.value.code == 2 and "nrrd is not an output type" in capsys.readouterr().err


def test_new_outputs_are_known_to_the_outputs_versus_inputs_check(tmp_path, predict_cli):
    assert {"ct_statistics.json", "ct_preview.png", "ct/"} <= set(prediction_file_names("ct"))
    assert is_prediction_output(tmp_path / "scan_statistics.json") and is_prediction_output(tmp_path / "a_preview.png")
    inside = write_ct((tmp_path / "out" / "ct").mkdir(parents=True) or tmp_path / "out" / "ct" / "scan.nii.gz")
    code, _, error = predict_cli([write_ct(tmp_path / "ct.nii.gz"), inside], "--overwrite")
    assert code == 2 and "inside it" in error and str(inside) in error
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["ct"]  # nothing written
