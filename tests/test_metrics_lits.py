"""LiTS metrics in mm: closed forms under anisotropic spacing, empty-case rules, lesion counts, and agreement
with an independent implementation (medpy, a test-only dependency)."""
from __future__ import annotations

import math

import numpy as np
import pytest

from unet3plus.metrics import (CaseMetrics, ScoredClass, detect_lesions, lits_classes, score_case,
                               score_class, surface_distances)
from unet3plus.metrics.cases import BOTH_EMPTY, PREDICTION_EMPTY, REFERENCE_EMPTY, SCORED

SPACING = (2.0, 1.0, 0.5)  # mm per axis: deliberately anisotropic


def box(shape, low, high):
    mask = np.zeros(shape, bool)
    mask[tuple(slice(a, b) for a, b in zip(low, high))] = True
    return mask


def border_coordinates(low, high):
    """Voxel coordinates of a box's border (a voxel on any face), by construction rather than erosion."""
    grid = np.stack(np.meshgrid(*[np.arange(a, b) for a, b in zip(low, high)], indexing="ij"), -1).reshape(-1, 3)
    on_face = np.any((grid == np.asarray(low)) | (grid == np.asarray(high) - 1), axis=1)
    return grid[on_face]


def test_concentric_boxes_match_the_closed_form_distances():
    # The inner box is 2 mm inside the outer one on every axis (1, 2, 4 voxels at 2, 1, 0.5 mm).
    shape, outer_low, outer_high = (12, 20, 40), (2, 3, 5), (10, 17, 35)
    inner_low = (outer_low[0] + 1, outer_low[1] + 2, outer_low[2] + 4)
    inner_high = (outer_high[0] - 1, outer_high[1] - 2, outer_high[2] - 4)
    outer, inner = box(shape, outer_low, outer_high), box(shape, inner_low, inner_high)
    spacing = np.asarray(SPACING)
    # Inner border voxel -> nearest outer border voxel: the nearest outer face, perpendicular.
    p = border_coordinates(inner_low, inner_high)
    to_outer = np.min(np.concatenate([(p - np.asarray(outer_low)) * spacing,
                                      (np.asarray(outer_high) - 1 - p) * spacing], axis=1), axis=1)
    # Outer border voxel -> nearest inner voxel: distance from a point to an axis-aligned box.
    q = border_coordinates(outer_low, outer_high)
    gap = np.maximum(np.maximum(np.asarray(inner_low) - q, q - (np.asarray(inner_high) - 1)), 0) * spacing
    to_inner = np.sqrt((gap ** 2).sum(axis=1))
    expected = np.concatenate([to_outer, to_inner])
    assert np.all(to_outer == 2.0) and to_inner.max() == pytest.approx(2 * math.sqrt(3))
    result = surface_distances(inner, outer, SPACING)
    assert result.assd == pytest.approx(expected.mean())
    assert result.rmsd == pytest.approx(math.sqrt((expected ** 2).mean()))
    assert result.mssd == pytest.approx(2 * math.sqrt(3))
    assert result.hd95 == pytest.approx(np.percentile(expected, 95))
    # Volumes and overlap from the box sizes.
    scores = score_class(inner, outer, SPACING)
    n_inner, n_outer = inner.sum(), outer.sum()
    assert scores.status == SCORED and scores.dice == pytest.approx(2 * n_inner / (n_inner + n_outer))
    assert scores.jaccard == pytest.approx(n_inner / n_outer) and scores.voe == pytest.approx(1 - n_inner / n_outer)
    assert scores.rvd == pytest.approx((n_inner - n_outer) / n_outer) and scores.rvd < 0  # under-segmentation
    assert scores.reference_ml == pytest.approx(n_outer * 1.0 / 1000)


def test_concentric_spheres_are_their_radius_difference_apart_in_mm():
    spacing = (2.5, 0.8, 0.8)
    axes = [np.arange(n) * s - n * s / 2 for n, s in zip((24, 64, 64), spacing)]
    radius = np.sqrt(sum(np.square(g) for g in np.meshgrid(*axes, indexing="ij")))
    small, large = radius <= 14.0, radius <= 20.0
    result = surface_distances(small, large, spacing)
    assert result.assd == pytest.approx(6.0, abs=max(spacing) / 2)
    assert 6.0 - max(spacing) <= result.hd95 <= result.mssd <= 6.0 + max(spacing)
    # Distances are physical: the same spheres voxelised finer along z stay ~6 mm apart.
    assert surface_distances(small, large, spacing).assd != pytest.approx(surface_distances(small, large, 1.0).assd)


