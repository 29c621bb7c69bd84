"""Hostile servers and careless settings against download_checkpoint (loopback servers and temp folders only).

Each case is a class of failure from issue 13: no deadline, no size cap, lost partial reads, foreign 206
ranges, stale temporaries, swapped cache files, bad settings, leaked credentials, redirects into the local
network, DNS failures retried for nothing.
"""
from __future__ import annotations

import fcntl
import hashlib
import multiprocessing
import os
import signal
import socket
import time
from pathlib import Path

import pytest

from loopback_server import LoopbackServer
from unet3plus.cli import main
from unet3plus.hub import DownloadError, OfflineError, TransferSettings, download_checkpoint
from unet3plus.hub import download as download_module
from unet3plus.hub import transfer as transfer_module
from unet3plus.hub.download import check_redirect, redact_url

pytestmark = pytest.mark.usefixtures("clean_download_environment")

PAYLOAD = os.urandom(3 * (1 << 20) + 123)
PAYLOAD_SHA = hashlib.sha256(PAYLOAD).hexdigest()
NAME = "model.ckpt"
FAST = TransferSettings(retries=3, backoff_s=0, read_timeout_s=2, deadline_s=10)


def download(url, cache: Path, settings=FAST, **kwargs) -> Path:
    return download_checkpoint(url, PAYLOAD_SHA, cache_dir=cache, progress=False, settings=settings, **kwargs)


BLOB = f"{PAYLOAD_SHA}.ckpt"  # the verified file's name in the content-addressed cache


def folder_names(cache: Path) -> list:
    folder = cache / "blobs"
    return sorted(p.name for p in folder.iterdir() if not p.name.endswith(".lock")) if folder.exists() else []


# -- bounded in time -------------------------------------------------------------------------------------
def test_a_trickling_server_is_stopped_by_the_overall_deadline(server, tmp_path):
    url = server.serve("/" + NAME, PAYLOAD, plan=["trickle:0.05"] * 5)
    started = time.monotonic()
    with pytest.raises(DownloadError, match=r"within 1 s \(UNET3PLUS_DOWNLOAD_DEADLINE\)"):
        download(url, tmp_path, TransferSettings(retries=5, backoff_s=0, read_timeout_s=5, deadline_s=1))
    assert time.monotonic() - started < 3  # the read timeout (5 s) never came into it
    assert folder_names(tmp_path) == []


def test_waiting_for_another_processs_lock_is_bounded_with_a_clear_message(server, tmp_path):
    import filelock

    url = server.serve("/" + NAME, PAYLOAD)
    final = tmp_path / "blobs" / BLOB
    final.parent.mkdir(parents=True)
    with filelock.FileLock(str(final) + ".lock"):  # "another process" that never finishes
        started = time.monotonic()
        with pytest.raises(DownloadError, match=r"another process has been downloading .* still holds .*\.lock"):
            download(url, tmp_path, TransferSettings(deadline_s=0.3))
        assert time.monotonic() - started < 3
    assert server.requests_for("/" + NAME) == []


def test_backoff_is_capped_and_counts_against_the_deadline(server, tmp_path, monkeypatch):
    url = server.serve("/" + NAME, PAYLOAD, plan=["500"] * 20)
    waits = []
    monkeypatch.setattr(transfer_module.time, "sleep", waits.append)
    with pytest.raises(DownloadError, match="after 12 attempt"):
        download(url, tmp_path, TransferSettings(retries=12, backoff_s=1, deadline_s=60))
    assert max(waits) == transfer_module.MAX_BACKOFF_S and sum(waits) < 2047
    monkeypatch.undo()
    started = time.monotonic()  # a huge backoff ends at the deadline, not in 1e9 s
    with pytest.raises(DownloadError, match="UNET3PLUS_DOWNLOAD_DEADLINE"):
        download(url, tmp_path, TransferSettings(retries=3, backoff_s=1e9, deadline_s=0.5))
    assert time.monotonic() - started < 3


# -- bounded in size -------------------------------------------------------------------------------------
def test_an_endless_body_stops_at_the_expected_size(server, tmp_path):
    url = server.serve("/" + NAME, PAYLOAD, plan=["endless"])
    with pytest.raises(DownloadError, match=f"more than the expected {len(PAYLOAD)} bytes"):
        download(url, tmp_path, size=len(PAYLOAD))
    assert folder_names(tmp_path) == []


