"""download_checkpoint fault matrix against a real HTTP server on 127.0.0.1.

Every case ends in a verified file or a clear error, and never leaves an unverified file under the final
name (nor a temporary file behind).
"""
from __future__ import annotations

import contextlib
import hashlib
import multiprocessing
import os
import shutil
import tempfile
from pathlib import Path

import pytest

from loopback_server import LoopbackServer
from unet3plus.hub import (LITS2017, CacheDirError, ChecksumError, DownloadError, OfflineError, PretrainedConfig,
                           TransferSettings, download_checkpoint, pretrained_checkpoint, resolve_cache_dir)
from unet3plus.hub.download import check_redirect, checkpoint_path

pytestmark = pytest.mark.usefixtures("clean_download_environment")

FAST = TransferSettings(retries=3, backoff_s=0.01, read_timeout_s=0.5)
PAYLOAD = os.urandom(3 * (1 << 20) + 123)  # a few MB of checkpoint-like bytes
PAYLOAD_SHA = hashlib.sha256(PAYLOAD).hexdigest()
NAME = "model.ckpt"


def download(server_or_url, cache: Path, sha256: str = PAYLOAD_SHA, **kwargs) -> Path:
    url = server_or_url if isinstance(server_or_url, str) else server_or_url.url("/" + NAME)
    return download_checkpoint(url, sha256, cache_dir=cache, progress=False, settings=FAST, **kwargs)


def blob(cache: Path, sha256: str = PAYLOAD_SHA, name: str = NAME) -> Path:
    """Where the verified file lives in the content-addressed cache (blobs/<sha256>.ckpt)."""
    return checkpoint_path(sha256, name, cache)


def leftovers(cache: Path) -> list:
    """Files in the cache's blobs/ other than verified checkpoints and lock files."""
    folder = blob(cache).parent
    if not folder.exists():
        return []
    return sorted(p.name for p in folder.iterdir() if p != blob(cache) and not p.name.endswith(".lock"))


def assert_verified(path: Path, cache: Path) -> None:
    assert path == blob(cache)
    assert path.read_bytes() == PAYLOAD
    assert leftovers(cache) == []


def assert_nothing_final(cache: Path) -> None:
    assert not blob(cache).exists()
    assert leftovers(cache) == []


def test_download_verifies_and_caches(server, tmp_path):
    server.serve("/" + NAME, PAYLOAD)
    path = download(server, tmp_path)
    assert_verified(path, tmp_path)
    assert download(server, tmp_path) == path  # cached: re-verified, not fetched again
    assert server.requests_for("/" + NAME) == [None]


def test_truncated_body_resumes_with_range(server, tmp_path):
    server.serve("/" + NAME, PAYLOAD, plan=["truncate:1000000"])
    assert_verified(download(server, tmp_path), tmp_path)
    first, second = server.requests_for("/" + NAME)
    assert first is None and 0 < int(second[len("bytes="):-1]) <= 1000000  # resumed where the bytes stopped


def test_always_truncated_body_is_a_clear_error(server, tmp_path):
    server.serve("/" + NAME, PAYLOAD, plan=["truncate:1000"] * 10, support_range=False)
    with pytest.raises(DownloadError, match=r"after 3 attempt\(s\).*UNET3PLUS_OFFLINE") as caught:
        download(server, tmp_path)
    assert server.url("/" + NAME) in str(caught.value)
    assert_nothing_final(tmp_path)


def test_wrong_bytes_fail_the_hash_and_are_deleted(server, tmp_path):
    server.serve("/" + NAME, PAYLOAD, plan=["wrong"])
    with pytest.raises(ChecksumError) as caught:
        download(server, tmp_path)
    message = str(caught.value)
    wrong = PAYLOAD[:-1] + bytes([PAYLOAD[-1] ^ 0xFF])
    assert PAYLOAD_SHA in message and hashlib.sha256(wrong).hexdigest() in message
    assert server.url("/" + NAME) in message and "deleted" in message
    assert_nothing_final(tmp_path)


