"""Process-level memory settings for fine-tuning on CPU (measured in ``benchmarks/RESULTS.md``).

MindSpore's memory pool grows in 1 GB blocks and keeps every page it ever touched, so a step that needs
2.1 GB at its peak holds three such blocks. Growing in 0.25 GB steps instead lets the last block fit the
peak. Compiling the training graph also leaves freed heap pages that glibc keeps unless asked to give them
back. Together these took a batch-2, 512x512 step from 4.6 to 3.9 GiB peak RSS.
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
