"""``unet3plus predict`` under msrun: two workers share out the inputs, each output is written once, and the
files are those one process writes."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from test_distributed import run_two_msrun_workers

from unet3plus.cli import main

nibabel = pytest.importorskip("nibabel")
Image = pytest.importorskip("PIL.Image")

WORKER_SCRIPT = Path(__file__).with_name("msrun_predict_worker.py")


@pytest.mark.slow
def test_two_msrun_workers_share_the_inputs_and_write_what_one_process_writes(golden_checkpoint, tmp_path):
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    rng = np.random.default_rng(0)
    for k in range(3):
        Image.fromarray(rng.integers(0, 255, size=(16, 24)).astype(np.uint8)).save(inputs / f"slice{k}.png")
    np.save(inputs / "volume.npy", rng.integers(-300, 400, size=(3, 16, 16)).astype(np.float32))
    volume = rng.integers(-300, 400, size=(16, 16, 3)).astype(np.int16)
    nibabel.save(nibabel.Nifti1Image(volume, np.diag([0.8, 0.8, 2, 1])), str(inputs / "case.nii.gz"))
    options = [str(inputs), "--checkpoint", str(golden_checkpoint), "--no-progress", "--mode", "pynative"]
    out, records = run_two_msrun_workers(tmp_path, *options, script=WORKER_SCRIPT)

    reports = [json.loads((records / f"rank{rank}.json").read_text()) for rank in (0, 1)]
    assert [r["code"] for r in reports] == [0, 0]
    written = [set(r["written"]) for r in reports]
    assert written[0] and written[1] and not written[0] & written[1]  # both worked; nothing written twice
    single = tmp_path / "single"
    assert main(["predict", *options, "--out", str(single)]) == 0
    names = sorted(p.name for p in single.iterdir())
    assert len(names) == 11 and "case_mask.json" in names  # the NIfTI input's label table too
    assert sorted(p.name for p in out.iterdir()) == names == sorted(written[0] | written[1])
    for name in names:
        if name.endswith(".nii.gz"):  # same voxels and geometry (gzip headers may carry a time)
            shared, alone = nibabel.load(str(out / name)), nibabel.load(str(single / name))
            np.testing.assert_array_equal(np.asarray(shared.dataobj), np.asarray(alone.dataobj), err_msg=name)
            np.testing.assert_array_equal(shared.affine, alone.affine)
        else:
            assert (out / name).read_bytes() == (single / name).read_bytes(), name
