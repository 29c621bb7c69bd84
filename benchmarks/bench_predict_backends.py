"""predict on one CT volume: MindSpore PyNative vs MindSpore graph (jit) vs ONNX Runtime, side by side.

Why: ``predict`` runs MindSpore in graph mode when more than one batch follows ("auto"); this shows the
compile cost and the per-volume gain that justify it, and how the exported ONNX model compares.

    python benchmarks/bench_predict_backends.py [--slices 16] [--size 128] [--batch 4] [--repeats 3]

Weights are random (timing does not depend on them). Each repeat runs every backend once, interleaved,
and medians are compared; graph mode's first call (compile + run) is reported separately.
"""
from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

import unet3plus  # noqa: F401  (oneDNN default before the first convolution)
from unet3plus import predict
from unet3plus.export import export_network
from unet3plus.networks import UNet3Plus
from unet3plus.runtime import MindSporeBackend, OnnxRuntimeBackend


def timed(function):
    start = time.perf_counter()
    result = function()
    return time.perf_counter() - start, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--slices", type=int, default=16)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    net = UNet3Plus()
    net.set_train(False)
    volume = np.random.default_rng(0).integers(-500, 500, (args.slices, args.size, args.size)).astype(np.float32)
    pynative, graph = MindSporeBackend(net, mode="pynative"), MindSporeBackend(net, mode="graph")
    with tempfile.TemporaryDirectory() as folder:
        export_seconds, onnx_path = timed(lambda: export_network(
            net, Path(folder) / "net.onnx", "onnx", (args.batch, 3, args.size, args.size)))
        onnx = OnnxRuntimeBackend(onnx_path)
        first_graph, _ = timed(lambda: predict(graph, volume, batch_size=args.batch))
        results = {"mindspore pynative": [], "mindspore graph": [], "onnxruntime": []}
        reference = predict(pynative, volume, batch_size=args.batch, probabilities=True).probabilities
        for _ in range(args.repeats):
            for name, backend in (("mindspore pynative", pynative), ("mindspore graph", graph),
                                  ("onnxruntime", onnx)):
                seconds, prediction = timed(lambda: predict(backend, volume, batch_size=args.batch, probabilities=True))
                results[name].append(seconds)
                difference = float(np.abs(prediction.probabilities - reference).max())
                assert difference < 1e-4, (name, difference)
    base = statistics.median(results["mindspore pynative"])
    print(f"volume {args.slices} x {args.size} x {args.size}, batch {args.batch}, {args.repeats} repeats (medians)")
    for name, values in results.items():
        median = statistics.median(values)
        print(f"  {name:<20} {median:7.2f} s   {base / median:5.2f}x vs pynative   "
              f"{args.slices / median:6.1f} slices/s")
    print(f"  graph first call (compile + run): {first_graph:.2f} s; ONNX export: {export_seconds:.2f} s")


if __name__ == "__main__":
    main()
