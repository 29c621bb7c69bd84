"""Checkpoint files of a training run, each written atomically (never half-written under its name).

* ``best.ckpt`` / ``last.ckpt``: network only, the published names without prefix, plus the model config
  (``unet3plus.hub.model_config``): ``unet3plus.create_network(checkpoint="best.ckpt")`` rebuilds the
  trained network; ``mindspore.load_param_into_net`` loads every weight too.
* ``resume.ckpt``: network, optimizer state (Adam moments, step) and the loop's state (epoch, best score,
  early-stopping counter, seed, history) as JSON in the entry ``unet3plus_train_state``.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable, Dict, Optional, Tuple

import mindspore as ms

from .._atomic import atomic_path
from ..errors import InputError
from ..hub.model_config import save_network  # noqa: F401  (the one network-only writer, re-exported)

BEST, LAST, RESUME = "best.ckpt", "last.ckpt", "resume.ckpt"
STATE_ENTRY = "unet3plus_train_state"


class ResumeError(InputError):
    """The run cannot be resumed (or would overwrite an earlier run); the message says what to do."""


def save_resume_state(train_step: ms.nn.Cell, state: Dict[str, Any], path: Path) -> None:
    """All parameters of the train step (network + optimizer) and ``state`` as JSON, in one file."""
    with atomic_path(path) as temporary:
        ms.save_checkpoint(train_step, str(temporary), append_dict={STATE_ENTRY: json.dumps(state)})


def load_resume_state(train_step: ms.nn.Cell, path: Path,
                      check: Optional[Callable[[Dict[str, Any]], None]] = None) -> Dict[str, Any]:
    """Load ``resume.ckpt`` into the train step and return the loop's state.

    ``check(state)`` runs before any parameter is touched (e.g. to refuse different options).
    """
    if not path.is_file():
        raise ResumeError(f"nothing to resume: {path} does not exist; start the run without --resume "
                          "(or point --out at the folder of the interrupted run)")
    try:
        entries: Dict[str, Any] = ms.load_checkpoint(str(path))
        state = json.loads(str(entries.pop(STATE_ENTRY)))
    except Exception as error:  # MindSpore raises assorted errors with C++ traces
        raise ResumeError(f"cannot read {path} ({type(error).__name__}); it is damaged: delete it to start "
                          "over, or resume from a copy") from error
    if check is not None:
        check(state)
    try:
        not_loaded, _ = ms.load_param_into_net(train_step, entries, strict_load=True)
    except (RuntimeError, ValueError) as error:
        not_loaded = [str(error).split(".")[0]]
    if not_loaded:
        raise ResumeError(f"{path} does not match this network/optimizer ({not_loaded[:5]}); "
                          "resume with the same options as the interrupted run")
    return state


def existing_run_files(out_dir: Path) -> Tuple[str, ...]:
    return tuple(name for name in (RESUME, LAST, BEST) if (out_dir / name).exists())
