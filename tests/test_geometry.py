"""One geometry path: a DICOM series and a NIfTI of the identical grid reach the network in the same
(training) orientation and get the same mask, whatever the series' orientation, and the outputs go back on
the input's own grid. The series are synthetic, written here; the stand-in backend's output depends on the
row/column position and on the order of the 3-slice context, so a mirrored, rotated or reversed volume
would give another mask."""
from __future__ import annotations

import numpy as np
import pytest

from unet3plus import predict
from unet3plus.io import read_input, write_prediction
from unet3plus.io.nifti import TRAINING_ORIENTATION
from unet3plus.io.volume import ReadError
from unet3plus.runtime import InferenceBackend

pydicom = pytest.importorskip("pydicom")
highdicom = pytest.importorskip("highdicom")
nibabel = pytest.importorskip("nibabel")

from pydicom.uid import generate_uid  # noqa: E402
from test_dicom import ct_slice  # noqa: E402

orientations = nibabel.orientations
LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])
# ImageOrientationPatient (row direction, column direction, LPS) of each series
ORIENTATIONS = {
    "head-first supine axial": [1, 0, 0, 0, 1, 0],
    "feet-first axial": [-1, 0, 0, 0, 1, 0],
    "feet-first axial, files reversed": [-1, 0, 0, 0, 1, 0],
    "prone axial": [-1, 0, 0, 0, -1, 0],
    "flipped rows": [1, 0, 0, 0, -1, 0],
    "coronal": [1, 0, 0, 0, 0, -1],
    "sagittal": [0, 1, 0, 0, 0, -1],
}
LPS_CODES = {(0, 1): "L", (0, -1): "R", (1, 1): "P", (1, -1): "A", (2, 1): "S", (2, -1): "I"}


class PositionAndContextBackend(InferenceBackend):
    """Three classes whose logits depend on the row, the column and the order of the context channels."""

    def __call__(self, batch):
        rows = np.arange(batch.shape[2], dtype=np.float32)[:, None] / 8.0
        columns = np.arange(batch.shape[3], dtype=np.float32)[None, :] / 8.0
        background = np.zeros_like(batch[:, 0])
        first = 6.0 * (batch[:, 0] - batch[:, 2]) + rows - 0.6
        second = 4.0 * (batch[:, 1] - 0.5) - columns + 0.8 + 0.5 * batch[:, 0]
        return np.stack([background, first, second], axis=1)


def world_volume():
    """HU on the training grid (X: L, Y: P, Z: S), anisotropic and of unequal sides, and its RAS affine."""
    rng = np.random.default_rng(3)
    data = rng.integers(-200, 200, size=(12, 10, 6)).astype(np.int16)
    data[2:7, 1:5, 1:4] = 190  # an asymmetric bright block
    affine = np.array([[-0.8, 0, 0, 40.0], [0, -0.7, 0, 20.0], [0, 0, 2.5, -60.0], [0, 0, 0, 1]])
    return data, affine


def stored_grid(iop, data=None):
    """The world volume (or ``data`` on its grid) on the grid a series of ImageOrientationPatient ``iop``
    stores (columns, rows, slices ascending along the normal): its voxels ``X x Y x Z`` and RAS affine."""
    world, affine = world_volume()
    data = world if data is None else data
    iop = np.asarray(iop, float)
    axes = [iop[:3], iop[3:], np.cross(iop[:3], iop[3:])]
    codes = tuple(LPS_CODES[(int(np.argmax(np.abs(a))), int(np.sign(a[np.argmax(np.abs(a))])))] for a in axes)
    transform = orientations.ornt_transform(orientations.axcodes2ornt(TRAINING_ORIENTATION),
                                            orientations.axcodes2ornt(codes))
    stored = orientations.apply_orientation(data, transform)
    stored_affine = affine @ orientations.inv_ornt_aff(transform, data.shape)
    assert nibabel.aff2axcodes(stored_affine) == codes
    return np.ascontiguousarray(stored), stored_affine


