"""``unet3plus export --format mindir|onnx --out FILE``."""
from __future__ import annotations

import argparse

from ._options import add_weights_options


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "export", help="export the network to MINDIR or ONNX",
        description="Export the network (published weights, or --checkpoint) for a fixed input shape. ONNX files "
                    "run in ONNX Runtime ('unet3plus predict --backend onnxruntime --onnx-model FILE').")
    parser.add_argument("--format", required=True, choices=("mindir", "onnx"))
    parser.add_argument("--out", required=True, help="output file (.mindir or .onnx)")
    parser.add_argument("--batch-size", type=int, default=1, help="batch dimension of the exported model (default 1)")
    parser.add_argument("--size", type=int, nargs=2, metavar=("H", "W"),
                        help="slice size, multiples of 16 (default: the size the checkpoint was trained at, else "
                             "512 512, LiTS)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing file")
    parser.add_argument("--verify", action="store_true",
                        help="ONNX: run the file in ONNX Runtime and print the max difference to MindSpore on an "
                             "input prepared as the model was trained (its input config)")
    add_weights_options(parser)
    parser.set_defaults(run=run)


DEFAULT_SIZE = (512, 512)  # LiTS slices


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from .._atomic import remove_stale_partials
    from ..export import compare_onnx, export_network, verification_batch
    from ._options import load_network

    remove_stale_partials(Path(args.out).parent)  # what killed exports left there

    net = load_network(args)
    config = net.model_config
    size = tuple(args.size) if args.size else tuple((config.input and config.input.size) or DEFAULT_SIZE)
    in_channels = config.architecture.in_channels
    path = export_network(net, args.out, args.format, (args.batch_size, in_channels, *size),
                          overwrite=args.overwrite)
    print(f"wrote {path} ({args.format}, input {args.batch_size} x {in_channels} x {size[0]} x {size[1]})")
    if args.verify and args.format == "onnx":
        difference, _ = compare_onnx(net, path, verification_batch(net, (args.batch_size, in_channels, *size)))
        print(f"ONNX Runtime vs MindSpore logits: max abs difference {difference:.3g}")
    return 0
