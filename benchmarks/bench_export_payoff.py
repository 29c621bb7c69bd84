"""When does the automatic backend's ONNX export pay? Export cost against per-batch saving, per slice size.

Why: ``fastest_backend`` exports the network to ONNX once per input shape (export, then a check against
MindSpore) and then runs ONNX Runtime; without the export, MindSpore runs the BatchNorm-folded network
(PyNative under ``GRAPH_MIN_BATCHES`` batches, else a compiled graph). The constants of
``runtime.backends.export_pays`` come from this script's figures.

    python benchmarks/bench_export_payoff.py [--sizes 128 256 512] [--repeats 3]

Each size runs at ``predict``'s default batch (4 slices up to 256 x 256, 1 at 512 x 512), random weights
(timing does not depend on them), a fresh cache folder per size.
"""
from __future__ import annotations

import argparse
import statistics
import tempfile
import time

import numpy as np

import _common  # noqa: F401  (repository on sys.path)
import unet3plus  # noqa: F401  (oneDNN default before the first convolution)
from unet3plus.networks import UNet3Plus
from unet3plus.runtime import MindSporeBackend, OnnxRuntimeBackend
from unet3plus.runtime.onnx_cache import cached_onnx, network_sha256
from unet3plus.runtime.predict import default_batch_size


def seconds(function) -> float:
    start = time.perf_counter()
    function()
    return time.perf_counter() - start


def per_batch(backend, batch: np.ndarray, repeats: int) -> float:
    """Median seconds per batch after one warm-up call (which, in graph mode, compiles)."""
    backend(batch)
    return statistics.median(seconds(lambda: backend(batch)) for _ in range(repeats))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[128, 256, 512])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    net = UNet3Plus()
    net.set_train(False)
    print("size   batch  Mpx/batch  hash s  export+check s  ORT session s  pynative s/b  graph compile s  "
          "graph s/b  ORT s/b")
    for size in args.sizes:
        batch_size = default_batch_size(size, size)
        shape = (batch_size, 3, size, size)
        batch = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
        hashing = seconds(lambda: network_sha256(net))
        network = network_sha256(net)
        with tempfile.TemporaryDirectory() as folder:
            start = time.perf_counter()
            path = cached_onnx(net, shape, cache_dir=folder, network=network)
            export = time.perf_counter() - start
            start = time.perf_counter()
            onnx = OnnxRuntimeBackend(path)
            session = time.perf_counter() - start
            ort = per_batch(onnx, batch, args.repeats)
        pynative = per_batch(MindSporeBackend(net, mode="pynative", optimize=True), batch, args.repeats)
        graph_backend = MindSporeBackend(net, mode="graph", optimize=True)
        compile_and_run = seconds(lambda: graph_backend(batch))
        graph = statistics.median(seconds(lambda: graph_backend(batch)) for _ in range(args.repeats))
        print(f"{size:<6} {batch_size:<6} {batch_size * size * size / 1e6:<10.3f} {hashing:<7.2f} {export:<15.2f} "
              f"{session:<14.2f} {pynative:<13.3f} {compile_and_run - graph:<16.2f} {graph:<10.3f} {ort:.3f}",
              flush=True)


if __name__ == "__main__":
    main()
