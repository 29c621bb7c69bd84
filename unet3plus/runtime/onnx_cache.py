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
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import time
from pathlib import Path
from typing import Any, Dict, Iterator, Optional, Sequence, Tuple, Union

import numpy as np

from .._atomic import atomic_path, file_lock, remove_stale_lock_files, remove_stale_partials
from ..errors import UserFacingError

logger = logging.getLogger(__name__)

CACHE_SUBDIR = "onnx"
FORMAT_VERSION = 1  # bump when the entry layout or the export itself changes
TOLERANCE = 1e-4  # max |ONNX Runtime - MindSpore| logit difference accepted at export


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
    from ..hub.download import resolve_cache_dir

    return resolve_cache_dir(cache_dir) / CACHE_SUBDIR


def entry_paths(key: Dict[str, Any], cache_dir=None) -> Tuple[Path, Path]:
    """``(model, sidecar)`` paths of the entry for ``key``."""
    stem = onnx_cache_dir(cache_dir) / _digest(key)
    return stem.with_suffix(".onnx"), stem.with_suffix(".json")


def _file_sha256(path: Path) -> str:
    from ..hub.download import sha256_of

    return sha256_of(path)


def check_entry(model: Path, sidecar: Path, key: Dict[str, Any]) -> Optional[str]:
    """Why the entry cannot be used (a sentence), or None when it is sound."""
    if not model.is_file() and not sidecar.is_file():
        return "absent"
    try:
        metadata = json.loads(sidecar.read_text())
    except (OSError, ValueError) as error:
        return f"its metadata {sidecar.name} is missing or unreadable ({type(error).__name__})"
    if not isinstance(metadata, dict) or metadata.get("key") != key:
        return f"its metadata {sidecar.name} is stale (made for another network, shape or version)"
    try:
        actual = _file_sha256(model)
    except OSError as error:
        return f"{model.name} cannot be read ({error.strerror or error})"
    if actual != metadata.get("sha256"):
        return f"{model.name} is corrupt (SHA-256 {actual[:12]}..., its metadata says {str(metadata.get('sha256'))[:12]}...)"
    return None


@contextlib.contextmanager
def _entry_lock(model: Path) -> Iterator[None]:
    """One export per entry across processes; the others wait and then reuse it. Lock files unused for a
    day are removed first (removing one right after use is unsafe)."""
    remove_stale_lock_files(model.parent)
    with file_lock(str(model) + ".lock"):
        yield


def existing_onnx(network: str, input_shape: Sequence[int], *, cache_dir=None) -> Optional[Path]:
    """The sound cached export of the network with SHA-256 ``network`` for ``input_shape``, or None: a
    few milliseconds (one file hash), so a caller can use one without deciding whether exporting pays."""
    key = cache_key(network, input_shape)
    model, sidecar = entry_paths(key, cache_dir)
    return model if check_entry(model, sidecar, key) is None else None


def cached_onnx(net: Any, input_shape: Sequence[int], *, cache_dir=None, network: Optional[str] = None,
                tolerance: float = TOLERANCE, extra_inputs: Sequence[np.ndarray] = ()) -> Path:
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
        problem = check_entry(model, sidecar, key)  # another process may have just made it
        if problem is None:
            return model
        if problem != "absent":
            logger.warning("cached ONNX model %s not used: %s; exporting it again", model, problem)
        remove_stale_partials(model.parent)
        _export_entry(net, key, model, sidecar, tolerance, extra_inputs)
        _remove_superseded(model.parent, key, keep=model)
    return model


def _export_entry(net: Any, key: Dict[str, Any], model: Path, sidecar: Path, tolerance: float,
                  extra_inputs: Sequence[np.ndarray] = ()) -> None:
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
