"""The one fetch path for remote files: verified checkpoint downloads into the content-addressed cache
(``download_checkpoint``) and small files read into memory such as hub cards (``fetch_bytes``), both
through ``transfer.Transfer`` with the same deadline, size cap, redirect policy, retries and redaction.
Nothing reaches its final name, or gets loaded, before its SHA-256 matches.

* One pass: the body streams into a locked temporary file in the cache folder while it is hashed; the
  verified file is renamed atomically to ``blobs/<sha256><ext>`` (``unet3plus._atomic.install``) and the
  source gets a pointer to it (``cache.py`` describes the layout). Files are found by the hash asked for,
  never by name; a file of the old name-keyed layout (``checkpoints/<name>``) with that hash is moved in.
* Cached files are re-verified before every use. A bad one is moved aside to ``<name>.corrupt`` (never
  deleted), and only while holding the cache lock, so no process removes another's fresh file. That check,
  not an fsync, is what protects against a file torn by a power cut, so the download skips the fsync.
* The path returned is a ``VerifiedPath`` carrying the SHA-256: ``load_checkpoint`` hashes the very bytes
  it parses against it, so a file swapped after this check is an error, never silently other weights.
* Retries with capped exponential backoff on connection errors, timeouts and 5xx, all within an overall
  deadline; a dropped transfer resumes with an HTTP Range request (see ``transfer`` for every bound).
* A download killed outright leaves its temporary file; the next process resumes from it (or removes it).
* Several processes at once: a cross-process ``filelock`` serialises the download (waits are bounded by
  the deadline), and per-file locks on the temporaries keep the result correct even without it. Its
  ``.lock`` files stay after use (removing one then is unsafe); those unused for a day are removed.

Configuration (argument > environment > default): cache folder ``cache_dir`` > ``UNET3PLUS_HOME`` >
``$XDG_CACHE_HOME/unet3plus`` > ``~/.cache/unet3plus``; ``UNET3PLUS_OFFLINE=1`` never touches the
network; ``UNET3PLUS_CHECKPOINT_URL`` points the published model at a mirror (still checked against the
published SHA-256); ``UNET3PLUS_DOWNLOAD_RETRIES``, ``UNET3PLUS_DOWNLOAD_BACKOFF`` (seconds),
``UNET3PLUS_DOWNLOAD_TIMEOUT`` (read timeout, seconds) and ``UNET3PLUS_DOWNLOAD_DEADLINE`` (seconds per
download) tune the transfer.
"""
from __future__ import annotations

import contextlib
import io
import logging
import os
import re
import sys
import tempfile
from pathlib import Path
from typing import Iterator, Optional, Tuple, Union
from urllib.parse import urlsplit

from .._atomic import LockedFile, claim_stale_partial, create_partial, file_lock, install, remove_stale_lock_files
from .._progress import progress_bar
from .cache import CORRUPT_SUFFIX, blob_path, legacy_path, record_use, sha256_of
from .cache import sha256_of_handle as _sha256_of_handle  # a module global: tests swap it
from .transfer import (DEADLINE_VARIABLE, MIRROR_VARIABLE, OFFLINE_VARIABLE, ChecksumError, DownloadError, Transfer,
                       TransferSettings, check_redirect, redact_url, resolve)

__all__ = ["CacheDirError", "ChecksumError", "DownloadError", "OfflineError", "TransferSettings", "VerifiedPath",
           "check_redirect", "checkpoint_path", "download_checkpoint", "fetch_bytes", "is_offline",
           "pretrained_checkpoint", "redact_url", "resolve_cache_dir", "sha256_of", "verified_path"]

logger = logging.getLogger(__name__)

HOME_VARIABLE = "UNET3PLUS_HOME"
_SHA256_PATTERN = re.compile(r"^[0-9a-f]{64}$")
_TRUE = {"1", "true", "yes", "on"}
PathLike = Union[str, "os.PathLike[str]"]


class OfflineError(DownloadError):
    """``UNET3PLUS_OFFLINE`` is set and no verified file is in the cache."""


