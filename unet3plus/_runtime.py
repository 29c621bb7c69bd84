"""Process-wide runtime defaults that must be in place before MindSpore runs its first kernel.

MindSpore's bundled oneDNN, on CPUs with AVX-512/AMX, dispatches 3x3 convolutions to its *reference*
kernel (about 1 GFLOP/s; ~60 s for one 512x512 UNet3+ forward). Capping the instruction set it may use
makes it pick its JIT kernels instead (~50x faster). oneDNN reads the variable once, at its first
primitive, so this module is imported by ``unet3plus/__init__.py`` before anything touches MindSpore,
and it never overrides a value the user set.

If a MindSpore convolution already ran before ``import unet3plus``, the cap comes too late for this
process: :func:`check_onednn_isa` asks oneDNN (through its C API, in MindSpore's own library) which
instruction set it settled on and logs one warning naming the fix.
"""
from __future__ import annotations

import contextlib
import ctypes
import glob
import importlib.util
import logging
import os
from typing import Iterator, Optional

logger = logging.getLogger(__name__)

ONEDNN_ISA_VARIABLE = "ONEDNN_MAX_CPU_ISA"
DEFAULT_ONEDNN_ISA = "AVX2"
CAP_MARKER = "UNET3PLUS_SET_ONEDNN_MAX_CPU_ISA"  # the value this package (in this or a parent process) set
_DNNL_CPU_ISA_AVX2 = 0x7  # dnnl_cpu_isa_avx2 in oneDNN 3.x's C API
_AVX512_CORE_BIT = 0x20  # set in every dnnl_cpu_isa_t value from avx512_core on

_warned = False
_cap_set_here = False  # whether ONEDNN_MAX_CPU_ISA is this package's default rather than the user's choice


def apply_cpu_defaults() -> str:
    """Set ``ONEDNN_MAX_CPU_ISA`` unless the user already chose a value; return the value in force.

    ``CAP_MARKER`` goes beside it, naming the value this package set: a process started from this one inherits
    both and so knows the cap is the package's, not the user's (else it would keep it for OpenVINO too, which
    then loses its bf16 kernels)."""
    global _cap_set_here
    marker = os.environ.get(CAP_MARKER)
    inherited = marker is not None and marker == os.environ.get(ONEDNN_ISA_VARIABLE)
    user_chose = ONEDNN_ISA_VARIABLE in os.environ and not inherited
    value = os.environ.setdefault(ONEDNN_ISA_VARIABLE, DEFAULT_ONEDNN_ISA)
    if not user_chose:
        os.environ[CAP_MARKER] = value
        _cap_set_here = True
        check_onednn_isa()
    return value


@contextlib.contextmanager
def without_package_isa_cap() -> Iterator[None]:
    """The environment without the AVX2 cap this package set for MindSpore's oneDNN (a user's own value
    stays): for another library's oneDNN that reads the same variable, once, when it starts (OpenVINO's CPU
    plugin, which would lose its bf16 kernels under the cap). MindSpore's oneDNN keeps its cap: pinned
    through its C API when loaded (``check_onednn_isa``), else read later, after the variable is back."""
    lifted = os.environ.pop(ONEDNN_ISA_VARIABLE, None) if _cap_set_here else None
    try:
        yield
    finally:
        if lifted is not None:
            os.environ[ONEDNN_ISA_VARIABLE] = lifted


def _loaded_onednn() -> Optional[ctypes.CDLL]:
    """MindSpore's oneDNN library if this process has already loaded it (never loads it itself)."""
    spec = importlib.util.find_spec("mindspore")
    if spec is None or not spec.origin:
        return None
    # oneDNN 3.x (MindSpore 2.10) only: MindSpore 2.7's oneDNN 2.2 picks its JIT kernels uncapped on the
    # same CPUs (checked with DNNL_VERBOSE), so an uncapped start there is harmless.
    for library in glob.glob(os.path.join(os.path.dirname(spec.origin), "lib", "libdnnl.so.3")):
        try:
            return ctypes.CDLL(library, mode=os.RTLD_NOLOAD | os.RTLD_GLOBAL)
        except OSError:  # not loaded (yet): oneDNN will read the variable when it starts
            continue
    return None


def check_onednn_isa() -> bool:
    """True if oneDNN runs (or will run) capped at AVX2; otherwise log one warning with the fix.

    If oneDNN is loaded but has not run a primitive yet, this pins the cap through its C API; if it has
    already started uncapped on an AVX-512 CPU, the slow reference convolution is in force for the life of
    the process and only a restart helps.
    """
    global _warned
    onednn = _loaded_onednn()
    if onednn is None:
        return True
    try:
        if onednn.dnnl_set_max_cpu_isa(ctypes.c_int(_DNNL_CPU_ISA_AVX2)) == 0:
            return True  # not started yet: capped from now on
        effective = int(onednn.dnnl_get_effective_cpu_isa())
    except AttributeError:  # a oneDNN build without the ISA API: nothing to check
        return True
    if not effective & _AVX512_CORE_BIT:
        return True
    if not _warned:
        _warned = True
        logger.warning(
            "MindSpore ran a convolution before 'import unet3plus', so oneDNN started without the AVX2 cap "
            "and uses its reference convolution kernel (~35-50x slower) for the rest of this process; "
            "import unet3plus before any MindSpore computation, or start Python with %s=%s.",
            ONEDNN_ISA_VARIABLE, DEFAULT_ONEDNN_ISA)
    return False


def isa_flags() -> str:
    """The CPU's vector and matrix instruction sets that matter here (avx2, fma, avx512*, *vnni*, amx*), as
    ``/proc/cpuinfo`` lists them: what engine speeds depend on (and benchmarks print beside every figure)."""
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            flags = next(line.split(":", 1)[1].split() for line in cpuinfo if line.startswith("flags"))
    except (OSError, StopIteration):
        return "unknown"
    chosen = [f for f in flags if f in ("avx2", "fma") or f.startswith(("avx512", "amx")) or "vnni" in f]
    return " ".join(chosen) or "none of avx2/avx512/vnni/amx"


def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo``), else what ``platform`` says."""
    import platform

    try:
        with open("/proc/cpuinfo") as cpuinfo:
            return next(line.split(":", 1)[1].strip() for line in cpuinfo if line.startswith("model name"))
    except (OSError, StopIteration):
        return platform.processor() or platform.machine() or "unknown CPU"