def test_without_a_known_size_the_documented_maximum_applies(server, tmp_path, monkeypatch):
    monkeypatch.setattr(transfer_module, "MAX_UNKNOWN_SIZE_BYTES", len(PAYLOAD) + 1000)
    url = server.serve("/" + NAME, PAYLOAD, plan=["endless"])
    with pytest.raises(DownloadError, match="the most accepted without a known size"):
        download(url, tmp_path)
    assert folder_names(tmp_path) == []


def test_a_promised_length_over_the_expected_size_is_refused_before_reading(server, tmp_path):
    url = server.serve("/" + NAME, PAYLOAD)
    with pytest.raises(DownloadError, match="more than the expected 1000 bytes"):
        download(url, tmp_path, size=1000)
    assert len(server.requests_for("/" + NAME)) == 1  # not retried


# -- resume ----------------------------------------------------------------------------------------------
def test_a_short_delivery_still_advances_the_resume(server, tmp_path):
    url = server.serve("/" + NAME, PAYLOAD, plan=["reset:100000"])  # less than one 256 KiB read
    assert download(url, tmp_path).read_bytes() == PAYLOAD
    assert server.requests_for("/" + NAME) == [None, "bytes=100000-"]


def test_a_206_for_another_range_is_fetched_whole_not_spliced(server, tmp_path):
    url = server.serve("/" + NAME, PAYLOAD, plan=["truncate:1000000", "range-from:500"])
    assert download(url, tmp_path).read_bytes() == PAYLOAD
    assert server.requests_for("/" + NAME) == [None, "bytes=1000000-", None]


def _download_forever(url: str, cache: str) -> None:
    download(url, Path(cache), TransferSettings(retries=1, read_timeout_s=30, deadline_s=60))


def test_a_killed_download_is_resumed_by_the_next_process(tmp_path):
    with LoopbackServer(chunk_delay_s=0.02) as server:
        url = server.serve("/" + NAME, PAYLOAD)
        child = multiprocessing.get_context("fork").Process(target=_download_forever, args=(url, str(tmp_path)))
        child.start()
        folder = tmp_path / "blobs"
        deadline = time.monotonic() + 20
        while not any(p.stat().st_size > 300_000 for p in folder.glob(".*.partial*")):
            assert time.monotonic() < deadline and child.is_alive()
            time.sleep(0.02)
        os.kill(child.pid, signal.SIGKILL)
        child.join()
        (stale,) = folder.glob(".*.partial*")
        kept = stale.stat().st_size
        assert download(url, tmp_path).read_bytes() == PAYLOAD
        assert server.requests_for("/" + NAME)[-1] == f"bytes={kept}-"  # continued, not restarted
        assert folder_names(tmp_path) == [BLOB]


def test_only_the_largest_stale_temporary_is_kept_and_live_ones_are_left_alone(server, tmp_path):
    url = server.serve("/" + NAME, PAYLOAD)
    folder = tmp_path / "blobs"
    folder.mkdir(parents=True)
    for suffix, size in (("a", 10), ("b", 200_000), ("c", 50)):
        (folder / f".{BLOB}.{suffix}.partial.ckpt").write_bytes(PAYLOAD[:size])
    live = folder / f".{BLOB}.live.partial.ckpt"
    live.write_bytes(b"written by a running process")
    with open(live, "rb") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        assert download(url, tmp_path).read_bytes() == PAYLOAD
        assert folder_names(tmp_path) == [live.name, BLOB]
    assert server.requests_for("/" + NAME) == ["bytes=200000-"]


def test_a_stale_temporary_of_other_bytes_ends_in_one_clean_refetch(server, tmp_path):
    url = server.serve("/" + NAME, PAYLOAD)
    folder = tmp_path / "blobs"
    folder.mkdir(parents=True)
    (folder / f".{BLOB}.old.partial.ckpt").write_bytes(b"x" * 5000)  # an older file's beginning
    assert download(url, tmp_path).read_bytes() == PAYLOAD
    assert server.requests_for("/" + NAME) == ["bytes=5000-", None]
    assert folder_names(tmp_path) == [BLOB]


# -- the cache under concurrent writers -----------------------------------------------------------------
def test_a_file_replaced_while_it_is_hashed_is_never_moved_aside(tmp_path, monkeypatch):
    final = tmp_path / NAME
    final.write_bytes(b"corrupt")
    real_hash = download_module._sha256_of_handle

    def hash_while_another_process_installs(handle):
        result = real_hash(handle)
        replacement = tmp_path / "fresh"
        replacement.write_bytes(PAYLOAD)
        os.replace(replacement, final)  # another process's verified file lands now
        return result

    monkeypatch.setattr(download_module, "_sha256_of_handle", hash_while_another_process_installs)
    assert download_module._verify_or_set_aside(final, PAYLOAD_SHA) == (False, None)
    assert final.read_bytes() == PAYLOAD and not final.with_name(NAME + ".corrupt").exists()