def test_resumed_file_with_wrong_bytes_is_fetched_once_more_from_scratch(server, tmp_path):
    server.serve("/" + NAME, PAYLOAD, plan=["truncate:1000000", "wrong"])  # the resumed tail is corrupt
    assert_verified(download(server, tmp_path), tmp_path)
    ranges = server.requests_for("/" + NAME)
    assert len(ranges) == 3 and ranges[0] is None and ranges[1] is not None and ranges[2] is None


def test_server_errors_twice_then_success(server, tmp_path):
    server.serve("/" + NAME, PAYLOAD, plan=["500", "500"])
    assert_verified(download(server, tmp_path), tmp_path)
    assert len(server.requests_for("/" + NAME)) == 3


def test_persistent_server_error_gives_up_after_the_retries(server, tmp_path):
    server.serve("/" + NAME, PAYLOAD, plan=["500"] * 10)
    with pytest.raises(DownloadError, match=r"after 3 attempt\(s\): server answered HTTP 500"):
        download(server, tmp_path)
    assert len(server.requests_for("/" + NAME)) == 3
    assert_nothing_final(tmp_path)


def test_connection_reset_mid_body_resumes(server, tmp_path):
    server.serve("/" + NAME, PAYLOAD, plan=["reset:1500000"])
    assert_verified(download(server, tmp_path), tmp_path)
    first, second = server.requests_for("/" + NAME)
    assert first is None and 0 < int(second[len("bytes="):-1]) <= 1500000


def test_server_ignoring_range_restarts_cleanly(server, tmp_path):
    server.serve("/" + NAME, PAYLOAD, plan=["reset:1500000"], support_range=False)
    assert_verified(download(server, tmp_path), tmp_path)  # 200 to a Range request: start over, no splice
    ranges = server.requests_for("/" + NAME)
    assert len(ranges) == 2 and ranges[1] is not None


def test_stall_past_the_read_timeout_retries(server, tmp_path):
    server.serve("/" + NAME, PAYLOAD, plan=["stall:2"])
    assert_verified(download(server, tmp_path), tmp_path)
    assert len(server.requests_for("/" + NAME)) == 2


def test_stall_every_time_is_a_clear_error(server, tmp_path):
    server.serve("/" + NAME, PAYLOAD, plan=["stall:2"] * 3)
    settings = TransferSettings(retries=2, backoff_s=0.01, read_timeout_s=0.3)
    with pytest.raises(DownloadError, match=r"after 2 attempt\(s\)"):
        download_checkpoint(server.url("/" + NAME), PAYLOAD_SHA, cache_dir=tmp_path, progress=False,
                            settings=settings)
    assert_nothing_final(tmp_path)


def test_not_found_fails_at_once_naming_the_url(server, tmp_path):
    server.serve("/" + NAME, PAYLOAD, plan=["404"])
    with pytest.raises(DownloadError, match="HTTP 404") as caught:
        download(server, tmp_path)
    assert server.url("/" + NAME) in str(caught.value)
    assert len(server.requests_for("/" + NAME)) == 1  # a 404 is not retried
    assert_nothing_final(tmp_path)


def test_http_redirect_is_followed_and_https_downgrade_refused(server, tmp_path):
    server.serve("/" + NAME, PAYLOAD)
    server.serve("/moved/" + NAME, b"", plan=["redirect:/" + NAME])
    assert_verified(download(server.url("/moved/" + NAME), tmp_path), tmp_path)
    with pytest.raises(DownloadError, match="would leave HTTPS"):
        check_redirect("https://127.0.0.1/a.ckpt", "http://127.0.0.1/a.ckpt")
    check_redirect("https://127.0.0.1/a.ckpt", "https://localhost/b.ckpt")  # allowed


def _download_in_child(url: str, cache: str, queue) -> None:
    try:
        path = download_checkpoint(url, PAYLOAD_SHA, cache_dir=cache, progress=False, settings=FAST)
        queue.put(("ok", str(path)))
    except Exception as error:  # reported to the parent
        queue.put(("error", repr(error)))


