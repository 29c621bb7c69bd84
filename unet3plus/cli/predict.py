"""``unet3plus predict INPUT... --out DIR``: masks, overlays and (on request) probabilities."""
from __future__ import annotations

import argparse
from pathlib import Path

from ._options import add_inference_options, add_weights_options, check_output_folder


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "predict", help="segment CT volumes/slices (NIfTI, DICOM, PNG/JPEG, .npy) and write masks and overlays",
        description="Segment each INPUT (a NIfTI volume, a DICOM file or series folder, a PNG/JPEG image or a .npy "
                    "array) and write <name>_mask (NIfTI for NIfTI input, with its affine and header, and for a "
                    "DICOM series, on its grid, beside a DICOM SEG <name>_seg.dcm; PNG for one slice; .npy "
                    "otherwise), <name>_overlay.png and, with --probabilities, <name>_probabilities.")
    parser.add_argument("inputs", nargs="+", metavar="INPUT")
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--overwrite", action="store_true", help="write into a non-empty output folder")
    parser.add_argument("--probabilities", action="store_true",
                        help="also write the probabilities (without it none are kept in memory)")
    parser.add_argument("--probabilities-dtype", choices=("float32", "float16"), default="float32",
                        help="float16 halves their memory and size; written as .npy (NIfTI has no float16)")
    parser.add_argument("--series", metavar="UID", help="the SeriesInstanceUID to read from a DICOM folder that "
                                                          "holds several series")
    add_weights_options(parser)
    add_inference_options(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from ..errors import InputError
    from ..files import stem_of
    from ..inference import create_backend, predict, read_input, write_prediction
    from ._options import inference_model, resolve_preset

    out = Path(args.out)
    check_output_folder(out, args.overwrite)
    names = [stem_of(Path(p)) for p in args.inputs]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise InputError(f"several inputs share the name(s) {', '.join(duplicates)}, so their outputs would "
                         "overwrite each other; rename them or predict them into different --out folders")
    missing = [p for p in args.inputs if not Path(p).exists()]
    if missing:
        raise InputError(f"input(s) not found: {', '.join(missing)}; check the paths")
    model, options = inference_model(args)
    preset = resolve_preset(args, model if not isinstance(model, str) else None)
    backend = create_backend(model, args.backend, **options)  # once: a compiled graph serves every input
    for path in args.inputs:
        prediction = predict(backend, read_input(path, series=args.series), preset=preset, threshold=args.threshold,
                             batch_size=args.batch_size, keep_largest=args.keep_largest, allow_thin=args.allow_thin,
                             progress=not args.no_progress, probabilities=args.probabilities,
                             probabilities_dtype=args.probabilities_dtype)
        written = write_prediction(prediction, out, probabilities=args.probabilities)
        print(f"{path}: {prediction.mask.shape} foreground {100 * prediction.foreground_fraction:.2f}% -> "
              + ", ".join(str(p) for p in written))
    return 0
