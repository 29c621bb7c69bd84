"""``unet3plus evaluate``: Dice/IoU per case and overall, as a table on stdout and a CSV."""
from __future__ import annotations

import argparse
from pathlib import Path

from ._options import add_inference_options, add_weights_options


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "evaluate", help="Dice/IoU of the model on labelled images or volumes (table + CSV)",
        description="Predict every case and score it against its labels: --images/--masks (2-D files paired by "
                    "name, e.g. the PNGs of preprocess-lits; use --preset image for them) or --volumes/--labels "
                    "(NIfTI, volume-N with segmentation-N). Non-zero labels are foreground for a one-channel model.")
    data = parser.add_argument_group("data")
    data.add_argument("--images", help="folder of 2-D images")
    data.add_argument("--masks", help="folder of 2-D masks with the same file names")
    data.add_argument("--volumes", help="folder of NIfTI CT volumes")
    data.add_argument("--labels", help="folder of NIfTI label volumes (default: --volumes)")
    parser.add_argument("--csv", help="write the per-case table here (default: print only)")
    add_weights_options(parser)
    add_inference_options(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from ..errors import InputError
    from ..inference import create_backend
    from ..inference.evaluate import evaluate
    from ..inference.pairing import pair_volumes
    from ._options import inference_model, resolve_preset

    if bool(args.images) == bool(args.volumes) or bool(args.images) != bool(args.masks):
        raise InputError("give either --images and --masks (2-D files) or --volumes [--labels] (NIfTI)")
    if args.images:
        from ..data.folder import pair_files

        cases = pair_files(Path(args.images), Path(args.masks))
    else:
        cases = pair_volumes(Path(args.volumes), Path(args.labels or args.volumes))
    model, options = inference_model(args)
    preset = resolve_preset(args, model if not isinstance(model, str) else None,
                            "image" if args.images else "volume")
    backend = create_backend(model, args.backend, **options)
    result = evaluate(backend, cases, preset=preset, threshold=args.threshold,
                      batch_size=args.batch_size, keep_largest=args.keep_largest, allow_thin=args.allow_thin,
                      progress=not args.no_progress)
    print(result.table())
    if args.csv:
        print(f"wrote {result.write_csv(Path(args.csv))}")
    return 0
