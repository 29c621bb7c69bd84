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


LATE_IMPORT_PROBE = """
import logging, sys
logging.basicConfig(level=logging.WARNING, format="%(name)s: %(message)s")
import numpy as np, mindspore as ms
from mindspore import nn
conv = nn.Conv2d(4, 4, 3, pad_mode="pad", padding=1)
if sys.argv[1] == "convolution-first":
    conv(ms.Tensor(np.ones((1, 4, 8, 8), np.float32)))
import unet3plus
from unet3plus._runtime import check_onednn_isa
conv(ms.Tensor(np.ones((1, 4, 8, 8), np.float32)))
print("capped:", check_onednn_isa())
"""


def late_import_output(order: str) -> str:
    env = {k: v for k, v in os.environ.items() if k != "ONEDNN_MAX_CPU_ISA"}
    result = subprocess.run([sys.executable, "-c", LATE_IMPORT_PROBE, order], env=env, capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout + result.stderr


def test_convolution_before_import_is_detected_and_warned_once():
    """The import-order trap: oneDNN started uncapped before the package could cap it."""
    uncapped_cpu = "AVX-512" in isa_and_kernel(onednn_log("mindspore-only", {}))[0]
    output = late_import_output("convolution-first")
    warnings = [line for line in output.splitlines() if line.startswith("unet3plus._runtime:")]
    if not uncapped_cpu:
        assert "capped: True" in output and not warnings, output[-2000:]
        pytest.skip("this CPU has no AVX-512: oneDNN's uncapped start is harmless here")
    assert "capped: False" in output, output[-2000:]
    assert len(warnings) == 1, output[-2000:]
    assert "import unet3plus before any MindSpore computation" in warnings[0]
    assert "ONEDNN_MAX_CPU_ISA=AVX2" in warnings[0]


def test_mindspore_imported_first_is_still_capped_without_warning():
    output = late_import_output("import-only")
    assert "capped: True" in output and "unet3plus._runtime:" not in output, output[-2000:]


CAP_OWNER = """
import os, unet3plus
from unet3plus import _runtime
with _runtime.without_package_isa_cap():
    print(_runtime._cap_set_here, os.environ.get("ONEDNN_MAX_CPU_ISA"))
"""


@pytest.mark.parametrize("environment, lifted", [
    ({}, True),  # set by this process
    ({"ONEDNN_MAX_CPU_ISA": "AVX2", "UNET3PLUS_SET_ONEDNN_MAX_CPU_ISA": "AVX2"}, True),  # inherited from a parent
    ({"ONEDNN_MAX_CPU_ISA": "AVX2"}, False),  # the user's own: kept, for OpenVINO too
    ({"ONEDNN_MAX_CPU_ISA": "AVX512_CORE", "UNET3PLUS_SET_ONEDNN_MAX_CPU_ISA": "AVX2"}, False),  # changed since
])
def test_a_child_process_knows_the_cap_is_the_packages_not_the_users(environment, lifted):
    env = {k: v for k, v in os.environ.items() if k not in ("ONEDNN_MAX_CPU_ISA", "UNET3PLUS_SET_ONEDNN_MAX_CPU_ISA")}
    env.update(environment)
    result = subprocess.run([sys.executable, "-c", CAP_OWNER], env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    owned, value_inside = result.stdout.split()
    assert owned == str(lifted)
    assert (value_inside == "None") == lifted
