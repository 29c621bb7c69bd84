"""Write files so that a crash never leaves a half-written file under its final name.

Temporary files are named ``.<final name>.<random>.partial<extension>`` beside their final file, and the
process writing one holds an exclusive ``flock`` on it until it is renamed into place. So "stale" has one
meaning everywhere: a temporary whose lock nobody holds belongs to a process that died. Such files are
removed by ``remove_stale_partials`` (or, for downloads, resumed through ``claim_stale_partial``), and a
live writer's temporary is never touched.

Staging folders (``staging_folder``: intermediate files such as a temporary export) follow the same rule:
named ``.<prefix>-<pid>-<random>`` and locked by their process; one whose lock nobody holds is removed by
the next process using that prefix, unless its pid is still alive and it is less than an hour old (the
moment between creating a folder and locking it). Cache ``.lock`` files of ``filelock`` are handled by
``remove_stale_lock_files``.
"""
from __future__ import annotations

import contextlib
import os
import re
import shutil
import tempfile
import time
from pathlib import Path
from typing import Iterator, List, Optional, Union

try:
    import fcntl
except ImportError:  # Windows: no flock, so no temporary can be proven stale; none are removed
    fcntl = None

PathLike = Union[str, "os.PathLike[str]"]
PARTIAL_MARK = ".partial"
STAGING_MAX_AGE_S = 3600.0  # an unlocked staging folder this old is stale even if its pid was reused
LOCK_FILE_MAX_AGE_S = 86400.0  # an unheld cache .lock file untouched this long is removed


def _current_umask() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return umask


def _extension(final: Path) -> str:
    # Keep the final extension(s): writers such as mindspore.save_checkpoint or nibabel go by it.
    return "".join(final.suffixes[-2:]) if final.suffix == ".gz" else final.suffix


def is_partial(path: PathLike) -> bool:
    """True for a temporary file of ``atomic_path`` / the downloader (``.<name>.<random>.partial<ext>``)."""
    name = Path(path).name
    return name.startswith(".") and PARTIAL_MARK in name


def create_partial(final_path: PathLike) -> "LockedFile":
    """A new, empty, locked temporary file beside ``final_path`` (same folder, so a rename is atomic)."""
    final = Path(final_path)
    handle, name = tempfile.mkstemp(prefix=f".{final.name}.", suffix=f"{PARTIAL_MARK}{_extension(final)}",
                                    dir=final.parent)
    if fcntl is not None:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)  # a brand-new file: nobody else can hold it
    return LockedFile(Path(name), handle)


class LockedFile:
    """A temporary file and the descriptor that holds its lock (closing it releases the lock)."""

    def __init__(self, path: Path, handle: int) -> None:
        self.path, self.handle = path, handle

    def close(self) -> None:
        if self.handle >= 0:
            os.close(self.handle)
            self.handle = -1

    def discard(self) -> None:
        """Delete the file (while still holding its lock), then release the lock."""
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()
        self.close()


def install(temporary: PathLike, final_path: PathLike, *, durable: bool = True) -> None:
    """Give a finished temporary file ordinary permissions and rename it to ``final_path`` atomically.

    ``durable`` fsyncs first (a power cut cannot leave a torn file under the final name); callers that
    re-verify the file on every use (the downloader) may skip it.
    """
    if durable:
        with open(temporary, "rb+") as written:
            os.fsync(written.fileno())
    # mkstemp creates 0600 and some writers (mindspore.save_checkpoint, export) leave files read-only:
    # give the result the permissions an ordinary new file would get under the current umask.
    os.chmod(temporary, 0o666 & ~_current_umask())
    os.replace(temporary, final_path)


@contextlib.contextmanager
def atomic_path(final_path: PathLike, *, overwrite: bool = True) -> Iterator[Path]:
    """Yield a unique temporary path beside ``final_path``; on success rename it into place atomically.

    The temporary file keeps the final extension and sits in the same folder (same file system, so ``os.replace`` is atomic) and is
    removed if the block raises. With ``overwrite=False`` an existing final file is an error. Its lock is held
    for the whole block, so ``remove_stale_partials`` never removes it while it is being written.
    """
    final = Path(final_path)
    final.parent.mkdir(parents=True, exist_ok=True)
    if not overwrite and final.exists():
        raise FileExistsError(f"{final} already exists; remove it or allow overwriting")
    temporary = create_partial(final)
    try:
        yield temporary.path
        install(temporary.path, final)
    finally:
        temporary.discard()  # after a successful install the name is gone already


