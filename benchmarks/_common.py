"""Helpers shared by the benchmark scripts: where the reference weights live, loading them, timing.

Benchmarks are run from the repository root (``python benchmarks/bench_inference.py``); they import the
package first so that its oneDNN default is in force before MindSpore's first convolution.
"""
from __future__ import annotations

import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable, Dict, List

import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:  # benchmarks run from a checkout, installed or not
    sys.path.insert(0, str(REPO_ROOT))
from unet3plus._runtime import isa_flags  # noqa: E402,F401  (what every figure names beside the CPU)

REFERENCE_DIR = Path(os.environ.get("UNET3PLUS_REFERENCE_DIR", REPO_ROOT.parent / "shared" / "reference"))
DEFAULT_CHECKPOINT = REFERENCE_DIR / "golden_published_format.ckpt"


def network_entries(checkpoint_path: Path) -> Dict[str, np.ndarray]:
    """The 171 network arrays of a checkpoint, published (``network.``-prefixed) or network-only form."""
    import mindspore as ms

    entries = ms.load_checkpoint(str(checkpoint_path))
    prefixed = {k[len("network."):]: v for k, v in entries.items() if k.startswith("network.")}
    chosen = prefixed or {k: v for k, v in entries.items() if not k.startswith(("moment1.", "moment2."))
                          and k not in ("global_step", "learning_rate", "beta1_power", "beta2_power")}
    return {name: parameter.asnumpy() for name, parameter in chosen.items()}


def load_mindspore_network(checkpoint_path: Path, train: bool = False, lean_backward: bool = True):
    """A package ``UNet3Plus`` holding the checkpoint's weights, in eval mode unless ``train``."""
    import mindspore as ms

    from unet3plus import UNet3Plus

    net = UNet3Plus(lean_backward=lean_backward)
    arrays = network_entries(checkpoint_path)
    params = {name: ms.Parameter(ms.Tensor(value), name=name) for name, value in arrays.items()}
    not_loaded, unused = ms.load_param_into_net(net, params, strict_load=True)
    if not_loaded or unused:
        raise RuntimeError(f"checkpoint does not fit the network: missing {not_loaded}, unused {unused}")
    net.set_train(train)
    return net


def sample_batch(batch: int, size: int = 512, seed: int = 0) -> np.ndarray:
    """A deterministic CT-like float32 batch (3 channels, values around the normalised range)."""
    return np.random.default_rng(seed).standard_normal((batch, 3, size, size)).astype(np.float32)


def time_call(function: Callable[[], object], repeats: int) -> List[float]:
    """Wall seconds of ``repeats`` calls (caller warms up first)."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return times


def median(values: List[float]) -> float:
    return statistics.median(values)


def machine_line() -> str:
    model = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{model}, {os.cpu_count()} logical CPUs, Python {platform.python_version()}"


def peak_rss_bytes() -> int:
    """This process's peak resident set size (VmHWM), in bytes."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def cpu_name() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
        model = next(line.split(":", 1)[1].strip() for line in out.splitlines() if line.startswith("Model name"))
        cpus = next(line.split(":", 1)[1].strip() for line in out.splitlines() if line.startswith("CPU(s)"))
        return f"{model}, {cpus} CPUs"
    except (OSError, StopIteration):
        return platform.processor() or "unknown CPU"
