"""evaluate --predictions/--labels: existing masks scored without a model, spacing from the files, outputs and
bad input."""
from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from unet3plus.cli import main
from unet3plus.metrics import lits_classes, score_case

nibabel = pytest.importorskip("nibabel")
Image = pytest.importorskip("PIL.Image")

ZOOMS = (0.8, 0.7, 2.5)  # NIfTI x, y, z in mm -> (2.5, 0.7, 0.8) along the Z x H x W slices


def save_nifti(path, zyx, affine=None):
    nibabel.save(nibabel.Nifti1Image(np.transpose(zyx, (2, 1, 0)).astype(np.uint8),
                                     np.diag(list(ZOOMS) + [1.0]) if affine is None else affine), str(path))


def lits_case(seed):
    rng = np.random.default_rng(seed)
    labels = np.zeros((6, 24, 20), np.uint8)
    labels[1:5, 3:20, 2:17] = 1
    labels[2:4, 6:10, 5:9] = 2
    prediction = labels.copy()
    prediction[1] = 0
    prediction[3:5, 12:14, 10:12] = 2
    prediction[rng.random(prediction.shape) > 0.97] = 1
    return prediction, labels


@pytest.fixture()
def folders(tmp_path):
    predictions, labels = tmp_path / "predictions", tmp_path / "labels"
    predictions.mkdir(), labels.mkdir()
    cases = {}
    for number in (1, 2):
        prediction, reference = lits_case(number)
        save_nifti(predictions / f"volume-{number}_mask.nii.gz", prediction)  # what `unet3plus predict` writes
        save_nifti(labels / f"segmentation-{number}.nii", reference)          # LiTS naming
        cases[f"volume-{number}"] = (prediction, reference)
    return predictions, labels, cases


def evaluate(*args):
    return main(["evaluate", *map(str, args)])


def test_scores_existing_masks_in_mm_with_the_lits_classes(folders, tmp_path, capsys):
    predictions, labels, cases = folders
    out = {kind: tmp_path / f"scores.{kind}" for kind in ("csv", "json", "png")}
    assert evaluate("--predictions", predictions, "--labels", labels, "--classes", "lits", "--csv", out["csv"],
                    "--json", out["json"], "--plot", out["png"]) == 0
    printed = capsys.readouterr().out
    rows = {row["case"]: row for row in csv.DictReader(open(out["csv"]))}
    expected = {name: score_case(p, r, ZOOMS[::-1], lits_classes(), name=name) for name, (p, r) in cases.items()}
    for name, scores in expected.items():
        for class_name in ("liver", "tumour"):
            for metric in ("dice", "voe", "rvd", "assd", "hd95"):
                column = f"{class_name}_{metric}_mm" if metric in ("assd", "hd95") else f"{class_name}_{metric}"
                assert float(rows[name][column]) == pytest.approx(scores[class_name].metric(metric))
    # The spacing went in along the right axes: the reversed order gives other distances.
    wrong = score_case(*cases["volume-1"], ZOOMS, lits_classes())
    assert wrong["liver"].assd != pytest.approx(expected["volume-1"]["liver"].assd)
    liver_dice = [expected[n]["liver"].dice for n in expected]
    assert float(rows["mean"]["liver_dice"]) == pytest.approx(np.mean(liver_dice))
    assert rows["n"]["liver_assd_mm"] == "2"
    assert float(rows["volume-1"]["tumour_lesion_recall_iou"]) == pytest.approx(1.0)
    assert rows["volume-1"]["tumour_lesions_predicted"] == "2"
    document = json.loads(out["json"].read_text())
    assert document["units"] == "mm" and document["classes"] == ["liver", "tumour"]
    assert document["cases"][0]["spacing"] == pytest.approx([2.5, 0.7, 0.8])
    assert document["summary"]["liver"]["n_cases"]["dice"] == 2
    with Image.open(out["png"]) as plot:
        assert plot.size == (840, 340)
    assert "class liver" in printed and "global Dice" in printed and "lesions 2/2 found" in printed


