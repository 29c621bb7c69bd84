"""The ``unet3plus`` command line: one module per subcommand group, each exposing ``register(subparsers)``.

A subcommand module adds its parser(s) with ``set_defaults(run=function)``; ``function(args) -> int``
imports what it needs lazily, so ``unet3plus --help`` stays fast. ``main`` is the one place errors become
messages: every user-facing error and every OSError is printed as one line, with an exit status per kind:

====  =====================================================================================
0     success
1     an unexpected error (a bug: the traceback is printed; please report it)
2     bad arguments, input data or checkpoint (argparse uses 2 as well)
3     the weights could not be downloaded or verified (network, mirror, cache, offline mode)
4     a file-system error: disk full, permission denied, a file where a folder should be, ...
5     training stopped: non-finite data, loss or weights (the last good checkpoint is kept)
6     partly done: ``predict --keep-going`` wrote the inputs it could and named the others
130   interrupted (Ctrl-C); 143: terminated (SIGTERM)
====  =====================================================================================
"""
from __future__ import annotations

import argparse
import errno
import importlib
import signal
import sys
from typing import List, Optional

from ..errors import UserFacingError

# Subcommand modules under unet3plus.cli, in the order --help lists them.
COMMAND_MODULES: tuple = ("demo", "download", "train", "predict", "evaluate", "export", "publish", "preprocess", "cache")

EXIT_USAGE, EXIT_FILESYSTEM, EXIT_PARTIAL = 2, 4, 6
EXIT_INTERRUPTED, EXIT_TERMINATED = 128 + signal.SIGINT, 128 + signal.SIGTERM


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised like Ctrl-C so that the same clean-up and message apply."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="unet3plus", description="Pretrained UNet 3+ for MindSpore.")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module_name in COMMAND_MODULES:
        importlib.import_module(f"{__name__}.{module_name}").register(subparsers)
    return parser


def _raise_terminated(signum, frame) -> None:
    raise Terminated()


def error_message(error: BaseException) -> str:
    """One line for the user: the error's own text (the CLI variant where it has one), without newlines."""
    text = getattr(error, "cli_message", None) or str(error)
    if isinstance(error, OSError) and not isinstance(error, UserFacingError):
        where = " ".join(str(name) for name in (error.filename, error.filename2) if name)
        text = f"{error.strerror or str(error) or type(error).__name__}{': ' + where if where else ''}"
        if error.errno == errno.ENOSPC:
            text += "; free some space (or choose a folder on another disk) and run again"
    return " ".join(text.split())


def exit_status(error: BaseException) -> int:
    """An error class may name its status (``exit_status = 3`` on DownloadError, 5 on TrainingStopped)."""
    if isinstance(error, OSError) and not isinstance(error, UserFacingError):
        return EXIT_FILESYSTEM
    return int(getattr(error, "exit_status", EXIT_USAGE))


def main(argv: Optional[List[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    previous = signal.getsignal(signal.SIGTERM)
    in_main_thread = _install(signal.SIGTERM, _raise_terminated)
    try:
        status = int(args.run(args) or 0)
    except (UserFacingError, OSError) as error:
        print(f"unet3plus {args.command}: error: {error_message(error)}", file=sys.stderr)
        status = exit_status(error)
    except KeyboardInterrupt as interrupt:
        print(f"unet3plus {args.command}: interrupted", file=sys.stderr)
        status = EXIT_TERMINATED if isinstance(interrupt, Terminated) else EXIT_INTERRUPTED
    finally:
        if in_main_thread:
            signal.signal(signal.SIGTERM, previous)
    if status:
        _leave_msrun_job()
    return status


def _leave_msrun_job() -> None:
    """Under msrun, a worker that ends with an error status says so to the job, which then stops at once
    (``training.distributed.leave_after_error``); a process that never joined one never imported it."""
    distributed = sys.modules.get("unet3plus.training.distributed")
    if distributed is not None:
        distributed.leave_after_error()


def _install(signum: int, handler) -> bool:
    try:
        signal.signal(signum, handler)
        return True
    except ValueError:  # not the main thread (e.g. called from a worker thread): leave signals alone
        return False


if __name__ == "__main__":  # python -m unet3plus.cli
    sys.exit(main())
