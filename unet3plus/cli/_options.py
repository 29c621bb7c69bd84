"""Options shared by the subcommands that run the network."""
from __future__ import annotations

import argparse
import logging
import os
from pathlib import Path
from typing import Iterable, List, Optional, Sequence, Tuple, Union

PathLike = Union[str, "os.PathLike[str]"]

logger = logging.getLogger(__name__)


def add_weights_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("weights")
    group.add_argument("--checkpoint", metavar="PATH|URL",
                       help="a fine-tuned checkpoint (path, or http(s) URL with --sha256) or a hub card (.md path "
                            "or URL): the network and its input preparation are built as its model config says "
                            "(default: the published weights, downloaded once and SHA-256 verified)")
    group.add_argument("--sha256", help="expected SHA-256 of the --checkpoint (required for a URL, checked for a local file, and for a hub "
                                            "card equal to its asset-sha256)")
    group.add_argument("--model", default="unet3plus_lits2017", help="published model name (default: %(default)s)")
    group.add_argument("--cache-dir", help="download cache (default: UNET3PLUS_HOME or ~/.cache/unet3plus)")


def add_inference_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("inference")
    group.add_argument("--preset", help="input preset: lits2017 (the published weights' input), standard, image "
                                        "(default: what the checkpoint was trained on)")
    group.add_argument("--threshold", type=float, default=0.5, help="foreground probability threshold (default 0.5)")
    group.add_argument("--batch-size", type=int, help="slices per forward pass (default: 1 at 512x512, up to 4 "
                                                      "for smaller slices; peak memory follows the batch)")
    group.add_argument("--keep-largest", action="store_true", help="keep only the largest connected component")
    group.add_argument("--allow-thin", action="store_true",
                       help="accept volumes with fewer than 3 slices (repeats the edge slices)")
    group.add_argument("--backend",
                       help="auto (default, or the UNET3PLUS_BACKEND variable): ONNX Runtime when it is installed, "
                            "on an ONNX export made once per input shape and kept in the cache folder, else "
                            "MindSpore; mindspore: always MindSpore, no export; onnxruntime: the --onnx-model file")
    group.add_argument("--onnx-model", metavar="PATH", help="an .onnx file to run (make one with 'unet3plus export "
                                                             "--format onnx')")
    group.add_argument("--mode", choices=("auto", "graph", "pynative"), default="auto",
                       help="MindSpore execution: graph compiles once per run (default: auto)")
    group.add_argument("--no-progress", action="store_true", help="no progress bar")


def load_network(args: argparse.Namespace):
    """The eval-mode network of the weights options, through the package's one builder."""
    from ..hub import create_network
    from ..hub.card import is_card

    if args.checkpoint and is_card(args.checkpoint):
        # a hub card: its verified asset (a --sha256 given beside it must be the card's asset hash)
        net = create_network(args.checkpoint, sha256=getattr(args, "sha256", None), cache_dir=args.cache_dir)
    elif args.checkpoint:
        net = create_network("unet3plus", checkpoint=args.checkpoint, sha256=getattr(args, "sha256", None),
                             cache_dir=args.cache_dir)
    else:
        net = create_network(args.model, pretrained=True, cache_dir=args.cache_dir)
    net.set_train(False)
    return net


def preset_for(args: argparse.Namespace, model=None, kind: Optional[str] = None):
    """The preset for inputs of ``kind``: ``--preset``, else the model's training input, else the kind's default
    (``transforms.presets.resolve_preset``, the one place this is decided)."""
    from ..transforms.presets import model_config_of, resolve_preset

    return resolve_preset(model_config_of(model), kind, args.preset)


def inference_model(args: argparse.Namespace):
    """``(model, backend options)`` for ``predict``: the ONNX file, or the network from the weights options.

    Fills in ``args.backend`` (``--backend``, else ``UNET3PLUS_BACKEND``, else ``auto``) and shows the
    backend's choice and any ONNX export on stderr."""
    from ..errors import InputError
    from ..runtime.backends import default_backend_name

    args.backend = args.backend or default_backend_name()
    show_info("unet3plus.runtime.backends", "unet3plus.runtime.onnx_cache", "unet3plus.runtime.cropping",
              "unet3plus.runtime.engine_choice")
    if args.backend == "onnxruntime" or (args.backend == "auto" and args.onnx_model):
        if not args.onnx_model:
            raise InputError("--backend onnxruntime needs --onnx-model PATH; make one with "
                             "'unet3plus export --format onnx --out model.onnx'")
        if args.checkpoint:
            raise InputError("--checkpoint is not used with --onnx-model (the weights are in the .onnx file); "
                             "drop one of them")
        return str(Path(args.onnx_model)), {}
    if args.onnx_model:
        raise InputError(f"--onnx-model is not used with --backend {args.backend}; drop one of them")
    options = {"mode": args.mode, "optimize": True}
    if args.backend == "auto":
        options["cache_dir"] = args.cache_dir
    return load_network(args), (options if args.backend in ("auto", "mindspore") else {})