@pytest.mark.parametrize("locked", [True, False], ids=["with-lock", "lock-disabled"])
def test_four_concurrent_processes_end_with_one_verified_file(tmp_path, monkeypatch, locked):
    if not locked:  # unique temporary names alone must keep the result correct
        import filelock

        monkeypatch.setattr(filelock, "FileLock", lambda *args, **kwargs: contextlib.nullcontext())
    with LoopbackServer(chunk_delay_s=0.005) as server:  # slow enough that the processes overlap
        url = server.serve("/" + NAME, PAYLOAD)
        context = multiprocessing.get_context("fork")  # the children need only the download code
        queue = context.Queue()
        workers = [context.Process(target=_download_in_child, args=(url, str(tmp_path), queue)) for _ in range(4)]
        for worker in workers:
            worker.start()
        results = [queue.get(timeout=60) for _ in workers]
        for worker in workers:
            worker.join(timeout=30)
        assert results == [("ok", str(blob(tmp_path)))] * 4
        assert_verified(blob(tmp_path), tmp_path)
        if locked:
            assert server.requests_for("/" + NAME) == [None]  # the lock let one process download
        else:
            assert len(server.requests_for("/" + NAME)) > 1  # they really raced


def test_corrupt_cached_file_is_moved_aside_and_downloaded_again(server, tmp_path, caplog):
    server.serve("/" + NAME, PAYLOAD)
    cached = blob(tmp_path)
    cached.parent.mkdir(parents=True)
    cached.write_bytes(PAYLOAD[:1000])
    path = download(server, tmp_path)
    assert path.read_bytes() == PAYLOAD
    aside = cached.with_name(cached.name + ".corrupt")
    assert aside.read_bytes() == PAYLOAD[:1000] and leftovers(tmp_path) == [aside.name]
    assert f"moved it to {aside}" in caplog.text
    assert len(server.requests_for("/" + NAME)) == 1


def test_cache_folder_under_a_file_is_a_clear_error(server, tmp_path):
    server.serve("/" + NAME, PAYLOAD)
    blocker = tmp_path / "not_a_folder"
    blocker.write_text("a file where the cache folder should go")
    with pytest.raises(CacheDirError, match="not writable.*UNET3PLUS_HOME"):
        download(server, blocker / "cache")  # fails for root too: a file cannot hold a folder
    assert server.requests_for("/" + NAME) == []  # checked before touching the network


def _download_as_unprivileged_user(url: str, cache: str, queue) -> None:
    """Child process: drop root (which ignores permission bits) to 'nobody', then download.

    It enters the cache's parent first and uses a relative path, so the test does not depend on 'nobody'
    being able to traverse the temporary folder's ancestors (a 0700 /tmp, say).
    """
    os.chdir(os.path.dirname(cache))
    cache = os.path.basename(cache)
    if os.geteuid() == 0:
        os.setgid(65534)
        os.setuid(65534)
    _download_in_child(url, cache, queue)


def test_read_only_cache_folder_is_a_clear_error(server):
    server.serve("/" + NAME, PAYLOAD)
    base = Path(tempfile.mkdtemp(prefix="unet3plus-readonly-"))  # outside pytest's 0700 root-only folder
    try:
        cache = base / "cache"
        (cache / "blobs").mkdir(parents=True)
        for folder in (base, cache, cache / "blobs"):
            folder.chmod(0o555)  # readable and searchable by everyone, writable by no one but root
        context = multiprocessing.get_context("fork")
        queue = context.Queue()
        child = context.Process(target=_download_as_unprivileged_user, args=(server.url("/" + NAME), str(cache), queue))
        child.start()
        outcome, message = queue.get(timeout=60)
        child.join(timeout=30)
        assert outcome == "error" and "CacheDirError" in message and "not writable" in message, message
        assert "UNET3PLUS_HOME" in message
        assert list((cache / "blobs").iterdir()) == [] and server.requests_for("/" + NAME) == []
    finally:
        for folder in (base, base / "cache", base / "cache" / "blobs"):
            folder.chmod(0o755)
        shutil.rmtree(base)


def test_offline_uses_a_verified_cache_without_the_network(server, tmp_path, monkeypatch):
    server.serve("/" + NAME, PAYLOAD)
    path = download(server, tmp_path)
    monkeypatch.setenv("UNET3PLUS_OFFLINE", "1")
    assert download(server, tmp_path) == path
    assert len(server.requests_for("/" + NAME)) == 1