def test_outputs_are_not_replaced_without_overwrite(folders, tmp_path, capsys):
    predictions, labels, _ = folders
    existing = tmp_path / "scores.csv"
    existing.write_text("keep me")
    assert evaluate("--predictions", predictions, "--labels", labels, "--csv", existing) == 2
    assert "already exists; pass --overwrite" in capsys.readouterr().err and existing.read_text() == "keep me"
    assert evaluate("--predictions", predictions, "--labels", labels, "--csv", existing, "--overwrite") == 0
    assert existing.read_text().startswith("case,dice,jaccard")  # one class: plain column names


def test_png_masks_pair_by_name_and_score_in_pixels(tmp_path, capsys):
    (tmp_path / "p").mkdir(), (tmp_path / "l").mkdir()
    mask = np.zeros((16, 16), np.uint8)
    mask[4:12, 4:12] = 1
    Image.fromarray(mask * 255).save(tmp_path / "p" / "slice_003_mask.png")  # predict's 0/255 PNGs
    Image.fromarray(mask).save(tmp_path / "l" / "slice_003.png")
    assert evaluate("--predictions", tmp_path / "p", "--labels", tmp_path / "l", "--json", tmp_path / "s.json") == 0
    document = json.loads((tmp_path / "s.json").read_text())
    assert document["units"] == "px" and document["cases"][0]["classes"]["foreground"]["dice"] == 1.0


@pytest.mark.parametrize("problem, message", [
    ("zero spacing", "segmentation-2.nii: voxel spacing (nan, 0.7, 0.8) must be positive"),
    ("shape", "volume-2_mask.nii.gz has shape (6, 24, 19) but its labels"),
    ("affine", "have different affines"),
    ("label value", "segmentation-2.nii: label values [7] are outside"),
    ("corrupt", "cannot read"),
])
def test_bad_input_names_the_file_and_the_fix(folders, capsys, problem, message):
    predictions, labels, cases = folders
    prediction, reference = cases["volume-2"]
    if problem == "zero spacing":  # a broken header: pixdim[3] (the z spacing) is 0
        with open(labels / "segmentation-2.nii", "r+b") as handle:
            handle.seek(76 + 3 * 4)
            handle.write(np.float32(0.0).tobytes())
    elif problem == "shape":
        save_nifti(predictions / "volume-2_mask.nii.gz", prediction[:, :, :19])
    elif problem == "affine":
        affine = np.diag(list(ZOOMS) + [1.0])
        affine[0, 3] = 5.0  # shifted 5 mm
        save_nifti(predictions / "volume-2_mask.nii.gz", prediction, affine=affine)
    elif problem == "label value":
        reference = reference.copy()
        reference[0, 0, 0] = 7
        save_nifti(labels / "segmentation-2.nii", reference)
    else:
        (predictions / "volume-2_mask.nii.gz").write_bytes(b"not a NIfTI file")
    assert evaluate("--predictions", predictions, "--labels", labels, "--classes", "lits") == 2
    error = capsys.readouterr().err.strip()
    assert message in error and len(error.splitlines()) == 1
    if problem == "corrupt":
        assert "volume-2_mask.nii.gz" in error


def test_a_standard_lits_folder_serves_as_labels_with_its_volumes_beside_them(folders, capsys):
    """``--labels lits/`` on the folder that ``evaluate --volumes lits/`` takes: the volume-N CTs are not labels."""
    predictions, labels, _ = folders
    assert evaluate("--predictions", predictions, "--labels", labels, "--classes", "lits") == 0
    labels_only = capsys.readouterr().out
    for number in (1, 2):
        save_nifti(labels / f"volume-{number}.nii", np.full((6, 24, 20), 40, np.uint8))  # the CT beside its labels
    assert evaluate("--predictions", predictions, "--labels", labels, "--classes", "lits") == 0
    assert capsys.readouterr().out == labels_only and "volume-2" in labels_only