def _lock_if_stale(path: Path) -> Optional[LockedFile]:
    """Lock ``path`` if no live process holds it (the writer died); None if it is in use or gone."""
    if fcntl is None:
        return None
    try:
        handle = os.open(path, os.O_RDONLY)  # flock works on any descriptor
    except OSError:
        return None
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        # The writer may have renamed it into place (or deleted it) between our open and our lock:
        # only the file still under this temporary name is stale.
        if os.stat(path).st_ino == os.fstat(handle).st_ino:
            return LockedFile(path, handle)
    except OSError:
        pass
    os.close(handle)
    return None


def _stale_partials(folder: Path, final_name: Optional[str] = None) -> List[LockedFile]:
    prefix = f".{final_name}." if final_name else "."
    try:
        candidates = [path for path in folder.iterdir() if path.name.startswith(prefix) and is_partial(path)]
    except OSError:
        return []
    return [locked for locked in map(_lock_if_stale, sorted(candidates)) if locked is not None]


def remove_stale_partials(folder: PathLike) -> List[Path]:
    """Delete the temporary files that dead processes left in ``folder``; return what was removed."""
    removed = []
    for stale in _stale_partials(Path(folder)):
        try:
            stale.discard()
            removed.append(stale.path)
        except OSError:
            stale.close()
    return removed


def claim_stale_partial(final_path: PathLike) -> Optional[LockedFile]:
    """The largest temporary of ``final_path`` that a dead process left behind, locked for the caller to
    continue (a resumed download); the other stale temporaries of the same file are deleted."""
    final = Path(final_path)
    stale = _stale_partials(final.parent, final.name)
    if not stale:
        return None
    stale.sort(key=lambda locked: os.fstat(locked.handle).st_size, reverse=True)
    for extra in stale[1:]:
        with contextlib.suppress(OSError):
            extra.discard()
    return stale[0]


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # PermissionError: it exists, owned by someone else
        return True
    return True


def _age_s(path: Path) -> float:
    return time.time() - path.stat().st_mtime


def remove_stale_staging(parent: PathLike, prefix: str) -> List[Path]:
    """Delete the ``.<prefix>-*`` staging folders that dead processes left in ``parent``; return them."""
    pattern = re.compile(rf"^\.{re.escape(prefix)}-(?:(\d+)-)?")
    removed = []
    try:
        candidates = sorted(path for path in Path(parent).iterdir() if pattern.match(path.name) and path.is_dir())
    except OSError:
        return []
    for path in candidates:
        locked = _lock_if_stale(path)  # held by its live process: never touched
        if locked is None:
            continue
        try:
            pid = pattern.match(path.name).group(1)
            if pid is None or not _pid_alive(int(pid)) or _age_s(path) > STAGING_MAX_AGE_S:
                shutil.rmtree(path)
                removed.append(path)
        except OSError:
            pass
        finally:
            locked.close()
    return removed


@contextlib.contextmanager
def staging_folder(parent: PathLike, prefix: str) -> Iterator[Path]:
    """A new private folder in ``parent`` (``.<prefix>-<pid>-<random>``), locked while the block runs and
    removed after it; the staging folders of dead runs with the same prefix are removed first."""
    remove_stale_staging(parent, prefix)
    folder = Path(tempfile.mkdtemp(prefix=f".{prefix}-{os.getpid()}-", dir=parent))
    locked = LockedFile(folder, os.open(folder, os.O_RDONLY) if fcntl is not None else -1)  # no flock on Windows
    try:
        if fcntl is not None:
            fcntl.flock(locked.handle, fcntl.LOCK_EX | fcntl.LOCK_NB)  # a brand-new folder: nobody else holds it
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)
        locked.close()


@contextlib.contextmanager
def file_lock(path: PathLike, timeout: float = -1) -> Iterator[None]:
    """``filelock.FileLock(path)`` (``filelock.Timeout`` after ``timeout`` s), its mtime refreshed on every
    acquisition so that ``remove_stale_lock_files`` can tell a lock file nobody has used for a day."""
    import filelock

    with filelock.FileLock(str(path), timeout=timeout):
        with contextlib.suppress(OSError):
            os.utime(path)
        yield


def remove_stale_lock_files(folder: PathLike, max_age_s: float = LOCK_FILE_MAX_AGE_S) -> List[Path]:
    """Delete the ``file_lock`` files in ``folder`` that nobody holds and nobody acquired for ``max_age_s``.

    Deleting one right after release would let a waiter and a newcomer lock different inodes under the same
    name; a day-old unheld one is only an empty leftover. (Even that rare race costs duplicate work, not
    correctness: what the locks guard is written through locked temporaries and atomic renames.)"""
    removed = []
    try:
        candidates = sorted(path for path in Path(folder).iterdir() if path.name.endswith(".lock") and path.is_file())
    except OSError:
        return []
    for path in candidates:
        with contextlib.suppress(OSError):
            if _age_s(path) <= max_age_s:
                continue
            locked = _lock_if_stale(path)
            if locked is not None:
                locked.discard()
                removed.append(path)
    return removed
