"""``unet3plus cache``: what the caches hold (``list``), whether it is intact (``verify``), and ``clean``.

Two caches live under the cache folder (``UNET3PLUS_HOME`` or ``~/.cache/unet3plus``): verified downloads
(``hub.cache``: ``blobs/`` and ``refs/``) and ONNX exports (``runtime.onnx_cache``: ``onnx/``). ``list`` and
``verify`` show both; ``clean`` acts on the downloads, or with ``--onnx`` on the ONNX exports only (they are
rebuilt on use and already kept under ``UNET3PLUS_ONNX_CACHE_MAX_MB``; downloads are what offline use needs,
so one command never empties both). Sizes are in MB (10^6 bytes).
"""
from __future__ import annotations

import argparse
import time
from typing import List, Sequence

from ..errors import InputError

EXIT_NOT_VERIFIED = 3  # the CLI's status for weights that could not be downloaded or verified


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "cache", help="list, verify or clean the download cache and the ONNX exports",
        description="Show what the cache folder holds (downloads by name, source with credentials redacted, size, "
                    "last use and state; ONNX exports), verify every file's SHA-256, or remove entries least "
                    "recently used first.")
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    listing = actions.add_parser("list", help="each entry: name, source, size, last use, state (checked by size)")
    verify = actions.add_parser("verify", help="like list, hashing every file; exit status 3 if one is not intact")
    clean = actions.add_parser("clean", help="remove download entries (or ONNX exports with --onnx), least recently "
                                             "used first")
    clean.add_argument("--older-than", type=float, metavar="DAYS", help="remove entries unused for more than DAYS")
    clean.add_argument("--max-size", type=float, metavar="MB",
                       help="then remove more until the rest fit in MB (0 empties the cache)")
    clean.add_argument("--onnx", action="store_true", help="clean the ONNX exports instead of the downloads")
    clean.add_argument("--dry-run", action="store_true", help="say what would be removed, remove nothing")
    for sub, run in ((listing, run_list), (verify, run_verify), (clean, run_clean)):
        sub.add_argument("--cache-dir", help="cache folder (default: UNET3PLUS_HOME or ~/.cache/unet3plus)")
        sub.set_defaults(run=run)


def _mb(size: float) -> str:
    return f"{size / 1e6:.1f} MB"


def _when(seconds: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(seconds))


def _table(title: str, entries: Sequence, full: bool) -> List[str]:
    """Print ``entries`` under ``title``; return the states that are not ok."""
    print(title)
    if not entries:
        print("  (empty)")
        return []
    rows = [(entry.name, entry.source, _mb(entry.size), _when(entry.last_used), entry.state(full)) for entry in entries]
    widths = [max(len(row[column]) for row in rows + [("NAME", "SOURCE", "SIZE", "LAST USE", "STATE")])
              for column in range(4)]
    for row in [("NAME", "SOURCE", "SIZE", "LAST USE", "STATE")] + rows:
        print("  " + "  ".join(cell.ljust(width) for cell, width in zip(row, widths)) + "  " + row[4])
    return [row[4] for row in rows if row[4].split(" ", 1)[0].isupper()]  # a problem starts in capitals


def _show(args: argparse.Namespace, full: bool) -> List[str]:
    from ..hub.cache import cache_entries, cached_files
    from ..hub.download import resolve_cache_dir
    from ..runtime.onnx_cache import MAX_MB_VARIABLE, onnx_cache_dir, onnx_cache_max_bytes, onnx_entries

    cache = resolve_cache_dir(args.cache_dir)
    downloads, exports = cache_entries(cache), onnx_entries(cache)
    download_bytes = sum(item.size for item in cached_files(downloads))
    export_bytes = sum(entry.size for entry in exports)
    bad = _table(f"downloads in {cache}", downloads, full)
    bad += _table(f"ONNX exports in {onnx_cache_dir(cache)} (kept under {_mb(onnx_cache_max_bytes())}: "
                  f"{MAX_MB_VARIABLE})", exports, full)
    print(f"total: {len(downloads)} download(s), {_mb(download_bytes)}; {len(exports)} ONNX export(s), "
          f"{_mb(export_bytes)}; {_mb(download_bytes + export_bytes)} in all")
    return bad


def run_list(args: argparse.Namespace) -> int:
    _show(args, full=False)
    return 0


def run_verify(args: argparse.Namespace) -> int:
    bad = _show(args, full=True)
    if bad:
        print(f"{len(bad)} entr{'y is' if len(bad) == 1 else 'ies are'} not intact: a bad download is set aside "
              "and fetched again on its next use, a bad ONNX export rebuilt; 'unet3plus cache clean' removes entries")
        return EXIT_NOT_VERIFIED
    return 0


def run_clean(args: argparse.Namespace) -> int:
    from ..hub.cache import cache_entries, cached_files, to_remove
    from ..hub.download import resolve_cache_dir
    from ..runtime.onnx_cache import onnx_entries

    if args.older_than is None and args.max_size is None:
        raise InputError("say what to remove: --older-than DAYS and/or --max-size MB (--max-size 0 empties the "
                         "cache); add --dry-run to see it first")
    for option, value in (("--older-than", args.older_than), ("--max-size", args.max_size)):
        if value is not None and not value >= 0:
            raise InputError(f"{option} {value:g} is negative; give a number >= 0")
    cache = resolve_cache_dir(args.cache_dir)
    items = onnx_entries(cache) if args.onnx else cached_files(cache_entries(cache))
    chosen = to_remove(items, older_than_s=None if args.older_than is None else args.older_than * 86400.0,
                       max_bytes=None if args.max_size is None else args.max_size * 1e6)
    verb = "would remove" if args.dry_run else "removed"
    for item in chosen:
        if not args.dry_run:
            item.remove()
        print(f"{verb} {item.path} ({_mb(item.size)}, last used {_when(item.last_used)})")
    freed = sum(item.size for item in chosen)
    kept = [item for item in items if item not in chosen]
    what = "ONNX export(s)" if args.onnx else "download(s)"
    print(f"{verb} {len(chosen)} {what}, {_mb(freed)}; {len(kept)} kept, {_mb(sum(item.size for item in kept))}")
    return 0
