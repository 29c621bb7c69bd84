"""Verified checkpoint downloads: nothing reaches its final name, or gets loaded, before its SHA-256 matches.

* One pass: the body streams into a unique temporary file in the cache folder while it is hashed; the
  verified file is renamed atomically to its final name.
* Cached files are re-verified before every use; a bad one is deleted and downloaded once more. That check,
  not an fsync, is what protects against a file torn by a power cut, so the download skips the fsync (it
  cost about a quarter of a loopback download of the 19 MB checkpoint, ``benchmarks/bench_download.py``).
* Retries with exponential backoff on connection errors, timeouts and 5xx; a dropped transfer resumes
  with an HTTP Range request (and restarts cleanly when the server ignores Range).
* Several processes at once: a cross-process ``filelock`` serialises the download, and unique temporary
  names keep the result correct even without the lock.
* HTTPS stays HTTPS (redirects to plain http are refused); certificates are always verified.

Configuration (argument > environment > default): cache folder ``cache_dir`` > ``UNET3PLUS_HOME`` >
``$XDG_CACHE_HOME/unet3plus`` > ``~/.cache/unet3plus``; ``UNET3PLUS_OFFLINE=1`` never touches the
network; ``UNET3PLUS_CHECKPOINT_URL`` points the published model at a mirror (still checked against the
published SHA-256); ``UNET3PLUS_DOWNLOAD_RETRIES``, ``UNET3PLUS_DOWNLOAD_BACKOFF`` (seconds),
``UNET3PLUS_DOWNLOAD_TIMEOUT`` (read timeout, seconds) tune the transfer.
"""
from __future__ import annotations

import hashlib
import logging
import os
import queue
import re
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Callable, Optional, Tuple, Union
from urllib.parse import urljoin, urlparse

from .._progress import progress_bar
from ..errors import UserFacingError

HOME_VARIABLE = "UNET3PLUS_HOME"
OFFLINE_VARIABLE = "UNET3PLUS_OFFLINE"
logger = logging.getLogger(__name__)
MIRROR_VARIABLE = "UNET3PLUS_CHECKPOINT_URL"
RETRIES_VARIABLE = "UNET3PLUS_DOWNLOAD_RETRIES"
BACKOFF_VARIABLE = "UNET3PLUS_DOWNLOAD_BACKOFF"
TIMEOUT_VARIABLE = "UNET3PLUS_DOWNLOAD_TIMEOUT"
CHECKPOINT_SUBDIR = "checkpoints"
CHUNK_BYTES = 1 << 20  # reading cached files
STREAM_CHUNK_BYTES = 1 << 18  # network reads: few Python round trips; a dropped connection loses < 256 KiB
CONNECT_TIMEOUT_S = 10.0
MAX_REDIRECTS = 10
_SHA256_PATTERN = re.compile(r"^[0-9a-f]{64}$")
_TRUE = {"1", "true", "yes", "on"}


class DownloadError(UserFacingError):
    """The checkpoint could not be fetched or verified; the message names the URL/path and what to do."""


class ChecksumError(DownloadError):
    """Downloaded bytes do not have the expected SHA-256 (the file was deleted)."""


class OfflineError(DownloadError):
    """``UNET3PLUS_OFFLINE`` is set and no verified file is in the cache."""


class CacheDirError(DownloadError):
    """The cache folder cannot be created or written."""


@dataclass(frozen=True)
class TransferSettings:
    """How hard to try: attempts per download, first backoff (doubles each retry), read timeout."""

    retries: int = 5
    backoff_s: float = 1.0
    read_timeout_s: float = 60.0

    @classmethod
    def from_environment(cls) -> "TransferSettings":
        def number(variable: str, default: float, cast: Callable):
            raw = os.environ.get(variable)
            if raw in (None, ""):
                return default
            try:
                value = cast(raw)
            except ValueError:
                raise DownloadError(f"{variable}={raw!r} is not a number; unset it or give e.g. {default}") from None
            if value < 0:
                raise DownloadError(f"{variable}={raw!r} must not be negative")
            return value

        return cls(number(RETRIES_VARIABLE, cls.retries, int), number(BACKOFF_VARIABLE, cls.backoff_s, float),
                   number(TIMEOUT_VARIABLE, cls.read_timeout_s, float))


