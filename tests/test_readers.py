"""Readers: PNG/JPEG, .npy, NIfTI (orientation, scaling), DICOM file and series (HU, slice order), bad files."""
from __future__ import annotations

import numpy as np
import pytest

from unet3plus.io import ReadError, read_input
from unet3plus.io.nifti import nifti_to_slices, slices_to_nifti

nibabel = pytest.importorskip("nibabel")
pydicom = pytest.importorskip("pydicom")


def ct_small_path() -> str:
    from pydicom.data import get_testdata_file

    return get_testdata_file("CT_small.dcm")


def test_png_and_npy(tmp_path):
    from PIL import Image

    image = (np.arange(12 * 10 * 3) % 256).astype(np.uint8).reshape(12, 10, 3)
    Image.fromarray(image).save(tmp_path / "a.png")
    loaded = read_input(tmp_path / "a.png")
    assert loaded.kind == "image" and loaded.name == "a"
    np.testing.assert_array_equal(loaded.data, image)
    np.save(tmp_path / "v.npy", np.zeros((3, 4, 5), np.int16))
    loaded = read_input(tmp_path / "v.npy")
    assert loaded.kind == "array" and loaded.data.shape == (3, 4, 5)


def test_nifti_slices_have_the_published_orientation_and_scaling(tmp_path):
    data = np.arange(5 * 6 * 4, dtype=np.int16).reshape(5, 6, 4)  # X x Y x Z
    image = nibabel.Nifti1Image(data, np.diag([-0.7, -0.7, 2.5, 1.0]))  # stored in the training orientation
    image.header.set_slope_inter(2.0, -1024.0)
    nibabel.save(image, tmp_path / "volume-3.nii.gz")
    loaded = read_input(tmp_path / "volume-3.nii.gz")
    assert loaded.kind == "volume" and loaded.name == "volume-3" and loaded.data.shape == (4, 6, 5)
    hu = data.astype(np.float32) * 2 - 1024
    np.testing.assert_array_equal(loaded.data[2], hu[:, :, 2].T)  # row = Y, column = X, like SimpleITK
    np.testing.assert_allclose(loaded.nifti.affine, np.diag([-0.7, -0.7, 2.5, 1.0]))
    assert loaded.spacing == pytest.approx((2.5, 0.7, 0.7))
    np.testing.assert_array_equal(slices_to_nifti(nifti_to_slices(hu)), hu)


def test_dicom_file_is_converted_to_hu():
    loaded = read_input(ct_small_path())
    dataset = pydicom.dcmread(ct_small_path())
    assert loaded.kind == "volume" and loaded.data.shape == (1, 128, 128)
    expected = dataset.pixel_array * float(dataset.RescaleSlope) + float(dataset.RescaleIntercept)
    np.testing.assert_array_equal(loaded.data[0], expected.astype(np.float32))
    assert float(dataset.RescaleIntercept) != 0  # the check above really exercises the rescale


def test_dicom_series_is_sorted_along_the_slice_normal(tmp_path):
    series = tmp_path / "series"
    series.mkdir()
    positions = [30.0, 10.0, 20.0]  # written out of order, and named so that file order is wrong too
    for index, z in enumerate(positions):
        dataset = pydicom.dcmread(ct_small_path())
        dataset.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
        dataset.ImagePositionPatient = [0.0, 0.0, z]
        pixels = dataset.pixel_array.copy()
        pixels[0, 0] = int(z)  # a marker of the position
        dataset.PixelData = pixels.tobytes()
        dataset.save_as(series / f"img{index}.dcm")
    (series / "notes.txt").write_text("not DICOM, skipped")
    loaded = read_input(series)
    assert loaded.data.shape == (3, 128, 128)
    intercept = float(pydicom.dcmread(ct_small_path()).RescaleIntercept)
    assert [loaded.data[i, 0, 0] - intercept for i in range(3)] == [10.0, 20.0, 30.0]


@pytest.mark.parametrize("name, content, message", [
    ("scan.xyz", b"whatever", "cannot tell what kind of file"),
    ("broken.png", b"\x89PNG\r\n\x1a\nnot really", "cannot read .* as an image"),
    ("broken.nii.gz", b"\x1f\x8b truncated", "cannot read .* as a NIfTI volume"),
    ("broken.dcm", b"\0" * 128 + b"DICM" + b"\1\2\3", "cannot read .* as a DICOM image"),
    ("broken.npy", b"\x93NUMPY garbage", "cannot read .* as a NumPy"),
])
def test_unreadable_or_unknown_files_give_clear_errors(tmp_path, name, content, message):
    (tmp_path / name).write_bytes(content)
    with pytest.raises(ReadError, match=message):
        read_input(tmp_path / name)


def test_missing_path_and_empty_folder(tmp_path):
    with pytest.raises(ReadError, match="does not exist"):
        read_input(tmp_path / "absent.nii")
    with pytest.raises(ReadError, match="no DICOM images"):
        read_input(tmp_path)