class CacheDirError(DownloadError):
    """The cache folder cannot be created or written."""


class VerifiedPath(type(Path())):
    """A cached file whose bytes had ``sha256`` when it was checked (``load_checkpoint`` re-checks what it reads)."""

    sha256: Optional[str] = None  # paths derived from this one (parent, ...) carry no hash


def verified_path(path: PathLike, sha256: str) -> VerifiedPath:
    """``path`` marked with the SHA-256 its bytes had when checked (readers re-check the bytes they read)."""
    verified = VerifiedPath(path)
    verified.sha256 = sha256
    return verified


def is_offline() -> bool:
    return os.environ.get(OFFLINE_VARIABLE, "").strip().lower() in _TRUE


def resolve_cache_dir(cache_dir: Optional[PathLike] = None) -> Path:
    """The cache folder: argument > ``UNET3PLUS_HOME`` > ``$XDG_CACHE_HOME/unet3plus`` > ``~/.cache/unet3plus``."""
    if cache_dir is not None:
        return Path(cache_dir).expanduser()
    if os.environ.get(HOME_VARIABLE):
        return Path(os.environ[HOME_VARIABLE]).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME") or os.path.join("~", ".cache")
    return Path(xdg).expanduser() / "unet3plus"


def checkpoint_path(sha256: str, filename: str, cache_dir: Optional[PathLike] = None) -> Path:
    """Where the verified file with ``sha256`` (called ``filename`` by its source) lives in the cache."""
    return blob_path(resolve_cache_dir(cache_dir), sha256, filename)


def expected_sha256(sha256: str) -> str:
    """A user-given SHA-256 in canonical form (lower-case hex), or a one-line error."""
    expected = str(sha256).strip().lower()
    if not _SHA256_PATTERN.match(expected):
        raise ChecksumError(f"SHA-256 {sha256!r} is not 64 hexadecimal digits; pass the publisher's hash")
    return expected


def check_local_sha256(path: PathLike, sha256: str) -> Path:
    """``path`` when its bytes have the user-given SHA-256; else one line naming both hashes (the file is kept:
    it is the user's own)."""
    expected, actual = expected_sha256(sha256), sha256_of(path)
    if actual != expected:
        raise ChecksumError(f"{path} has SHA-256 {actual}, not the expected {expected}; check that it is the file "
                            "you meant, or drop --sha256 / sha256=")
    return Path(path)


def download_checkpoint(url: str, sha256: str, *, cache_dir: Optional[PathLike] = None,
                        progress: Optional[bool] = None, filename: Optional[str] = None,
                        settings: Optional[TransferSettings] = None, size: Optional[int] = None,
                        source: Optional[str] = None) -> VerifiedPath:
    """Return the path of a verified copy of ``url`` in the cache, downloading it if needed.

    Args:
        url: http(s) URL of the checkpoint.
        sha256: expected SHA-256 (hex); the file is used only if its bytes match. It is also the cache key:
            a verified file with this hash is used whatever its source (so it works offline).
        cache_dir: cache folder (default: ``UNET3PLUS_HOME`` or ``~/.cache/unet3plus``); files go in
            ``<cache>/blobs/`` (see ``unet3plus.hub.cache``).
        progress: show a tqdm bar; ``None`` shows one when stderr is a terminal.
        filename: the file's name (default: the last part of the URL path): shown by ``unet3plus cache list``,
            and its extension is kept.
        settings: retries/backoff/timeout/deadline (default: from the environment, see the module docstring).
        size: expected size in bytes; a server sending more is stopped (default cap: 1 GiB).
        source: what the cache lists as the file's source (default: the URL, credentials redacted), e.g. a
            registry name, so that a mirror of the published file is the same entry.
    """
    expected = expected_sha256(sha256)
    shown = _check_remote(url, "a checkpoint")
    name = filename or os.path.basename(urlsplit(url).path)
    if not name or name in (".", "..") or "/" in name:
        raise DownloadError(f"cannot tell a file name from {shown!r}; pass filename=")
    settings = settings or TransferSettings.from_environment()
    cache = resolve_cache_dir(cache_dir)
    final = blob_path(cache, expected, name)
    label = source or shown

    found = _cached_copy(final, legacy_path(cache, name), expected, settings)
    if found is not None:
        record_use(cache, final, expected, name, label)
        return found
    if is_offline():
        raise _offline_error(final, expected, shown, settings)
    folder = _writable_folder(final.parent)
    remove_stale_lock_files(folder)  # day-old ones nobody holds
    resolve(url)  # a name that does not resolve fails here, at once, before any lock file is made
    try:
        with _cache_lock(final, settings):
            verified, _ = _verify_or_set_aside(final, expected)
            if not verified:  # else another process finished while we waited
                _download_into_place(url, expected, size, final, settings, progress, name)
    except OSError as error:
        raise CacheDirError(f"cannot write the checkpoint into {folder} ({error}); point {HOME_VARIABLE} "
                            f"or cache_dir= at a writable folder") from error
    record_use(cache, final, expected, name, label)
    return verified_path(final, expected)


