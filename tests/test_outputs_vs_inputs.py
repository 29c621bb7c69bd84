"""Outputs never touch inputs: predict, evaluate, publish and export refuse (exit 2, one line) any output that is
one of the run's inputs or lands among them, whatever --overwrite says, and a folder of inputs is never read as
holding predict's own outputs. Every refusal comes before any work, so no network is built here."""
from __future__ import annotations

import logging

import nibabel
import numpy as np
import pytest

from unet3plus.cli import main
from unet3plus.errors import InputError
from unet3plus.hub.publish import publish
from unet3plus.runtime.inputs import expand_inputs

pytestmark = pytest.mark.usefixtures("isolated_cache")


def save_nifti(path, dtype=np.int16):
    nibabel.save(nibabel.Nifti1Image(np.zeros((32, 32, 4), dtype), np.eye(4)), str(path))
    return path


@pytest.fixture
def case_folder(tmp_path):
    """A folder as users keep it: a CT volume and its ground-truth mask (named like a predict output)."""
    folder = tmp_path / "cases"
    folder.mkdir()
    save_nifti(folder / "case1.nii.gz")
    save_nifti(folder / "case1_mask.nii.gz", np.uint8)
    return folder


def refused(argv, capsys, protected, *needles):
    """Runs the CLI; asserts exit 2, one line naming ``needles`` and ``protected``'s bytes unchanged."""
    before = protected.read_bytes()
    code = main([str(a) for a in argv])
    err = capsys.readouterr().err
    assert code == 2, err
    assert err.startswith("unet3plus ") and len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    for needle in needles:
        assert needle in err, err
    assert protected.read_bytes() == before
    return err


def test_predict_into_its_input_folder_is_refused_even_with_overwrite(case_folder, capsys):
    refused(["predict", case_folder, "--out", case_folder, "--overwrite"], capsys, case_folder / "case1_mask.nii.gz",
            "unet3plus predict: error: --out", "is the input folder")


def test_predict_into_a_subfolder_or_a_symlink_of_its_input_folder_is_refused(case_folder, tmp_path, capsys):
    refused(["predict", case_folder, "--out", case_folder / "results"], capsys, case_folder / "case1.nii.gz",
            "inside the input folder")
    assert not (case_folder / "results").exists()
    link = tmp_path / "link"
    link.symlink_to(case_folder)
    refused(["predict", case_folder, "--out", link, "--overwrite"], capsys,
            case_folder / "case1_mask.nii.gz", "is the input folder")


def test_predict_never_writes_an_output_over_an_input_file(case_folder, capsys):
    # Named one by one, case1_mask.nii.gz is an input, and case1's mask output would replace it.
    refused(["predict", case_folder / "case1.nii.gz", case_folder / "case1_mask.nii.gz", "--out", case_folder,
             "--overwrite"], capsys, case_folder / "case1_mask.nii.gz", "case1_mask.nii.gz (--out) would replace one of the inputs")


def test_a_folder_of_inputs_skips_files_named_like_predict_outputs(case_folder, caplog):
    (case_folder / "case1_overlay.png").write_bytes(b"not read")
    np.save(case_folder / "case1_probabilities.npy", np.zeros(2))
    with caplog.at_level(logging.WARNING, logger="unet3plus.runtime.inputs"):
        items = expand_inputs([case_folder])
    assert [item.name for item in items] == ["case1"]
    assert "outputs" in caplog.text
    assert "case1_mask.nii.gz" in caplog.text and "case1_overlay.png" in caplog.text
    # named on its own, such a file is still an input
    assert [item.name for item in expand_inputs([case_folder / "case1_mask.nii.gz"])] == ["case1_mask"]


def test_a_folder_of_outputs_only_says_so(tmp_path):
    save_nifti(tmp_path / "a_mask.nii.gz", np.uint8)
    with pytest.raises(InputError, match="holds no inputs .*named like predict's outputs \\(a_mask.nii.gz\\)"):
        expand_inputs([tmp_path])


@pytest.fixture
def scored(tmp_path):
    """Existing predictions and labels to evaluate."""
    predictions, labels = tmp_path / "predictions", tmp_path / "labels"
    predictions.mkdir()
    labels.mkdir()
    save_nifti(predictions / "case1_mask.nii.gz", np.uint8)
    return predictions, save_nifti(labels / "case1.nii.gz", np.uint8)


def test_evaluate_never_replaces_a_label_file(scored, capsys):
    predictions, label = scored
    refused(["evaluate", "--predictions", predictions, "--labels", label.parent, "--csv", label, "--overwrite"],
            capsys, label, "unet3plus evaluate: error: writing", "(--csv) would replace a file in the input folder")


def test_evaluate_outputs_need_paths_of_their_own(scored, tmp_path, capsys):
    predictions, label = scored
    table = tmp_path / "table.csv"
    table.write_text("kept\n")
    refused(["evaluate", "--predictions", predictions, "--labels", label.parent, "--csv", table, "--json", table,
             "--overwrite"], capsys, table, "--csv and --json are the same file")


@pytest.mark.parametrize("value", ["1", "0", "two"])
def test_evaluate_bad_classes_name_the_accepted_values(scored, value, capsys):
    predictions, label = scored
    refused(["evaluate", "--predictions", predictions, "--labels", label.parent, "--classes", value], capsys, label,
            "binary, lits", "number of labels including background")


@pytest.fixture
def checkpoint(tmp_path):
    """A stand-in training checkpoint: every refusal comes before it is read."""
    path = tmp_path / "run" / "best.ckpt"
    path.parent.mkdir()
    path.write_bytes(b"training checkpoint \x00" * 64)
    return path


def test_publish_never_replaces_its_source_checkpoint(checkpoint, capsys):
    refused(["publish", checkpoint, "--out", checkpoint.parent, "--name", "best", "--url", "https://models.example/m",
             "--overwrite"], capsys, checkpoint, "unet3plus publish: error:", "one of the inputs")
    with pytest.raises(InputError, match="would be replaced"):  # the library call itself, too
        publish(checkpoint, checkpoint.parent, "https://models.example/m", "best", overwrite=True)
    assert checkpoint.read_bytes() == b"training checkpoint \x00" * 64


def test_publish_into_its_run_folder_is_refused(checkpoint, capsys):
    refused(["publish", checkpoint.parent, "--out", checkpoint.parent, "--url", "https://models.example/m"], capsys,
            checkpoint, "is the input folder")
    assert sorted(p.name for p in checkpoint.parent.iterdir()) == ["best.ckpt"]


def test_export_never_replaces_its_checkpoint(checkpoint, capsys):
    refused(["export", "--format", "onnx", "--out", checkpoint, "--checkpoint", checkpoint, "--overwrite"], capsys,
            checkpoint, "unet3plus export: error: writing", "(--out) would replace one of the inputs")


def test_a_hard_link_or_symlink_to_an_input_is_that_input(checkpoint, tmp_path, capsys):
    hard, soft = tmp_path / "hard.onnx", tmp_path / "soft.onnx"
    hard.hardlink_to(checkpoint)
    soft.symlink_to(checkpoint)
    for out in (hard, soft):
        refused(["export", "--format", "onnx", "--out", out, "--checkpoint", checkpoint, "--overwrite"], capsys,
                checkpoint, "would replace one of the inputs")