def write_series(folder, iop, *, reverse_files=False, tweak=None):
    """The stored grid of ``iop`` as one DICOM CT file per slice; ``tweak(k, dataset)`` may spoil slice k.
    Returns the SOP instance UIDs in stored order (along the normal)."""
    stored, affine = stored_grid(iop)
    folder.mkdir(parents=True, exist_ok=True)
    lps = LPS_TO_RAS @ affine
    column_spacing, row_spacing = np.linalg.norm(affine[:3, :2], axis=0)
    series_uid, study_uid, frame_uid = generate_uid(), generate_uid(), generate_uid()
    uids = []
    n = stored.shape[2]
    for k in range(n):
        number = n - k if reverse_files else k + 1
        ds = ct_slice((study_uid, series_uid, frame_uid), number)
        ds.ImageOrientationPatient = [float(v) for v in iop]
        ds.ImagePositionPatient = [round(float(v), 4) for v in (lps @ [0, 0, k, 1])[:3]]
        ds.PixelSpacing = [round(float(row_spacing), 4), round(float(column_spacing), 4)]
        ds.SliceThickness = round(float(np.linalg.norm(affine[:3, 2])), 4)
        pixels = stored[:, :, k].T  # rows along the second voxel axis, columns along the first
        ds.Rows, ds.Columns = pixels.shape
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 1
        ds.RescaleIntercept, ds.RescaleSlope = -1024, 1
        ds.PixelData = (pixels + 1024).astype(np.int16).tobytes()
        if tweak is not None:
            tweak(k, ds)
        ds.save_as(folder / f"image{number:03d}.dcm", enforce_file_format=True)
        uids.append(ds.SOPInstanceUID)
    return uids


def write_nifti(path, iop):
    stored, affine = stored_grid(iop)
    nibabel.save(nibabel.Nifti1Image(stored, affine), str(path))
    return path


@pytest.mark.parametrize("orientation", list(ORIENTATIONS))
def test_series_and_nifti_of_one_grid_give_one_prediction(tmp_path, orientation):
    iop = ORIENTATIONS[orientation]
    uids = write_series(tmp_path / "series", iop, reverse_files="reversed" in orientation)
    nifti_path = write_nifti(tmp_path / "image.nii.gz", iop)
    series, nifti = read_input(tmp_path / "series"), read_input(nifti_path)
    # the network's view: the world volume in the training orientation, whatever the storage
    np.testing.assert_array_equal(nifti.data, np.transpose(world_volume()[0], (2, 1, 0)))
    np.testing.assert_array_equal(series.data, nifti.data)
    np.testing.assert_allclose(series.affine, nifti.affine, atol=1e-3)
    assert series.spacing == pytest.approx(nifti.spacing, abs=1e-4)

    backend = PositionAndContextBackend()
    from_series = predict(backend, tmp_path / "series", preset="standard", probabilities=True)
    from_nifti = predict(backend, nifti_path, preset="standard", probabilities=True)
    assert set(np.unique(from_nifti.mask).tolist()) == {0, 1, 2}  # the test can see a mirrored input
    np.testing.assert_array_equal(from_series.mask, from_nifti.mask)
    np.testing.assert_allclose(from_series.probabilities, from_nifti.probabilities, atol=1e-6)
    fast = [predict(backend, source, preset="standard", strategy="fast").mask  # its coarse step is in mm
            for source in (tmp_path / "series", nifti_path)]
    assert set(np.unique(fast[1]).tolist()) == {0, 1, 2}
    np.testing.assert_array_equal(fast[0], fast[1])

    # outputs go back on the input's own grid: identical files for the two inputs
    written_series = write_prediction(from_series, tmp_path / "out_series", probabilities=True)
    written_nifti = write_prediction(from_nifti, tmp_path / "out_nifti", probabilities=True)
    stored, stored_affine = stored_grid(iop)
    mask_s = nibabel.load(tmp_path / "out_series" / "series_mask.nii.gz")
    mask_n = nibabel.load(tmp_path / "out_nifti" / "image_mask.nii.gz")
    assert mask_s.shape == mask_n.shape == stored.shape
    np.testing.assert_array_equal(np.asarray(mask_s.dataobj), np.asarray(mask_n.dataobj))
    np.testing.assert_allclose(mask_s.affine, stored_affine, atol=1e-3)
    np.testing.assert_allclose(mask_n.affine, stored_affine)
    probs_s = nibabel.load(tmp_path / "out_series" / "series_probabilities.nii.gz")
    probs_n = nibabel.load(tmp_path / "out_nifti" / "image_probabilities.nii.gz")
    assert probs_s.shape == probs_n.shape == stored.shape + (3,)
    np.testing.assert_allclose(probs_s.get_fdata(), probs_n.get_fdata(), atol=1e-6)
    assert len(written_series) == len(written_nifti) + 1  # the DICOM SEG

    # each SEG frame lies on the image it references
    seg = highdicom.seg.segread(tmp_path / "out_series" / "series_seg.dcm")
    on_grid = np.asarray(mask_s.dataobj)
    for segment in (1, 2):
        frames = seg.get_pixels_by_source_instance(uids, segment_numbers=[segment])[..., 0]
        np.testing.assert_array_equal(frames, np.transpose(on_grid == segment, (2, 1, 0)))


