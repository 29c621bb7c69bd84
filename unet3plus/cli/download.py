"""``unet3plus download`` (fetch + verify the published checkpoint into the cache) and ``unet3plus info``."""
from __future__ import annotations

import argparse
import os


def register(subparsers) -> None:
    download = subparsers.add_parser(
        "download", help="download and verify the published checkpoint into the cache; print its path",
        description="Download the published checkpoint (or a mirror: UNET3PLUS_CHECKPOINT_URL), check its SHA-256 "
                    "and print the path of the verified file in the cache.")
    _common(download)
    download.add_argument("--url", help="download from this URL instead (still checked against the published SHA-256)")
    download.add_argument("--no-progress", action="store_true", help="no progress bar")
    download.set_defaults(run=run_download)

    info = subparsers.add_parser("info", help="model card facts, cache location, whether the verified file is present; "
                                              "with CKPT: the model config inside that checkpoint")
    info.add_argument("checkpoint", nargs="?", metavar="CKPT", help="print this checkpoint's model config instead")
    _common(info)
    info.set_defaults(run=run_info)


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", default="unet3plus_lits2017", help="published model name (default: %(default)s)")
    parser.add_argument("--cache-dir", help="cache folder (default: UNET3PLUS_HOME or ~/.cache/unet3plus)")


def run_download(args: argparse.Namespace) -> int:
    from ..hub import get_pretrained_config, pretrained_checkpoint

    config = get_pretrained_config(args.model)
    path = pretrained_checkpoint(config, cache_dir=args.cache_dir, progress=False if args.no_progress else None,
                                 url=args.url)
    print(path)
    return 0


def run_info(args: argparse.Namespace) -> int:
    if args.checkpoint:
        from .model_info import print_checkpoint_info

        return print_checkpoint_info(args.checkpoint)
    from ..hub import get_pretrained_config, resolve_cache_dir
    from ..hub.download import MIRROR_VARIABLE, checkpoint_path, is_offline, redact_url, sha256_of
    from ..hub.cache import legacy_path
    from ..hub.registry import hub_card_path

    config = get_pretrained_config(args.model)
    path = checkpoint_path(config.sha256, config.filename, args.cache_dir)
    old = legacy_path(resolve_cache_dir(args.cache_dir), config.filename)
    if not path.is_file() and old.is_file():
        path, state = old, ("in the cache layout of an earlier version (moved into blobs/ on its next use if "
                            "its SHA-256 matches)")
    elif not path.is_file():
        state = "absent (run: unet3plus download)"
    elif sha256_of(path) == config.sha256:
        state = "present, SHA-256 verified"
    else:
        state = "present but CORRUPT (SHA-256 mismatch; the next download replaces it)"
    rows = [
        ("model", config.name),
        *[(key, value) for key, value in config.card.items()],
        ("input preset", config.input_preset),
        ("in_channels / n_classes", f"{config.in_channels} / {config.n_classes}"),
        ("license", config.license),
        ("checkpoint url", config.url),
        ("mirror (" + MIRROR_VARIABLE + ")", redact_url(os.environ[MIRROR_VARIABLE]) if os.environ.get(MIRROR_VARIABLE)
                                        else "not set"),
        ("sha256", config.sha256),
        ("size", f"~{config.size / 2 ** 20:.1f} MiB"),
        ("cache folder", str(resolve_cache_dir(args.cache_dir))),
        ("checkpoint file", str(path)),
        ("checkpoint state", state),
        ("offline", "yes (UNET3PLUS_OFFLINE)" if is_offline() else "no"),
        ("hub card", str(hub_card_path(config.name))),
    ]
    width = max(len(key) for key, _ in rows)
    for key, value in rows:
        print(f"{key.ljust(width)}  {value}")
    return 0
