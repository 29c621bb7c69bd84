"""The command line's one error handler: one line per failure, a distinct exit status per kind (issue 13).

Checkpoint messages name the path, count instead of listing, offer only fixes the CLI has; OSErrors are
one line too; stale temporaries never make an output folder "not empty"; SIGTERM prints "interrupted".
"""
from __future__ import annotations

import fcntl
import hashlib
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from loopback_server import LoopbackServer
from unet3plus import UNet3Plus, load_checkpoint
from unet3plus.cli import main
from unet3plus.hub import CheckpointError
from unet3plus.hub.download import VerifiedPath


def run_cli(argv, capsys):
    code = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.err


def assert_one_line(err: str) -> None:
    assert err.startswith("unet3plus ") and len(err.strip().splitlines()) == 1 and "Traceback" not in err, err


@pytest.fixture
def slice_npy(tmp_path):
    path = tmp_path / "slice.npy"
    np.save(path, np.zeros((3, 16, 16), np.float32))
    return path


def test_a_zero_byte_checkpoint_says_so(tmp_path, slice_npy, capsys):
    empty = tmp_path / "empty.ckpt"
    empty.write_bytes(b"")
    code, err = run_cli(["predict", slice_npy, "--out", tmp_path / "out", "--checkpoint", empty], capsys)
    assert code == 2 and f"checkpoint {empty} is empty (0 bytes)" in err and "filter_prefix" not in err
    assert_one_line(err)


def test_a_checkpoint_of_something_else_names_the_path_and_counts(tmp_path, slice_npy, capsys):
    import mindspore as ms

    other = tmp_path / "other.ckpt"
    ms.save_checkpoint([{"name": f"w{i}", "data": ms.Tensor(np.zeros(2, np.float32))} for i in range(200)],
                       str(other))
    code, err = run_cli(["predict", slice_npy, "--out", tmp_path / "out", "--checkpoint", other], capsys)
    assert code == 2 and f"checkpoint {other} holds none of the 171 UNet3+ weights" in err
    assert "a parameter dict" not in err and "(195 more)" in err and err.count(", w") <= 5
    assert_one_line(err)


def test_a_mismatching_checkpoint_offers_strict_false_only_in_python(golden_checkpoint, tmp_path, slice_npy, capsys):
    import mindspore as ms

    entries = ms.load_checkpoint(str(golden_checkpoint))
    entries.pop("network.bn2d_1.moving_mean")
    damaged = tmp_path / "damaged.ckpt"
    ms.save_checkpoint([{"name": k, "data": v} for k, v in entries.items()], str(damaged))
    with pytest.raises(CheckpointError, match="strict=False"):
        load_checkpoint(UNet3Plus(), damaged)
    code, err = run_cli(["predict", slice_npy, "--out", tmp_path / "out", "--checkpoint", damaged], capsys)
    assert code == 2 and "1 missing" in err and str(damaged) in err and "strict" not in err
    assert_one_line(err)


def test_a_verified_cache_file_swapped_before_loading_is_refused(golden_checkpoint, tmp_path):
    cached = tmp_path / "model.ckpt"
    cached.write_bytes(golden_checkpoint.read_bytes())
    path = VerifiedPath(cached)
    path.sha256 = hashlib.sha256(cached.read_bytes()).hexdigest()
    assert load_checkpoint(UNet3Plus(), path).complete  # the verified bytes load
    data = bytearray(cached.read_bytes())
    data[-5] ^= 0xFF  # another writer changes one weight after the check
    cached.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="changed after its SHA-256 was verified"):
        load_checkpoint(UNet3Plus(), path)


@pytest.mark.parametrize("command", ["train", "demo"])
def test_out_naming_a_file_is_one_line(tmp_path, capsys, command):
    file = tmp_path / "a_file"
    file.write_text("x")
    argv = {"train": ["train", "--images", tmp_path, "--masks", tmp_path, "--out", file],
            "demo": ["demo", "--out", file, "--checkpoint", tmp_path / "absent.ckpt"]}[command]
    code, err = run_cli(argv, capsys)
    assert code == 2 and str(file) in err and "not a folder" in err
    assert_one_line(err)


def test_an_oserror_anywhere_is_one_line_with_its_own_status(monkeypatch, capsys):
    import unet3plus.cli.download as download_command

    def disk_full(args):
        raise OSError(28, "No space left on device", "/data/run/best.ckpt")

    monkeypatch.setattr(download_command, "run_download", disk_full)
    code, err = run_cli(["download"], capsys)
    assert code == 4 and "No space left on device: /data/run/best.ckpt; free some space" in err
    assert_one_line(err)


def test_evaluate_refuses_to_replace_a_csv_without_overwrite(tmp_path, capsys):
    csv = tmp_path / "scores.csv"
    csv.write_text("precious")
    code, err = run_cli(["evaluate", "--images", tmp_path, "--masks", tmp_path, "--csv", csv], capsys)
    assert code == 2 and "--overwrite" in err and csv.read_text() == "precious"
    assert_one_line(err)


def test_stale_temporaries_neither_block_nor_survive_an_output_folder(golden_checkpoint, tmp_path, slice_npy, capsys):
    out = tmp_path / "out"
    out.mkdir()
    (out / ".slice_mask.npy.abc123.partial.npy").write_bytes(b"left by a killed run")
    live = out / ".slice_overlay.png.def456.partial.png"
    live.write_bytes(b"being written right now")
    with open(live, "rb") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)  # a running writer holds its temporary
        code, err = run_cli(["predict", slice_npy, "--out", out, "--checkpoint", golden_checkpoint,
                             "--no-progress", "--mode", "pynative"], capsys)
        assert code == 0, err
        assert sorted(p.name for p in out.iterdir()) == sorted([live.name, "slice_mask.npy", "slice_overlay.png"])


def test_sigterm_prints_interrupted_with_its_own_status(tmp_path):
    with LoopbackServer() as server:
        url = server.serve("/slow.ckpt", b"x" * 10_000, plan=["trickle:0.2"])
        process = subprocess.Popen([sys.executable, "-m", "unet3plus", "download", "--url", url, "--cache-dir",
                                    str(tmp_path), "--no-progress"], stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 60
        while not server.requests_for("/slow.ckpt"):
            assert time.monotonic() < deadline and process.poll() is None
            time.sleep(0.05)
        time.sleep(0.3)
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=30)
    assert process.returncode == 143 and err.strip().endswith("unet3plus download: interrupted"), err
    assert not [p for p in (tmp_path / "blobs").iterdir() if ".partial" in p.name]
