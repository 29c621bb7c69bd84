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
    parser.add_argument("--size", type=int, nargs=2, default=(512, 512), metavar=("H", "W"),
                        help="slice size, multiples of 16 (default 512 512, LiTS)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing file")
    parser.add_argument("--verify", action="store_true",
                        help="ONNX: run the file in ONNX Runtime and print the max difference to MindSpore")
    add_weights_options(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from .._atomic import remove_stale_partials
    from ..export import compare_onnx, export_network
    from ..inference.weights import inference_network

    remove_stale_partials(Path(args.out).parent)  # what killed exports left there

    net = inference_network(args.checkpoint, model=args.model, cache_dir=args.cache_dir)
    in_channels = int(net.conv1.conv[0].weight.shape[1])
    path = export_network(net, args.out, args.format, (args.batch_size, in_channels, *args.size),
                          overwrite=args.overwrite)
    print(f"wrote {path} ({args.format}, input {args.batch_size} x {in_channels} x {args.size[0]} x {args.size[1]})")
    if args.verify and args.format == "onnx":
        difference, _ = compare_onnx(net, path)
        print(f"ONNX Runtime vs MindSpore logits: max abs difference {difference:.3g}")
    return 0
