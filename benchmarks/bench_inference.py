"""Inference speed at 512x512, batch 1 and 2: every backend side by side, interleaved, in one run.

The first row is what a user types: ``net = create_network(checkpoint=...)``, ``net.set_train(False)``,
``net(x)`` in MindSpore's default PyNative mode, which runs one compiled forward per input shape
(``unet3plus/networks/compiled.py``). Beside it: the eager PyNative call (``net.compiled_eval = False``),
GRAPH mode, GRAPH after ``optimize_for_inference``, PyTorch eager NCHW and channels-last on the same
architecture and weights (``benchmarks/torch_unet3plus.py``), optionally ``torch.compile``, and onnxruntime
on the ONNX export with the session options ``predict`` uses. Every ratio is to PyTorch eager NCHW in the
same run. Every backend's logits are checked against eager PyNative's before timing. Workers start one at
a time and each times its first call alone (for the plain call: compilation + one forward). The FLOP floor
is the network's convolution FLOPs (counted from its cells) over the peak of a 4096^3 float32 matrix
product timed in the same interleaved rounds.

PyTorch and onnxruntime come from the ``bench`` extra; give it a virtual environment of its own::

    python3 -m venv ../bench-venv && ../bench-venv/bin/pip install -e ".[bench]"
    ../bench-venv/bin/python benchmarks/bench_inference.py [--checkpoint PATH] [--rounds 7] [--batches 1 2] [--compile]
"""
from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path
from typing import List, Optional

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import DEFAULT_CHECKPOINT, machine_line, median  # noqa: E402
from _harness import Spec, format_table, run_side_by_side  # noqa: E402

PLAIN_LABEL = "MindSpore net(x), default (PyNative, compiled)"
PYNATIVE_EAGER_LABEL = "MindSpore PyNative eager (compiled_eval=False)"
EAGER_LABEL = "PyTorch eager NCHW"  # out of the box: no environment variables
CHANNELS_LAST_LABEL = "PyTorch eager, channels-last"
PEAK_LABEL = "peak matmul (not a backend)"


def export_onnx(checkpoint: Path, batch: int, size: int, path: Path, upsampling: Optional[str]) -> Path:
    """The ONNX file of the network as trained (``upsampling`` None) or BatchNorm-folded with it, written by
    the package's exporter (``unet3plus export``'s ``export_network``), or ``mindspore.export`` without it."""
    import unet3plus  # noqa: F401
    import mindspore as ms
    import numpy as np

    from _common import load_mindspore_network

    net = load_mindspore_network(checkpoint)
    if upsampling == "default":
        from unet3plus.networks.fusion import optimize_for_inference

        net = optimize_for_inference(net)
    elif upsampling:
        from resize_modes import fuse_with_upsampling

        net = fuse_with_upsampling(net, upsampling)
    try:
        from unet3plus.export import export_network
    except ImportError:
        ms.export(net, ms.Tensor(np.zeros((batch, 3, size, size), np.float32)),
                  file_name=str(path.with_suffix("")), file_format="ONNX")
        return path
    return export_network(net, path, "onnx", (batch, 3, size, size), overwrite=True)


def has_optimizer() -> bool:
    try:
        from unet3plus.networks.fusion import optimize_for_inference  # noqa: F401
    except ImportError:
        return False
    return True