def _spoil(key, value):
    def tweak(k, ds):
        if k == 2:
            setattr(ds, key, value)
            if key == "Rows":
                ds.PixelData = np.zeros((value, ds.Columns), np.int16).tobytes()
    return tweak


@pytest.mark.parametrize("key, value", [("PixelSpacing", [0.7, 0.9]), ("ImageOrientationPatient", [1, 0, 0, 0, 0.8, 0.6]),
                                        ("Rows", 12)])
def test_series_of_unlike_slices_is_refused(tmp_path, key, value):
    write_series(tmp_path / "mixed", ORIENTATIONS["head-first supine axial"], tweak=_spoil(key, value))
    with pytest.raises(ReadError) as caught:
        read_input(tmp_path / "mixed")
    message = str(caught.value)
    assert "\n" not in message and str(tmp_path / "mixed") in message
    assert f"have different {key}" in message and "split or resample it" in message


def test_probabilities_nifti_layout(tmp_path):
    """One channel: X x Y x Z; several: X x Y x Z x C (NIfTI keeps components last), on the file's grid."""
    iop = ORIENTATIONS["prone axial"]
    path = write_nifti(tmp_path / "image.nii.gz", iop)
    stored, _ = stored_grid(iop)

    class OneChannel(InferenceBackend):
        def __call__(self, batch):
            return (batch[:, 1:2] - 0.5) * 4.0

    for backend, name, shape in ((OneChannel(), "one", stored.shape),
                                 (PositionAndContextBackend(), "three", stored.shape + (3,))):
        prediction = predict(backend, path, preset="standard", probabilities=True)
        write_prediction(prediction, tmp_path / name, probabilities=True)
        written = nibabel.load(tmp_path / name / "image_probabilities.nii.gz")
        assert written.shape == shape
        values = written.get_fdata()
        # voxel (x, y, z) of the file is voxel (z, y', x') of the prediction, back through the orientation
        expected = prediction.probabilities[:, 0] if len(shape) == 3 else np.moveaxis(prediction.probabilities, 1, -1)
        back = orientations.ornt_transform(orientations.axcodes2ornt(TRAINING_ORIENTATION),
                                           orientations.io_orientation(written.affine))
        expected = orientations.apply_orientation(np.swapaxes(expected, 0, 2), back)
        np.testing.assert_allclose(values, expected, atol=1e-6)
        if len(shape) == 4:
            np.testing.assert_allclose(values.sum(axis=-1), 1.0, atol=1e-5)  # softmax over the last axis


# --- volume training: the all-problems check compares labels with their image in the training orientation

