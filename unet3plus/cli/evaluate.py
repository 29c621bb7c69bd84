"""``unet3plus evaluate``: LiTS metrics per case and overall (table on stdout; CSV, JSON, PNG on request)."""
from __future__ import annotations

import argparse
from pathlib import Path

from ._options import add_inference_options, add_weights_options


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "evaluate", help="LiTS metrics (Dice, Jaccard/VOE, RVD, ASSD/RMSD/MSSD/HD95 in mm, lesion detection) of "
                         "existing masks or of the model, against labels (table, CSV, JSON, PNG)",
        description="Score segmentations against their labels. Existing masks need no model: --predictions DIR "
                    "--labels DIR (NIfTI, DICOM SEG or PNG, paired by name; a _mask or _seg suffix and segmentation-N "
                    "for volume-N are understood). Or predict with the model first: --images/--masks (2-D files "
                    "paired by name, use --preset image for them) or --volumes [--labels] (NIfTI, volume-N with "
                    "segmentation-N). Distances are in mm from each label file's voxel spacing; by default "
                    "surfaces use face connectivity and HD95 pools both directions (medpy's conventions; see "
                    "--surface-connectivity, --hd95), and the JSON states the conventions used.")
    data = parser.add_argument_group("data")
    data.add_argument("--predictions", help="folder of existing predicted masks (scored without a model)")
    data.add_argument("--images", help="folder of 2-D images to predict")
    data.add_argument("--masks", help="folder of 2-D masks with the same file names as --images")
    data.add_argument("--volumes", help="folder of NIfTI CT volumes to predict")
    data.add_argument("--labels", help="folder of label masks (default with --volumes: --volumes)")
    scoring = parser.add_argument_group("scoring")
    scoring.add_argument("--classes", help="binary (every non-zero label is foreground; default for one-channel "
                                           "models and --predictions), lits (liver = labels 1 and 2, tumour = 2, "
                                           "with lesion detection), or N labels including background")
    scoring.add_argument("--spacing", type=float, nargs="+", metavar="MM",
                         help="voxel spacing in mm (Z Y X, or one value) instead of the files' own")
    scoring.add_argument("--surface-connectivity", type=int, choices=(6, 26), default=6,
                         help="which neighbours make a voxel a border voxel for ASSD/RMSD/MSSD/HD95: 6 = face "
                              "neighbours (default; medpy's connectivity=1 and MONAI's; 4 edge neighbours in 2-D), "
                              "26 = full neighbourhood (8 in 2-D; thicker borders, lower distances)")
    scoring.add_argument("--hd95", choices=("pooled", "directed-max"), default="pooled",
                         help="pooled (default; medpy's hd95): 95th percentile of both directions' distances "
                              "together; directed-max (MONAI's): the larger of the two directed 95th percentiles")
    output = parser.add_argument_group("output")
    output.add_argument("--csv", help="write the per-case table and the aggregates here")
    output.add_argument("--json", help="write every score and the aggregates here")
    output.add_argument("--plot", help="write a PNG of the per-case Dice and ASSD distributions here")
    output.add_argument("--overwrite", action="store_true", help="replace existing --csv/--json/--plot files")
    add_weights_options(parser)
    add_inference_options(parser)
    parser.set_defaults(run=run)


def _cases_for_model(args: argparse.Namespace):
    from ..errors import InputError
    from ..io.pairing import pair_volumes

    if bool(args.images) == bool(args.volumes) or bool(args.images) != bool(args.masks):
        raise InputError("give --predictions and --labels (existing masks), --images and --masks (2-D files), "
                         "or --volumes [--labels] (NIfTI)")
    if args.images:
        from ..data.folder import pair_files

        return pair_files(Path(args.images), Path(args.masks))
    return pair_volumes(Path(args.volumes), Path(args.labels or args.volumes))


def _check_classes(value) -> None:
    """A bad ``--classes`` is one line naming the accepted values, before any work."""
    from ..errors import InputError
    from ..evaluation.evaluate import scored_classes

    try:
        scored_classes(value)
    except ValueError:
        raise InputError(f"--classes {value} is not accepted; use binary, lits, or the number of labels including "
                         "background (at least 2)") from None


def run(args: argparse.Namespace) -> int:
    from ..errors import InputError
    from ..evaluation.evaluate import evaluate, pair_predictions, score_masks
    from ..evaluation.scores import check_outputs_free
    from ._options import refuse_outputs_on_inputs

    if args.classes is not None:
        _check_classes(args.classes)
    refuse_outputs_on_inputs([args.predictions, args.labels, args.images, args.masks, args.volumes, args.checkpoint,
                              args.onnx_model],
                             [("--csv", args.csv), ("--json", args.json), ("--plot", args.plot)])
    outputs = [Path(p) if p else None for p in (args.csv, args.json, args.plot)]
    check_outputs_free(outputs, args.overwrite)  # before any work
    if args.predictions:
        if not args.labels or args.images or args.volumes or args.masks:
            raise InputError("--predictions takes --labels (the folder of label masks) and no --images, --masks or "
                             "--volumes")
        result = score_masks(pair_predictions(Path(args.predictions), Path(args.labels)),
                             classes=args.classes or "binary", spacing=args.spacing,
                             connectivity=args.surface_connectivity, hd95=args.hd95)
    else:
        from ..runtime import create_backend
        from ._options import inference_model, preset_for

        cases = _cases_for_model(args)
        model, options = inference_model(args)
        preset = preset_for(args, model, "image" if args.images else "volume")
        backend = create_backend(model, args.backend, **options)
        result = evaluate(backend, cases, classes=args.classes, spacing=args.spacing, preset=preset,
                          threshold=args.threshold, batch_size=args.batch_size, keep_largest=args.keep_largest,
                          allow_thin=args.allow_thin, progress=not args.no_progress,
                          connectivity=args.surface_connectivity, hd95=args.hd95)
    print(result.table())
    for path, write in zip(outputs, (result.write_csv, result.write_json, result.write_plot)):
        if path is not None:
            print(f"wrote {write(path, overwrite=args.overwrite)}")
    return 0
