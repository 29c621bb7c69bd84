"""``unet3plus export --format mindir|onnx --out FILE``."""
from __future__ import annotations

import argparse
import sys

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
    parser.add_argument("--quantize", choices=("int8",),
                        help="ONNX: write an int8 model (ONNX Runtime static QDQ quantization) and report its "
                             "agreement with fp32 (logit error, mask Dice) on held-out inputs; needs "
                             "pip install -e '.[quantize]' in the unet3plus checkout")
    parser.add_argument("--calibration", nargs="+", metavar="FILE",
                        help="--quantize: inputs to calibrate on (CT volumes, DICOM series, images, as predict "
                             "reads them; the last file, or the last quarter of one, is held out for the report). "
                             "Default: synthetic CT-like slices through the model's input preset")
    parser.add_argument("--calibration-slices", type=int, default=16,
                        help="--quantize without --calibration: synthetic slices to calibrate on (default 16)")
    parser.add_argument("--no-progress", action="store_true", help="--quantize: no calibration progress bar")
    parser.add_argument("--verify", action="store_true",
                        help="ONNX: run the file in ONNX Runtime and print the max difference to MindSpore on an "
                             "input prepared as the model was trained (its input config)")
    add_weights_options(parser)
    parser.set_defaults(run=run)


DEFAULT_SIZE = (512, 512)  # LiTS slices


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from .._atomic import remove_stale_partials
    from ..errors import InputError
    from ..runtime.exporting import compare_onnx, export_network, verification_batch
    from ._options import load_network, refuse_outputs_on_inputs, show_info

    refuse_outputs_on_inputs([args.checkpoint, *(args.calibration or ())], [("--out", args.out)])
    remove_stale_partials(Path(args.out).parent)  # what killed exports left there

    if args.quantize:
        if args.format != "onnx":
            raise InputError(f"--quantize works on ONNX models; use --format onnx, not {args.format}")
        from ..export.quantize import quantization_module

        quantization_module()  # a missing extra fails before the network is even loaded
    elif args.calibration:
        raise InputError("--calibration is for --quantize int8; add --quantize int8 or drop it")
    if args.calibration_slices < 1:
        raise InputError(f"--calibration-slices must be at least 1, got {args.calibration_slices}")
    net = load_network(args)
    config = net.model_config
    size = tuple(args.size) if args.size else tuple((config.input and config.input.size) or DEFAULT_SIZE)
    in_channels = config.architecture.in_channels
    shape = (args.batch_size, in_channels, *size)
    if args.quantize:
        from ..export.quantize import quantize_network

        show_info("unet3plus.export.quantize")  # its steps' start lines: tens of seconds in all at 512 x 512
        report = quantize_network(net, args.out, shape, calibration_files=args.calibration or (),
                                  n_calibration=args.calibration_slices, overwrite=args.overwrite,
                                  progress=not args.no_progress)
        print(f"wrote {args.out} (onnx int8 QDQ, input {' x '.join(map(str, shape))})")
        print(report.describe())
        return 0
    print(f"exporting to {args.format.upper()} for input {' x '.join(map(str, shape))} ...", file=sys.stderr)
    path = export_network(net, args.out, args.format, shape, overwrite=args.overwrite)
    print(f"wrote {path} ({args.format}, input {args.batch_size} x {in_channels} x {size[0]} x {size[1]})")
    if args.verify and args.format == "onnx":
        print("checking it against MindSpore ...", file=sys.stderr)
        difference, _ = compare_onnx(net, path, verification_batch(net, (args.batch_size, in_channels, *size)))
        print(f"ONNX Runtime vs MindSpore logits: max abs difference {difference:.3g}")
    return 0
