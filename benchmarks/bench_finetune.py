"""Fine-tuning benchmark on synthetic organs: held-out Dice and time per epoch, from the published-format
golden checkpoint ("pretrained") and from scratch, for 1/3 input channels and binary/3-class masks.

    python benchmarks/bench_finetune.py --size 64 --train 32 --val 16 --epochs 4

The golden checkpoint holds known, non-trivial weights in the published training-step format, not the
trained LiTS2017 weights (they cannot be downloaded here), so "pretrained" measures the loading and
transfer path (first conv adapted to 1 channel, head replaced for 3 classes), not the benefit of real
pretraining. Pass --checkpoint PATH to use the published file instead. Timings depend on the machine and
its load: compare the rows of one run with each other.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

import unet3plus  # noqa: F401  (oneDNN default before MindSpore's first convolution)
from unet3plus.data import DataOptions, SegmentationDataset, synthetic_organs
from unet3plus.training import TrainConfig, Trainer

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_CHECKPOINT = Path(os.environ.get("UNET3PLUS_REFERENCE_DIR", REPO_ROOT.parent / "shared" / "reference")
                          ) / "golden_published_format.ckpt"


def run_case(channels: int, n_classes: int, checkpoint, args) -> dict:
    options = DataOptions(n_classes=n_classes, in_channels=channels)
    size = (args.size, args.size)
    train_data = SegmentationDataset.from_arrays(
        *synthetic_organs(args.train, size, channels=channels, n_classes=n_classes, seed=args.seed), options)
    held_out = SegmentationDataset.from_arrays(
        *synthetic_organs(args.val, size, channels=channels, n_classes=n_classes, seed=args.seed + 1000), options)
    with tempfile.TemporaryDirectory() as out:
        config = TrainConfig(Path(out) / "run", epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
                             checkpoint=checkpoint, seed=args.seed, progress=False)
        trainer = Trainer(train_data, held_out, config, log=lambda message: None)
        start = trainer.validate()["mean_dice"]
        began = time.perf_counter()
        result = trainer.fit()
        total = time.perf_counter() - began
    seconds = [row["seconds"] for row in result.history]
    return {"start": start, "final": result.history[-1]["val_dice"], "best": result.best_dice,
            "first_epoch_s": seconds[0], "later_epoch_s": float(np.mean(seconds[1:])) if len(seconds) > 1 else float("nan"),
            "total_s": total}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--train", type=int, default=32, help="training images")
    parser.add_argument("--val", type=int, default=16, help="held-out images (another synthetic seed)")
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--channels", type=int, nargs="+", default=[1, 3])
    parser.add_argument("--classes", type=int, nargs="+", default=[1, 3], help="1 = binary, 3 = organ + lesion")
    parser.add_argument("--checkpoint", type=Path, default=DEFAULT_CHECKPOINT)
    args = parser.parse_args(argv)
    if not args.checkpoint.is_file():
        print(f"checkpoint {args.checkpoint} not found; pass --checkpoint PATH", file=sys.stderr)
        return 2
    print(f"synthetic organs {args.size}x{args.size}: {args.train} train / {args.val} held-out images, "
          f"{args.epochs} epochs, batch {args.batch_size}, lr {args.lr}; held-out hard Dice of the foreground "
          f"classes (mean per image, MONAI conventions)")
    header = (f"{'channels':>8} {'classes':>7} {'start from':>12} {'Dice start':>10} {'Dice final':>10} "
              f"{'Dice best':>9} {'epoch 1 s':>9} {'later epoch s':>13}")
    print(header)
    for channels in args.channels:
        for n_classes in args.classes:
            for label, checkpoint in (("golden ckpt", args.checkpoint), ("scratch", None)):
                r = run_case(channels, n_classes, checkpoint, args)
                print(f"{channels:>8} {n_classes:>7} {label:>12} {r['start']:>10.3f} {r['final']:>10.3f} "
                      f"{r['best']:>9.3f} {r['first_epoch_s']:>9.1f} {r['later_epoch_s']:>13.2f}", flush=True)
    print("epoch 1 includes compiling the GRAPH-mode train step; 'later epoch s' is the mean of the others.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