def is_offline() -> bool:
    return os.environ.get(OFFLINE_VARIABLE, "").strip().lower() in _TRUE


def resolve_cache_dir(cache_dir: Union[str, "os.PathLike[str]", None] = None) -> Path:
    """The cache folder: argument > ``UNET3PLUS_HOME`` > ``$XDG_CACHE_HOME/unet3plus`` > ``~/.cache/unet3plus``."""
    if cache_dir is not None:
        return Path(cache_dir).expanduser()
    if os.environ.get(HOME_VARIABLE):
        return Path(os.environ[HOME_VARIABLE]).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME") or os.path.join("~", ".cache")
    return Path(xdg).expanduser() / "unet3plus"


def checkpoint_path(filename: str, cache_dir: Union[str, "os.PathLike[str]", None] = None) -> Path:
    """Where a verified checkpoint called ``filename`` lives in the cache."""
    return resolve_cache_dir(cache_dir) / CHECKPOINT_SUBDIR / filename


def sha256_of(path: Union[str, "os.PathLike[str]"]) -> str:
    """SHA-256 of a file, read in chunks (never the whole file in memory)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(CHUNK_BYTES), b""):
            digest.update(chunk)
    return digest.hexdigest()


def download_checkpoint(url: str, sha256: str, *, cache_dir: Union[str, "os.PathLike[str]", None] = None,
                        progress: Optional[bool] = None, filename: Optional[str] = None,
                        settings: Optional[TransferSettings] = None) -> Path:
    """Return the path of a verified copy of ``url`` in the cache, downloading it if needed.

    Args:
        url: http(s) URL of the checkpoint.
        sha256: expected SHA-256 (hex); the file is used only if its bytes match.
        cache_dir: cache folder (default: ``UNET3PLUS_HOME`` or ``~/.cache/unet3plus``); files go in
            ``<cache>/checkpoints/``.
        progress: show a tqdm bar; ``None`` shows one when stderr is a terminal.
        filename: name in the cache (default: the last part of the URL path).
        settings: retries/backoff/timeout (default: from the environment, see the module docstring).
    """
    expected = str(sha256).strip().lower()
    if not _SHA256_PATTERN.match(expected):
        raise DownloadError(f"expected SHA-256 {sha256!r} is not 64 hexadecimal digits; pass the published hash")
    scheme = urlparse(url).scheme.lower()
    if scheme not in ("http", "https"):
        raise DownloadError(f"cannot download {url!r}: only http(s) URLs are supported; "
                            f"pass a local file as a checkpoint path instead")
    name = filename or os.path.basename(urlparse(url).path)
    if not name or name in (".", ".."):
        raise DownloadError(f"cannot tell a file name from {url!r}; pass filename=")
    final = checkpoint_path(name, cache_dir)

    if _verified_or_removed(final, expected):
        return final
    if is_offline():
        raise OfflineError(
            f"{OFFLINE_VARIABLE} is set and the verified checkpoint {final} is not in the cache; download it "
            f"elsewhere from {url} (SHA-256 {expected}) and place it at {final}, unset {OFFLINE_VARIABLE}, "
            f"or pass a local checkpoint path")
    folder = _writable_folder(final.parent)
    import filelock
    import requests

    try:
        with filelock.FileLock(str(final) + ".lock"):
            if _verified_or_removed(final, expected):  # another process finished while we waited
                return final
            _Transfer(url, expected, folder, name, progress, settings or TransferSettings.from_environment()).run(final)
    except requests.RequestException as error:  # bad URL, too many redirects, ...: not retryable
        raise DownloadError(f"cannot download {url}: {error}; check the URL or pass a local checkpoint") from error
    except OSError as error:
        raise CacheDirError(f"cannot write the checkpoint into {folder} ({error}); point {HOME_VARIABLE} "
                            f"or cache_dir= at a writable folder") from error
    return final


def _verified_or_removed(path: Path, expected: str) -> bool:
    """True if ``path`` holds the expected bytes; a mismatching file is deleted (it will be fetched again)."""
    if not path.is_file():
        return False
    actual = sha256_of(path)
    if actual == expected:
        return True
    logger.warning("cached checkpoint %s has SHA-256 %s, expected %s; deleting it", path, actual, expected)
    try:
        path.unlink()
    except FileNotFoundError:
        pass  # another process removed it first
    except OSError as error:
        raise CacheDirError(f"cached checkpoint {path} is corrupt (SHA-256 {actual}, expected {expected}) and "
                            f"cannot be deleted ({error}); delete {path} by hand") from error
    return False


def _writable_folder(folder: Path) -> Path:
    try:
        folder.mkdir(parents=True, exist_ok=True)
        handle, probe = tempfile.mkstemp(prefix=".write-test.", dir=folder)
        os.close(handle)
        os.unlink(probe)
    except OSError as error:
        raise CacheDirError(
            f"cache folder {folder} is not writable ({error.strerror or error}); set {HOME_VARIABLE} or pass "
            f"cache_dir= to a writable folder, or set {OFFLINE_VARIABLE}=1 and pass a local checkpoint") from error
    return folder


class _RetryableError(Exception):
    """A failure worth another attempt (connection, timeout, 5xx, short body)."""


class _Transfer:
    """One download into a unique temporary file, resuming across retries, hashing as the bytes arrive."""

    def __init__(self, url: str, expected: str, folder: Path, name: str, progress: Optional[bool],
                 settings: TransferSettings) -> None:
        self.url, self.expected, self.folder, self.name = url, expected, folder, name
        self.show_progress = sys.stderr.isatty() if progress is None else bool(progress)
        self.settings = settings
        self.received = 0
        self.digest = hashlib.sha256()
        self.resumed = False

    def run(self, final: Path) -> None:
        handle, temp_name = tempfile.mkstemp(prefix=f".{self.name}.", suffix=".partial", dir=self.folder)
        temp = Path(temp_name)
        try:
            with os.fdopen(handle, "wb") as out:
                self._download_verified(out)
            os.replace(temp, final)
        finally:
            if temp.exists():
                temp.unlink()

    def _download_verified(self, out: IO[bytes]) -> None:
        self._fetch(out)
        actual = self.digest.hexdigest()
        if actual != self.expected and self.resumed:  # a resumed file may mix two versions: one clean retry
            self._restart(out)
            self._fetch(out)
            actual = self.digest.hexdigest()
        if actual != self.expected:
            raise ChecksumError(
                f"checkpoint downloaded from {self.url} has SHA-256 {actual}, expected {self.expected} "
                f"({self.received} bytes); it was deleted. The server or mirror ({MIRROR_VARIABLE}) serves "
                f"other bytes: check the URL, or pass a verified local checkpoint")

    def _restart(self, out: IO[bytes]) -> None:
        out.seek(0)
        out.truncate()
        self.received = 0
        self.digest = hashlib.sha256()

    def _fetch(self, out: IO[bytes]) -> None:
        import requests

        attempts = max(1, self.settings.retries)
        for attempt in range(1, attempts + 1):
            try:
                self._attempt(out)
                return
            except requests.exceptions.SSLError as error:  # retrying will not fix a certificate
                raise DownloadError(
                    f"TLS verification failed for {self.url} ({error}); certificates are always checked: fix the "
                    f"system CA bundle (or REQUESTS_CA_BUNDLE), use a trusted mirror ({MIRROR_VARIABLE}), or pass "
                    f"a local checkpoint") from error
            except (_RetryableError, requests.ConnectionError, requests.Timeout,
                    requests.exceptions.ChunkedEncodingError) as error:
                if attempt == attempts:
                    raise DownloadError(
                        f"could not download {self.url} after {attempts} attempt(s): {error}. Check the network "
                        f"or proxy, set {MIRROR_VARIABLE} to a reachable mirror, or set {OFFLINE_VARIABLE}=1 "
                        f"and pass a local checkpoint") from error
                time.sleep(self.settings.backoff_s * 2 ** (attempt - 1))

    def _attempt(self, out: IO[bytes]) -> None:
        headers = {"Accept-Encoding": "identity"}  # hash the bytes as stored, not a re-encoded stream
        if self.received:
            headers["Range"] = f"bytes={self.received}-"
        with _open(self.url, headers, (CONNECT_TIMEOUT_S, self.settings.read_timeout_s)) as response:
            if response.status_code >= 500:
                raise _RetryableError(f"server answered HTTP {response.status_code}")
            if response.status_code == 416 and self.received:  # our range is past the end: start over
                self._restart(out)
                raise _RetryableError("server rejected the resume range (HTTP 416)")
            if response.status_code not in (200, 206):
                raise DownloadError(
                    f"downloading {self.url} failed: HTTP {response.status_code} {response.reason}. Check the URL "
                    f"({MIRROR_VARIABLE} if you set a mirror), or pass a local checkpoint path")
            if response.status_code == 206 and _range_start(response) == self.received:
                self.resumed = self.resumed or self.received > 0
            elif self.received:  # server ignored Range (200) or answered another range: restart cleanly
                self._restart(out)
            length = response.headers.get("Content-Length")
            expected_end = self.received + int(length) if length and length.isdigit() else None
            self._stream(response, out, expected_end)
            if expected_end is not None and self.received < expected_end:
                raise _RetryableError(f"connection closed after {self.received} of {expected_end} bytes")

    def _stream(self, response, out: IO[bytes], expected_end: Optional[int]) -> None:
        """Write each chunk as it arrives while a helper thread hashes the same chunks.

        Socket reads, file writes and hashlib all release the GIL, so hashing overlaps the transfer
        instead of following it (about 20% faster from a local server); the bounded queue keeps at
        most a few chunks in memory.
        """
        bar = progress_bar(expected_end, self.name, enabled=self.show_progress, unit="B", initial=self.received,
                           unit_scale=True, unit_divisor=1024)
        hasher = _HashingThread(self.digest)
        try:
            for chunk in response.iter_content(chunk_size=STREAM_CHUNK_BYTES):
                out.write(chunk)
                hasher.feed(chunk)
                self.received += len(chunk)
                if bar is not None:
                    bar.update(len(chunk))
        finally:
            hasher.finish()  # from here on the digest covers exactly the bytes written
            out.flush()
            if bar is not None:
                bar.close()


class _HashingThread:
    """Feed chunks, in order, to a hash object on a background thread."""

    _DONE = object()

    def __init__(self, digest) -> None:
        self._digest = digest
        self._chunks: "queue.Queue" = queue.Queue(maxsize=8)
        self._thread = threading.Thread(target=self._run, name="unet3plus-sha256", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        for chunk in iter(self._chunks.get, self._DONE):
            self._digest.update(chunk)

    def feed(self, chunk: bytes) -> None:
        self._chunks.put(chunk)

    def finish(self) -> None:
        self._chunks.put(self._DONE)
        self._thread.join()


def _range_start(response) -> Optional[int]:
    match = re.match(r"bytes (\d+)-", response.headers.get("Content-Range", ""))
    return int(match.group(1)) if match else None


def _open(url: str, headers: dict, timeout: Tuple[float, float]):
    """GET ``url`` streaming, following redirects by hand so that https never turns into plain http."""
    import requests

    for _ in range(MAX_REDIRECTS + 1):
        response = requests.get(url, headers=headers, timeout=timeout, stream=True, allow_redirects=False)
        if not response.is_redirect:
            return response
        target = urljoin(url, response.headers["Location"])
        response.close()
        check_redirect(url, target)
        url = target
    raise DownloadError(f"too many redirects from {url}; check the URL")


def check_redirect(source: str, target: str) -> None:
    """Refuse a redirect that would downgrade TLS (https -> http) or leave http(s)."""
    source_scheme, target_scheme = urlparse(source).scheme.lower(), urlparse(target).scheme.lower()
    if target_scheme not in ("http", "https") or (source_scheme == "https" and target_scheme != "https"):
        raise DownloadError(f"refusing the redirect from {source} to {target}: it would leave HTTPS; "
                            f"use an https mirror ({MIRROR_VARIABLE}) or a local checkpoint")


def pretrained_checkpoint(config, *, cache_dir: Union[str, "os.PathLike[str]", None] = None,
                          progress: Optional[bool] = None, url: Optional[str] = None) -> Path:
    """Verified local path of a published model's checkpoint (``UNET3PLUS_CHECKPOINT_URL`` overrides the URL).

    ``config``: a name from ``list_models()`` (e.g. ``"unet3plus_lits2017"``) or its ``PretrainedConfig``.
    """
    if isinstance(config, str):
        from .registry import get_pretrained_config

        config = get_pretrained_config(config)
    source = url or os.environ.get(MIRROR_VARIABLE) or config.url
    return download_checkpoint(source, config.sha256, cache_dir=cache_dir, progress=progress,
                               filename=config.filename)
