"""Process-wide runtime defaults that must be in place before MindSpore runs its first kernel.

MindSpore 2.10's bundled oneDNN, on CPUs with AVX-512/AMX, dispatches 3x3 convolutions to its
*reference* kernel (about 1 GFLOP/s; ~60 s for one 512x512 UNet3+ forward). Capping the instruction
set it may use makes it pick its JIT kernels instead (~50x faster). oneDNN reads the variable once,
at its first primitive, so this module is imported by ``unet3plus/__init__.py`` before anything
touches MindSpore, and it never overrides a value the user set.
"""
from __future__ import annotations

import os

ONEDNN_ISA_VARIABLE = "ONEDNN_MAX_CPU_ISA"
DEFAULT_ONEDNN_ISA = "AVX2"


def apply_cpu_defaults() -> str:
    """Set ``ONEDNN_MAX_CPU_ISA`` unless the user already chose a value; return the value in force."""
    return os.environ.setdefault(ONEDNN_ISA_VARIABLE, DEFAULT_ONEDNN_ISA)
