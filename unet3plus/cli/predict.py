"""``unet3plus predict INPUT... --out DIR``: masks, overlays and (on request) probabilities.

Every input is read and checked before the first output is written; ``--keep-going`` predicts the good ones
and names the others (exit status 6). Under ``msrun`` each worker predicts every ``world_size``-th input.
"""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import Dict, List, Tuple

from . import EXIT_PARTIAL
from ._options import add_inference_options, add_weights_options, check_output_folder, refuse_outputs_on_inputs

logger = logging.getLogger(__name__)


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "predict", help="segment CT volumes/slices (NIfTI, DICOM, PNG/JPEG, .npy; files or folders) and write "
                        "masks and overlays",
        description="Segment each INPUT (a NIfTI volume, a DICOM file or series folder, a PNG/JPEG image, a .npy "
                    "array, or a folder of such files) and write <name>_mask (NIfTI for NIfTI input, with its "
                    "affine and header, and for a DICOM series, on its grid, beside a DICOM SEG <name>_seg.dcm; PNG "
                    "for one slice; .npy otherwise), <name>_overlay.png and, with --probabilities, "
                    "<name>_probabilities. CT inputs get the model's volume preset, 2-D images (and uint8 .npy) the "
                    "image preset. Every input is read and checked before anything is written. Under msrun, the "
                    "inputs are shared out among the workers.")
    parser.add_argument("inputs", nargs="+", metavar="INPUT")
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--overwrite", action="store_true", help="write into a non-empty output folder")
    parser.add_argument("--probabilities", action="store_true",
                        help="also write the probabilities (without it none are kept in memory)")
    parser.add_argument("--probabilities-dtype", choices=("float32", "float16"), default="float32",
                        help="float16 halves their memory and size; written as .npy (NIfTI has no float16)")
    parser.add_argument("--series", metavar="UID", help="the SeriesInstanceUID to read from a DICOM folder that "
                                                          "holds several series")
    parser.add_argument("--keep-going", action="store_true",
                        help="predict the inputs that can be read even if others cannot; the summary names the "
                             "failed ones and the exit status is 6")
    add_weights_options(parser)
    add_inference_options(parser)
    speed = parser.add_argument_group("speed (CT volumes; see docs/whole-ct.md)").add_mutually_exclusive_group()
    speed.add_argument("--exact", dest="strategy", action="store_const", const="exact", default="default",
                       help="every whole slice, the reference answer, the same across releases (default: slices "
                            "without a body are background and long CTs run on the body box, Dice >= 0.999 "
                            "against --exact)")
    speed.add_argument("--fast", dest="strategy", action="store_const", const="fast",
                       help="a coarse pass over a slice every 16 mm finds the organ and only its slices run (Dice >= "
                            "0.99 against --exact)")
    _add_clinical_options(parser)
    parser.set_defaults(run=run)


# -- statistics, preview, output types, resampling (issue 23): options, up-front checks, extra outputs -------------
def _output_type_list(text: str) -> Tuple[str, ...]:
    from ..io.writers import OUTPUT_TYPES

    chosen = tuple(part.strip() for part in text.split(",") if part.strip())
    unknown = [part for part in chosen if part not in OUTPUT_TYPES]
    if unknown or not chosen:
        raise argparse.ArgumentTypeError(f"{', '.join(unknown) or 'nothing'} is not an output type; give a comma "
                                         f"list of {', '.join(OUTPUT_TYPES)}")
    return chosen


