"""ONNX exports made once and kept in the cache folder, so ``predict`` can run ONNX Runtime without asking.

An entry is ``<cache>/onnx/<key digest>.onnx`` plus ``<key digest>.json``, written after the file: the key
(the network's SHA-256, the input shape ``N x C x H x W``, the package and MindSpore versions), the file's
SHA-256 and the export's measured agreement with MindSpore. The network's SHA-256 covers its architecture
and every parameter's name, shape, dtype and bytes: what its checkpoint determines, and also defined for a
network changed in memory, without reading the checkpoint again.

An entry is used only when its sidecar parses, holds this key and the file's bytes still hash to what it
says; anything else (truncated or flipped file, missing or stale sidecar) is rebuilt, never loaded. A new
export is checked against MindSpore on a preset-prepared batch before it is put in place: a larger
difference than ``tolerance`` (1e-4) is an error and nothing is cached.

What runs is what was verified: the path returned carries the file's SHA-256 (``hub.download.VerifiedPath``),
and ``OnnxRuntimeBackend`` reads the file once, checks those bytes against it and gives ONNX Runtime the
bytes, never the path, so a file swapped after the check is an error, not another model.

Size: at most ``UNET3PLUS_ONNX_CACHE_MAX_MB`` megabytes (default 1024; about 7 MB per input shape of the
published network). After an export is added, the least recently used entries (last use: the sidecar's
modification time, renewed on every use) are removed until the rest fit; the new one is always kept.
``unet3plus cache list`` shows the entries and ``unet3plus cache clean --onnx`` removes them. With an entry go
the records ``runtime.engine_choice`` keeps of which engine ran it faster on this machine (``engine-choices/``).
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import time
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple, Union

import numpy as np

from .._atomic import atomic_path, file_lock, remove_stale_lock_files, remove_stale_partials
from ..errors import UserFacingError
from ..hub.cache import to_remove
from ..hub.download import VerifiedPath, resolve_cache_dir, sha256_of, verified_path

logger = logging.getLogger(__name__)

CACHE_SUBDIR = "onnx"
CHOICES_SUBDIR = "engine-choices"  # runtime.engine_choice's records of which engine runs an export fastest here
FORMAT_VERSION = 1  # bump when the entry layout or the export itself changes
TOLERANCE = 1e-4  # max |ONNX Runtime - MindSpore| logit difference accepted at export
MAX_MB_VARIABLE = "UNET3PLUS_ONNX_CACHE_MAX_MB"
DEFAULT_MAX_MB = 1024.0


class ExportMismatchError(UserFacingError, RuntimeError):
    """The exported graph does not reproduce MindSpore's logits; it is not cached."""


def network_sha256(net: Any) -> str:
    """SHA-256 of the architecture and every parameter (name, dtype, shape, bytes)."""
    digest = hashlib.sha256()
    architecture = {"class": type(net).__name__}
    for name in ("in_channels", "n_classes", "deep_supervision", "has_cgm", "cgm_threshold"):
        if hasattr(net, name):
            architecture[name] = getattr(net, name)
    digest.update(json.dumps(architecture, sort_keys=True).encode())
    for name, parameter in net.parameters_and_names():
        array = np.ascontiguousarray(parameter.asnumpy())
        digest.update(f"{name}|{array.dtype.str}|{array.shape}".encode())
        digest.update(array.tobytes())
    return digest.hexdigest()


def cache_key(network: str, input_shape: Sequence[int]) -> Dict[str, Any]:
    """What an export depends on."""
    import mindspore as ms

    from .._version import __version__

    return {"format": FORMAT_VERSION, "network_sha256": network, "input_shape": [int(d) for d in input_shape],
            "unet3plus": __version__, "mindspore": ms.__version__}


def _digest(key: Dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:32]


def onnx_cache_dir(cache_dir: Optional[Union[str, "os.PathLike[str]"]] = None) -> Path:
    return resolve_cache_dir(cache_dir) / CACHE_SUBDIR


def engine_choice_path(export_sha256: str, machine: str, cache_dir=None) -> Path:
    """Where the engine chosen for the export with that SHA-256 on the machine with digest ``machine`` is kept."""
    return onnx_cache_dir(cache_dir) / CHOICES_SUBDIR / f"{export_sha256}-{machine}.json"


def entry_paths(key: Dict[str, Any], cache_dir=None) -> Tuple[Path, Path]:
    """``(model, sidecar)`` paths of the entry for ``key``."""
    stem = onnx_cache_dir(cache_dir) / _digest(key)
    return stem.with_suffix(".onnx"), stem.with_suffix(".json")


def _file_sha256(path: Path) -> str:
    return sha256_of(path)


def check_entry(model: Path, sidecar: Path, key: Dict[str, Any]) -> Optional[str]:
    """Why the entry cannot be used (a sentence), or None when it is sound."""
    return _inspect_entry(model, sidecar, key)[0]


