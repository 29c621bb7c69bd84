"""Process-level memory settings for fine-tuning on CPU.

MindSpore's memory pool grows in 1 GiB blocks and keeps every page it touches, and compiling the training graph
leaves freed heap pages that glibc keeps unless asked. Growing the pool in small steps and returning that heap
keeps a training step's peak memory close to what its tensors need. The measurements, and why the settings
depend on the network's peak (re-measure with ``bench_train_step.py --memory-variants`` after changing it), are
in ``benchmarks/RESULTS.md`` (item 7 of the 2026-11-25 steps).
"""
from __future__ import annotations

import ctypes
import ctypes.util

POOL_SETTINGS = {"init_size": "0.5GB", "increase_size": "0.25GB"}


def configure_memory_pool() -> bool:
    """Make MindSpore's memory pool grow in 0.25 GB steps; ``False`` if the pool was already configured.

    ``mindspore.runtime.set_memory`` can be called once per process, so a setting the user made first is
    kept (and this returns ``False``). Call it before the first step; a pool that already holds blocks
    keeps them.
    """
    from mindspore.runtime import set_memory

    try:
        set_memory(**POOL_SETTINGS)
    except RuntimeError:  # "can not be set repeatedly": the user (or an earlier trainer) chose already
        return False
    return True


def release_free_heap() -> bool:
    """Return the heap pages freed so far to the operating system (glibc ``malloc_trim``); ``False`` where
    the C library has no such call (musl, macOS)."""
    library = ctypes.util.find_library("c")
    try:
        trim = ctypes.CDLL(library).malloc_trim
    except (OSError, AttributeError, TypeError):
        return False
    trim(0)
    return True
