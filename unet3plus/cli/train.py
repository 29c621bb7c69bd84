"""``unet3plus train``: fine-tune on folders of images and masks, or on 3-D CT volumes (see ``unet3plus.training``)."""
from __future__ import annotations

import argparse
import logging
import os
import sys
from typing import Any, Dict

# Used where neither the command line nor a --recipe sets the option.
DEFAULTS: Dict[str, Any] = dict(epochs=50, batch_size=4, lr=1e-3, weight_decay=0.0, seed=0, val_split=0.2,
                                preset="lits2017", slices="all", foreground_fraction=1.0 / 3.0)


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
    data = parser.add_argument_group("data (2-D images: --images/--masks; 3-D CT: --volumes)")
    data.add_argument("--images", help="folder of images (PNG/JPEG/TIFF/BMP or .npy)")
    data.add_argument("--masks", help="folder of masks with the same file stems")
    add_volume_arguments(parser)
    data.add_argument("--val-images", help="validation images (default: split --val-split of the patients off)")
    data.add_argument("--val-masks", help="validation masks (with --val-images)")
    data.add_argument("--val-split", type=float, help="fraction of patient groups to validate on (default 0.2)")
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
    loop.add_argument("--recipe", help="a published training's settings (explicit options win); lits2017: the "
                                       "model zoo's UNet3+ training with a patient-level split (see README)")
    loop.add_argument("--epochs", type=int, help="default 50")
    loop.add_argument("--batch-size", type=int, help="default 4")
    loop.add_argument("--lr", type=float, help="Adam learning rate (default 1e-3)")
    loop.add_argument("--weight-decay", type=float, help="default 0")
    loop.add_argument("--loss", choices=("bce_dice", "dice_ce", "hybrid"),
                      help="default: bce_dice (published) for binary, dice_ce for several classes")
    loop.add_argument("--patience", type=int, help="stop after N epochs without a better validation Dice")
    loop.add_argument("--seed", type=int, help="default 0")
    loop.add_argument("--no-augment", action="store_true", help="no flips/rotations/crop-scale/intensity jitter")
    loop.add_argument("--workers", type=int, default=1, help="data-loading workers")
    loop.add_argument("--resume", action="store_true", help="continue the interrupted run in --out")
    loop.add_argument("--allow-setting-changes", action="store_true",
                      help="with --resume: apply changed --lr/--batch-size/--loss/--weight-decay/--patience/... "
                           "(logged) instead of refusing them")
    loop.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.set_defaults(run=run)


def add_volume_arguments(parser) -> None:
    volumes = parser.add_argument_group("3-D volumes (LiTS, Decathlon, nnU-Net, DICOM series + NIfTI labels)")
    volumes.add_argument("--volumes", help="dataset folder: LiTS volume-N/segmentation-N, Decathlon or nnU-Net "
                                           "(imagesTr/labelsTr), or one DICOM series folder per case")
    volumes.add_argument("--labels", help="label volumes, when not beside the volumes (required for DICOM)")
    volumes.add_argument("--val-volumes", help="validation cases (default: split --val-split of the cases off)")
    volumes.add_argument("--val-labels", help="labels of --val-volumes, when not beside them")
    volumes.add_argument("--classes", help="comma-separated foreground classes, label 1, 2, ... after --label-map "
                                           "(e.g. liver,tumour); one class trains a sigmoid, several a softmax")
    volumes.add_argument("--preset", choices=("lits2017", "standard"),
                         help="slice context and intensity (default lits2017; see `unet3plus predict --help`)")
    volumes.add_argument("--window", type=float, nargs=2, metavar=("LOW", "HIGH"),
                         help="HU window scaled to [0, 1] with slices [z-1, z, z+1] instead of --preset")
    volumes.add_argument("--slices", choices=("all", "labelled"),
                         help="train on all slices (default) or on those from the first to the last labelled one")
    volumes.add_argument("--allow-empty-cases", action="store_true", help="accept cases without any label")
    volumes.add_argument("--foreground-fraction", type=float,
                         help="share of each epoch's samples drawn from slices with foreground (default 1/3, as nnU-Net)")
    volumes.add_argument("--empty-fraction", type=float,
                         help="share drawn from empty slices (default: none forced; the rest is uniform)")
    volumes.add_argument("--sampling", choices=("class-balanced", "any-foreground"),
                         help="how the --foreground-fraction share is drawn: class-balanced (a class first, uniformly "
                              "among those in the training slices, then a slice holding it; nnU-Net's way, the "
                              "default with several --classes) or any-foreground (every labelled slice alike; the "
                              "default with one class, and what multi-class runs did before)")


