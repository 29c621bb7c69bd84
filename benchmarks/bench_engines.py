"""The CPU engines side by side on one ONNX export: ONNX Runtime fp32, OpenVINO fp32 and OpenVINO bf16.

Why: ``predict``'s default runs ONNX Runtime, and ``--fast`` runs OpenVINO in bf16 where the CPU has bf16
units (``docs/whole-ct.md``). This exports the network (seeded weights: the speed does not depend on the
values) at each ``--shapes`` entry (batch 1), times each engine's forward in interleaved rounds (median), and
prints the ratios to ONNX Runtime with the largest logit difference and the label agreement (Dice of the
arg-max labels per class) against it.

    python benchmarks/bench_engines.py [--shapes 512x512 352x448] [--rounds 5]

Needs the ``openvino`` extra (``pip install -e '.[openvino]'``).
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from statistics import median

import numpy as np

from _common import cpu_name, isa_flags

import mindspore as ms  # noqa: E402  (after _common: the checkout is on sys.path, unet3plus caps oneDNN)

import unet3plus  # noqa: E402
from unet3plus.export import export_network  # noqa: E402
from unet3plus.metrics.overlap import dice_per_case  # noqa: E402
from unet3plus.runtime.onnx_runtime import OnnxRuntimeBackend  # noqa: E402
from unet3plus.runtime.openvino_runtime import OpenVinoModel, bf16_engine_available  # noqa: E402


def label_dice(a: np.ndarray, b: np.ndarray) -> str:
    """Dice of the arg-max labels of two logit batches, per foreground class (a class neither finds: 1)."""
    scores = dice_per_case(a.argmax(1), b.argmax(1), a.shape[1], include_background=False, ignore_empty=False)
    return " ".join(f"{score:.4f}" for score in scores.mean(0))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shapes", nargs="+", default=["512x512", "352x448"])
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    print(f"CPU: {cpu_name()}; ISA: {isa_flags()}; {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; "
          f"OpenVINO reports bf16: {bf16_engine_available()}", flush=True)
    ms.set_seed(0)
    net = unet3plus.UNet3Plus(n_classes=3)
    net.set_train(False)
    print("| shape | ONNX Runtime fp32 ms | OpenVINO fp32 | OpenVINO bf16 | bf16 max abs logit diff | "
          "bf16 label Dice per class |")
    print("|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as scratch:
        for text in args.shapes:
            height, width = (int(v) for v in text.split("x"))
            path = Path(scratch) / f"{height}x{width}.onnx"
            export_network(net, path, "onnx", (1, 3, height, width))
            x = np.random.default_rng(0).random((1, 3, height, width), dtype=np.float32)
            engines = {"ort": OnnxRuntimeBackend(path), "f32": OpenVinoModel(path, "f32"),
                       "bf16": OpenVinoModel(path, "bf16")}
            outputs = {name: engine(x) for name, engine in engines.items()}  # also the warm-up
            times = {name: [] for name in engines}
            for _ in range(args.rounds):
                for name, engine in engines.items():
                    began = time.perf_counter()
                    engine(x)
                    times[name].append(1000 * (time.perf_counter() - began))
            ms_ = {name: median(values) for name, values in times.items()}
            print(f"| {height}x{width} | {ms_['ort']:.0f} | {ms_['f32']:.0f} ({ms_['ort'] / ms_['f32']:.2f}x) | "
                  f"{ms_['bf16']:.0f} ({ms_['ort'] / ms_['bf16']:.2f}x) | "
                  f"{np.abs(outputs['bf16'] - outputs['ort']).max():.3g} | "
                  f"{label_dice(outputs['bf16'], outputs['ort'])} |", flush=True)


if __name__ == "__main__":
    main()