class _StderrHandler(logging.Handler):
    """Writes to the ``sys.stderr`` of the moment (tests and callers may replace it)."""

    def emit(self, record: logging.LogRecord) -> None:
        import sys

        print(self.format(record), file=sys.stderr)


def show_info(*names: str) -> None:
    """INFO and above of these loggers on stderr, once: the CLI's way to say which backend runs, and to give
    the start lines of long steps (a one-time export, quantization); all other logging stays as it is."""
    for name in names:
        chosen = logging.getLogger(name)
        if not any(isinstance(handler, _StderrHandler) for handler in chosen.handlers):
            chosen.addHandler(_StderrHandler())
        if chosen.level == logging.NOTSET or chosen.level > logging.INFO:
            chosen.setLevel(logging.INFO)


def check_output_folder(folder: Path, overwrite: bool) -> None:
    """An existing non-empty output folder is an error unless ``--overwrite`` (nothing is replaced silently).

    Temporary files that killed runs left behind are removed first and never count as content."""
    from .._atomic import is_partial, remove_stale_partials
    from ..errors import InputError

    if folder.exists() and not folder.is_dir():
        raise InputError(f"output path {folder} exists and is not a folder; choose another --out")
    if folder.is_dir():
        remove_stale_partials(folder)
    if folder.is_dir() and any(not is_partial(path) for path in folder.iterdir()) and not overwrite:
        raise InputError(f"output folder {folder} already exists and is not empty; choose another --out, or pass "
                         "--overwrite to replace files of the same names in it")


def _local(paths: Iterable[Optional[PathLike]]) -> List[Path]:
    """The local paths among ``paths``, symlinks resolved (URLs and unset options dropped)."""
    return [Path(p).expanduser().resolve() for p in paths if p and "://" not in str(p)]


def _identity(path: Path) -> Optional[Tuple[int, int]]:
    """(device, inode) of an existing file, so that hard links to an input count as that input."""
    try:
        status = path.stat()
    except OSError:
        return None
    return status.st_dev, status.st_ino


def refuse_outputs_on_inputs(inputs: Iterable[Optional[PathLike]],
                             outputs: Sequence[Tuple[str, Optional[PathLike]]] = (), *,
                             out_folder: Optional[PathLike] = None) -> None:
    """Before any work, whatever ``--overwrite`` says: no output may replace or land among the run's inputs.

    ``inputs``: the files and folders the run reads (URLs are skipped). ``outputs``: ``(option, path)`` of the
    files it writes; each must not be an input, nor an existing file inside an input folder, nor another
    output's path. ``out_folder``: the ``--out`` folder, which must not be an input folder or inside one.
    An output that is a folder (the per-class files' ``<name>/``) must not hold an input either. Paths are
    compared with symlinks resolved."""
    from ..errors import InputError

    sources = set(_local(inputs))
    folders = [source for source in sources if source.is_dir()]
    files = {_identity(source) for source in sources if source.is_file()}
    if out_folder is not None:
        out = _local([out_folder])[0]
        for folder in folders:
            if out == folder or folder in out.parents:
                where = "is the input folder" if out == folder else f"is inside the input folder {folder}"
                raise InputError(f"--out {out_folder} {where}, so outputs would be mixed with (or replace) inputs; "
                                 "choose an --out outside the inputs")
    claimed = {}
    for option, path in outputs:
        if not path:
            continue
        target = _local([path])[0]
        existing = target.is_file()
        holder = next((folder for folder in folders if folder in target.parents), None) if existing else None
        held = next((source for source in sources if target in source.parents), None)
        if target in sources or (existing and _identity(target) in files) or holder or held:
            what = (f"a file in the input folder {holder}" if holder else
                    f"the input {held} inside it" if held else "one of the inputs")
            raise InputError(f"writing {path} ({option}) would replace {what} of this run; choose another {option} "
                             "(--overwrite never replaces an input)")
        if target in claimed:
            raise InputError(f"{claimed[target]} and {option} are the same file {path}; give each its own path")
        claimed[target] = option
