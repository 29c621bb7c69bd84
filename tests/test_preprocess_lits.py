"""preprocess-lits: pairing by name, split by patient, the lits2017 network input in 8-bit PNGs, 0/1 masks."""
from __future__ import annotations

import numpy as np
import pytest

from unet3plus.cli import main
from unet3plus.transforms import get_preset

nibabel = pytest.importorskip("nibabel")


def write_case(folder, number, seed, shape=(6, 24, 20)):
    rng = np.random.default_rng(seed)
    volume = rng.integers(-400, 500, size=shape).astype(np.int16)  # Z x H x W slices
    labels = np.zeros(shape, np.uint8)
    labels[2:5, 5:15, 4:12] = 1
    labels[3, 8:10, 6:8] = 2  # tumour
    for name, data in ((f"volume-{number}.nii", volume), (f"segmentation-{number}.nii.gz", labels)):
        # stored in the training orientation (voxel axes L, P, S), so the slices are read as they are
        nibabel.save(nibabel.Nifti1Image(np.transpose(data, (2, 1, 0)), np.diag([-1.0, -1.0, 1.0, 1.0])),
                     str(folder / name))
    return volume.astype(np.float32), labels


def test_preprocess_lits_writes_what_the_trainer_reads(tmp_path):
    from PIL import Image

    from unet3plus.data.folder import pair_files

    source = tmp_path / "lits"
    (source / "batch1").mkdir(parents=True)
    cases = {f"volume-{n}": write_case(source / "batch1" if n == 10 else source, n, seed=n) for n in (1, 2, 10)}
    out = tmp_path / "out"
    assert main(["preprocess-lits", "--input", str(source), "--out", str(out), "--val-fraction", "0.34"]) == 0
    seen = {}
    for split in ("train", "val"):
        pairs = pair_files(out / split / "images", out / split / "masks")
        for stem, image_path, mask_path in pairs:
            case, z = stem.rsplit("_", 1)
            seen.setdefault(case, set()).add(split)
            volume, labels = cases[case]
            image = np.array(Image.open(image_path))
            # What the trainer's reader gives (8-bit / 255) is exactly the lits2017 network input.
            np.testing.assert_array_equal(image.astype(np.float32).transpose(2, 0, 1) / np.float32(255),
                                          get_preset("lits2017")(volume)[int(z)])
            np.testing.assert_array_equal(np.array(Image.open(mask_path)), (labels[int(z)] > 0).astype(np.uint8))
    assert set(seen) == set(cases) and all(len(splits) == 1 for splits in seen.values())  # by patient
    assert sum(splits == {"val"} for splits in seen.values()) == 1  # round(0.34 * 3 patients)
    counts = {case: len(list((out / split).glob(f"images/{case}_*.png")))
              for case, splits in seen.items() for split in splits}
    assert counts == {"volume-1": 3, "volume-2": 3, "volume-10": 3}  # slices 2..4: first to last labelled


def test_preprocess_lits_unpaired_and_existing_output_are_errors(tmp_path, capsys):
    write_case(tmp_path, 1, seed=0)
    (tmp_path / "volume-7.nii").write_bytes((tmp_path / "volume-1.nii").read_bytes())
    code = main(["preprocess-lits", "--input", str(tmp_path), "--out", str(tmp_path / "out")])
    assert code == 2 and "volume-7" in capsys.readouterr().err and not (tmp_path / "out").exists()
    (tmp_path / "volume-7.nii").unlink()
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "x").write_text("")
    assert main(["preprocess-lits", "--input", str(tmp_path), "--out", str(tmp_path / "out")]) == 2
    assert main(["preprocess-lits", "--input", str(tmp_path), "--out", str(tmp_path / "out"), "--overwrite",
                 "--keep-tumour", "--all-slices"]) == 0
    from PIL import Image

    masks = sorted((tmp_path / "out" / "train" / "masks").iterdir())
    assert len(masks) == 6 and np.array(Image.open(masks[3])).max() == 2


def test_a_truncated_volume_leaves_nothing_half_done_and_a_rerun_works(tmp_path, capsys):
    source = tmp_path / "lits"
    source.mkdir()
    for number in (1, 2, 3):
        write_case(source, number, seed=number)
    good = (source / "volume-3.nii").read_bytes()
    (source / "volume-3.nii").write_bytes(good[:len(good) // 2])  # a download cut short
    out = tmp_path / "out"
    code = main(["preprocess-lits", "--input", str(source), "--out", str(out)])
    assert code == 2 and "volume-3" in capsys.readouterr().err
    assert not out.exists() and sorted(p.name for p in tmp_path.iterdir()) == ["lits"]  # no staging folder left
    (source / "volume-3.nii").write_bytes(good)
    assert main(["preprocess-lits", "--input", str(source), "--out", str(out)]) == 0  # the rerun is not refused
    assert len(list(out.rglob("*.png"))) == 2 * 3 * 3
