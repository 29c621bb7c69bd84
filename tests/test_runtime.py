"""Importing unet3plus puts MindSpore's oneDNN on its fast JIT kernels, and respects the user's choice."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

# One small convolution with oneDNN's verbose log on; prints the log lines naming ISA and kernel.
PROBE = """
import sys
if sys.argv[1] == "import-first":
    import unet3plus
import numpy as np, mindspore as ms
from mindspore import nn
conv = nn.Conv2d(16, 16, 3, pad_mode="pad", padding=1)
conv(ms.Tensor(np.ones((1, 16, 32, 32), np.float32)))
"""


def onednn_log(order: str, extra_env: dict) -> str:
    env = {k: v for k, v in os.environ.items() if k != "ONEDNN_MAX_CPU_ISA"}
    env.update(extra_env, ONEDNN_VERBOSE="1")
    result = subprocess.run([sys.executable, "-c", PROBE, order], env=env, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout + result.stderr


def isa_and_kernel(log: str):
    isa = next(line.split("isa:")[1] for line in log.splitlines() if ",isa:" in line)
    kernel = next(line.split(",")[6] for line in log.splitlines() if ",exec,cpu,convolution," in line)
    return isa, kernel


def test_import_sets_avx2_cap_and_convolution_uses_jit_kernel():
    isa, kernel = isa_and_kernel(onednn_log("import-first", {}))
    assert "AVX2" in isa and "AVX-512" not in isa, isa
    assert "ref" not in kernel, f"oneDNN still picked a reference kernel: {kernel}"


def test_user_value_is_never_overridden():
    isa, _ = isa_and_kernel(onednn_log("import-first", {"ONEDNN_MAX_CPU_ISA": "SSE41"}))
    assert "SSE4.1" in isa, isa


def test_default_really_differs_here_without_the_package():
    """Documents why the default exists: on AVX-512 CPUs MindSpore alone would pick the reference kernel."""
    isa, kernel = isa_and_kernel(onednn_log("mindspore-only", {}))
    if "AVX-512" not in isa:
        pytest.skip(f"this CPU ({isa}) is not affected by the oneDNN reference-kernel fallback")
    assert "ref" in kernel
