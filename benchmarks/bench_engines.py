"""The CPU engines side by side on one ONNX export: ONNX Runtime fp32, OpenVINO fp32, bf16 and int8.

Why: ``predict``'s cropped strategies run the faster fp32 engine of this machine (``runtime/engine_choice.py``),
``--fast`` runs OpenVINO in bf16 where the CPU has bf16 units (``docs/whole-ct.md``), and int8 is used only
where it pays (issue 22: at least 1.8x fp32 on a CPU with VNNI). This exports the network (seeded weights: the
speed does not depend on the values) as ``predict`` runs it, at each ``--shapes`` entry (batch 1): the folded
whole-slice network (``exact``) and the cropped one with its window vector (``default``, ``--fast``, here the
336 x 416 crop at (80, 48) that predict runs on the 512 x 512 benchmark CT of ``bench_volume.py``); it makes the
int8 model with the package's ONNX Runtime static quantization (``export.quantize.quantize_onnx``, QDQ,
calibrated on 4 random inputs, convolutions only) and runs it in OpenVINO (which turns QDQ into int8 kernels),
times each engine's forward in interleaved rounds (median), and prints the ratios to ONNX Runtime fp32, the
largest logit difference and the label agreement (Dice of the arg-max labels per class) against it. Agreement
with seeded weights only shows the engines compute the same network; ``benchmarks/bench_int8.py`` measures int8
on a trained one.

    python benchmarks/bench_engines.py [--shapes 512x512 336x416@80x48] [--rounds 5]

Needs the ``openvino`` and ``quantize`` extras (``pip install -e '.[openvino,quantize]'``).
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
from unet3plus.export.quantize import quantize_onnx  # noqa: E402
from unet3plus.metrics.overlap import dice_per_case  # noqa: E402
from unet3plus.networks.fusion import PositionedUNet3Plus, optimize_for_inference, window_vector  # noqa: E402
from unet3plus.runtime.onnx_cache import cached_onnx  # noqa: E402
from unet3plus.runtime.onnx_runtime import OnnxRuntimeBackend  # noqa: E402
from unet3plus.runtime.openvino_runtime import OpenVinoModel, bf16_engine_available  # noqa: E402


FULL = (512, 512)  # the slice a --shapes crop is cut from


def label_dice(a: np.ndarray, b: np.ndarray) -> str:
    """Dice of the arg-max labels of two logit batches, per foreground class (a class neither finds: 1)."""
    scores = dice_per_case(a.argmax(1), b.argmax(1), a.shape[1], include_background=False, ignore_empty=False)
    return " ".join(f"{score:.4f}" for score in scores.mean(0))


def models(net, text: str, scratch: Path):
    """``(label, ONNX path, inputs)`` for one ``--shapes`` entry: ``HxW`` is the whole-slice network ``exact``
    runs; ``HxW@TOPxLEFT`` the cropped network (``PositionedUNet3Plus``) the other strategies run on an
    ``HxW`` crop at that offset of a 512 x 512 slice. Exported through the package's verified ONNX cache."""
    shape_text, _, offset_text = text.partition("@")
    height, width = (int(v) for v in shape_text.split("x"))
    folded = optimize_for_inference(net)
    x = np.random.default_rng(0).random((1, 3, height, width), dtype=np.float32)
    if not offset_text:
        return f"{height}x{width} whole slice", cached_onnx(folded, x.shape, cache_dir=scratch), (x,)
    offset = tuple(int(v) for v in offset_text.split("x"))
    windows = window_vector(FULL, offset, (height, width))
    path = cached_onnx(PositionedUNet3Plus(folded, (height, width)), x.shape, cache_dir=scratch,
                       extra_inputs=(windows,))
    return f"{height}x{width} crop of {FULL[0]}x{FULL[1]}", path, (x, windows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shapes", nargs="+", default=["512x512", "336x416@80x48"],
                        help="HxW: the whole-slice network; HxW@TOPxLEFT: the cropped network at that offset")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    print(f"CPU: {cpu_name()}; ISA: {isa_flags()}; {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; "
          f"OpenVINO reports bf16: {bf16_engine_available()}", flush=True)
    ms.set_seed(0)
    net = unet3plus.UNet3Plus(n_classes=3)
    net.set_train(False)
    print("| network | ONNX Runtime fp32 ms | OpenVINO fp32 | OpenVINO bf16 | OpenVINO int8 | int8 / OpenVINO fp32 | "
          "bf16 max abs logit diff | bf16 label Dice per class | int8 label Dice per class |")
    print("|---|---|---|---|---|---|---|---|---|")
    int8_speedups, int8_over_bf16 = [], []
    with tempfile.TemporaryDirectory() as scratch:
        for text in args.shapes:
            label, path, inputs = models(net, text, Path(scratch))
            calibration = [(np.random.default_rng(seed).random(inputs[0].shape, dtype=np.float32),) + inputs[1:]
                           for seed in range(1, 5)]
            int8 = quantize_onnx(path, Path(scratch) / f"{text.replace('@', '-')}-int8.onnx", calibration,
                                 op_types=["Conv"])  # the convolutions: the time, and what OpenVINO converts
            ort = OnnxRuntimeBackend(path).session
            names = [model_input.name for model_input in ort.get_inputs()]
            engines = {"ort": lambda *xs: ort.run(None, dict(zip(names, xs)))[0], "f32": OpenVinoModel(path, "f32"),
                       "bf16": OpenVinoModel(path, "bf16"), "int8": OpenVinoModel(int8, "f32")}
            outputs = {name: engine(*inputs) for name, engine in engines.items()}  # also the warm-up
            times = {name: [] for name in engines}
            for _ in range(args.rounds):
                for name, engine in engines.items():
                    began = time.perf_counter()
                    engine(*inputs)
                    times[name].append(1000 * (time.perf_counter() - began))
            ms_ = {name: median(values) for name, values in times.items()}
            fp32 = min(ms_["ort"], ms_["f32"])  # the fp32 engine predict would choose here
            int8_speedups.append(fp32 / ms_["int8"])
            int8_over_bf16.append(ms_["bf16"] / ms_["int8"])
            print(f"| {label} | {ms_['ort']:.0f} | {ms_['f32']:.0f} ({ms_['ort'] / ms_['f32']:.2f}x) | "
                  f"{ms_['bf16']:.0f} ({ms_['ort'] / ms_['bf16']:.2f}x) | "
                  f"{ms_['int8']:.0f} ({ms_['ort'] / ms_['int8']:.2f}x) | {ms_['f32'] / ms_['int8']:.2f}x | "
                  f"{np.abs(outputs['bf16'] - outputs['ort']).max():.3g} | "
                  f"{label_dice(outputs['bf16'], outputs['ort'])} | {label_dice(outputs['int8'], outputs['ort'])} |",
                  flush=True)
    worst, over_bf16 = min(int8_speedups), min(int8_over_bf16)
    print(f"int8 (OpenVINO) against the faster fp32 engine: {worst:.2f}x at worst (goal >= 1.8x on a CPU with VNNI: "
          f"{'met' if worst >= 1.8 else 'not met'}); against bf16: {over_bf16:.2f}x at worst. predict runs no int8: "
          "--fast uses bf16 where the CPU has it, and int8 would need calibration data for each fine-tuned network",
          flush=True)


if __name__ == "__main__":
    main()
