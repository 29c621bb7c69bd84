"""One benchmark backend in its own process, driven line by line over stdin by ``_harness.py``.

A process per backend keeps each one's environment (oneDNN ISA cap, thread counts) and imports (PyTorch's
oneDNN must not inherit the cap that ``import unet3plus`` sets) separate, while the coordinator still
interleaves their timed calls. Protocol lines on stdout start with ``@@``; everything else is noise.

Commands: ``run`` -> ``@@time <seconds>``; ``logits <path.npy>`` -> saves the output, ``@@ok``;
``quit`` -> ``@@rss <peak bytes>`` and exit.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Callable, Dict

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import peak_rss_bytes, sample_batch  # noqa: E402


def mindspore_backend(args: argparse.Namespace) -> Callable[[], np.ndarray]:
    """The package network built as a user builds it (``create_network(checkpoint=...)``, eval mode).

    ``--mode graph`` is GRAPH mode; in PyNative ``net(x)`` takes the compiled path unless ``--eager``
    (``net.compiled_eval = False``); ``--optimize`` is the inference-optimised cell.
    """
    import unet3plus  # noqa: F401  (its oneDNN default, unless the coordinator set the variable)
    import mindspore as ms

    if args.threads:
        ms.device_context.cpu.op_tuning.threads_num(args.threads)
    if args.mode == "graph":
        ms.set_context(mode=ms.GRAPH_MODE)
    if args.jit_level:
        ms.set_context(jit_config={"jit_level": args.jit_level})
    net = unet3plus.create_network(checkpoint=args.checkpoint)
    net.set_train(False)
    if args.eager:
        net.compiled_eval = False
    if args.optimize:
        from resize_modes import fuse_with_upsampling
        from unet3plus.networks.fusion import optimize_for_inference

        if args.upsampling:
            net = fuse_with_upsampling(net, args.upsampling)
        else:
            net = optimize_for_inference(net)
    x = ms.Tensor(sample_batch(args.batch, args.size))
    return lambda: net(x).asnumpy()


def torch_backend(args: argparse.Namespace) -> Callable[[], np.ndarray]:
    """The PyTorch twin (eager, or ``torch.compile`` with ``--compile``), never seeing unet3plus's cap."""
    import torch

    from _common import network_entries
    from torch_unet3plus import load_torch_network

    if args.threads:
        torch.set_num_threads(args.threads)
    net = load_torch_network(network_entries(Path(args.checkpoint)))
    if args.channels_last:
        net = net.to(memory_format=torch.channels_last)
    if args.compile:
        net = torch.compile(net)
    x = torch.from_numpy(sample_batch(args.batch, args.size))
    if args.channels_last:
        x = x.contiguous(memory_format=torch.channels_last)

    def forward() -> np.ndarray:
        with torch.inference_mode():
            return net(x).numpy()

    return forward


def onnxruntime_backend(args: argparse.Namespace) -> Callable[[], np.ndarray]:
    """onnxruntime's CPU provider on the exported model; ``--threads`` sets intra-op threads."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    if args.threads:
        options.intra_op_num_threads = args.threads
    if args.ort_sequential is not None:
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    if args.ort_no_spinning:
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    if args.ort_level:
        options.graph_optimization_level = getattr(ort.GraphOptimizationLevel, args.ort_level)
    session = ort.InferenceSession(args.onnx, options, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    x = sample_batch(args.batch, args.size)
    return lambda: session.run(None, {name: x})[0]


def peak_matmul_backend(args: argparse.Namespace) -> Callable[[], np.ndarray]:
    """A 4096^3 float32 PyTorch matrix product: the machine's peak, timed interleaved with the rivals."""
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    a, b = torch.randn(PEAK_N, PEAK_N), torch.randn(PEAK_N, PEAK_N)
    return lambda: torch.mm(a, b)[:1, :1].numpy()


PEAK_N = 4096
PEAK_FLOP = 2 * PEAK_N ** 3

from _training import mindspore_train_backend, torch_train_backend  # noqa: E402

BACKENDS: Dict[str, Callable[[argparse.Namespace], Callable[[], np.ndarray]]] = {
    "mindspore": mindspore_backend,
    "torch": torch_backend,
    "onnxruntime": onnxruntime_backend,
    "peak-matmul": peak_matmul_backend,
    "mindspore-train": mindspore_train_backend,
    "torch-train": torch_train_backend,
}


def parse(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    parser.add_argument("backend", choices=sorted(BACKENDS))
    parser.add_argument("--checkpoint", required=True)
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("--mode", choices=["pynative", "graph"], default="graph")
    parser.add_argument("--jit-level", default="")
    parser.add_argument("--memory-optimize-level", default="")
    parser.add_argument("--max-device-memory", default="")
    parser.add_argument("--mindspore-memory-defaults", action="store_true",
                        help="training: MindSpore's own memory pool, without the package trainer's settings")
    parser.add_argument("--memory-pool", default="",
                        help='training: mindspore.runtime.set_memory arguments, e.g. "init_size=1GB,increase_size=0.25GB"')
    parser.add_argument("--phase", choices=["step", "forward", "grad-input", "grad-weights"], default="step",
                        help="training: how much of the step to run (memory breakdown)")
    parser.add_argument("--stock-conv", action="store_true",
                        help="training: MindSpore's own nn.Conv2d backward instead of the package's lean one")
    parser.add_argument("--eager", action="store_true", help="PyNative: net.compiled_eval = False")
    parser.add_argument("--time-first-call", action="store_true",
                        help="run the first call during setup and report its time (compilation included)")
    parser.add_argument("--optimize", action="store_true")
    parser.add_argument("--upsampling", default="", help="with --optimize: override its up-sampling choice")
    parser.add_argument("--compile", action="store_true")
    parser.add_argument("--channels-last", action="store_true")
    parser.add_argument("--onnx", default="")
    parser.add_argument("--ort-sequential", action="store_const", const=True)
    parser.add_argument("--ort-no-spinning", action="store_true")
    parser.add_argument("--ort-level", default="")
    return parser.parse_args(argv)


def reply(text: str) -> None:
    sys.stdout.write("@@" + text + "\n")
    sys.stdout.flush()


def main() -> None:
    args = parse()
    started = time.perf_counter()
    forward = BACKENDS[args.backend](args)
    setup = {"setup_s": time.perf_counter() - started}
    output = None
    if args.time_first_call:
        start = time.perf_counter()
        output = forward()
        setup["first_call_s"] = time.perf_counter() - start
    reply("ready " + json.dumps(setup))
    for line in sys.stdin:
        command, _, argument = line.strip().partition(" ")
        if command == "run":
            start = time.perf_counter()
            output = forward()
            reply(f"time {time.perf_counter() - start:.6f}")
        elif command == "logits":
            np.save(argument, forward() if output is None else output)
            reply("ok")
        elif command == "quit":
            reply(f"rss {peak_rss_bytes()}")
            return


if __name__ == "__main__":
    main()
