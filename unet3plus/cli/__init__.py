"""The ``unet3plus`` command line: one module per subcommand group, each exposing ``register(subparsers)``.

A subcommand module adds its parser(s) with ``set_defaults(run=function)``; ``function(args) -> int``
imports what it needs lazily, so ``unet3plus --help`` stays fast. Errors derived from
``unet3plus.errors.UserFacingError`` are printed as one clear line and exit with status 2.
"""
from __future__ import annotations

import argparse
import importlib
import sys
from typing import List, Optional

from ..errors import UserFacingError

# Subcommand modules under unet3plus.cli, in the order --help lists them.
COMMAND_MODULES: tuple = ("demo", "download", "train", "predict", "evaluate", "export", "publish", "preprocess")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="unet3plus", description="Pretrained UNet 3+ for MindSpore.")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module_name in COMMAND_MODULES:
        importlib.import_module(f"{__name__}.{module_name}").register(subparsers)
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.run(args) or 0)
    except UserFacingError as error:
        print(f"unet3plus {args.command}: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"unet3plus {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # python -m unet3plus.cli
    sys.exit(main())
