"""Fine-tuning step, batch 2 at 512x512 (BCE + Dice, Adam): MindSpore GRAPH vs PyTorch eager.

Default: the rivals side by side, interleaved, one worker process each (MindSpore with the memory settings
of the package's trainer, ``unet3plus.training.memory``); prints step time, peak RSS of each worker process
(VmHWM) and the ratios. Both start from the same weights and their first-step losses
are checked to agree. ``--memory-variants`` instead runs MindSpore's memory settings one at a time, each
alone in its own process (so peak RSS is that setting's own), to find where the memory goes.

    python benchmarks/bench_train_step.py [--rounds 5]
    python benchmarks/bench_train_step.py --memory-variants [--steps 3]
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import List

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import DEFAULT_CHECKPOINT, machine_line, median  # noqa: E402
from _harness import Spec, run_side_by_side  # noqa: E402

EAGER_LABEL = "PyTorch eager"  # NCHW unless --torch-channels-last
DEFAULT_LABEL = "MindSpore GRAPH (defaults)"

STOCK_LABEL = "MindSpore GRAPH, stock nn.Conv2d backward (before the lean convolution)"
POOL_DEFAULTS_LABEL = "MindSpore GRAPH, MindSpore's own memory pool (no configure_memory_pool / heap release)"

MEMORY_VARIANTS: List[Spec] = [
    Spec(DEFAULT_LABEL, ["mindspore-train"]),
    Spec(STOCK_LABEL, ["mindspore-train", "--stock-conv"]),
    Spec("MindSpore GRAPH jit_level=O1", ["mindspore-train", "--jit-level", "O1"]),
    Spec("MindSpore GRAPH memory_optimize_level=O1", ["mindspore-train", "--memory-optimize-level", "O1"]),
    Spec("MindSpore PyNative", ["mindspore-train", "--mode", "pynative"]),
    Spec("MindSpore GRAPH threads_num=2", ["mindspore-train", "--threads", "2"]),
    Spec(POOL_DEFAULTS_LABEL, ["mindspore-train", "--mindspore-memory-defaults"]),
    Spec("MindSpore GRAPH, forward + loss only", ["mindspore-train", "--phase", "forward"]),
    Spec("MindSpore GRAPH, + backward to the input (no weight grads)", ["mindspore-train", "--phase", "grad-input"]),
    Spec("MindSpore GRAPH, + weight grads (no optimizer)", ["mindspore-train", "--phase", "grad-weights"]),
    Spec(EAGER_LABEL, ["torch-train"]),
]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", type=Path, default=DEFAULT_CHECKPOINT)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--torch-channels-last", action="store_true",
                        help="rival: PyTorch eager with channels-last, its faster layout on this CPU")
    parser.add_argument("--memory-variants", action="store_true")
    parser.add_argument("--variants", nargs="*", help="with --memory-variants: labels to run (default all)")
    args = parser.parse_args()
    common = ["--checkpoint", str(args.checkpoint), "--batch", str(args.batch), "--size", str(args.size)]
    print(f"machine: {machine_line()}; training step batch {args.batch} at {args.size}x{args.size}"
          + ("; PyTorch eager in channels-last" if args.torch_channels_last else ""))
    if args.memory_variants:
        print("| setting | step s (median) | peak RSS GiB | compile+first step s |\n|---|---|---|---|")
        for spec in MEMORY_VARIANTS:
            if args.variants and spec.label not in args.variants:
                continue
            try:
                worker = run_side_by_side([spec], common, args.rounds, args.warmup)[spec.label]
            except Exception as error:  # one setting failing (e.g. out of memory) must not hide the others
                lines = [line for line in str(error).splitlines() if line.strip() and "[WARNING]" not in line]
                print(f"| {spec.label} | failed (killed: out of memory?): {(lines or ['?'])[-1][:100]} | | |",
                      flush=True)
                continue
            print(f"| {spec.label} | {median(worker.times):.2f} | {worker.peak_rss / 2**30:.2f} | "
                  f"{worker.setup['setup_s']:.1f} |", flush=True)
        return 0
    # Two rivals only: MindSpore's ~14 GB plus two PyTorch workers would not fit a 24 GB machine.
    eager_args = ["torch-train", "--channels-last"] if args.torch_channels_last else ["torch-train"]
    specs = [Spec(DEFAULT_LABEL, ["mindspore-train"]), Spec(EAGER_LABEL, eager_args)]
    results = run_side_by_side(specs, common, args.rounds, args.warmup, reference_label=EAGER_LABEL, tolerance=1e-4)
    eager = median(results[EAGER_LABEL].times)
    print(f"| setting | step s (median of {args.rounds}) | vs {EAGER_LABEL} | peak RSS GiB |\n|---|---|---|---|")
    for label, worker in results.items():
        print(f"| {label} | {median(worker.times):.2f} | {median(worker.times) / eager:.2f}x | "
              f"{worker.peak_rss / 2**30:.2f} |")
    ours = results[DEFAULT_LABEL]
    print(f"\nMindSpore GRAPH step time / PyTorch eager = {median(ours.times) / eager:.2f} (goal <= 1.00); "
          f"peak RSS {ours.peak_rss / 2**30:.2f} GiB vs {results[EAGER_LABEL].peak_rss / 2**30:.2f} GiB (goal <= 4)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
