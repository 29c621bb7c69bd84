"""Checkpoint files of a training run, each written atomically (never half-written under its name).

* ``best.ckpt`` / ``last.ckpt``: network only, the published names without prefix: load them with
  ``unet3plus.load_checkpoint`` or ``mindspore.load_param_into_net``.
* ``resume.ckpt``: the run state and the one source of truth: network, optimizer state (Adam moments, step)
  and the loop's state (epoch, best score, early-stopping counter, settings, history) as JSON in the entry
  ``unet3plus_train_state``. A folder holds a run exactly when it holds ``resume.ckpt``.

An epoch ends in ``commit_epoch``: best/last are first written as ``*.staged.ckpt``, then ``resume.ckpt``
(the commit point, naming the staged files), then the staged files are renamed into place. A kill before
the commit leaves the previous epoch's state, and its staged files are discarded; a kill after it is
completed by ``finish_commit`` when the run resumes. So every kill point resumes (or, before the first
commit, restarts) cleanly, and best/last always belong to the epoch the state says.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Callable, Dict, Optional

import mindspore as ms

from .._atomic import atomic_path
from ..errors import InputError, UserFacingError
from ..hub.model_config import save_network  # noqa: F401  (the one network-only writer, re-exported)

BEST, LAST, RESUME = "best.ckpt", "last.ckpt", "resume.ckpt"
STATE_ENTRY = "unet3plus_train_state"
STAGED_SUFFIX = ".staged.ckpt"  # MindSpore wants checkpoint names to end in .ckpt


class ResumeError(InputError):
    """The run cannot be resumed (or would overwrite an earlier run); the message says what to do."""


class TrainingStopped(UserFacingError):
    """Training cannot go on (non-finite loss or weights); the last good checkpoints are kept."""

    exit_status = 5  # the command line's status for a stopped run (see unet3plus.cli)


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
        raise ResumeError(f"cannot read {path} ({type(error).__name__}); it is damaged: delete it and run without "
                          "--resume to start over (the folder's other files are replaced), or resume from a copy "
                          "of the folder") from error
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


def staged(name: str) -> str:
    return name[:-len(".ckpt")] + STAGED_SUFFIX


def commit_epoch(net: ms.nn.Cell, train_step: ms.nn.Cell, state: Dict[str, Any], out_dir: Path,
                 improved: bool, model_config) -> None:
    """Write an epoch's checkpoints so that a kill at any point leaves a consistent run (module docstring)."""
    pending = [LAST] + ([BEST] if improved else [])
    for name in pending:
        save_network(net, out_dir / staged(name), model_config)
    save_resume_state(train_step, dict(state, pending=pending), out_dir / RESUME)  # the commit point
    finish_commit(out_dir, pending)


def finish_commit(out_dir: Path, pending) -> None:
    """Move the committed epoch's staged checkpoints into place (again after a kill), drop uncommitted ones."""
    for name in pending:
        if (out_dir / staged(name)).exists():
            os.replace(out_dir / staged(name), out_dir / name)
    for leftover in out_dir.glob("*" + STAGED_SUFFIX):
        leftover.unlink()