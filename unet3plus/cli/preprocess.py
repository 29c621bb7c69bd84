"""``unet3plus preprocess-lits``: LiTS volumes to the PNG image/mask folders the trainer reads."""
from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import tempfile
from pathlib import Path
from typing import Iterator

from ._options import check_output_folder


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "preprocess-lits", help="turn LiTS volume-N/segmentation-N NIfTI files into train/val PNG folders",
        description="Write OUT/{train,val}/{images,masks}/<case>_<slice>.png: images are the preset's network "
                    "input as 8-bit RGB (lits2017: what the published weights were trained on), masks are labels "
                    "0/1 (liver and tumour both foreground). Cases are paired by name and split by patient.")
    parser.add_argument("--input", required=True, help="folder with volume-N.nii[.gz] and segmentation-N.nii[.gz]")
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--preset", default="lits2017", choices=("lits2017", "standard"))
    parser.add_argument("--val-fraction", type=float, default=0.2, help="fraction of patients for validation")
    parser.add_argument("--seed", type=int, default=0, help="seed of the patient split")
    parser.add_argument("--all-slices", action="store_true",
                        help="write every slice (default: first to last labelled slice, as published)")
    parser.add_argument("--keep-tumour", action="store_true", help="masks 0/1/2 (liver/tumour) instead of 0/1")
    parser.add_argument("--overwrite", action="store_true", help="write into a non-empty output folder")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from ..data.lits import preprocess_lits

    out = Path(args.out)
    check_output_folder(out, args.overwrite)
    with staging_folder(out) as staging:  # a failure (a truncated volume, say) leaves nothing under --out
        summary = preprocess_lits(Path(args.input), staging, preset=args.preset, val_fraction=args.val_fraction,
                                  seed=args.seed, all_slices=args.all_slices, keep_tumour=args.keep_tumour)
    for split in ("train", "val"):
        print(f"{split}: {len(summary.cases[split])} case(s), {summary.slices[split]} slice(s) -> {out / split}")
    return 0


@contextlib.contextmanager
def staging_folder(out: Path) -> Iterator[Path]:
    """A hidden folder beside ``out`` to write everything into; on success its files move into ``out``
    (each rename atomic), on failure it is deleted, so ``out`` never holds a partial result."""
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.staging-", dir=out.parent))
    try:
        yield staging
        if not out.exists():
            os.rename(staging, out)
            return
        for path in sorted(staging.rglob("*")):
            if path.is_file():
                target = out / path.relative_to(staging)
                target.parent.mkdir(parents=True, exist_ok=True)
                os.replace(path, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