def volume_data(args: argparse.Namespace):
    """``(train, val)`` volume datasets from the volume flags (``val`` None: split off by case)."""
    from ..data import VolumeDataset, VolumeOptions
    from ..errors import InputError

    ignored = [flag for flag, unset in (("--n-classes", args.n_classes == 1), ("--in-channels", args.in_channels == 3),
                                        ("--size", args.size is None), ("--val-images/--val-masks",
                                                                        not (args.val_images or args.val_masks)))
               if not unset]
    if ignored:
        raise InputError(f"{', '.join(ignored)} do(es) not apply to --volumes: the classes come from --classes, the "
                         "3 input channels from the preset's slice context, the size from the volumes, "
                         "validation cases from --val-volumes")
    options = VolumeOptions(classes=tuple(args.classes.split(",")) if args.classes else ("foreground",),
                            label_map=args.label_map, preset=args.preset,
                            window=tuple(args.window) if args.window else None, slices=args.slices,
                            allow_empty_cases=args.allow_empty_cases,
                            foreground_fraction=args.foreground_fraction, empty_fraction=args.empty_fraction,
                            sampling=args.sampling)
    train_data = VolumeDataset.from_folder(args.volumes, args.labels, options)
    val_data = VolumeDataset.from_folder(args.val_volumes, args.val_labels, options) if args.val_volumes else None
    return train_data, val_data


def image_data(args: argparse.Namespace):
    """``(train, val)`` image datasets from the 2-D flags (``val`` None: split off by patient group)."""
    from ..data import DataOptions, SegmentationDataset
    from ..errors import InputError

    if os.path.exists(args.out) and not os.path.isdir(args.out):
        raise InputError(f"--out {args.out} is a file, not a folder; choose a folder for the run")
    if bool(args.val_images) != bool(args.val_masks):
        raise InputError("--val-images and --val-masks go together; give both or neither")
    options = DataOptions(n_classes=args.n_classes, in_channels=args.in_channels,
                          repeat_grayscale=not args.no_repeat_gray, label_map=args.label_map,
                          size=tuple(args.size) if args.size else None, normalize=args.normalize)
    train_data = SegmentationDataset.from_folders(args.images, args.masks, options)
    val_data = SegmentationDataset.from_folders(args.val_images, args.val_masks, options) if args.val_images else None
    return train_data, val_data


def apply_defaults(args: argparse.Namespace) -> Any:
    """Fill options left unset from the recipe, then from ``DEFAULTS``; returns the recipe's augmentation."""
    from ..training.recipes import get_recipe

    recipe = get_recipe(args.recipe) if args.recipe else None
    settings = dict(DEFAULTS)
    if recipe is not None:
        settings.update(recipe.train, **recipe.data)
        settings["classes"] = ",".join(recipe.data.get("classes", ())) or None
    for name, value in settings.items():
        if hasattr(args, name) and getattr(args, name) is None:
            setattr(args, name, value)
    return recipe.train.get("augmentation") if recipe is not None else None


def run(args: argparse.Namespace) -> int:
    from ..errors import InputError
    from ..training import TrainConfig, train
    from ..training.distributed import Distributed

    # First, as predict does: msrun's scheduler process serves the job here, and every worker has joined it
    # before any check, so that one worker's error ends the whole job at once (training.distributed).
    Distributed.setup()
    if bool(args.volumes) == bool(args.images or args.masks):
        raise InputError("give either --images and --masks (2-D files) or --volumes (3-D CT), one of the two")
    if not args.volumes and not (args.images and args.masks):
        raise InputError("--images and --masks go together; give both")
    if args.pretrained and args.checkpoint:
        raise InputError("give either --pretrained (the published weights) or --checkpoint PATH, not both")
    if args.volumes:  # the foreground sampler reports each epoch's fractions through logging
        logging.basicConfig(format="%(message)s")
        logging.getLogger("unet3plus.data").setLevel(logging.INFO)
    augmentation = apply_defaults(args)
    train_data, val_data = volume_data(args) if args.volumes else image_data(args)
    config = TrainConfig(
        out_dir=args.out, epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
        weight_decay=args.weight_decay, loss=args.loss, deep_supervision=args.deep_supervision, cgm=args.cgm,
        pretrained=args.pretrained, checkpoint=args.checkpoint, freeze_encoder=args.freeze_encoder,
        val_split=args.val_split, group_pattern=args.group_pattern, patience=args.patience, seed=args.seed,
        augment=not args.no_augment, augmentation=augmentation, num_workers=args.workers, resume=args.resume,
        progress=not args.no_progress, allow_setting_changes=args.allow_setting_changes, class_names=args.class_names)
    try:
        result = train(train_data, val_data, config)
    except KeyboardInterrupt as interrupt:
        from . import EXIT_INTERRUPTED, EXIT_TERMINATED, Terminated

        print(f"unet3plus train: interrupted: the checkpoints in {config.out_dir} are intact; continue with --resume",
              file=sys.stderr)
        return EXIT_TERMINATED if isinstance(interrupt, Terminated) else EXIT_INTERRUPTED
    if result.is_writer:
        print(f"best validation Dice {result.best_dice:.4f} (epoch {result.best_epoch}); "
              f"checkpoints: {result.best_checkpoint}, {result.last_checkpoint}")
    return 0
