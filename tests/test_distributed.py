"""Data-parallel fine-tuning with two msrun workers on loopback (MindSpore's mccl backend on CPU).

One msrun launch (module fixture ``msrun_job``) trains on 2-D images and, when the volume test is selected,
on volumes as well; each test checks its own run's records.
"""
from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import mindspore as ms
import numpy as np
import pytest

from unet3plus.data import EpochSampler
from volume_data import write_lits

WORKER_SCRIPT = Path(__file__).with_name("msrun_worker.py")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_shards_of_an_epoch_are_disjoint():
    shards = [set(EpochSampler(8, epoch=1, seed=0, num_shards=2, shard_id=k).indices()) for k in range(2)]
    assert not shards[0] & shards[1] and shards[0] | shards[1] == set(range(8))


def run_two_msrun_workers(tmp_path: Path, *worker_args: str, env: dict = None, script: Path = WORKER_SCRIPT) -> tuple:
    """Launch ``script`` (``msrun_worker.py``: training) on two loopback workers with the arguments ``run folder,
    records folder, *worker_args``; return ``(run folder, records folder)``."""
    bin_dir = Path(sys.executable).parent
    msrun = shutil.which("msrun", path=str(bin_dir)) or shutil.which("msrun")
    if msrun is None:
        pytest.fail("msrun (installed with MindSpore) is not on PATH")
    out, records, logs = tmp_path / "run", tmp_path / "records", tmp_path / "logs"
    records.mkdir()
    path = f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"  # msrun runs `python`
    full_env = dict(os.environ, PATH=path, **(env or {}))
    command = [msrun, "--worker_num=2", "--local_worker_num=2", "--master_addr=127.0.0.1",
               f"--master_port={free_port()}", "--join=True", f"--log_dir={logs}", "--cluster_time_out=120",
               str(script), str(out), str(records), *worker_args]
    result = subprocess.run(command, cwd=tmp_path, env=full_env, capture_output=True, text=True, timeout=300)
    worker_logs = "\n".join(p.read_text()[-3000:] for p in sorted(logs.glob("worker_*.log")))
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:] + worker_logs
    return out, records


VOLUME_TEST = "test_two_msrun_workers_on_volumes"


@pytest.fixture(scope="module")
def msrun_job(request, tmp_path_factory, golden_checkpoint) -> tuple:
    """``(run folder, records folder)`` of one msrun launch; the volume run is added only when its test runs
    (the compatibility subset selects the image test alone)."""
    tmp_path = tmp_path_factory.mktemp("msrun")
    env = {}
    if any(item.name == VOLUME_TEST for item in request.session.items):
        env["UNET3PLUS_TEST_VOLUMES"] = str(write_lits(tmp_path / "volumes", 3))
    return run_two_msrun_workers(tmp_path, str(golden_checkpoint), env=env)


@pytest.mark.slow
@pytest.mark.compat
def test_two_msrun_workers_stay_identical_and_only_rank_0_writes(msrun_job, golden_checkpoint):
    out, records = msrun_job
    reports = [json.loads((records / f"rank{rank}.json").read_text()) for rank in (0, 1)]
    assert [r["world_size"] for r in reports] == [2, 2]
    # only rank 0 wrote, and it wrote every file of the run
    assert reports[1]["written"] == []
    assert {"best.ckpt", "last.ckpt", "resume.ckpt", "metrics.csv", "curves.png",
            "train_config.json"} == set(reports[0]["written"]) == {p.name for p in out.iterdir()}
    assert json.loads((out / "train_config.json").read_text())["world_size"] == 2
    # gradients were averaged: both workers end with the same weights and BatchNorm statistics although
    # they trained on different shards; the reported losses are the averages over both workers
    weights = [np.load(records / f"rank{rank}_weights.npz") for rank in (0, 1)]
    assert len(weights[0].files) == 171
    for name in weights[0].files:
        np.testing.assert_array_equal(weights[0][name], weights[1][name], err_msg=name)
    assert reports[0]["history"] == [dict(row, seconds=r0["seconds"]) for row, r0 in
                                     zip(reports[1]["history"], reports[0]["history"])]
    saved = ms.load_checkpoint(str(out / "last.ckpt"))
    for name in weights[0].files:
        np.testing.assert_array_equal(saved[name].asnumpy(), weights[0][name], err_msg=name)
    golden = ms.load_checkpoint(str(golden_checkpoint))
    assert not np.array_equal(saved["outconv1.weight"].asnumpy(), golden["network.outconv1.weight"].asnumpy())


@pytest.mark.slow
def test_two_msrun_workers_on_volumes(msrun_job):
    """Volumes: the two workers draw different slices, end identical, and only rank 0 writes."""
    _, records = msrun_job
    reports = [json.loads((records / f"volumes-rank{rank}.json").read_text()) for rank in (0, 1)]
    assert reports[1]["written"] == [] and "best.ckpt" in reports[0]["written"]
    drawn = [json.loads((records / f"volumes-rank{rank}_drawn.json").read_text()) for rank in (0, 1)]
    assert len(drawn[0]) == len(drawn[1]) == 12 and drawn[0] != drawn[1]  # 2 training cases x 12 slices, halved
    weights = [np.load(records / f"volumes-rank{rank}_weights.npz") for rank in (0, 1)]
    for name in weights[0].files:
        np.testing.assert_array_equal(weights[0][name], weights[1][name], err_msg=name)
    # validation is per case on every rank, so both report the same per-case 3-D Dice
    np.testing.assert_equal(reports[0]["history"][0]["val_dice"], reports[1]["history"][0]["val_dice"])