def _training_case(tmp_path, name, labels, label_affine=None, stored_as=("L", "P", "S")):
    """A NIfTI CT case of the world volume, its labels saved with voxel axes ``stored_as``."""
    from unet3plus.io.layouts import VolumeCase

    data, affine = world_volume()
    image = tmp_path / f"{name}.nii.gz"
    nibabel.save(nibabel.Nifti1Image(data, affine), str(image))
    transform = orientations.ornt_transform(orientations.axcodes2ornt(TRAINING_ORIENTATION),
                                            orientations.axcodes2ornt(stored_as))
    label_affine = affine if label_affine is None else label_affine
    stored = orientations.apply_orientation(labels, transform)
    label_path = tmp_path / f"{name}_labels.nii.gz"
    nibabel.save(nibabel.Nifti1Image(stored, label_affine @ orientations.inv_ornt_aff(transform, labels.shape)),
                 str(label_path))
    return VolumeCase(name, image, label_path)


def _world_labels(dtype=np.uint8):
    data, _ = world_volume()
    labels = (data == 190).astype(dtype)
    labels[2:4, 1:3, 1:3] = 2
    return labels


def test_volume_check_lists_grid_and_value_problems_of_labels(tmp_path):
    from unet3plus.data import DatasetError, VolumeOptions
    from unet3plus.data.volume_checks import check_cases

    options = VolumeOptions(classes=("liver", "tumour"))
    _, affine = world_volume()
    shifted, nearly = affine.copy(), affine.copy()
    shifted[0, 3] += 0.005  # 5 micrometres: more than the tolerance
    nearly[0, 3] += 0.0002
    fractional = _world_labels(np.float32)
    fractional[0, 0, 0], fractional[1, 0, 0] = 0.6, 1.4
    good = [_training_case(tmp_path, "good", _world_labels()),
            _training_case(tmp_path, "nearly", _world_labels(), label_affine=nearly),
            _training_case(tmp_path, "reoriented", _world_labels(), stored_as=("R", "A", "S"))]
    assert [info.shape for info in check_cases(good, options)] == [(6, 10, 12)] * 3
    bad = [_training_case(tmp_path, "shifted", _world_labels(), label_affine=shifted),
           _training_case(tmp_path, "cropped", _world_labels()[:, :, :5]),
           _training_case(tmp_path, "fractional", fractional)]
    with pytest.raises(DatasetError) as raised:
        check_cases(good + bad, options)
    message = str(raised.value)
    assert "\n" not in message and message.startswith("3 problem(s)")
    assert "shifted.nii.gz and its labels" in message and "have different affines" in message
    assert "cropped.nii.gz is 6x10x12 but its labels" in message and "are 5x10x12" in message
    assert "fractional_labels.nii.gz holds non-integer label value(s) (0.6, 1.4)" in message
    assert "nearest neighbour" in message


def test_dicom_training_case_reads_labels_on_the_series(tmp_path):
    """A coronal DICOM series with NIfTI labels on its stored grid: CT and labels meet voxel for voxel in the
    training orientation."""
    from unet3plus.data import VolumeOptions
    from unet3plus.data.volume_checks import check_cases
    from unet3plus.data.volume_io import CaseReader
    from unet3plus.io.layouts import VolumeCase

    iop = ORIENTATIONS["coronal"]
    write_series(tmp_path / "series" / "case", iop)
    labels, label_affine = stored_grid(iop, _world_labels())
    nibabel.save(nibabel.Nifti1Image(labels, label_affine), str(tmp_path / "case.nii.gz"))
    case = VolumeCase("case", tmp_path / "series" / "case", tmp_path / "case.nii.gz")
    reader = CaseReader(case)
    assert reader.shape == reader.label_shape == (6, 10, 12) and not reader.affines_differ()
    np.testing.assert_array_equal(reader.labels(), np.transpose(_world_labels(), (2, 1, 0)))
    assert (reader.hu()[reader.labels() == 1] == 190).all()
    options = VolumeOptions(classes=("liver", "tumour"))
    assert len(check_cases([case], options)) == 1
