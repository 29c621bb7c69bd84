"""The FLOP floor: FLOPs of one UNet3+ forward counted from the network itself, over measured peak FLOP/s.

FLOPs come from one PyNative forward with a hook on every ``nn.Conv2d`` cell (2 * Cin/groups * k*k per
output element) and a counting wrapper around ``ops.matmul`` (the up-sampling's matrix products).
BatchNorm, ReLU, pooling and concatenation are memory-bound and left out, so the floor is optimistic.
Peak is a large float32 matrix product (PyTorch/MKL) on this machine.

    python benchmarks/flops.py [--size 512]
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path
from typing import Dict

sys.path.insert(0, str(Path(__file__).resolve().parent))

PEAK_SCRIPT = """
import json, sys, time, statistics, torch
torch.set_num_threads(int(sys.argv[1]))
n = 4096
a, b = torch.randn(n, n), torch.randn(n, n)
for _ in range(2):
    torch.mm(a, b)
times = []
for _ in range(7):
    start = time.perf_counter(); torch.mm(a, b); times.append(time.perf_counter() - start)
print(json.dumps({"gflops": 2 * n ** 3 / statistics.median(times) / 1e9, "threads": torch.get_num_threads()}))
"""


def count_forward_flops(size: int = 512, in_channels: int = 3, as_published: bool = True) -> Dict[str, float]:
    """FLOPs of one forward of a 1 x C x size x size image: {"conv": ..., "matmul": ..., "total": ...}.

    ``as_published``: count the architecture as published, every up-sampling branch resizing to full
    resolution and then convolving (the floor's basis). ``False``: count what the package computes, where
    those branches run at low resolution (``lean_conv.upsample_then_conv3x3``: 1x1 convolutions and
    interpolation-matrix products, counted as matmul FLOPs).
    """
    import unet3plus  # noqa: F401
    import mindspore as ms
    import numpy as np
    from mindspore import nn

    from unet3plus import UNet3Plus
    from unet3plus.networks import resize

    ms.set_context(mode=ms.PYNATIVE_MODE)
    net = UNet3Plus(in_channels=in_channels)
    net.set_train(False)
    net.compiled_eval = False  # the hooks below count eager calls; a compiled forward would skip them
    if as_published:
        def resize_then_convolve(name, x, target_size):
            return getattr(net, name + "_conv")(resize.resize_bilinear_align_corners(x, target_size))

        net._upsample_and_convolve = resize_then_convolve
    counts = {"conv": 0.0, "matmul": 0.0}

    def conv_hook(cell, inputs, output):
        kernel = cell.kernel_size[0] * cell.kernel_size[1]
        per_output = 2 * (cell.in_channels // cell.group) * kernel
        counts["conv"] += per_output * float(np.prod(output.shape))

    handles = [cell.register_forward_hook(conv_hook) for _, cell in net.cells_and_names()
               if isinstance(cell, nn.Conv2d)]
    original_matmul = resize.ops.matmul

    def counting_matmul(a, b):
        out = original_matmul(a, b)
        inner = a.shape[-1]
        counts["matmul"] += 2.0 * inner * float(np.prod(out.shape))
        return out

    resize.ops.matmul = counting_matmul
    try:
        net(ms.Tensor(np.zeros((1, in_channels, size, size), np.float32)))
    finally:
        resize.ops.matmul = original_matmul
        for handle in handles:
            handle.remove()
    return {**counts, "total": counts["conv"] + counts["matmul"]}


def measure_peak_gflops(threads: int = 0) -> float:
    """Median GFLOP/s of a 4096^3 float32 matrix product in PyTorch, in a clean subprocess."""
    import os

    env = {k: v for k, v in os.environ.items() if k != "ONEDNN_MAX_CPU_ISA"}
    result = subprocess.run([sys.executable, "-c", PEAK_SCRIPT, str(threads or os.cpu_count())], env=env,
                            capture_output=True, text=True, check=True, timeout=600)
    return json.loads(result.stdout.strip().splitlines()[-1])["gflops"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=512)
    args = parser.parse_args()
    flops = count_forward_flops(args.size)
    computed = count_forward_flops(args.size, as_published=False)
    peak = measure_peak_gflops()
    print(f"forward {args.size}x{args.size}, as published: conv {flops['conv'] / 1e9:.2f} GFLOP + up-sampling "
          f"matmul {flops['matmul'] / 1e9:.2f} GFLOP = {flops['total'] / 1e9:.2f} GFLOP")
    print(f"as the package computes it: conv {computed['conv'] / 1e9:.2f} GFLOP + matmul "
          f"{computed['matmul'] / 1e9:.2f} GFLOP = {computed['total'] / 1e9:.2f} GFLOP")
    print(f"peak float32 matmul: {peak:.0f} GFLOP/s -> floor (published convolutions) "
          f"{flops['conv'] / 1e9 / peak * 1e3:.0f} ms/img")
    return 0


if __name__ == "__main__":
    sys.exit(main())
