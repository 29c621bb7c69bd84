"""evaluate with a model: per-case and global scores on volumes (NIfTI) and images, table and CSV."""
from __future__ import annotations

import csv

import numpy as np
import pytest

from unet3plus import create_network, predict
from unet3plus.cli import main
from unet3plus.io import read_input

nibabel = pytest.importorskip("nibabel")


def save_nifti(path, zyx, dtype):
    """Stored in the training orientation (voxel axes L, P, S), so predictions read back slice for slice."""
    nibabel.save(nibabel.Nifti1Image(np.transpose(zyx, (2, 1, 0)).astype(dtype), np.diag([-1.0, -1.0, 1.0, 1.0])),
                 str(path))


def test_evaluate_volumes_against_known_counts(golden_checkpoint, tmp_path, capsys):
    net = create_network(checkpoint=golden_checkpoint)
    rng = np.random.default_rng(0)
    expected = {}
    for number in (1, 2):
        volume = rng.integers(-300, 400, size=(3, 16, 16)).astype(np.int16)
        save_nifti(tmp_path / f"volume-{number}.nii.gz", volume, np.int16)
        mask = predict(net, read_input(tmp_path / f"volume-{number}.nii.gz"), mode="pynative").mask.astype(np.int64)
        labels = mask.copy()
        labels[labels > 0] = 2 if number == 1 else 1  # tumour label: still foreground for the liver model
        if number == 2:
            labels[0] = 1 - labels[0]  # flip one slice: known false positives and negatives
        save_nifti(tmp_path / f"segmentation-{number}.nii.gz", labels, np.uint8)
        tp = int(((mask > 0) & (labels > 0)).sum())
        fp, fn = int(((mask > 0) & (labels == 0)).sum()), int(((mask == 0) & (labels > 0)).sum())
        expected[f"volume-{number}"] = (2 * tp / (2 * tp + fp + fn), tp / (tp + fp + fn), tp, fp, fn)
    csv_path = tmp_path / "scores.csv"
    assert main(["evaluate", "--volumes", str(tmp_path), "--checkpoint", str(golden_checkpoint), "--csv",
                 str(csv_path), "--no-progress", "--mode", "pynative"]) == 0
    printed = capsys.readouterr().out
    rows = {row["case"]: row for row in csv.DictReader(open(csv_path))}
    assert rows["volume-1"]["dice"] == "1.0" and expected["volume-1"][0] == 1.0
    assert float(rows["volume-2"]["dice"]) == pytest.approx(expected["volume-2"][0])
    assert float(rows["volume-2"]["jaccard"]) == pytest.approx(expected["volume-2"][1])
    assert expected["volume-2"][0] < 1.0
    assert float(rows["mean"]["dice"]) == pytest.approx((1.0 + expected["volume-2"][0]) / 2)
    tp = sum(e[2] for e in expected.values())
    fp, fn = sum(e[3] for e in expected.values()), sum(e[4] for e in expected.values())
    assert float(rows["global"]["dice"]) == pytest.approx(2 * tp / (2 * tp + fp + fn))
    assert "volume-2" in printed and "global Dice" in printed


def test_evaluate_images_and_mismatched_shapes(golden_checkpoint, tmp_path, capsys):
    from PIL import Image

    (tmp_path / "images").mkdir()
    (tmp_path / "masks").mkdir()
    Image.fromarray(np.full((16, 16, 3), 80, np.uint8)).save(tmp_path / "images" / "a_001.png")
    Image.fromarray(np.zeros((16, 16), np.uint8)).save(tmp_path / "masks" / "a_001.png")
    assert main(["evaluate", "--images", str(tmp_path / "images"), "--masks", str(tmp_path / "masks"),
                 "--checkpoint", str(golden_checkpoint), "--no-progress", "--mode", "pynative"]) == 0
    assert "a_001" in capsys.readouterr().out  # empty target: NaN Dice, as MONAI's ignore_empty
    Image.fromarray(np.zeros((8, 16), np.uint8)).save(tmp_path / "masks" / "a_001.png")
    assert main(["evaluate", "--images", str(tmp_path / "images"), "--masks", str(tmp_path / "masks"),
                 "--checkpoint", str(golden_checkpoint), "--no-progress"]) == 2
    assert "has shape (16, 16) but its labels" in capsys.readouterr().err


def test_a_multi_class_checkpoint_predicts_labels_and_is_scored_per_class(golden_checkpoint, tmp_path, capsys):
    import mindspore as ms

    from unet3plus import UNet3Plus, load_checkpoint

    three_class = UNet3Plus(n_classes=3)
    load_checkpoint(three_class, golden_checkpoint, transfer=True)  # fine-tuned-like: golden body, new head
    ms.save_checkpoint(three_class, str(tmp_path / "three.ckpt"))
    net = create_network(checkpoint=tmp_path / "three.ckpt")
    assert int(net.outconv1.weight.shape[0]) == 3
    volume = np.random.default_rng(5).integers(-300, 400, size=(3, 16, 16)).astype(np.int16)
    save_nifti(tmp_path / "volume-1.nii.gz", volume, np.int16)
    prediction = predict(net, read_input(tmp_path / "volume-1.nii.gz"), mode="pynative", probabilities=True)
    assert prediction.channels == 3 and prediction.probabilities.shape == (3, 3, 16, 16)
    np.testing.assert_allclose(prediction.probabilities.sum(axis=1), 1.0, atol=1e-5)
    np.testing.assert_array_equal(prediction.mask, prediction.probabilities.argmax(axis=1))
    save_nifti(tmp_path / "segmentation-1.nii.gz", prediction.mask, np.uint8)
    csv_path = tmp_path / "scores.csv"
    assert main(["evaluate", "--volumes", str(tmp_path), "--checkpoint", str(tmp_path / "three.ckpt"),
                 "--csv", str(csv_path), "--no-progress", "--mode", "pynative"]) == 0
    rows = {row["case"]: row for row in csv.DictReader(open(csv_path))}
    assert {"class1_dice", "class2_dice", "class1_assd_mm", "class2_status"} <= set(rows["volume-1"])
    defined = [c for c in ("class1", "class2") if rows["volume-1"][f"{c}_status"] != "both empty"]
    assert defined and all(rows["volume-1"][f"{c}_dice"] == "1.0" for c in defined)


def test_a_fine_tuned_variant_checkpoint_loads_with_its_extra_heads(golden_checkpoint, tmp_path):
    import mindspore as ms

    from unet3plus import UNet3Plus, load_checkpoint

    variant = UNet3Plus(deep_supervision=True, cgm=True)
    load_checkpoint(variant, golden_checkpoint, transfer=True)
    ms.save_checkpoint(variant, str(tmp_path / "variant.ckpt"))
    net = create_network(checkpoint=tmp_path / "variant.ckpt")
    assert net.deep_supervision and net.has_cgm
    assert net.load_report.complete and not net.load_report.newly_initialised
