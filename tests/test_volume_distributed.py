"""Data-parallel training on volumes: two msrun workers draw different slices, end identical, rank 0 writes."""
from __future__ import annotations

import json

import numpy as np
from test_distributed import run_two_msrun_workers
from volume_data import write_lits


def test_two_msrun_workers_on_volumes(tmp_path):
    volumes = write_lits(tmp_path / "volumes", 3)
    _, records = run_two_msrun_workers(tmp_path, env={"UNET3PLUS_TEST_VOLUMES": str(volumes)})

    reports = [json.loads((records / f"rank{rank}.json").read_text()) for rank in (0, 1)]
    assert reports[1]["written"] == [] and "best.ckpt" in reports[0]["written"]
    drawn = [json.loads((records / f"rank{rank}_drawn.json").read_text()) for rank in (0, 1)]
    assert len(drawn[0]) == len(drawn[1]) == 12 and drawn[0] != drawn[1]  # 2 training cases x 12 slices, halved
    weights = [np.load(records / f"rank{rank}_weights.npz") for rank in (0, 1)]
    for name in weights[0].files:
        np.testing.assert_array_equal(weights[0][name], weights[1][name], err_msg=name)
    # validation is per case on every rank, so both report the same per-case 3-D Dice
    np.testing.assert_equal(reports[0]["history"][0]["val_dice"], reports[1]["history"][0]["val_dice"])