def test_the_returned_path_carries_the_hash_it_was_verified_against(server, tmp_path):
    path = download(server.serve("/" + NAME, PAYLOAD), tmp_path)
    assert path.sha256 == PAYLOAD_SHA and path.parent.sha256 is None


# -- settings, secrets, redirects, DNS -----------------------------------------------------------------
@pytest.mark.parametrize("variable, value", [
    ("UNET3PLUS_DOWNLOAD_TIMEOUT", "0"), ("UNET3PLUS_DOWNLOAD_TIMEOUT", "nan"), ("UNET3PLUS_DOWNLOAD_TIMEOUT", "inf"),
    ("UNET3PLUS_DOWNLOAD_BACKOFF", "inf"), ("UNET3PLUS_DOWNLOAD_BACKOFF", "-1"), ("UNET3PLUS_DOWNLOAD_RETRIES", "1e9"),
    ("UNET3PLUS_DOWNLOAD_DEADLINE", "0"), ("UNET3PLUS_DOWNLOAD_DEADLINE", "nan")])
def test_bad_settings_are_one_line_errors_naming_the_variable(tmp_path, monkeypatch, capsys, variable, value):
    monkeypatch.setenv(variable, value)
    assert main(["download", "--cache-dir", str(tmp_path), "--url", "http://127.0.0.1:9/a.ckpt"]) == 3
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and variable in err, err


def test_credentials_in_a_mirror_url_never_reach_a_message(server, tmp_path, monkeypatch, capsys):
    server.serve("/" + NAME, PAYLOAD, plan=["404"])
    secret_url = server.url("/" + NAME).replace("http://", "http://alice:hunter2@") + "?token=s3cr3t"
    monkeypatch.setenv("UNET3PLUS_CHECKPOINT_URL", secret_url)
    assert redact_url(secret_url) == server.url("/" + NAME).replace("http://", "http://***@") + "?<redacted>"
    assert main(["download", "--cache-dir", str(tmp_path), "--no-progress"]) == 3
    assert main(["info", "--cache-dir", str(tmp_path)]) == 0
    output = "".join(capsys.readouterr())
    assert "HTTP 404" in output and "***@127.0.0.1" in output
    assert "hunter2" not in output and "s3cr3t" not in output and "alice" not in output


def test_redirect_policy_keeps_public_servers_out_of_the_local_network():
    public = "https://93.184.216.34/model.ckpt"  # IP literals: nothing is resolved over the network
    for target in ("https://127.0.0.1/x", "https://169.254.169.254/latest/meta-data", "https://10.1.2.3/x",
                   "https://192.168.0.1/x", "https://[::1]/x", "https://[::ffff:127.0.0.1]/x", "https://localhost/x"):
        with pytest.raises(DownloadError, match="may not redirect to a loopback, link-local or private"):
            check_redirect(public, target)
    check_redirect(public, "https://8.8.8.8/model.ckpt")  # public to public
    check_redirect("http://10.0.0.5/a.ckpt", "http://10.0.0.6/b.ckpt")  # a mirror the user chose in their network


def test_a_name_that_does_not_resolve_fails_at_once_naming_the_flag(tmp_path, monkeypatch):
    lookups = []

    def no_such_host(host, *args, **kwargs):
        lookups.append(host)
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", no_such_host)
    started = time.monotonic()
    with pytest.raises(DownloadError, match=r"cannot resolve the host 'mirror.invalid'.*--checkpoint PATH"):
        download("https://mirror.invalid/model.ckpt", tmp_path, TransferSettings(retries=5, backoff_s=1))
    assert time.monotonic() - started < 1 and lookups == ["mirror.invalid"]
    assert not (tmp_path / "blobs" / (BLOB + ".lock")).exists()


def test_offline_message_says_where_a_bad_file_went(tmp_path, monkeypatch):
    cached = tmp_path / "blobs" / BLOB
    cached.parent.mkdir(parents=True)
    cached.write_bytes(b"not the checkpoint")
    monkeypatch.setenv("UNET3PLUS_OFFLINE", "1")
    with pytest.raises(OfflineError, match=r"was moved to .*blobs/[0-9a-f]{64}\.ckpt\.corrupt"):
        download("http://127.0.0.1:9/" + NAME, tmp_path)
