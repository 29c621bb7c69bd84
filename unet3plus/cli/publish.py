"""``unet3plus publish RUN_DIR|CKPT --out DIR --url BASE_URL``: a checkpoint and its hub card to upload."""
from __future__ import annotations

import argparse


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "publish", help="write a shareable checkpoint (config inside) and its MindSpore Hub card",
        description="Write NAME.ckpt (network only, with its model config) and NAME.md (a MindSpore Hub card whose "
                    "asset-link is BASE_URL/NAME.ckpt and asset-sha256 its hash) into --out. Upload both to BASE_URL; "
                    "readers load them with unet3plus.create_network('BASE_URL/NAME.md').")
    parser.add_argument("source", metavar="RUN_DIR|CKPT", help="a training run's --out folder (its best.ckpt) or a "
                                                             "checkpoint")
    parser.add_argument("--last", action="store_true", help="publish the run folder's last.ckpt (the final epoch's "
                                                            "network) instead of its best.ckpt")
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--url", required=True, help="public http(s) folder the files will be uploaded to (no "
                                                      "credentials, query string or fragment: it goes into the card)")
    parser.add_argument("--name", help="model name, used for the file names (default: unet3plus_<run folder>)")
    parser.add_argument("--train-dataset", default="custom", help="the card's train-dataset (default: %(default)s)")
    parser.add_argument("--license", default="Apache-2.0", help="license of the weights (default: %(default)s)")
    parser.add_argument("--author", default="unet3plus user", help="the card's author and user-id")
    parser.add_argument("--overwrite", action="store_true", help="replace existing files of the same names")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from ..hub.publish import check_base_url, publish, publish_targets
    from ._options import refuse_outputs_on_inputs

    checkpoint, _, targets = publish_targets(args.source, args.out, args.name, last=args.last)
    check_base_url(args.url)
    refuse_outputs_on_inputs([args.source, checkpoint], [("--out/--name", path) for path in targets],
                             out_folder=args.out)
    print(f"publishing {checkpoint}")
    result = publish(args.source, args.out, args.url, args.name, train_dataset=args.train_dataset,
                     license=args.license, author=args.author, overwrite=args.overwrite, last=args.last)
    print(f"wrote {result.checkpoint} (SHA-256 {result.sha256})")
    print(f"wrote {result.card}; upload both so that {result.asset_link} serves the checkpoint")
    return 0