def test_offline_without_cache_fails_fast_naming_file_and_place(server, tmp_path, monkeypatch):
    server.serve("/" + NAME, PAYLOAD)
    monkeypatch.setenv("UNET3PLUS_OFFLINE", "1")
    with pytest.raises(OfflineError) as caught:
        download(server, tmp_path)
    message = str(caught.value)
    assert str(blob(tmp_path)) in message and server.url("/" + NAME) in message
    assert PAYLOAD_SHA in message and "local checkpoint" in message
    assert server.requests_for("/" + NAME) == []


def test_offline_with_a_corrupt_cache_moves_it_aside_and_says_where(server, tmp_path, monkeypatch):
    cached = blob(tmp_path)
    cached.parent.mkdir(parents=True)
    cached.write_bytes(b"garbage")
    monkeypatch.setenv("UNET3PLUS_OFFLINE", "1")
    with pytest.raises(OfflineError) as caught:
        download(server.url("/" + NAME), tmp_path)
    aside = cached.with_name(cached.name + ".corrupt")
    assert not cached.exists() and aside.read_bytes() == b"garbage"
    assert f"moved to {aside}" in str(caught.value) and server.requests_for("/" + NAME) == []


def test_cache_folder_precedence(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    assert resolve_cache_dir() == tmp_path / "home" / ".cache" / "unet3plus"
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert resolve_cache_dir() == tmp_path / "xdg" / "unet3plus"
    monkeypatch.setenv("UNET3PLUS_HOME", str(tmp_path / "home_var"))
    assert resolve_cache_dir() == tmp_path / "home_var"
    assert resolve_cache_dir(tmp_path / "argument") == tmp_path / "argument"


def test_mirror_variable_is_checked_against_the_published_hash(server, tmp_path, monkeypatch):
    config = PretrainedConfig(name="test", url=server.url("/published/" + NAME), sha256=PAYLOAD_SHA,
                              filename="published_name.ckpt", size=len(PAYLOAD), in_channels=3, n_classes=1,
                              input_preset="lits2017", license="Apache-2.0")
    server.serve("/mirror/copy.ckpt", PAYLOAD)
    monkeypatch.setenv("UNET3PLUS_CHECKPOINT_URL", server.url("/mirror/copy.ckpt"))
    monkeypatch.setenv("UNET3PLUS_DOWNLOAD_BACKOFF", "0.01")
    path = pretrained_checkpoint(config, cache_dir=tmp_path, progress=False)
    assert path == blob(tmp_path, name="published_name.ckpt") and path.read_bytes() == PAYLOAD
    assert server.requests_for("/published/" + NAME) == []
    # The real published record: a mirror serving other bytes fails its hash.
    with pytest.raises(ChecksumError, match=LITS2017.sha256):
        pretrained_checkpoint(LITS2017, cache_dir=tmp_path, progress=False)
    assert not blob(tmp_path, LITS2017.sha256, LITS2017.filename).exists()


def test_environment_settings_are_read_and_validated(monkeypatch):
    monkeypatch.setenv("UNET3PLUS_DOWNLOAD_RETRIES", "2")
    monkeypatch.setenv("UNET3PLUS_DOWNLOAD_BACKOFF", "0.5")
    monkeypatch.setenv("UNET3PLUS_DOWNLOAD_TIMEOUT", "7")
    assert TransferSettings.from_environment() == TransferSettings(2, 0.5, 7.0)
    monkeypatch.setenv("UNET3PLUS_DOWNLOAD_RETRIES", "many")
    with pytest.raises(DownloadError, match="UNET3PLUS_DOWNLOAD_RETRIES"):
        TransferSettings.from_environment()


def test_bad_arguments_are_clear_errors(tmp_path):
    with pytest.raises(DownloadError, match="64 hexadecimal"):
        download_checkpoint("http://127.0.0.1:9/a.ckpt", "abc", cache_dir=tmp_path)
    with pytest.raises(DownloadError, match="only http"):
        download_checkpoint("ftp://127.0.0.1/a.ckpt", PAYLOAD_SHA, cache_dir=tmp_path)


def test_progress_bar_can_be_forced_on(server, tmp_path, capsys):
    server.serve("/" + NAME, PAYLOAD)
    download_checkpoint(server.url("/" + NAME), PAYLOAD_SHA, cache_dir=tmp_path, progress=True, settings=FAST)
    assert NAME in capsys.readouterr().err