def _inspect_entry(model: Path, sidecar: Path, key: Optional[Dict[str, Any]]) -> Tuple[Optional[str], Optional[str]]:
    """``(why the entry cannot be used or None, the SHA-256 its file has)``; ``key`` None accepts any key."""
    if not model.is_file() and not sidecar.is_file():
        return "absent", None
    try:
        metadata = json.loads(sidecar.read_text())
    except (OSError, ValueError) as error:
        return f"its metadata {sidecar.name} is missing or unreadable ({type(error).__name__})", None
    if not isinstance(metadata, dict) or (key is not None and metadata.get("key") != key):
        return f"its metadata {sidecar.name} is stale (made for another network, shape or version)", None
    try:
        actual = _file_sha256(model)
    except OSError as error:
        return f"{model.name} cannot be read ({error.strerror or error})", None
    if actual != metadata.get("sha256"):
        return (f"{model.name} is corrupt (SHA-256 {actual[:12]}..., its metadata says "
                f"{str(metadata.get('sha256'))[:12]}...)"), None
    return None, actual


@contextlib.contextmanager
def _entry_lock(model: Path) -> Iterator[None]:
    """One export per entry across processes; the others wait and then reuse it. Lock files unused for a
    day are removed first (removing one right after use is unsafe)."""
    remove_stale_lock_files(model.parent)
    with file_lock(str(model) + ".lock"):
        yield


def existing_onnx(network: str, input_shape: Sequence[int], *, cache_dir=None) -> Optional[VerifiedPath]:
    """The sound cached export of the network with SHA-256 ``network`` for ``input_shape`` (carrying the
    SHA-256 its bytes must have when loaded), or None: a few milliseconds (one file hash), so a caller can
    use one without deciding whether exporting pays. Marks the entry used."""
    key = cache_key(network, input_shape)
    model, sidecar = entry_paths(key, cache_dir)
    problem, digest = _inspect_entry(model, sidecar, key)
    return None if problem is not None else _mark_used(model, sidecar, digest)


def _mark_used(model: Path, sidecar: Path, digest: str) -> VerifiedPath:
    """``model`` carrying its verified SHA-256; the sidecar's time is the entry's last use (for eviction)."""
    with contextlib.suppress(OSError):  # a read-only cache still serves its entries
        os.utime(sidecar)
    return verified_path(model, digest)


def cached_onnx(net: Any, input_shape: Sequence[int], *, cache_dir=None, network: Optional[str] = None,
                tolerance: float = TOLERANCE, extra_inputs: Sequence[np.ndarray] = ()) -> VerifiedPath:
    """The verified cached ONNX export of ``net`` for ``input_shape``, exporting it first if needed.

    ``network``: ``network_sha256(net)`` when the caller has it already (hashing reads every parameter).
    ``extra_inputs``: for a network that takes more inputs after the image, example values (their shapes must
    follow from ``input_shape``; exported and checked with them).
    """
    network = network or network_sha256(net)
    model = existing_onnx(network, input_shape, cache_dir=cache_dir)
    if model is not None:  # the common case: no lock needed to read a sound entry
        return model
    key = cache_key(network, input_shape)
    model, sidecar = entry_paths(key, cache_dir)
    model.parent.mkdir(parents=True, exist_ok=True)
    with _entry_lock(model):
        problem, digest = _inspect_entry(model, sidecar, key)  # another process may have just made it
        if problem is None:
            return _mark_used(model, sidecar, digest)
        if problem != "absent":
            logger.warning("cached ONNX model %s not used: %s; exporting it again", model, problem)
        remove_stale_partials(model.parent)
        digest = _export_entry(net, key, model, sidecar, tolerance, extra_inputs)
        _remove_superseded(model.parent, key, keep=model)
    evict_onnx(cache_dir, keep=model)
    return verified_path(model, digest)


