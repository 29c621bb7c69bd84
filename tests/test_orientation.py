"""Orientation-true NIfTI: one volume stored in three orientations gives the same mask in world coordinates,
each written back on its own file's grid. A deterministic stand-in backend keeps it fast; it looks at a
neighbouring slice and shifted pixels, so a volume read in the wrong orientation would give another mask."""
from __future__ import annotations

import numpy as np
import pytest

from unet3plus import predict
from unet3plus.io import read_input, write_prediction
from unet3plus.io.nifti import TRAINING_ORIENTATION
from unet3plus.runtime import InferenceBackend, register_backend

nibabel = pytest.importorskip("nibabel")
orientations = nibabel.orientations


class ShiftedNeighbourBackend(InferenceBackend):
    """Foreground where the previous slice (channel 0 of the standard preset), two rows up, is bright."""

    def __init__(self, model=None, **options):
        pass

    def __call__(self, batch):
        return (np.roll(batch[:, 0:1], 2, axis=2) - 0.5) * 10.0


register_backend("shifted-neighbour-test", ShiftedNeighbourBackend)


def save_in(path, data_lps, affine_lps, axcodes):
    """The same voxels and world positions, stored with voxel axes ``axcodes``."""
    transform = orientations.ornt_transform(orientations.axcodes2ornt(TRAINING_ORIENTATION),
                                            orientations.axcodes2ornt(axcodes))
    data = orientations.apply_orientation(data_lps, transform)
    affine = affine_lps @ orientations.inv_ornt_aff(transform, data_lps.shape)
    nibabel.save(nibabel.Nifti1Image(data.astype(np.int16), affine), str(path))
    assert nibabel.aff2axcodes(affine) == tuple(axcodes)


def test_three_storage_orientations_give_one_mask_in_world_coordinates(tmp_path):
    rng = np.random.default_rng(0)
    data = rng.integers(-150, 0, size=(32, 16, 5)).astype(np.int16)  # x (L), y (P), z (S): 16 x 32 slices
    data[4:20, 3:12, 1:4] = 180  # a bright, asymmetric block
    data[4:8, 3:5, 2] = 190
    affine = np.array([[-0.8, 0, 0, 40.0], [0, -0.7, 0, 20.0], [0, 0, 2.5, -60.0], [0, 0, 0, 1]])
    stored = {codes: tmp_path / f"{''.join(codes)}.nii.gz" for codes in (("L", "P", "S"), ("R", "A", "S"),
                                                                        ("S", "R", "P"))}
    canonical_masks, raw_masks = [], []
    for codes, path in stored.items():
        save_in(path, data, affine, codes)
        loaded = read_input(path)
        assert loaded.data.shape == (5, 16, 32) and loaded.spacing == pytest.approx((2.5, 0.7, 0.8))
        prediction = predict(None, loaded, backend="shifted-neighbour-test", preset="standard")
        assert 0 < prediction.mask.sum() < prediction.mask.size
        write_prediction(prediction, tmp_path / "".join(codes))
        mask = nibabel.load(tmp_path / "".join(codes) / f"{path.name[:-7]}_mask.nii.gz")
        np.testing.assert_allclose(mask.affine, nibabel.load(path).affine)  # the file's own grid
        raw_masks.append(np.asarray(mask.dataobj))
        canonical = nibabel.as_closest_canonical(mask)
        canonical_masks.append((np.asarray(canonical.dataobj), canonical.affine))
    for data_, affine_ in canonical_masks[1:]:
        np.testing.assert_array_equal(data_, canonical_masks[0][0])
        np.testing.assert_allclose(affine_, canonical_masks[0][1])
    assert raw_masks[0].shape != raw_masks[2].shape and not np.array_equal(raw_masks[0], raw_masks[1])
