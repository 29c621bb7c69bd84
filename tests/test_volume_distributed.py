"""Data-parallel training on volumes: two msrun workers draw different slices, end identical, rank 0 writes."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from test_distributed import WORKER_SCRIPT, free_port
from volume_data import write_lits


def test_two_msrun_workers_on_volumes(tmp_path):
    bin_dir = Path(sys.executable).parent
    msrun = shutil.which("msrun", path=str(bin_dir)) or shutil.which("msrun")
    if msrun is None:
        pytest.fail("msrun (installed with MindSpore) is not on PATH")
    out, records, logs = tmp_path / "run", tmp_path / "records", tmp_path / "logs"
    records.mkdir()
    env = dict(os.environ, PATH=f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
               UNET3PLUS_TEST_VOLUMES=str(write_lits(tmp_path / "volumes", 3)))
    command = [msrun, "--worker_num=2", "--local_worker_num=2", "--master_addr=127.0.0.1",
               f"--master_port={free_port()}", "--join=True", f"--log_dir={logs}", "--cluster_time_out=120",
               str(WORKER_SCRIPT), str(out), str(records)]
    result = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    worker_logs = "\n".join(p.read_text()[-3000:] for p in sorted(logs.glob("worker_*.log")))
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:] + worker_logs

    reports = [json.loads((records / f"rank{rank}.json").read_text()) for rank in (0, 1)]
    assert reports[1]["written"] == [] and "best.ckpt" in reports[0]["written"]
    drawn = [json.loads((records / f"rank{rank}_drawn.json").read_text()) for rank in (0, 1)]
    assert len(drawn[0]) == len(drawn[1]) == 12 and drawn[0] != drawn[1]  # 2 training cases x 12 slices, halved
    weights = [np.load(records / f"rank{rank}_weights.npz") for rank in (0, 1)]
    for name in weights[0].files:
        np.testing.assert_array_equal(weights[0][name], weights[1][name], err_msg=name)
    # validation is per case on every rank, so both report the same per-case 3-D Dice
    np.testing.assert_equal(reports[0]["history"][0]["val_dice"], reports[1]["history"][0]["val_dice"])
