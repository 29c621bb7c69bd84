"""Inference levers, each group measured side by side (interleaved) at 512x512, batch 1.

Groups (``--groups``):
  isa       which oneDNN ISA caps avoid MindSpore's reference convolution (ONEDNN_VERBOSE probe), then
            GRAPH-mode time for every cap that does not hit the reference kernel
  jit       GRAPH jit levels O0 / O1 / O2
  fusion    BatchNorm folding and the up-sampling variants (low-resolution / matmul / two-tap gather / resize kernel)
  threads   MindSpore CPU kernel threads (op_tuning.threads_num) and OMP_NUM_THREADS
  ort       onnxruntime session options, on the plain and the optimised export
  torch     PyTorch eager NCHW vs channels-last (context for the rival)
  plain     the default net(x) (PyNative, compiled) with jit_level O1, threads_num(2), OMP_NUM_THREADS=2,
            beside PyTorch eager NCHW and channels-last (not in the default groups)

    python benchmarks/bench_levers.py [--groups isa jit fusion threads ort torch plain] [--rounds 5]
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Dict, List, Tuple

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import DEFAULT_CHECKPOINT, machine_line  # noqa: E402
from _harness import Spec, format_table, run_side_by_side  # noqa: E402

ISA_CAPS = ["AVX", "AVX2", "AVX2_VNNI", "AVX512_CORE", "AVX512_CORE_VNNI", "AVX512_CORE_BF16",
            "AVX512_CORE_AMX", "ALL"]
ISA_PROBE = """
import unet3plus
import numpy as np, mindspore as ms
from mindspore import nn
conv = nn.Conv2d(16, 16, 3, pad_mode="pad", padding=1)
conv(ms.Tensor(np.ones((1, 16, 32, 32), np.float32)))
"""


ONNX_VARIANTS = {"as trained": None, "BN folded": "low-resolution", "BN folded + matmul up-sampling": "matmul",
                 "BN folded + gather up-sampling": "gather"}


def probe_isa(cap: str) -> Tuple[str, str]:
    """(ISA oneDNN reports, convolution implementation it picked) under ``ONEDNN_MAX_CPU_ISA=cap``."""
    env = dict(os.environ, ONEDNN_VERBOSE="1", ONEDNN_MAX_CPU_ISA=cap)
    log = subprocess.run([sys.executable, "-c", ISA_PROBE], env=env, capture_output=True, text=True,
                         timeout=300).stdout
    isa = next((line.split("isa:")[1] for line in log.splitlines() if ",isa:" in line), "?")
    kernel = next((line.split(",")[6] for line in log.splitlines() if ",exec,cpu,convolution," in line), "?")
    return isa, kernel


def isa_group(args) -> List[Spec]:
    print("oneDNN ISA cap -> convolution implementation (1x16x32x32 probe):")
    specs = []
    for cap in ISA_CAPS:
        isa, kernel = probe_isa(cap)
        reference = "ref" in kernel
        print(f"  {cap:<18} isa: {isa:<60} conv: {kernel}{'   <- reference kernel, not timed' if reference else ''}")
        if not reference:
            specs.append(Spec(f"GRAPH, ONEDNN_MAX_CPU_ISA={cap}", ["mindspore"], {"ONEDNN_MAX_CPU_ISA": cap}))
    return specs


def jit_group(args) -> List[Spec]:
    return [Spec("GRAPH (jit level unset)", ["mindspore"])] + [
        Spec(f"GRAPH jit_level={level}", ["mindspore", "--jit-level", level]) for level in ("O0", "O1", "O2")]


def fusion_group(args) -> List[Spec]:
    specs = [Spec("GRAPH, UNet3Plus as trained", ["mindspore"])]
    for mode in ("low-resolution", "matmul", "gather", "interpolate"):
        specs.append(Spec(f"GRAPH, BN folded, up-sampling={mode}", ["mindspore", "--optimize", "--upsampling", mode]))
    specs.append(Spec("PyNative eager, UNet3Plus as trained", ["mindspore", "--mode", "pynative", "--eager"]))
    specs.append(Spec("PyNative, BN folded, up-sampling=interpolate", ["mindspore", "--mode", "pynative", "--optimize",
                                                                       "--upsampling", "interpolate"]))
    return specs


def threads_group(args) -> List[Spec]:
    specs = [Spec("GRAPH, threads default", ["mindspore"])]
    for threads in (1, 2, 4):
        specs.append(Spec(f"GRAPH, threads_num={threads}", ["mindspore", "--threads", str(threads)]))
    specs.append(Spec("GRAPH, OMP_NUM_THREADS=2", ["mindspore"], {"OMP_NUM_THREADS": "2"}))
    return specs


def ort_group(args, onnx_files: Dict[str, Path]) -> List[Spec]:
    """Session options on the export as trained; the other exports with default options."""
    (first_name, first_path), *others = onnx_files.items()
    base = ["onnxruntime", "--onnx", str(first_path)]
    specs = [Spec(f"ORT {first_name}, defaults", base),
             Spec(f"ORT {first_name}, intra_op_threads=2", base + ["--threads", "2"]),
             Spec(f"ORT {first_name}, no spinning", base + ["--ort-no-spinning"]),
             Spec(f"ORT {first_name}, ORT_ENABLE_BASIC", base + ["--ort-level", "ORT_ENABLE_BASIC"])]
    specs += [Spec(f"ORT {name}, defaults", ["onnxruntime", "--onnx", str(path)]) for name, path in others]
    return specs


def torch_group(args) -> List[Spec]:
    return [Spec("PyTorch eager NCHW", ["torch"]), Spec("PyTorch eager channels-last", ["torch", "--channels-last"]),
            Spec("PyTorch eager, ONEDNN_MAX_CPU_ISA=AVX2", ["torch"], {"ONEDNN_MAX_CPU_ISA": "AVX2"})]


def plain_group(args) -> List[Spec]:
    plain = ["mindspore", "--mode", "pynative"]
    return [Spec("net(x), default", plain), Spec("net(x), jit_level O1", plain + ["--jit-level", "O1"]),
            Spec("net(x), threads_num(2)", plain + ["--threads", "2"]),
            Spec("net(x), OMP_NUM_THREADS=2", plain, {"OMP_NUM_THREADS": "2"})] + torch_group(args)[:2]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", type=Path, default=DEFAULT_CHECKPOINT)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--groups", nargs="+", default=["isa", "jit", "fusion", "threads", "ort", "torch"])
    args = parser.parse_args()
    print(f"machine: {machine_line()}; {args.size}x{args.size}, batch {args.batch}")
    common = ["--checkpoint", str(args.checkpoint), "--batch", str(args.batch), "--size", str(args.size)]
    builders = {"isa": isa_group, "jit": jit_group, "fusion": fusion_group, "threads": threads_group,
                "torch": torch_group, "plain": plain_group}
    for group in args.groups:
        with tempfile.TemporaryDirectory(prefix="unet3plus-levers-") as scratch:
            if group == "ort":
                from bench_inference import export_onnx

                onnx_files = {kind: export_onnx(args.checkpoint, args.batch, args.size, Path(scratch) / f"{index}.onnx",
                                                upsampling) for index, (kind, upsampling) in enumerate(ONNX_VARIANTS.items())}
                specs = ort_group(args, onnx_files)
            else:
                specs = builders[group](args)
            print(f"\n## {group}: {args.rounds} interleaved rounds after {args.warmup} warm-up", flush=True)
            results = run_side_by_side(specs, common, args.rounds, args.warmup)
        print(format_table(results, args.batch, specs[0].label, None), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
