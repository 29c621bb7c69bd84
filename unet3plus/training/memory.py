"""Process-level memory settings for fine-tuning on CPU (measured in ``benchmarks/RESULTS.md``).

MindSpore's memory pool grows in 1 GiB blocks and keeps every page it has touched. A batch-2, 512x512 UNet3+
step peaks at 1.9 GiB of tensors, but fragmentation spreads that over three blocks, and over a few steps all
three get touched. If the pool grows in 0.25 GB steps instead, it stops at 2.25 GiB. Compiling the training
graph also leaves freed heap pages behind, and glibc keeps them unless asked to return them. Together these
took the step from 4.65 to 3.84 GiB peak RSS over eight steps. With the 2.1 GiB peak the network had before
its decoder ReLUs were merged, the small steps only delayed a fourth block, so re-measure
(``bench_train_step.py --memory-variants``) after changing the network.
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