def fetch_bytes(url: str, *, max_bytes: int, what: str, settings: Optional[TransferSettings] = None) -> bytes:
    """The bytes at ``url`` (a small file such as a hub card), read into memory through the same transfer as a
    download: its deadline, redirect policy, retries and redaction, and at most ``max_bytes`` (more is one
    line, refused as soon as the server announces it or sends it). Not cached and not checked: the caller
    checks what the bytes say (a card's asset-sha256 is what verifies its weights)."""
    shown = _check_remote(url, what)
    fallback = f"save the {what} and pass its local path"
    if is_offline():
        raise OfflineError(f"{OFFLINE_VARIABLE} is set, so the {what} {shown} cannot be fetched; {fallback}, or "
                           f"unset {OFFLINE_VARIABLE}")
    settings = settings or TransferSettings.from_environment()
    resolve(url)
    buffer = io.BytesIO()
    Transfer(url, None, None, settings, max_bytes=max_bytes, what=what, fallback=fallback).run(buffer)
    return buffer.getvalue()


def _check_remote(url: str, what: str) -> str:
    """The URL as messages show it (``redact_url``); one line unless it is http(s)."""
    shown = redact_url(url)
    if urlsplit(url).scheme.lower() not in ("http", "https"):
        raise DownloadError(f"cannot download {shown!r}: only http(s) URLs are supported; "
                            f"pass {what} as a local file path instead")
    return shown


def _cached_copy(final: Path, legacy: Path, expected: str, settings: TransferSettings) -> Optional[VerifiedPath]:
    """The verified cached file with hash ``expected``: its blob, else a file of the old name-keyed layout
    with that hash, moved into the blob's place (used where it is when the cache is read-only)."""
    if _has_hash(final, expected):
        return verified_path(final, expected)
    if not _has_hash(legacy, expected):
        return None
    try:
        final.parent.mkdir(parents=True, exist_ok=True)
        with _cache_lock(final, settings):
            if not _has_hash(final, expected):
                os.replace(legacy, final)  # same cache folder: an atomic rename of the verified file
        logger.info("moved the verified %s into the content-addressed cache as %s", legacy, final)
        return verified_path(final, expected)
    except OSError:
        return verified_path(legacy, expected)  # a read-only cache: read both layouts


def _has_hash(path: Path, expected: str) -> bool:
    try:
        return sha256_of(path) == expected
    except OSError:
        return False


def _offline_error(final: Path, expected: str, shown_url: str, settings: TransferSettings) -> OfflineError:
    found = f"the verified checkpoint {final} is not in the cache"
    if final.exists():
        try:
            with _cache_lock(final, settings):
                _, aside = _verify_or_set_aside(final, expected)
        except OSError as error:
            raise CacheDirError(f"cached checkpoint {final} has the wrong SHA-256 and cannot be moved aside "
                                f"({error}); delete it by hand") from error
        if aside is not None:
            found = f"the cached {final} had the wrong SHA-256 and was moved to {aside}"
    return OfflineError(
        f"{OFFLINE_VARIABLE} is set and {found}; download it elsewhere from {shown_url} (SHA-256 {expected}) "
        f"and place it at {final}, unset {OFFLINE_VARIABLE}, or pass a local checkpoint path")


