"""``predict --statistics``: per-class ml and mean HU (TotalSegmentator's names), HU spread, boxes and lesions,
checked against numbers worked out by hand on a synthetic mask with a known spacing and affine."""
from __future__ import annotations

import json

import numpy as np
import pytest

from unet3plus.errors import InputError
from unet3plus.evaluation.statistics import (check_measurable, statistics_summary, structure_statistics,
                                             write_statistics)
from unet3plus.io.dicom import is_lesion_name
from unet3plus.io.prediction import Prediction
from unet3plus.io.volume import Volume

pytest.importorskip("scipy")

# (column, row, slice) -> mm: 1 mm columns, 0.5 mm rows, 2 mm slices (1 mm^3 = 0.001 ml a voxel), origin (10, 20, 30)
AFFINE = np.array([[1.0, 0, 0, 10], [0, 0.5, 0, 20], [0, 0, 2.0, 30], [0, 0, 0, 1]])
SPACING = (2.0, 0.5, 1.0)  # Z x H x W


def case():
    hu = np.full((12, 60, 60), -50, np.int16)
    mask = np.zeros(hu.shape, np.uint8)
    mask[0:10, 10:50, 30:50] = 1  # liver: 10 x 40 x 20 = 8000 voxels = 8 ml
    hu[0:10, 10:50, 30:40] = 50  # half at 50 HU, half at 70: mean 60, standard deviation 10
    hu[0:10, 10:50, 40:50] = 70
    mask[4:6, 8:12, 2:6] = 2  # lesion 1: 2 x 4 x 4 = 32 voxels, centroid (z 4.5, y 9.5, x 3.5)
    mask[10:11, 55:57, 55:57] = 2  # lesion 2: 1 x 2 x 2 = 4 voxels, centroid (z 10, y 55.5, x 55.5)
    hu[mask == 2] = 30
    return hu, mask


def prediction(names=("background", "liver", "tumour"), affine=AFFINE):
    hu, mask = case()
    source = Volume("case", "volume", hu, spacing=SPACING, affine=affine)
    return Prediction(mask=mask, probabilities=None, preset="standard", source=source, channels=len(names),
                      class_names=names)


def test_volumes_intensities_and_boxes_match_the_hand_computed_values():
    liver = structure_statistics(prediction())["liver"]
    assert liver["voxels"] == 8000
    assert liver["volume"] == pytest.approx(8.0)
    assert liver["intensity"] == pytest.approx(60.0) and liver["intensity_std"] == pytest.approx(10.0)
    # voxel centres: columns 30..49 -> x 40..59, rows 10..49 -> y 25..44.5, slices 0..9 -> z 30..48
    assert liver["bounding_box_mm"] == {"min": [40.0, 25.0, 30.0], "max": [59.0, 44.5, 48.0]}
    assert liver["size_mm"] == [20.0, 20.0, 20.0]  # 20 columns x 1 mm, 40 rows x 0.5 mm, 10 slices x 2 mm
    assert "lesions" not in liver


def test_lesion_classes_list_each_lesion_largest_first_with_its_centroid():
    tumour = structure_statistics(prediction())["tumour"]
    assert tumour["lesion_count"] == 2
    assert [lesion["voxels"] for lesion in tumour["lesions"]] == [32, 4]
    assert [lesion["volume"] for lesion in tumour["lesions"]] == pytest.approx([0.032, 0.004])
    assert tumour["lesions"][0]["centroid_mm"] == pytest.approx([13.5, 24.75, 39.0])
    assert tumour["lesions"][1]["centroid_mm"] == pytest.approx([65.5, 47.75, 50.0])
    assert tumour["volume"] == pytest.approx(0.036) and tumour["intensity"] == pytest.approx(30.0)


def test_lesion_names_follow_the_dicom_seg_rule_and_an_empty_class_is_zero_with_no_mean():
    assert is_lesion_name("liver tumour") and is_lesion_name("Tumor") and is_lesion_name("cysts")
    assert not is_lesion_name("liver") and not is_lesion_name("kidneys")
    numbers = structure_statistics(prediction(("background", "spleen", "metastases", "kidney")))
    assert numbers["metastases"]["lesion_count"] == 2 and "lesion_count" not in numbers["spleen"]
    assert numbers["kidney"] == {"volume": 0.0, "intensity": None, "voxels": 0, "intensity_std": None,
                                 "bounding_box_mm": None, "size_mm": None}


def test_without_an_affine_positions_are_mm_from_the_first_voxel():
    tumour = structure_statistics(prediction(affine=None))["tumour"]
    assert tumour["lesions"][0]["centroid_mm"] == pytest.approx([3.5, 4.75, 9.0])


def test_the_json_and_the_summary_line(tmp_path):
    path = write_statistics(prediction(), tmp_path / "case_statistics.json")
    written = json.loads(path.read_text())
    assert list(written) == ["liver", "tumour"]  # TotalSegmentator's layout: one entry per class
    assert written["liver"]["volume"] == pytest.approx(8.0)
    assert statistics_summary(written) == "liver 8.0 ml, mean 60 HU; tumour 0.0 ml, mean 30 HU, 2 lesions"


@pytest.mark.parametrize("source, message", [
    (Volume("photo", "image", np.zeros((8, 8, 3), np.uint8)), "2-D image"),
    (Volume("array", "array", np.zeros((3, 8, 8), np.float32)), "2-D image or an array"),
    (Volume("ct", "volume", np.zeros((3, 8, 8)), spacing=(float("nan"), 0.7, 0.7)), "no voxel spacing"),
])
def test_inputs_without_mm_or_hu_are_refused_in_one_line(source, message):
    with pytest.raises(InputError, match=message) as error:
        check_measurable(source)
    assert "\n" not in str(error.value) and "--statistics" in str(error.value)