def test_empty_case_rules_are_the_documented_ones():
    empty, full = np.zeros((4, 6, 6), bool), box((4, 6, 6), (1, 1, 1), (3, 5, 5))
    both = score_class(empty, empty, SPACING)
    assert (both.status, both.dice, both.jaccard, both.voe, both.rvd, both.assd, both.hd95) == \
        (BOTH_EMPTY, 1.0, 1.0, 0.0, 0.0, 0.0, 0.0)
    missed = score_class(empty, full, SPACING)
    assert (missed.status, missed.dice, missed.voe, missed.rvd) == (PREDICTION_EMPTY, 0.0, 1.0, -1.0)
    assert all(math.isnan(missed.metric(m)) for m in ("assd", "rmsd", "mssd", "hd95"))
    invented = score_class(full, empty, SPACING)
    assert (invented.status, invented.dice, invented.jaccard) == (REFERENCE_EMPTY, 0.0, 0.0)
    assert math.isnan(invented.rvd) and math.isnan(invented.assd)
    # Means leave undefined values out and say how many cases they cover.
    metrics = CaseMetrics()
    for prediction, reference in ((full, full), (empty, full), (empty, empty)):
        metrics.update(prediction.astype(np.uint8), reference.astype(np.uint8), SPACING)
    report = metrics.result()
    assert report.mean("foreground", "dice") == pytest.approx(2 / 3)
    assert report.n_cases_for("foreground", "assd") == 2 and report.mean("foreground", "assd") == 0.0
    assert report.statuses("foreground") == {SCORED: 1, PREDICTION_EMPTY: 1, BOTH_EMPTY: 1}
    assert report.global_dice("foreground") == pytest.approx(2 * full.sum() / (3 * full.sum()))


def test_lits_label_convention_and_lesion_counts():
    shape = (8, 32, 32)
    reference = np.zeros(shape, np.uint8)
    reference[1:7, 2:30, 2:30] = 1                  # liver
    reference[2:4, 4:8, 4:8] = 2                    # lesion A: found with IoU 1
    reference[2:4, 12:16, 12:16] = 2                # lesion B: touched by a small prediction (IoU < 0.5)
    reference[5:6, 24:26, 24:26] = 2                # lesion C: missed
    prediction = reference.copy()
    prediction[5:6, 24:26, 24:26] = 1               # C missed (still liver)
    prediction[2:4, 12:16, 12:16] = 1
    prediction[2:3, 12:14, 12:14] = 2               # small part of B
    prediction[5:6, 4:6, 20:22] = 2                 # a false positive lesion
    case = score_case(prediction, reference, SPACING, lits_classes())
    assert case["liver"].dice == 1.0  # tumour counts as liver: the liver masks are identical
    assert case["tumour"].dice < 1.0
    lesions = case["tumour"].lesions
    assert (lesions.reference_lesions, lesions.predicted_lesions) == (3, 3)
    assert (lesions.found_iou, lesions.found_overlap, lesions.true_predictions_overlap) == (1, 2, 2)
    assert lesions.recall_iou == pytest.approx(1 / 3) and lesions.recall_overlap == pytest.approx(2 / 3)
    assert lesions.precision_iou == pytest.approx(1 / 3) and lesions.precision_overlap == pytest.approx(2 / 3)
    # Diagonal neighbours are one lesion (full connectivity).
    diagonal = np.zeros((3, 3, 3), bool)
    diagonal[0, 0, 0] = diagonal[1, 1, 1] = True
    assert detect_lesions(diagonal, diagonal).reference_lesions == 1
    nothing = detect_lesions(np.zeros_like(diagonal), diagonal)
    assert nothing.recall_overlap == 0.0 and math.isnan(nothing.precision_overlap)


def test_bad_input_is_named():
    labels = np.zeros((2, 4, 4), np.uint8)
    with pytest.raises(ValueError, match="positive and finite"):
        score_case(labels, labels, (1.0, 0.0, 1.0))
    with pytest.raises(ValueError, match="3 entries for 2-D"):
        score_case(labels[0], labels[0], (1.0, 1.0, 1.0))
    labels[0, 0, 0] = 3
    with pytest.raises(ValueError, match=r"reference of case: label values \[3\] are outside"):
        score_case(np.zeros_like(labels), labels, SPACING, lits_classes())
    with pytest.raises(ValueError, match="differs from reference shape"):
        score_case(labels[:1], labels, SPACING, [ScoredClass("x", (3,))])


def test_agrees_with_medpy_on_random_blobs():
    binary = pytest.importorskip("medpy.metric.binary")
    ndimage = pytest.importorskip("scipy.ndimage")
    rng = np.random.default_rng(3)
    spacing = (2.5, 0.7, 0.9)
    for _ in range(3):
        noise = ndimage.gaussian_filter(rng.normal(size=(16, 48, 48)), 3)
        prediction, reference = noise > 0.01, ndimage.shift(noise, (1, 2, -3), order=0) > 0.0
        scores = score_class(prediction, reference, spacing, connectivity=26)
        # medpy's directed surface distances with full connectivity, pooled as LiTS pools them.
        directed = getattr(binary, "__surface_distances")
        pooled = np.concatenate([directed(prediction, reference, spacing, 3),
                                 directed(reference, prediction, spacing, 3)])
        assert scores.assd == pytest.approx(pooled.mean())
        assert scores.rmsd == pytest.approx(np.sqrt((pooled ** 2).mean()))
        assert scores.hd95 == pytest.approx(binary.hd95(prediction, reference, spacing, 3))
        assert scores.mssd == pytest.approx(binary.hd(prediction, reference, spacing, 3))
        assert scores.dice == pytest.approx(binary.dc(prediction, reference))
        assert scores.jaccard == pytest.approx(binary.jc(prediction, reference))
        assert scores.rvd == pytest.approx(binary.ravd(prediction, reference))
