"""Inference speed at 512x512, batch 1 and 2: every backend side by side, interleaved, in one run.

Backends: MindSpore PyNative, MindSpore GRAPH (the package out of the box: ``import unet3plus``, no
environment variables), MindSpore GRAPH after ``optimize_for_inference``, PyTorch eager and
``torch.compile`` on the same architecture and weights (``benchmarks/torch_unet3plus.py``), and
onnxruntime on the ONNX export. Every backend's logits are checked against MindSpore PyNative's before
timing. The FLOP floor is the network's convolution FLOPs (counted from its cells) over the peak of a
4096^3 float32 matrix product timed in the same interleaved rounds.

    python benchmarks/bench_inference.py [--checkpoint PATH] [--rounds 5] [--batches 1 2] [--no-compile]
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

DEFAULT_LABEL = "MindSpore GRAPH (package default)"
EAGER_LABEL = "PyTorch eager"  # out of the box: NCHW, no environment variables
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


def specs_for(args: argparse.Namespace, onnx_files: dict) -> List[Spec]:
    specs = [Spec("MindSpore PyNative", ["mindspore", "--mode", "pynative"]),
             Spec(DEFAULT_LABEL, ["mindspore", "--mode", "graph"])]
    if has_optimizer():
        specs.append(Spec("MindSpore GRAPH + optimize_for_inference", ["mindspore", "--mode", "graph", "--optimize"]))
        specs.append(Spec("MindSpore GRAPH + optimize_for_inference, jit O1",
                          ["mindspore", "--mode", "graph", "--optimize", "--jit-level", "O1"]))
    specs.append(Spec(EAGER_LABEL, ["torch"]))
    specs.append(Spec("PyTorch eager, channels-last", ["torch", "--channels-last"]))
    if not args.no_compile:
        specs.append(Spec("torch.compile", ["torch", "--compile"]))
    for label, path in onnx_files.items():
        specs.append(Spec(label + ", default session", ["onnxruntime", "--onnx", str(path)]))
        # spinning intra-op threads lose to other processes on a shared machine (RESULTS.md: ort group)
        specs.append(Spec(label + ", no spinning", ["onnxruntime", "--onnx", str(path), "--ort-no-spinning"]))
    specs.append(Spec(PEAK_LABEL, ["peak-matmul"], check_logits=False))
    return specs


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", type=Path, default=DEFAULT_CHECKPOINT)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--no-compile", action="store_true", help="skip torch.compile (slow to compile)")
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
            onnx_files = {"onnxruntime (ONNX export)": export_onnx(args.checkpoint, batch, args.size,
                                                                   Path(onnx_dir) / "plain.onnx", None)}
            common = ["--checkpoint", str(args.checkpoint), "--batch", str(batch), "--size", str(args.size)]
            print(f"\nbatch {batch}: {args.rounds} interleaved rounds after {args.warmup} warm-up", flush=True)
            results = run_side_by_side(specs_for(args, onnx_files), common, args.rounds, args.warmup,
                                       reference_label="MindSpore PyNative")
        peak_gflops = PEAK_FLOP / median(results.pop(PEAK_LABEL).times) / 1e9
        floor_ms = flops["conv"] / 1e9 / peak_gflops * 1e3
        print(f"peak {peak_gflops:.0f} GFLOP/s (4096^3 matmul, interleaved) -> floor {floor_ms:.0f} ms/img")
        print(format_table(results, batch, EAGER_LABEL, floor_ms))
        per_image = {label: median(w.times) / batch * 1e3 for label, w in results.items()}
        fastest = min(per_image, key=per_image.get)
        ours = [label for label in per_image if label.startswith(("MindSpore GRAPH", "onnxruntime"))]
        best_ours = min(ours, key=per_image.get)
        best_eager = min((l for l in per_image if l.startswith(EAGER_LABEL)), key=per_image.get)
        summary.append((batch, per_image[DEFAULT_LABEL] / per_image[EAGER_LABEL],
                        per_image[DEFAULT_LABEL] / per_image[best_eager], best_eager, fastest,
                        per_image[fastest] / floor_ms, best_ours, per_image[best_ours] / floor_ms))
    print()
    for batch, vs_eager, vs_best_eager, best_eager, fastest, fastest_floor, best_ours, ours_floor in summary:
        print(f"batch {batch}: package GRAPH default / PyTorch eager = {vs_eager:.2f} (goal <= 1.00); "
              f"/ {best_eager} = {vs_best_eager:.2f}; fastest overall = {fastest} at {fastest_floor:.2f}x the floor; "
              f"fastest shipped (MindSpore/ONNX) = {best_ours} at {ours_floor:.2f}x the floor (goal <= 1.50)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