@contextlib.contextmanager
def _cache_lock(final: Path, settings: TransferSettings) -> Iterator[None]:
    """The cross-process lock of one cached file; waiting for it is bounded by the download deadline."""
    import filelock

    lock_path = str(final) + ".lock"
    try:
        with file_lock(lock_path, timeout=settings.deadline_s):
            yield
    except filelock.Timeout:
        raise DownloadError(
            f"another process has been downloading {final} for more than {settings.deadline_s:g} s "
            f"({DEADLINE_VARIABLE}) and still holds {lock_path}; let it finish and run again, or raise "
            f"{DEADLINE_VARIABLE}") from None


def _verify_or_set_aside(final: Path, expected: str) -> Tuple[bool, Optional[Path]]:
    """``(verified, moved_to)``: a cached file with the wrong hash goes to ``<name>.corrupt`` (kept for
    inspection, out of the way). Called only under the cache lock, and the file moved is the one that was
    hashed (same inode), so a verified file another process has just put in place is never moved.
    """
    try:
        handle = open(final, "rb")
    except FileNotFoundError:
        return False, None
    with handle:
        actual = _sha256_of_handle(handle)
        if actual == expected:
            return True, None
        try:
            if os.stat(final).st_ino != os.fstat(handle.fileno()).st_ino:
                return False, None  # replaced while we read it: the download will replace it again
        except FileNotFoundError:
            return False, None
        aside = final.with_name(final.name + CORRUPT_SUFFIX)
        try:
            os.replace(final, aside)
        except OSError as error:
            raise CacheDirError(f"cached checkpoint {final} is corrupt (SHA-256 {actual}, expected {expected}) and "
                                f"cannot be moved aside ({error}); delete {final} by hand") from error
    logger.warning("cached checkpoint %s has SHA-256 %s, expected %s; moved it to %s", final, actual, expected, aside)
    return False, aside


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


def _download_into_place(url: str, expected: str, size: Optional[int], final: Path, settings: TransferSettings,
                         progress: Optional[bool], name: str) -> None:
    """Continue a dead process's temporary file if there is one (else start a new one), verify, install.

    A failed download removes its temporary file; only a killed one leaves it, for the next run to resume.
    """
    show = sys.stderr.isatty() if progress is None else bool(progress)
    partial: LockedFile = claim_stale_partial(final) or create_partial(final)
    try:
        with open(partial.path, "r+b") as out:
            Transfer(url, expected, size, settings, _progress_bar(name) if show else None).run(out)
        install(partial.path, final, durable=False)  # re-verified on every use: no fsync needed
    finally:
        partial.discard()  # after install the name is gone already


def _progress_bar(name: str):
    def make(total: Optional[int], initial: int):
        return progress_bar(total, name, enabled=True, unit="B", initial=initial, unit_scale=True, unit_divisor=1024)

    return make


def pretrained_checkpoint(config, *, cache_dir: Optional[PathLike] = None, progress: Optional[bool] = None,
                          url: Optional[str] = None) -> VerifiedPath:
    """Verified local path of a published model's checkpoint (``UNET3PLUS_CHECKPOINT_URL`` overrides the URL);
    the download stops at the registry's size.

    ``config``: a name from ``list_models()`` (e.g. ``"unet3plus_lits2017"``) or its ``PretrainedConfig``.
    """
    if isinstance(config, str):
        from .registry import get_pretrained_config

        config = get_pretrained_config(config)
    source = url or os.environ.get(MIRROR_VARIABLE) or config.url
    return download_checkpoint(source, config.sha256, cache_dir=cache_dir, progress=progress,
                               filename=config.filename, size=config.size or None, source=config.name)
