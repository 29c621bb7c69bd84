"""Options shared by the subcommands that run the network."""
from __future__ import annotations

import argparse
from pathlib import Path


def add_weights_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("weights")
    group.add_argument("--checkpoint", metavar="PATH",
                       help="a local or fine-tuned checkpoint (default: the published weights, downloaded once "
                            "and SHA-256 verified)")
    group.add_argument("--model", default="unet3plus_lits2017", help="published model name (default: %(default)s)")
    group.add_argument("--cache-dir", help="download cache (default: UNET3PLUS_HOME or ~/.cache/unet3plus)")


def add_inference_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("inference")
    group.add_argument("--preset", help="input preset: lits2017 (the published weights' input, default for "
                                        "them), standard, image")
    group.add_argument("--threshold", type=float, default=0.5, help="foreground probability threshold (default 0.5)")
    group.add_argument("--batch-size", type=int, default=4, help="slices per forward pass (default 4)")
    group.add_argument("--keep-largest", action="store_true", help="keep only the largest connected component")
    group.add_argument("--allow-thin", action="store_true",
                       help="accept volumes with fewer than 3 slices (repeats the edge slices)")
    group.add_argument("--backend", default="mindspore",
                       help="mindspore (default), onnxruntime (with --onnx-model), or a registered backend")
    group.add_argument("--onnx-model", metavar="PATH", help="the .onnx file for --backend onnxruntime "
                                                             "(make one with 'unet3plus export --format onnx')")
    group.add_argument("--mode", choices=("auto", "graph", "pynative"), default="auto",
                       help="MindSpore execution: graph compiles once per run (default: auto)")
    group.add_argument("--no-progress", action="store_true", help="no progress bar")


def default_preset(args: argparse.Namespace) -> str:
    from ..hub import get_pretrained_config

    return args.preset or get_pretrained_config(args.model).input_preset


def inference_model(args: argparse.Namespace):
    """``(model, backend options)`` for ``predict``: the ONNX file, or the network from the weights options."""
    from ..errors import InputError

    if args.backend == "onnxruntime":
        if not args.onnx_model:
            raise InputError("--backend onnxruntime needs --onnx-model PATH; make one with "
                             "'unet3plus export --format onnx --out model.onnx'")
        if args.checkpoint:
            raise InputError("--checkpoint is not used with --backend onnxruntime (the weights are in the "
                             ".onnx file); drop one of them")
        return str(Path(args.onnx_model)), {}
    from ..inference.weights import inference_network

    net = inference_network(args.checkpoint, model=args.model, cache_dir=args.cache_dir)
    return net, ({"mode": args.mode} if args.backend == "mindspore" else {})


def check_output_folder(folder: Path, overwrite: bool) -> None:
    """An existing non-empty output folder is an error unless ``--overwrite`` (nothing is replaced silently).

    Temporary files that killed runs left behind are removed first and never count as content."""
    from .._atomic import is_partial, remove_stale_partials
    from ..errors import InputError

    if folder.exists() and not folder.is_dir():
        raise InputError(f"output path {folder} exists and is not a folder; choose another --out")
    if folder.is_dir():
        remove_stale_partials(folder)
    if folder.is_dir() and any(not is_partial(path) for path in folder.iterdir()) and not overwrite:
        raise InputError(f"output folder {folder} already exists and is not empty; choose another --out, or pass "
                         "--overwrite to replace files of the same names in it")
