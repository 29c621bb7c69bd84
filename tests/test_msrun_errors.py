"""Under msrun, a worker's clean error reaches the console as its one line and the job exits non-zero, without
MindSpore's "timed out node" traceback from the scheduler (training.distributed.leave_after_error)."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from test_distributed import free_port


@pytest.mark.slow
def test_a_setting_both_workers_reject_is_one_line_and_a_failed_job(tmp_path: Path):
    rng = np.random.default_rng(0)
    for folder in ("images", "masks"):
        (tmp_path / folder).mkdir()
    for k in range(4):
        Image.fromarray(rng.integers(0, 255, (32, 32), dtype=np.uint8)).save(tmp_path / "images" / f"p{k}_0.png")
        Image.fromarray(((rng.random((32, 32)) > 0.5) * 255).astype(np.uint8)).save(tmp_path / "masks" / f"p{k}_0.png")
    bin_dir = Path(sys.executable).parent
    msrun, unet3plus = (shutil.which(name, path=str(bin_dir)) or shutil.which(name) for name in ("msrun", "unet3plus"))
    assert msrun and unet3plus, "msrun and unet3plus are installed with the package"
    command = [msrun, "--worker_num=2", "--local_worker_num=2", "--master_addr=127.0.0.1", f"--master_port={free_port()}",
               "--join=True", f"--log_dir={tmp_path / 'logs'}", "--cluster_time_out=120", unet3plus, "train",
               "--images", "images", "--masks", "masks", "--label-map", "255:1", "--class-names", "a,b,c",
               "--out", "run", "--epochs", "1", "--batch-size", "2", "--no-progress"]
    env = dict(os.environ, PATH=f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}")
    result = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=240)
    console = result.stdout + result.stderr
    assert result.returncode != 0
    assert "unet3plus train: error: got 3 class name(s) for 2 label values (background first); give 2 names" in console
    assert "The total number of timed out node" not in console and "init_cluster" not in console, console[-3000:]
    scheduler = (tmp_path / "logs" / "scheduler.log").read_text()
    assert "unet3plus train: error: the msrun job stopped: a worker ended with an error" in scheduler
    assert "Traceback" not in scheduler
    assert not (tmp_path / "run").exists()  # nothing was written