def _add_clinical_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("clinical outputs (TotalSegmentator / nnU-Net equivalents)")
    group.add_argument("--statistics", action="store_true",
                       help="also write <name>_statistics.json: per class 'volume' (ml) and 'intensity' (mean HU), "
                            "as TotalSegmentator's --statistics names them, plus voxels, HU standard deviation, "
                            "bounding box in mm, and for lesion classes (tumour, lesion...) each lesion's ml and "
                            "centroid; CT volumes with a voxel spacing only")
    group.add_argument("--preview", action="store_true",
                       help="also write <name>_preview.png: axial, coronal and sagittal planes through the largest "
                            "structure and a montage of axial slices, masks in their colours (TotalSegmentator's "
                            "--preview); volumes only")
    group.add_argument("--output-type", type=_output_type_list, metavar="LIST",
                       help="comma list of mask files: nifti (one multilabel mask, nnU-Net's output and "
                            "TotalSegmentator's --ml), per-class (one binary NIfTI per class in <name>/, "
                            "TotalSegmentator's default), seg (DICOM SEG, DICOM series only), png (2-D inputs). "
                            "Default: nifti (png for a 2-D image), plus seg for a DICOM series")
    group.add_argument("--resample", action="store_true",
                       help="resample slices whose in-plane spacing is outside the model's training range into it "
                            "(bilinear) before the network and the mask back to the input's grid (nearest), as "
                            "nnU-Net resamples every case to its training spacing; without it such inputs get a "
                            "warning")


def _check_clinical(args: argparse.Namespace, checked):
    """``checked`` once it has what these options need, before anything is written (one line each when it
    cannot apply)."""
    from ..io.writers import check_output_types

    source = checked.source
    slices = 1 if checked.preset.kind == "image" or source.data.ndim == 2 else len(source.data)
    check_output_types(args.output_type, source, slices)
    if args.statistics:
        from ..evaluation.statistics import check_measurable

        check_measurable(source)
    if args.preview:
        from ..evaluation.preview import check_previewable

        check_previewable(source, slices)
    if args.resample:
        from ..transforms.spacing import check_resamplable

        check_resamplable(source)
    return checked


def _clinical_outputs(args: argparse.Namespace, prediction, out: Path, name: str) -> List[Path]:
    """The statistics JSON (and its one-line summary) and the preview PNG, where asked for."""
    from ..io.writers import output_names

    names = output_names(name, prediction.source, 1)
    written = []
    if args.statistics:
        from ..evaluation.statistics import statistics_summary, structure_statistics, write_statistics

        statistics = structure_statistics(prediction)
        written.append(write_statistics(prediction, out / names["statistics"], statistics))
        print(f"{name}: {statistics_summary(statistics)}")
    if args.preview:
        from ..evaluation.preview import write_preview

        written.append(write_preview(prediction, out / names["preview"]))
    return written
# -- end of issue 23's options -------------------------------------------------------------------------------------


class _Presets:
    """The preset of each input kind, resolved once per kind (``_options.preset_for``)."""

    def __init__(self, args: argparse.Namespace, net) -> None:
        self.args, self.net, self.chosen = args, net, {}

    def __call__(self, kind: str):
        from ._options import preset_for

        if kind not in self.chosen:
            self.chosen[kind] = preset_for(self.args, self.net, kind)
        return self.chosen[kind]


def _check_all(items, args, presets, fixed_shape) -> Tuple[Dict[int, object], List[Tuple[object, Exception]]]:
    """Read and check every input: ``{index: CheckedInput}`` of the good ones and ``(item, error)`` of the
    others. Inputs are checked last first and only the last checked keeps its pixels, so that memory holds
    one input and the first one to predict is not read twice."""
    from ..errors import UserFacingError
    from ..runtime.inputs import check_input

    checked: Dict[int, object] = {}
    failures = []
    for index in reversed(range(len(items))):
        try:
            checked[index] = _check_clinical(args, check_input(items[index], presets, series=args.series,
                                                               allow_thin=args.allow_thin, fixed_shape=fixed_shape))
        except UserFacingError as error:
            failures.append((items[index], error))
            continue
        for other in checked:
            if other != index:
                checked[other].source = None  # read again when its turn comes
    return checked, failures[::-1]


def _report(item, error: Exception) -> None:
    from ..runtime.inputs import error_with_path

    print(f"unet3plus predict: error: {error_with_path(item, error)}", file=sys.stderr)


