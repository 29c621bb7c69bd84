"""DICOM series in, DICOM SEG + NIfTI out: geometry from the slices' headers, series choice, tilt and uneven spacing
errors, and a SEG round trip read back with pydicom/highdicom. The series are synthetic, written here."""
from __future__ import annotations

import numpy as np
import pytest

from unet3plus import predict
from unet3plus.io import read_input, write_prediction
from unet3plus.io.volume import ReadError
from unet3plus.runtime import InferenceBackend, register_backend

pydicom = pytest.importorskip("pydicom")
highdicom = pytest.importorskip("highdicom")
nibabel = pytest.importorskip("nibabel")

from dicom_data import COLUMN_SPACING, ROW_SPACING, SLICE_STEP, ct_slice, write_series  # noqa: E402,F401

SEGMENTATION_STORAGE = "1.2.840.10008.5.1.4.1.1.66.4"


class ThresholdBackend(InferenceBackend):
    """A deterministic stand-in for the network: foreground where the middle channel is bright."""

    def __init__(self, model=None, **options):
        pass

    def __call__(self, batch):
        return (batch[:, 1:2] - 0.5) * 10.0


register_backend("threshold-test", ThresholdBackend)


def ct(shape=(4, 16, 20), seed=0):
    hu = np.random.default_rng(seed).integers(-100, 50, size=shape).astype(np.int16)
    hu[1:3, 4:10, 5:12] = 180  # bright block: what the stand-in segments
    return hu


def test_series_geometry_sorting_and_nifti_affine(tmp_path):
    hu = ct()
    write_series(tmp_path / "s", hu)
    loaded = read_input(tmp_path / "s")
    np.testing.assert_array_equal(loaded.data[::-1], hu)  # sorted along the normal (+z), not by file name
    assert loaded.spacing == pytest.approx((SLICE_STEP, ROW_SPACING, COLUMN_SPACING))
    # voxel (column c, row r, slice k) of the sorted volume -> LPS position -> RAS
    c, r, k = 3, 5, 2
    lps = np.array([-20.0 + c * COLUMN_SPACING, -30.0 + r * ROW_SPACING, 100.0 - (len(hu) - 1 - k) * SLICE_STEP])
    np.testing.assert_allclose(loaded.affine @ [c, r, k, 1], list(lps * [-1, -1, 1]) + [1])


def test_seg_and_nifti_outputs_round_trip(tmp_path):
    hu = ct()
    uids = write_series(tmp_path / "series", hu)
    prediction = predict(None, read_input(tmp_path / "series"), backend="threshold-test", preset="standard")
    assert 0 < prediction.mask.sum() < prediction.mask.size
    written = write_prediction(prediction, tmp_path / "out")
    assert sorted(p.name for p in written) == ["series_mask.json", "series_mask.nii.gz", "series_overlay.png",
                                               "series_seg.dcm"]
    seg = pydicom.dcmread(tmp_path / "out" / "series_seg.dcm")
    assert seg.SOPClassUID == SEGMENTATION_STORAGE and seg.SegmentSequence[0].SegmentLabel == "liver"
    referenced = {item.ReferencedSOPInstanceUID for item in seg.ReferencedSeriesSequence[0].ReferencedInstanceSequence}
    assert referenced == set(uids)
    segmentation = highdicom.seg.segread(tmp_path / "out" / "series_seg.dcm")
    sorted_uids = uids[::-1]  # the volume runs along +z, the files were written from the top down
    frames = segmentation.get_pixels_by_source_instance(sorted_uids, segment_numbers=[1])[..., 0]
    np.testing.assert_array_equal(frames, prediction.mask)
    nifti = nibabel.load(tmp_path / "out" / "series_mask.nii.gz")
    np.testing.assert_allclose(nifti.affine, read_input(tmp_path / "series").affine)
    np.testing.assert_array_equal(np.transpose(np.asarray(nifti.dataobj), (2, 1, 0)), prediction.mask)
    assert nifti.header.get_zooms() == pytest.approx((COLUMN_SPACING, ROW_SPACING, SLICE_STEP))


def test_several_series_are_listed_and_one_can_be_chosen(tmp_path):
    write_series(tmp_path / "mixed", ct((3, 16, 20)), series_uid="1.2.3.1")
    write_series(tmp_path / "other", ct((5, 16, 20)), series_uid="1.2.3.2")
    for file in (tmp_path / "other").iterdir():
        file.rename(tmp_path / "mixed" / f"b_{file.name}")
    with pytest.raises(ReadError, match=r"holds 2 DICOM series: 1\.2\.3\.1 \(3 slices\), 1\.2\.3\.2 \(5 slices\); "
                                        "choose one with --series UID"):
        read_input(tmp_path / "mixed")
    assert read_input(tmp_path / "mixed", series="1.2.3.2").data.shape == (5, 16, 20)


@pytest.mark.parametrize("kind, message", [
    ("tilt", "within their plane .* \\(gantry tilt\\)"),
    ("uneven", "unevenly spaced \\(2.5 to 5 mm"),
    ("no pixels", "image001.dcm is a DICOM image without pixel data"),
])
def test_geometry_that_has_no_single_affine_is_an_error(tmp_path, kind, message):
    options = {"tilt": dict(shift_per_slice=(0.0, 1.2)), "uneven": dict(steps=[2.5, 5.0, 2.5]),
               "no pixels": dict(drop_pixels_of=3)}[kind]
    write_series(tmp_path / kind, ct(), **options)
    with pytest.raises(ReadError, match=message):
        read_input(tmp_path / kind)