def _export_entry(net: Any, key: Dict[str, Any], model: Path, sidecar: Path, tolerance: float,
                  extra_inputs: Sequence[np.ndarray] = ()) -> str:
    """Export, check against MindSpore and put the entry in place; the model file's SHA-256."""
    from .exporting import compare_onnx, export_network, verification_batch

    shape = tuple(key["input_shape"])
    logger.info("exporting the network to ONNX for input %s (once; cached in %s)",
                " x ".join(map(str, shape)), model.parent)
    began = time.perf_counter()
    with atomic_path(model) as temporary:
        export_network(net, temporary, "onnx", shape, overwrite=True, extra_inputs=extra_inputs)
        exported = time.perf_counter() - began
        difference, _ = compare_onnx(net, temporary, verification_batch(net, shape), extra_inputs=extra_inputs)
        if not difference <= tolerance:  # also catches NaN
            raise ExportMismatchError(
                f"the ONNX export differs from MindSpore by up to {difference:.3g} (more than {tolerance:g}); it was "
                "not cached. Run with --backend mindspore, and please report this")
        digest = _file_sha256(temporary)
    metadata = {"key": key, "sha256": digest, "max_abs_difference": difference, "export_seconds": round(exported, 2),
                "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    with atomic_path(sidecar) as temporary:  # after the model: a sidecar never vouches for a missing file
        temporary.write_text(json.dumps(metadata, indent=1, sort_keys=True))
    logger.info("exported in %.1f s, checked in %.1f s more: max |ONNX Runtime - MindSpore| %.2g",
                exported, time.perf_counter() - began - exported, difference)
    return digest


def _remove_superseded(folder: Path, key: Dict[str, Any], keep: Path) -> None:
    """Entries of the same network and shape made by other versions: never used again, only taking space."""
    same = {name: key[name] for name in ("network_sha256", "input_shape")}
    for other in folder.glob("*.json"):
        if other.with_suffix(".onnx") == keep:
            continue
        with contextlib.suppress(OSError, ValueError, AttributeError, TypeError):
            old = json.loads(other.read_text())["key"]
            if all(old.get(name) == value for name, value in same.items()):
                other.with_suffix(".onnx").unlink(missing_ok=True)
                other.unlink()


def onnx_cache_max_bytes() -> float:
    """``UNET3PLUS_ONNX_CACHE_MAX_MB`` (default 1024) in bytes; anything but a number >= 0 is one line."""
    raw = os.environ.get(MAX_MB_VARIABLE, "").strip()
    try:
        megabytes = float(raw) if raw else DEFAULT_MAX_MB
    except ValueError:
        megabytes = -1.0
    if not megabytes >= 0:  # also NaN
        raise UserFacingError(f"{MAX_MB_VARIABLE}={raw!r} is not a size in megabytes; unset it or give e.g. "
                              f"{DEFAULT_MAX_MB:g}")
    return megabytes * 1e6


class OnnxEntry:
    """One cached export (its ``.onnx`` file and sidecar) as ``unet3plus cache`` lists and cleans it."""

    def __init__(self, model: Path) -> None:
        self.path, self.sidecar = model, model.with_suffix(".json")
        self.sha256: Optional[str] = None
        try:
            metadata = json.loads(self.sidecar.read_text())
            key, self.sha256 = metadata["key"], metadata.get("sha256")
            self.source = (f"export of network {str(key['network_sha256'])[:12]}... for input "
                           + " x ".join(map(str, key["input_shape"])))
        except (OSError, ValueError, KeyError, TypeError):
            self.source = "(no readable metadata: rebuilt on next use)"
        self.name = model.name
        self.size = sum(path.stat().st_size for path in (self.path, self.sidecar) if path.is_file())
        self.last_used = max(path.stat().st_mtime for path in (self.path, self.sidecar) if path.is_file())

    def state(self, full: bool = False) -> str:
        """``ok`` or what is wrong; ``full`` hashes the file, else only its presence is checked (cheap)."""
        if not full:
            return "ok (present)" if self.path.is_file() and self.sidecar.is_file() else "INCOMPLETE (rebuilt on use)"
        problem, _ = _inspect_entry(self.path, self.sidecar, None)
        return "ok (SHA-256)" if problem is None else f"CORRUPT ({problem}; rebuilt on use)"

    def remove(self) -> None:
        """The sidecar first (it never vouches for a missing file), the file, then the export's engine choices."""
        for path in (self.sidecar, self.path):
            path.unlink(missing_ok=True)
        if self.sha256:
            for record in (self.path.parent / CHOICES_SUBDIR).glob(f"{self.sha256}-*.json"):
                record.unlink(missing_ok=True)


def onnx_entries(cache_dir=None) -> List[OnnxEntry]:
    """Every cached export (an ``.onnx`` file or a sidecar whose file is gone), most recently used first."""
    folder = onnx_cache_dir(cache_dir)
    stems = {path.with_suffix(".onnx") for pattern in ("*.onnx", "*.json") for path in folder.glob(pattern)
             if not path.name.startswith(".")}
    entries = []
    for model in sorted(stems):
        with contextlib.suppress(OSError, ValueError):  # removed meanwhile by another process
            entries.append(OnnxEntry(model))
    return sorted(entries, key=lambda entry: -entry.last_used)


def evict_onnx(cache_dir=None, keep: Optional[Path] = None) -> List[OnnxEntry]:
    """Remove the least recently used exports until the cache fits ``UNET3PLUS_ONNX_CACHE_MAX_MB`` (never
    ``keep``, the one just added); return what was removed."""
    removed = to_remove(onnx_entries(cache_dir), max_bytes=onnx_cache_max_bytes(), keep=[keep] if keep else [])
    for entry in removed:
        with contextlib.suppress(OSError):
            entry.remove()
            logger.info("removed the least recently used ONNX export %s (%.1f MB) to keep the cache under %s MB "
                        "(%s)", entry.path, entry.size / 1e6, f"{onnx_cache_max_bytes() / 1e6:g}", MAX_MB_VARIABLE)
    return removed