def specs_for(args: argparse.Namespace, onnx_path: Path) -> List[Spec]:
    specs = [Spec(PLAIN_LABEL, ["mindspore", "--mode", "pynative"]),
             Spec(PYNATIVE_EAGER_LABEL, ["mindspore", "--mode", "pynative", "--eager"]),
             Spec("MindSpore GRAPH", ["mindspore", "--mode", "graph"])]
    if has_optimizer():
        specs.append(Spec("MindSpore GRAPH + optimize_for_inference", ["mindspore", "--mode", "graph", "--optimize"]))
    specs.append(Spec(EAGER_LABEL, ["torch"]))
    specs.append(Spec(CHANNELS_LAST_LABEL, ["torch", "--channels-last"]))
    if args.compile:
        specs.append(Spec("torch.compile", ["torch", "--compile"]))
    # predict's session: spinning intra-op threads lose to other processes on few cores (RESULTS.md: ort group)
    specs.append(Spec("onnxruntime (ONNX export, no spinning)", ["onnxruntime", "--onnx", str(onnx_path),
                                                                 "--ort-no-spinning"]))
    specs.append(Spec(PEAK_LABEL, ["peak-matmul"], check_logits=False))
    return specs


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", type=Path, default=DEFAULT_CHECKPOINT)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--compile", action="store_true", help="add torch.compile (minutes of compilation)")
    args = parser.parse_args()

    from flops import count_forward_flops
    from _worker import PEAK_FLOP

    flops = count_forward_flops(args.size)
    computed = count_forward_flops(args.size, as_published=False)
    print(f"machine: {machine_line()}")
    print(f"forward FLOPs per {args.size}x{args.size} image, architecture as published: convolutions "
          f"{flops['conv'] / 1e9:.1f} GFLOP (floor counts these); dense up-sampling matmuls "
          f"{flops['matmul'] / 1e9:.1f} GFLOP (not counted). As the package computes it (up-sampling branches "
          f"at low resolution): {computed['conv'] / 1e9:.1f} + {computed['matmul'] / 1e9:.1f} GFLOP")
    summary = []
    for batch in args.batches:
        with tempfile.TemporaryDirectory(prefix="unet3plus-onnx-") as onnx_dir:
            # ORT folds BatchNorm itself: the optimize_for_inference export measured no faster (RESULTS.md)
            onnx_path = export_onnx(args.checkpoint, batch, args.size, Path(onnx_dir) / "plain.onnx", None)
            common = ["--checkpoint", str(args.checkpoint), "--batch", str(batch), "--size", str(args.size),
                      "--time-first-call"]
            print(f"\nbatch {batch}: {args.rounds} interleaved rounds after {args.warmup} warm-up", flush=True)
            # one worker starting at a time: each first call (compilation included) is timed alone
            results = run_side_by_side(specs_for(args, onnx_path), common, args.rounds, args.warmup,
                                       reference_label=PYNATIVE_EAGER_LABEL, concurrent_start=False)
        peak_gflops = PEAK_FLOP / median(results.pop(PEAK_LABEL).times) / 1e9
        floor_ms = flops["conv"] / 1e9 / peak_gflops * 1e3
        print(f"peak {peak_gflops:.0f} GFLOP/s (4096^3 matmul, interleaved) -> floor {floor_ms:.0f} ms/img")
        print(format_table(results, batch, EAGER_LABEL, floor_ms))
        for label, worker in results.items():
            print(f"  first call (alone): {label:<48} {worker.setup['first_call_s']:6.2f} s, "
                  f"then {median(worker.times):.2f} s per call")
        per_image = {label: median(w.times) / batch for label, w in results.items()}
        plain = results[PLAIN_LABEL]
        summary.append((batch, per_image[PLAIN_LABEL] / per_image[EAGER_LABEL],
                        per_image[PLAIN_LABEL] / per_image[CHANNELS_LAST_LABEL],
                        per_image[PYNATIVE_EAGER_LABEL] / per_image[EAGER_LABEL],
                        plain.setup["first_call_s"], plain.setup["first_call_s"] - median(plain.times)))
    print()
    for batch, vs_eager, vs_channels_last, eager_vs_eager, first, compile_s in summary:
        print(f"batch {batch}: default net(x) / PyTorch eager NCHW = {vs_eager:.2f} (goal <= 1.00); "
              f"/ channels-last = {vs_channels_last:.2f} (stretch <= 1.00); eager PyNative / PyTorch eager NCHW = "
              f"{eager_vs_eager:.2f}; first net(x) {first:.1f} s (goal <= 10), of which compilation ~{compile_s:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
