"""Class names come from the model config everywhere: DICOM SEG segment labels, codes, colours and
SeriesDescription, and the label JSON beside a NIfTI mask; the published LiTS names only without a config."""
from __future__ import annotations

import json

import numpy as np
import pytest

from unet3plus import predict
from unet3plus.hub.model_config import Architecture, ModelConfig
from unet3plus.io import read_input, write_prediction
from unet3plus.io.dicom import display_colour, segment_codes
from unet3plus.io.prediction import Prediction, foreground_class_names, label_table
from unet3plus.io.volume import Volume
from unet3plus.io.writers import output_names
from unet3plus.runtime import InferenceBackend

pydicom = pytest.importorskip("pydicom")
highdicom = pytest.importorskip("highdicom")
pytest.importorskip("nibabel")

from pydicom.sr.codedict import codes  # noqa: E402

from test_dicom import ct, write_series  # noqa: E402  (registers the "threshold-test" backend too)

ANATOMICAL, ABNORMAL = ("91723000", "Anatomical Structure"), ("49755003", "Morphologically Abnormal Structure")


class TwoClassBackend(InferenceBackend):
    """Three-channel stand-in: background, label 1 in the bright block's right half, label 2 in its left half."""

    def __init__(self, model_config=None):
        self.model_config = model_config

    def __call__(self, batch):
        bright = (batch[:, 1] - 0.5) * 10.0
        left = np.arange(batch.shape[-1]) < 8
        return np.stack([np.zeros_like(bright), bright, np.where(left, bright + 1.0, -10.0)], axis=1)


def config(*names):
    return ModelConfig(architecture=Architecture(n_classes=len(names)), class_names=names)


def coded(code):
    return str(code.value), str(code.meaning)


def run(tmp_path, model, **options):
    write_series(tmp_path / "series", ct())
    prediction = predict(model, read_input(tmp_path / "series"), preset="standard", **options)
    written = write_prediction(prediction, tmp_path / "out")
    return prediction, written, highdicom.seg.segread(tmp_path / "out" / "series_seg.dcm")


def test_config_class_names_label_the_seg_and_the_label_json(tmp_path):
    prediction, written, seg = run(tmp_path, TwoClassBackend(config("background", "kidney", "cyst")))
    assert set(np.unique(prediction.mask)) == {0, 1, 2}
    assert "series_mask.json" in {path.name for path in written}
    assert json.loads((tmp_path / "out" / "series_mask.json").read_text()) == {"background": 0, "kidney": 1, "cyst": 2}
    kidney, cyst = seg.get_segment_description(1), seg.get_segment_description(2)
    assert (kidney.segment_label, cyst.segment_label) == ("kidney", "cyst")
    assert coded(kidney.segmented_property_category) == ANATOMICAL
    assert coded(kidney.segmented_property_type) == coded(codes.SCT.Kidney)
    assert coded(cyst.segmented_property_category) == ABNORMAL
    assert coded(cyst.segmented_property_type) == coded(codes.SCT.Cyst)
    colours = [tuple(item.RecommendedDisplayCIELabValue) for item in seg.SegmentSequence]
    assert len(set(colours)) == 2
    assert seg.SeriesDescription == "unet3plus: kidney, cyst"
    frames = seg.get_pixels_by_source_instance(
        [str(pydicom.dcmread(path, stop_before_pixels=True).SOPInstanceUID)
         for path in prediction.source.metadata["dicom_files"]], segment_numbers=[2])[..., 0]
    np.testing.assert_array_equal(frames, prediction.mask == 2)  # segment 2 is the cyst label of the mask


def test_without_config_the_published_names_stay(tmp_path):
    prediction, _, seg = run(tmp_path, TwoClassBackend())
    assert prediction.class_names == ()
    assert json.loads((tmp_path / "out" / "series_mask.json").read_text()) == {"background": 0, "liver": 1, "tumour": 2}
    liver, tumour = seg.get_segment_description(1), seg.get_segment_description(2)
    assert (liver.segment_label, tumour.segment_label) == ("liver", "tumour")
    assert coded(liver.segmented_property_category) == ANATOMICAL  # CID 7150, not "Organ"
    assert coded(liver.segmented_property_type) == coded(codes.SCT.Liver)
    assert coded(tumour.segmented_property_category) == ABNORMAL
    assert coded(tumour.segmented_property_type) == coded(codes.SCT.Neoplasm)


def test_sigmoid_model_without_config_is_liver(tmp_path):
    _, _, seg = run(tmp_path, None, backend="threshold-test")
    assert [item.SegmentLabel for item in seg.SegmentSequence] == ["liver"]
    assert json.loads((tmp_path / "out" / "series_mask.json").read_text()) == {"background": 0, "liver": 1}


def prediction_of(channels, class_names=()):
    return Prediction(mask=np.zeros((2, 2), np.uint8), probabilities=None, preset="standard", channels=channels,
                      class_names=class_names)


def test_foreground_names_fall_back_per_label_and_stay_unique():
    assert foreground_class_names(prediction_of(4)) == ("liver", "tumour", "class 3")
    assert foreground_class_names(prediction_of(1, ("background", "spleen"))) == ("spleen",)
    assert foreground_class_names(prediction_of(4, ("bg", "a", "a"))) == ("a", "a (2)", "class 3")
    assert label_table(prediction_of(3, ("bg", "a", "a"))) == {"bg": 0, "a": 1, "a (2)": 2}


@pytest.mark.parametrize("name, category, kind", [
    ("liver", ANATOMICAL, codes.SCT.Liver), ("Left_Kidney", ANATOMICAL, codes.SCT.Kidney),
    ("kidneys", ANATOMICAL, codes.SCT.Kidney), ("liver tumour", ABNORMAL, codes.SCT.Neoplasm),
    ("Tumor", ABNORMAL, codes.SCT.Neoplasm), ("lesions", ABNORMAL, codes.SCT.Lesion),
    ("metastasis", ABNORMAL, codes.SCT.Metastasis), ("class 3", coded(codes.SCT.Tissue), codes.SCT.Tissue)])
def test_segment_codes(name, category, kind):
    got_category, got_kind = segment_codes(name, codes)
    assert (coded(got_category), coded(got_kind)) == (category, coded(kind))


def test_display_colours_are_distinct():
    assert len({display_colour(number) for number in range(1, 21)}) == 20


def test_output_names_list_the_label_json_only_beside_a_nifti_mask():
    on_grid = Volume("case", "volume", np.zeros((3, 4, 4), np.int16), None, affine=np.eye(4))
    assert output_names("case", on_grid, 3)["labels"] == "case_mask.json"
    assert "labels" not in output_names("case", Volume("case", "volume", np.zeros((3, 4, 4), np.int16), None), 3)
