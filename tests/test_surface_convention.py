"""Surface-distance conventions: face connectivity and pooled HD95 by default (medpy's), 26-connectivity and
MONAI's directed-max HD95 on request, both named in the evaluate JSON; and volumes in ml in the outputs."""
from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from unet3plus.cli import main
from unet3plus.errors import InputError
from unet3plus.evaluation import score_masks
from unet3plus.metrics import CaseMetrics, score_class, surface_distances

ndimage = pytest.importorskip("scipy.ndimage")

SPACING = (2.5, 0.7, 0.9)  # mm, Z Y X: anisotropic like abdominal CT


def blobs(seed, shape=(14, 40, 36)):
    """A prediction and a reference that overlap but differ: smoothed noise, the reference shifted."""
    noise = ndimage.gaussian_filter(np.random.default_rng(seed).normal(size=shape), 2.5)
    return noise > 0.02, ndimage.shift(noise, (1, -2, 3), order=0) > 0.0


def face_directed(from_mask, to_mask, spacing):
    """Directed border-to-border distances with face-connected borders, from scipy alone."""
    structure = ndimage.generate_binary_structure(from_mask.ndim, 1)
    border = [m & ~ndimage.binary_erosion(m, structure, border_value=0) for m in (from_mask, to_mask)]
    return ndimage.distance_transform_edt(~border[1], sampling=spacing)[border[0]]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_defaults_equal_medpys_defaults_on_anisotropic_blobs(seed):
    binary = pytest.importorskip("medpy.metric.binary")
    prediction, reference = blobs(seed)
    result = surface_distances(prediction, reference, SPACING)
    assert result.hd95 == pytest.approx(binary.hd95(prediction, reference, voxelspacing=SPACING), abs=1e-6)
    assert result.mssd == pytest.approx(binary.hd(prediction, reference, voxelspacing=SPACING), abs=1e-6)
    assert result.assd == pytest.approx(binary.assd(prediction, reference, voxelspacing=SPACING), abs=1e-6)
    pooled = np.concatenate([face_directed(prediction, reference, SPACING),
                             face_directed(reference, prediction, SPACING)])
    assert result.rmsd == pytest.approx(np.sqrt(np.mean(pooled ** 2)), abs=1e-6)
    # The old full-connectivity borders give other numbers: the default really changed.
    full = surface_distances(prediction, reference, SPACING, connectivity=26)
    assert full.assd < result.assd - 0.05
    assert full.hd95 == pytest.approx(binary.hd95(prediction, reference, voxelspacing=SPACING, connectivity=3))


def test_two_d_face_connectivity_is_the_four_edge_neighbours():
    binary = pytest.importorskip("medpy.metric.binary")
    prediction, reference = (mask[5] for mask in blobs(4))
    for connectivity, medpy_rank in ((6, 1), (26, 2)):
        result = surface_distances(prediction, reference, (0.7, 0.9), connectivity=connectivity)
        assert result.hd95 == pytest.approx(binary.hd95(prediction, reference, (0.7, 0.9), medpy_rank), abs=1e-6)


@pytest.mark.parametrize("seed", [0, 3])
def test_directed_max_is_the_larger_directed_95th_percentile(seed):
    prediction, reference = blobs(seed)
    expected = max(np.percentile(face_directed(prediction, reference, SPACING), 95),
                   np.percentile(face_directed(reference, prediction, SPACING), 95))
    scores = score_class(prediction, reference, SPACING, hd95="directed-max")
    assert scores.hd95 == pytest.approx(expected, abs=1e-6)
    assert scores.hd95 != pytest.approx(score_class(prediction, reference, SPACING).hd95)
    assert scores.assd == pytest.approx(score_class(prediction, reference, SPACING).assd)  # only HD95 changes


def test_unknown_conventions_are_refused_before_any_scoring(tmp_path):
    prediction, reference = blobs(0)
    with pytest.raises(ValueError, match="6 .face neighbours. or 26"):
        surface_distances(prediction, reference, SPACING, connectivity=8)
    with pytest.raises(ValueError, match="'pooled' .medpy. or 'directed-max'"):
        CaseMetrics(hd95="max")
    with pytest.raises(InputError, match="connectivity 18"):
        score_masks([("case", tmp_path / "missing.nii.gz", tmp_path / "missing.nii.gz")], connectivity=18)


def save_nifti(path, zyx):
    nibabel = pytest.importorskip("nibabel")
    affine = np.diag([SPACING[2], SPACING[1], SPACING[0], 1.0])  # NIfTI x, y, z
    nibabel.save(nibabel.Nifti1Image(np.transpose(zyx, (2, 1, 0)).astype(np.uint8), affine), str(path))


def test_cli_connectivity_changes_the_scores_and_the_json_names_it(tmp_path):
    predictions, labels = tmp_path / "predictions", tmp_path / "labels"
    predictions.mkdir(), labels.mkdir()
    prediction, reference = blobs(1)
    save_nifti(predictions / "volume-1_mask.nii.gz", prediction)
    save_nifti(labels / "segmentation-1.nii.gz", reference)
    documents = {}
    for options in ((), ("--surface-connectivity", "26", "--hd95", "directed-max")):
        out = tmp_path / f"scores{len(options)}.json"
        assert main(["evaluate", "--predictions", str(predictions), "--labels", str(labels), "--json", str(out),
                     "--csv", str(out.with_suffix(".csv")), *options]) == 0
        documents[options] = json.loads(out.read_text())
    default, other = documents.values()
    assert default["conventions"]["surface_connectivity"] == 6 and default["conventions"]["hd95"] == "pooled"
    assert "medpy" in default["conventions"]["surface"]
    assert other["conventions"]["surface_connectivity"] == 26 and other["conventions"]["hd95"] == "directed-max"
    scored = [document["cases"][0]["classes"]["foreground"] for document in (default, other)]
    assert scored[0]["assd"] != pytest.approx(scored[1]["assd"])
    assert scored[0]["hd95"] == pytest.approx(surface_distances(prediction, reference, SPACING).hd95)
    # Volumes in ml: voxel count x voxel volume (from the file's spacing) / 1000.
    spacing = default["cases"][0]["spacing"]
    assert spacing == pytest.approx(list(SPACING))
    assert scored[0]["reference_ml"] == pytest.approx(reference.sum() * np.prod(spacing) / 1000)
    row = next(csv.DictReader(open(tmp_path / "scores0.csv")))
    assert float(row["predicted_ml"]) == pytest.approx(prediction.sum() * np.prod(SPACING) / 1000)


def test_help_states_both_conventions(capsys):
    with pytest.raises(SystemExit):
        main(["evaluate", "--help"])
    shown = " ".join(capsys.readouterr().out.split())
    assert "--surface-connectivity {6,26}" in shown and "--hd95 {pooled,directed-max}" in shown
    assert "face connectivity" in shown and "medpy" in shown and "MONAI" in shown
