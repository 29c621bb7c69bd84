"""``unet3plus demo``: the published model on a real CT slice (pydicom's ``CT_small.dcm``), in one command."""
from __future__ import annotations

import argparse
from pathlib import Path

DEMO_SLICE = "CT_small.dcm"


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "demo", help="segment a real CT slice with the published weights and write mask + overlay PNGs",
        description="Gets the published weights (downloaded once, SHA-256 verified) unless --checkpoint, segments "
                    f"the CT slice pydicom ships ({DEMO_SLICE}, 128 x 128, in HU via its rescale slope/intercept) "
                    "with the lits2017 preset (the one slice is repeated as its own neighbours), and writes "
                    "ct_small_mask.png and ct_small_overlay.png into --out, replacing earlier demo files there.")
    parser.add_argument("--checkpoint", metavar="PATH", help="a local checkpoint instead of the published weights")
    parser.add_argument("--out", default="unet3plus-demo", help="output folder (default: %(default)s)")
    parser.add_argument("--cache-dir", help="download cache (default: UNET3PLUS_HOME or ~/.cache/unet3plus)")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from ..runtime.predict import predict
    from .._optional import require
    from ..io import read_input, write_prediction
    from ._options import check_output_folder, load_network

    check_output_folder(Path(args.out), overwrite=True)  # a folder (demo files in it are replaced), not a file
    require("pydicom", "demo", "The demo's CT slice")
    from pydicom.data import get_testdata_file

    net = load_network(argparse.Namespace(checkpoint=args.checkpoint, model="unet3plus_lits2017",
                                          cache_dir=args.cache_dir))
    ct = read_input(get_testdata_file(DEMO_SLICE))
    prediction = predict(net, ct, preset="lits2017", allow_thin=True)
    written = write_prediction(prediction, Path(args.out), name="ct_small")
    print(f"weights:    {args.checkpoint or 'published unet3plus_lits2017 (SHA-256 verified)'}")
    print(f"input:      {DEMO_SLICE} from pydicom, {ct.data.shape[1]} x {ct.data.shape[2]}, "
          f"HU {ct.data.min():.0f} to {ct.data.max():.0f}")
    print(f"foreground: {100 * prediction.foreground_fraction:.1f}% of the slice")
    for path in written:
        print(f"wrote       {path}")
    return 0
