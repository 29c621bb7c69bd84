"""``unet3plus train``: fine-tune on folders of images and masks (see ``unet3plus.training``)."""
from __future__ import annotations

import argparse
import sys
from typing import Dict


def label_mapping(text: str) -> Dict[int, int]:
    """``255:1`` or ``255:1,128:2`` -> ``{255: 1, 128: 2}``."""
    mapping = {}
    for item in text.split(","):
        try:
            source, target = item.split(":")
            mapping[int(source)] = int(target)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected FROM:TO integer pairs like 255:1 or 255:1,128:2, got {text!r}")
    return mapping


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "train", help="fine-tune UNet3+ on a folder of images and masks",
        description="Fine-tune UNet3+ on images and masks paired by file stem. Launch with msrun for "
                    "data-parallel training: msrun --worker_num=2 --local_worker_num=2 "
                    "--master_addr=127.0.0.1 --master_port=8118 $(which unet3plus) train ...")
    data = parser.add_argument_group("data")
    data.add_argument("--images", required=True, help="folder of images (PNG/JPEG/TIFF/BMP or .npy)")
    data.add_argument("--masks", required=True, help="folder of masks with the same file stems")
    data.add_argument("--val-images", help="validation images (default: split --val-split of the patients off)")
    data.add_argument("--val-masks", help="validation masks (with --val-images)")
    data.add_argument("--val-split", type=float, default=0.2, help="fraction of patient groups to validate on")
    data.add_argument("--group-pattern", help="regex whose first group is the patient id in file names "
                                              "(default: the name without its trailing slice number)")
    data.add_argument("--label-map", type=label_mapping, help="replace mask values, e.g. 255:1")
    data.add_argument("--size", type=int, nargs=2, metavar=("H", "W"), help="resize all pairs to H x W")
    data.add_argument("--normalize", default="auto", choices=("auto", "none", "minmax", "zscore"),
                      help="intensity scaling (auto: integer images divided by their dtype's maximum)")
    data.add_argument("--no-repeat-gray", action="store_true",
                      help="do not repeat grayscale images to 3 channels (then use --in-channels 1)")
    model = parser.add_argument_group("model")
    model.add_argument("--pretrained", action="store_true", help="start from the published LiTS2017 weights")
    model.add_argument("--checkpoint", help="start from this local checkpoint instead")
    model.add_argument("--n-classes", type=int, default=1, help="1 for binary masks, K for labels 0..K-1")
    model.add_argument("--in-channels", type=int, default=3, help="network input channels (3 = pretrained)")
    model.add_argument("--deep-supervision", action="store_true", help="train side outputs of hd2..hd5 too")
    model.add_argument("--cgm", action="store_true", help="add the classification-guided module")
    model.add_argument("--class-names", type=lambda text: [name.strip() for name in text.split(",")],
                       help="names of the label values, background first, e.g. background,liver,tumour "
                            "(stored in the checkpoints)")
    model.add_argument("--freeze-encoder", action="store_true", help="train the decoder only")
    loop = parser.add_argument_group("training")
    loop.add_argument("--out", required=True, help="folder for checkpoints, metrics.csv and curves.png")
    loop.add_argument("--epochs", type=int, default=50)
    loop.add_argument("--batch-size", type=int, default=4)
    loop.add_argument("--lr", type=float, default=1e-3, help="Adam learning rate")
    loop.add_argument("--weight-decay", type=float, default=0.0)
    loop.add_argument("--loss", choices=("bce_dice", "dice_ce", "hybrid"),
                      help="default: bce_dice (published) for binary, dice_ce for several classes")
    loop.add_argument("--patience", type=int, help="stop after N epochs without a better validation Dice")
    loop.add_argument("--seed", type=int, default=0)
    loop.add_argument("--no-augment", action="store_true", help="no flips/rotations/crop-scale/intensity jitter")
    loop.add_argument("--workers", type=int, default=1, help="data-loading workers")
    loop.add_argument("--resume", action="store_true", help="continue the interrupted run in --out")
    loop.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from ..data import DataOptions, SegmentationDataset
    from ..errors import InputError
    from ..training import TrainConfig, train

    if bool(args.val_images) != bool(args.val_masks):
        raise InputError("--val-images and --val-masks go together; give both or neither")
    if args.pretrained and args.checkpoint:
        raise InputError("give either --pretrained (the published weights) or --checkpoint PATH, not both")
    options = DataOptions(n_classes=args.n_classes, in_channels=args.in_channels,
                          repeat_grayscale=not args.no_repeat_gray, label_map=args.label_map,
                          size=tuple(args.size) if args.size else None, normalize=args.normalize)
    train_data = SegmentationDataset.from_folders(args.images, args.masks, options)
    val_data = SegmentationDataset.from_folders(args.val_images, args.val_masks, options) if args.val_images else None
    config = TrainConfig(
        out_dir=args.out, epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
        weight_decay=args.weight_decay, loss=args.loss, deep_supervision=args.deep_supervision, cgm=args.cgm,
        pretrained=args.pretrained, checkpoint=args.checkpoint, freeze_encoder=args.freeze_encoder,
        val_split=args.val_split, group_pattern=args.group_pattern, patience=args.patience, seed=args.seed,
        augment=not args.no_augment, num_workers=args.workers, resume=args.resume, progress=not args.no_progress,
        class_names=args.class_names)
    try:
        result = train(train_data, val_data, config)
    except KeyboardInterrupt:
        print(f"interrupted: the checkpoints in {config.out_dir} are intact; continue with --resume",
              file=sys.stderr)
        return 130
    if result.is_writer:
        print(f"best validation Dice {result.best_dice:.4f} (epoch {result.best_epoch}); "
              f"checkpoints: {result.best_checkpoint}, {result.last_checkpoint}")
    return 0
