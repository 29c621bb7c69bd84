"""The download cache, keyed by content (as huggingface_hub keeps one): what is stored where, and its upkeep.

Layout under the cache folder (``resolve_cache_dir``: ``UNET3PLUS_HOME`` or ``~/.cache/unet3plus``)::

    blobs/<sha256><ext>   verified files, each stored once under its SHA-256; <ext> is the asset's own
                          (``.ckpt``), because MindSpore's readers go by it
    refs/<key>.json       one pointer per source (registry name or URL, credentials redacted) and content:
                          {"sha256", "name", "source", "size"}; its modification time is the last use
    checkpoints/<name>    the name-keyed layout of earlier versions: a file there with the hash asked for
                          is moved into ``blobs/`` on first use (read in place if the cache is read-only)
    onnx/                 ONNX exports (``unet3plus.runtime.onnx_cache``)

A file is looked up by the SHA-256 asked for, never by its name, so two publishers' ``liver1.ckpt``
coexist and both work offline. Nothing reaches ``blobs/`` before its hash matched (``download.py``).
Pointers only describe (for ``unet3plus cache list`` and ``clean``); removing one never breaks a lookup.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Dict, Iterable, List, Optional, Sequence, TypeVar, Union

from .._atomic import atomic_path, is_partial

BLOB_SUBDIR = "blobs"
REF_SUBDIR = "refs"
LEGACY_SUBDIR = "checkpoints"
CORRUPT_SUFFIX = ".corrupt"
POINTER_FORMAT = 1
CHUNK_BYTES = 1 << 20  # reading cached files
_EXTENSION = re.compile(r"^\.[A-Za-z0-9]{1,16}$")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


def sha256_of(path: Union[str, "os.PathLike[str]"]) -> str:
    """SHA-256 of a file, read in chunks (never the whole file in memory)."""
    with open(path, "rb") as handle:
        return sha256_of_handle(handle)


def sha256_of_handle(handle: IO[bytes]) -> str:
    """SHA-256 of what is left to read from an open file."""
    digest = hashlib.sha256()
    for chunk in iter(lambda: handle.read(CHUNK_BYTES), b""):
        digest.update(chunk)
    return digest.hexdigest()


def blob_path(cache: Path, sha256: str, name: str) -> Path:
    """Where the verified file with ``sha256`` lives; ``name`` (the asset's file name) only gives the extension."""
    extension = os.path.splitext(name)[1]
    return cache / BLOB_SUBDIR / (sha256 + (extension if _EXTENSION.match(extension) else ""))


def legacy_path(cache: Path, name: str) -> Path:
    """Where the name-keyed layout of earlier versions kept a file called ``name``."""
    return cache / LEGACY_SUBDIR / name


def pointer_path(cache: Path, source: str, sha256: str) -> Path:
    """The pointer of one source and content (``source`` already redacted: no credential reaches the disk)."""
    key = hashlib.sha256(f"{source}\n{sha256}".encode()).hexdigest()[:32]
    return cache / REF_SUBDIR / f"{key}.json"


def record_use(cache: Path, blob: Path, sha256: str, name: str, source: str) -> None:
    """Write the pointer of ``source`` to ``blob`` (or mark its last use): best effort, a read-only cache
    still serves its verified files."""
    pointer = pointer_path(cache, source, sha256)
    with contextlib.suppress(OSError):
        if pointer.is_file():
            os.utime(pointer)
            return
        record = {"format": POINTER_FORMAT, "sha256": sha256, "name": name, "source": source,
                  "blob": blob.name, "size": blob.stat().st_size}
        with atomic_path(pointer) as temporary:
            temporary.write_text(json.dumps(record, indent=1, sort_keys=True))


@dataclass(frozen=True)
class CacheEntry:
    """One thing ``unet3plus cache list`` shows: a source's pointer and its blob, a blob no pointer names,
    a file of the old name-keyed layout, or a file set aside for its wrong hash."""

    name: str
    source: str
    path: Path  # the file holding the bytes
    size: int  # bytes on disk now (0 when the file is missing)
    last_used: float  # seconds since the epoch
    sha256: Optional[str] = None  # what the bytes must hash to (None: not known)
    expected_size: Optional[int] = None
    pointer: Optional[Path] = None

    def state(self, full: bool = False) -> str:
        """``ok ...`` or what is wrong (a problem starts with a word in capitals: MISSING, CORRUPT); ``full``
        hashes the file, else only its size is compared (cheap)."""
        if not self.path.is_file():
            return "MISSING"
        if self.sha256 is None:
            return "unverified (old layout: moved to blobs/ on next use)" if self.path.parent.name == LEGACY_SUBDIR \
                else "CORRUPT (set aside)"
        if self.expected_size is not None and self.size != self.expected_size:
            return f"CORRUPT (size {self.size}, expected {self.expected_size})"
        if not full:
            return "ok (size)" if self.expected_size is not None else "present (verify hashes it)"
        return "ok (SHA-256)" if sha256_of(self.path) == self.sha256 else "CORRUPT (SHA-256 differs)"


def _stat(path: Path) -> os.stat_result:
    try:
        return path.stat()
    except OSError:
        return os.stat_result((0,) * 10)


def cache_entries(cache: Path) -> List[CacheEntry]:
    """Every entry of the download cache, most recently used first."""
    entries: List[CacheEntry] = []
    named = set()
    for pointer in sorted((cache / REF_SUBDIR).glob("*.json")):
        try:
            record = json.loads(pointer.read_text())
            sha256, blob = str(record["sha256"]), cache / BLOB_SUBDIR / str(record["blob"])
        except (OSError, ValueError, KeyError, TypeError):
            continue  # a damaged pointer names nothing: its blob shows as one without a pointer
        if not _SHA256.match(sha256) or blob.parent != cache / BLOB_SUBDIR:
            continue
        named.add(blob.name)
        entries.append(CacheEntry(str(record.get("name", blob.name)), str(record.get("source", "?")), blob,
                                  _stat(blob).st_size, pointer.stat().st_mtime, sha256, record.get("size"), pointer))
    for blob in _files(cache / BLOB_SUBDIR):
        if blob.name in named:
            continue
        sha256 = blob.name.split(".", 1)[0]
        aside = blob.name.endswith(CORRUPT_SUFFIX) or not _SHA256.match(sha256)
        entries.append(CacheEntry(blob.name, "(set aside: wrong SHA-256)" if aside else "(no pointer)", blob,
                                  blob.stat().st_size, blob.stat().st_mtime, None if aside else sha256))
    for old in _files(cache / LEGACY_SUBDIR):
        entries.append(CacheEntry(old.name, "(name-keyed layout of an earlier version)", old, old.stat().st_size,
                                  old.stat().st_mtime))
    return sorted(entries, key=lambda entry: -entry.last_used)


def _files(folder: Path) -> Iterable[Path]:
    """The cached files of ``folder``: no lock files, no temporaries of live or dead writers."""
    try:
        children = sorted(folder.iterdir())
    except OSError:
        return []
    return [path for path in children if path.is_file() and not path.name.endswith(".lock") and not is_partial(path)]


@dataclass(frozen=True)
class CachedFile:
    """One file on disk and every entry that uses it: the unit ``clean`` removes."""

    path: Path
    size: int
    last_used: float
    entries: Sequence[CacheEntry]

    def remove(self) -> None:
        for entry in self.entries:
            if entry.pointer is not None:
                entry.pointer.unlink(missing_ok=True)
        self.path.unlink(missing_ok=True)


def cached_files(entries: Sequence[CacheEntry]) -> List[CachedFile]:
    """Entries grouped by the file holding their bytes; a file's last use is its latest entry's."""
    groups: Dict[Path, List[CacheEntry]] = {}
    for entry in entries:
        groups.setdefault(entry.path, []).append(entry)
    return [CachedFile(path, max(entry.size for entry in group), max(entry.last_used for entry in group), group)
            for path, group in groups.items()]


Item = TypeVar("Item")


def to_remove(items: Sequence[Item], *, older_than_s: Optional[float] = None, max_bytes: Optional[float] = None,
              keep: Iterable[Path] = (), now: Optional[float] = None) -> List[Item]:
    """The items (each with ``path``, ``size``, ``last_used``) to remove, least recently used first: those unused
    for more than ``older_than_s``, then more until the rest fit in ``max_bytes``; never one whose path is in
    ``keep``. The one eviction rule of both caches (downloads here, ONNX exports in runtime.onnx_cache)."""
    now = time.time() if now is None else now
    keep = set(keep)
    candidates = sorted((item for item in items if item.path not in keep), key=lambda item: item.last_used)
    chosen = [item for item in candidates if older_than_s is not None and now - item.last_used > older_than_s]
    if max_bytes is not None:
        left = sum(item.size for item in items) - sum(item.size for item in chosen)
        for item in candidates:
            if left <= max_bytes:
                break
            if item not in chosen:
                chosen.append(item)
                left -= item.size
    return chosen
