"""Issue 21: retries count failures (not progress), dead runs leave nothing behind, publish refuses bad cards.

Loopback servers and temporary folders only.
"""
from __future__ import annotations

import fcntl
import hashlib
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from unet3plus._atomic import (LOCK_FILE_MAX_AGE_S, STAGING_MAX_AGE_S, file_lock, remove_stale_lock_files,
                               remove_stale_staging, staging_folder)
from unet3plus.hub import DownloadError, TransferSettings, download_checkpoint
from unet3plus.hub import transfer as transfer_module

KIB = 1024
PAYLOAD = os.urandom(2 * (1 << 20) + 321)
PAYLOAD_SHA = hashlib.sha256(PAYLOAD).hexdigest()
NAME = "model.ckpt"
DROP_EVERY = ["truncate:102400"] * (len(PAYLOAD) // (100 * KIB))  # the last attempt gets the rest


# -- 1. retries count attempts in a row without progress ----------------------------------------------------
@pytest.mark.usefixtures("clean_download_environment")
def test_a_connection_dropping_every_100_kib_completes_with_a_small_retry_budget(server, tmp_path, monkeypatch):
    url = server.serve("/" + NAME, PAYLOAD, plan=DROP_EVERY)
    monkeypatch.setenv("UNET3PLUS_DOWNLOAD_RETRIES", "3")
    monkeypatch.setenv("UNET3PLUS_DOWNLOAD_BACKOFF", "0.01")
    started = time.monotonic()
    path = download_checkpoint(url, PAYLOAD_SHA, cache_dir=tmp_path, progress=False)
    assert path.read_bytes() == PAYLOAD and path.sha256 == PAYLOAD_SHA
    assert time.monotonic() - started < 10
    ranges = server.requests_for("/" + NAME)
    assert len(ranges) == len(DROP_EVERY) + 1 > 3  # more attempts than the budget: each one advanced
    assert ranges[1:] == [f"bytes={k * 102400}-" for k in range(1, len(ranges))]


@pytest.mark.usefixtures("clean_download_environment")
def test_progress_resets_the_backoff_and_the_budget_counts_failures_in_a_row(server, tmp_path, monkeypatch):
    waits = []
    monkeypatch.setattr(transfer_module.time, "sleep", waits.append)
    settings = TransferSettings(retries=4, backoff_s=1, deadline_s=60)
    cut = "truncate:102400"
    url = server.serve("/" + NAME, PAYLOAD, plan=["500", cut, "500", cut, "500", "500"])
    assert download_checkpoint(url, PAYLOAD_SHA, cache_dir=tmp_path, progress=False,
                               settings=settings).read_bytes() == PAYLOAD
    # a fresh start counts as a failure; the resume that advanced the file restarts the doubling
    assert waits == [1, 2, 4, 1, 1, 2]

    url = server.serve("/other.ckpt", PAYLOAD, plan=[cut, cut] + ["500"] * 4)
    with pytest.raises(DownloadError, match=r"after 6 attempt\(s\), the last 4 without progress: server answered "
                                            r"HTTP 500"):
        # another cache: in this one the same bytes are already there (found by their hash, not fetched again)
        download_checkpoint(url, PAYLOAD_SHA, cache_dir=tmp_path / "other", progress=False, settings=settings)


# -- 2. no leftovers of dead runs ------------------------------------------------------------------------------
def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def _held(path: Path) -> int:
    """A descriptor holding ``path``'s lock, as its live process would."""
    handle = os.open(path, os.O_RDONLY)
    fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    return handle


def test_the_next_run_removes_dead_runs_staging_folders_and_keeps_live_ones(tmp_path):
    dead = tmp_path / f".quantize-{_dead_pid()}-abc123"
    legacy = tmp_path / ".quantize-k2j4h1"  # named by older versions: no pid, never locked
    reused = tmp_path / f".quantize-{os.getppid()}-old"  # a live pid (reused), unlocked for over an hour
    starting = tmp_path / f".quantize-{os.getppid()}-new"  # a live process between creating and locking it
    held = tmp_path / f".quantize-{_dead_pid()}-held"  # whatever its name, a held lock means a live run
    other = tmp_path / f".export-{_dead_pid()}-x"  # another prefix: not ours to judge
    for folder in (dead, legacy, reused, starting, held, other):
        folder.mkdir()
        (folder / "fp32.onnx").write_bytes(b"x")
    hour_ago = time.time() - 2 * STAGING_MAX_AGE_S
    for folder in (legacy, reused):
        os.utime(folder, (hour_ago, hour_ago))
    handle = _held(held)
    try:
        with staging_folder(tmp_path, "quantize") as mine:
            assert mine.name.startswith(f".quantize-{os.getpid()}-") and mine.is_dir()
            (mine / "fp32.onnx").write_bytes(b"x")
            assert sorted(remove_stale_staging(tmp_path, "quantize")) == []  # our own folder is held
        assert not mine.exists()
    finally:
        os.close(handle)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([starting.name, held.name, other.name])


def test_quantize_network_stages_in_a_pid_named_folder_it_cleans(tmp_path, monkeypatch):
    from unet3plus.export import quantize

    stale = tmp_path / f".quantize-{_dead_pid()}-zz"
    stale.mkdir()
    seen = []

    def fake_export(net, path, fmt, shape, overwrite):
        seen.append(Path(path))
        assert not stale.exists()  # removed before this run staged anything
        raise RuntimeError("stop here")

    monkeypatch.setattr(quantize, "quantization_module", lambda: None)
    monkeypatch.setattr(quantize, "calibration_and_held_out", lambda *a, **k: (None, None))
    monkeypatch.setattr("unet3plus.runtime.backends.can_fold", lambda net: False)
    monkeypatch.setattr("unet3plus.runtime.exporting.export_network", fake_export)
    with pytest.raises(RuntimeError, match="stop here"):
        quantize.quantize_network(object(), tmp_path / "int8.onnx", (1, 1, 8, 8))
    assert seen[0].parent.name.startswith(f".quantize-{os.getpid()}-")
    assert list(tmp_path.iterdir()) == []


def test_lock_files_unused_for_a_day_are_removed_held_and_recent_ones_kept(tmp_path):
    day_ago = time.time() - 2 * LOCK_FILE_MAX_AGE_S
    old, recent, held = (tmp_path / f"{name}.ckpt.lock" for name in ("old", "recent", "held"))
    for path in (old, recent, held):
        path.touch()
    for path in (old, held):
        os.utime(path, (day_ago, day_ago))
    handle = _held(held)
    try:
        assert remove_stale_lock_files(tmp_path) == [old]
    finally:
        os.close(handle)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["held.ckpt.lock", "recent.ckpt.lock"]
    os.utime(recent, (day_ago, day_ago))
    with file_lock(recent):  # using a lock file makes it recent again
        pass
    assert remove_stale_lock_files(tmp_path) == [held]


@pytest.mark.usefixtures("clean_download_environment")
def test_a_download_removes_day_old_lock_files_of_its_cache_folder(server, tmp_path):
    folder = tmp_path / "blobs"
    folder.mkdir()
    leftover = folder / "gone.ckpt.lock"
    leftover.touch()
    day_ago = time.time() - 2 * LOCK_FILE_MAX_AGE_S
    os.utime(leftover, (day_ago, day_ago))
    url = server.serve("/" + NAME, PAYLOAD)
    download_checkpoint(url, PAYLOAD_SHA, cache_dir=tmp_path, progress=False)
    assert not leftover.exists()
    assert time.time() - (folder / f"{PAYLOAD_SHA}.ckpt.lock").stat().st_mtime < 60  # its own lock: kept, marked used


# -- 3. publish writes only cards that load, with no secrets ----------------------------------------------------
@pytest.fixture
def stand_in_run(tmp_path) -> Path:
    """A run folder whose checkpoint is never read: every refusal comes first."""
    run = tmp_path / "run"
    run.mkdir()
    (run / "best.ckpt").write_bytes(b"stand-in \x00" * 16)
    return run


def refused(args, capsys, *expected) -> str:
    from unet3plus.cli import main

    assert main(["publish", *map(str, args)]) == 2
    captured = capsys.readouterr()
    err = captured.err.strip()
    assert len(err.splitlines()) == 1, err
    for text in expected:
        assert text in err, (text, err)
    return captured.out + err


@pytest.mark.parametrize("name", ["a---b", "x---"])
def test_a_name_the_card_reader_would_split_is_refused(stand_in_run, tmp_path, capsys, name):
    refused([stand_in_run, "--out", tmp_path / "pub", "--url", "https://models.example/m", "--name", name], capsys,
            f"model name '{name}' holds '---'", "no asset-sha256")
    assert not (tmp_path / "pub").exists()


@pytest.mark.parametrize("url, problem", [
    ("https://alice:hunter2@models.example/models", "carries user info"),
    ("https://models.example/models?sig=hunter2&se=2030", "has a query string"),
    ("https://models.example/models#hunter2", "has a query string or fragment"),
    ("https://models.example/my---models", "holds '---'"),
    ("https://models.example/my models", "holds spaces"),
])
def test_urls_with_credentials_or_that_break_the_card_are_refused_without_echoing_secrets(
        stand_in_run, tmp_path, capsys, url, problem):
    everything = refused([stand_in_run, "--out", tmp_path / "pub", "--url", url], capsys, "--url", problem)
    assert "hunter2" not in everything and "publishing" not in everything
    assert not (tmp_path / "pub").exists()


def test_header_options_with_line_breaks_are_refused(stand_in_run, tmp_path, capsys):
    refused([stand_in_run, "--out", tmp_path / "pub", "--url", "https://models.example/m", "--license",
             "MIT\nasset-sha256: " + "0" * 64], capsys, "--license", "line break")


def test_a_run_without_best_ckpt_publishes_last_only_when_asked(golden_checkpoint, tmp_path, capsys, monkeypatch):
    import shutil

    from unet3plus.cli import main
    from unet3plus.hub.card import read_card

    monkeypatch.setenv("UNET3PLUS_HOME", str(tmp_path / "cache"))
    run = tmp_path / "run"
    run.mkdir()
    shutil.copy(golden_checkpoint, run / "last.ckpt")
    refused([run, "--out", tmp_path / "pub", "--url", "https://models.example/m"], capsys,
            "holds no best.ckpt", "only last.ckpt", "--last")
    refused([run / "last.ckpt", "--out", tmp_path / "pub", "--url", "https://models.example/m", "--last"], capsys,
            "--last picks a run folder's last.ckpt")
    assert not (tmp_path / "pub").exists()

    assert main(["publish", str(run), "--out", str(tmp_path / "pub"), "--url", "https://models.example/m", "--last",
                 "--name", "tuned.v2-final_1"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0] == f"publishing {run / 'last.ckpt'}"
    card = read_card(tmp_path / "pub" / "tuned.v2-final_1.md")
    assert card.asset_link == "https://models.example/m/tuned.v2-final_1.ckpt"
    assert card.asset_sha256 == hashlib.sha256((tmp_path / "pub" / "tuned.v2-final_1.ckpt").read_bytes()).hexdigest()