def _predict_each(mine, checked, args, backend, out: Path) -> List[object]:
    """Predict and write this worker's checked inputs in order; return those that failed (``--keep-going``)."""
    from ..runtime.predict import predict
    from ..errors import UserFacingError
    from ..io import read_input, write_prediction

    failed = []
    for index, item in enumerate(mine):
        if index not in checked:
            continue
        try:
            source = checked[index].source or read_input(item.path, series=args.series)
            prediction = predict(backend, source, preset=checked[index].preset, threshold=args.threshold,
                                 batch_size=args.batch_size, keep_largest=args.keep_largest,
                                 allow_thin=checked[index].allow_thin, progress=not args.no_progress,
                                 probabilities=args.probabilities, probabilities_dtype=args.probabilities_dtype,
                                 strategy=args.strategy,
                                 resample=args.resample)
        except UserFacingError as error:
            if not args.keep_going:
                raise
            _report(item, error)
            failed.append(item)
            continue
        finally:
            checked[index].source = None
        written = write_prediction(prediction, out, name=item.name, probabilities=args.probabilities,
                                   output_types=args.output_type) + _clinical_outputs(args, prediction, out, item.name)
        print(f"{item.path}: {prediction.mask.shape} foreground {100 * prediction.foreground_fraction:.2f}% -> "
              + ", ".join(str(p) for p in written))
    return failed


def _failure_line(failures, n_failed: int, n_inputs: int, keep_going: bool) -> str:
    from ..runtime.inputs import error_with_path

    if not failures:
        return (f"{n_failed} of {n_inputs} inputs cannot be predicted (found by the other msrun workers; see their "
                "errors), so nothing was written")
    listed = "; ".join(error_with_path(item, error) for item, error in failures)
    if n_failed == 1 and n_inputs == 1:
        return listed
    advice = "" if keep_going else "; fix or remove them, or pass --keep-going to predict the others"
    return f"{n_failed} of {n_inputs} inputs cannot be predicted, so nothing was written: {listed}{advice}"


def run(args: argparse.Namespace) -> int:
    from ..errors import InputError
    from ..runtime import create_backend
    from ..runtime.inputs import expand_inputs, prediction_file_names
    from ..training.distributed import Distributed
    from ._options import inference_model

    dist = Distributed.setup(data_parallel=False)  # first: msrun's scheduler process serves the job and exits here
    out = Path(args.out)
    items = expand_inputs(args.inputs)
    refuse_outputs_on_inputs([*args.inputs, *(item.path for item in items), args.checkpoint, args.onnx_model],
                             [("--out", out / name) for item in items for name in prediction_file_names(item.name)],
                             out_folder=out)
    check_output_folder(out, args.overwrite)
    model, options = inference_model(args)
    backend = create_backend(model, args.backend, **options)  # once: a compiled graph serves every input
    presets = _Presets(args, model if not isinstance(model, str) else None)
    mine = dist.shard(items)
    checked, failures = _check_all(mine, args, presets, backend.fixed_shape)
    n_failed = dist.total(len(failures))  # every worker has checked its inputs before any writes
    if n_failed and (not args.keep_going or n_failed == len(items)):
        raise InputError(_failure_line(failures, n_failed, len(items), args.keep_going))
    for item, error in failures:
        _report(item, error)
    failed = [item for item, _ in failures] + _predict_each(mine, checked, args, backend, out)
    if not args.keep_going:  # nothing failed (a failure raised above); no worker waits for a count that never comes
        return 0
    n_failed = dist.total(len(failed))
    if not n_failed:
        return 0
    others = " (and on the other msrun workers: see their output)" if n_failed > len(failed) else ""
    print(f"predicted {len(items) - n_failed} of {len(items)} inputs; failed: "
          + (", ".join(str(item.path) for item in failed) or "none here") + others)
    return EXIT_PARTIAL
