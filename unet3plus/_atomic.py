"""Write files so that a crash never leaves a half-written file under its final name."""
from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import Iterator, Union

PathLike = Union[str, "os.PathLike[str]"]


def _current_umask() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return umask


@contextlib.contextmanager
def atomic_path(final_path: PathLike, *, overwrite: bool = True) -> Iterator[Path]:
    """Yield a unique temporary path beside ``final_path``; on success rename it into place atomically.

    The temporary file keeps the final extension and sits in the same folder (same file system, so ``os.replace`` is atomic) and is
    removed if the block raises. With ``overwrite=False`` an existing final file is an error.
    """
    final = Path(final_path)
    final.parent.mkdir(parents=True, exist_ok=True)
    if not overwrite and final.exists():
        raise FileExistsError(f"{final} already exists; remove it or allow overwriting")
    # Keep the final extension(s): writers such as mindspore.save_checkpoint or nibabel go by it.
    extension = "".join(final.suffixes[-2:]) if final.suffix == ".gz" else final.suffix
    handle, temp_name = tempfile.mkstemp(prefix=f".{final.name}.", suffix=f".partial{extension}", dir=final.parent)
    os.close(handle)
    temp = Path(temp_name)
    try:
        yield temp
        with open(temp, "rb+") as written:
            os.fsync(written.fileno())
        # mkstemp creates 0600 and some writers (mindspore.save_checkpoint, export) leave files read-only:
        # give the result the permissions an ordinary new file would get under the current umask.
        os.chmod(temp, 0o666 & ~_current_umask())
        os.replace(temp, final)
    finally:
        if temp.exists():
            temp.unlink()
