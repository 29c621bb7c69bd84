"""Silence one known, harmless MindSpore log message for the duration of a call, and nothing else."""
from __future__ import annotations

import logging
from contextlib import contextmanager
from typing import Iterator


class _DropContaining(logging.Filter):
    def __init__(self, fragment: str) -> None:
        super().__init__()
        self.fragment = fragment

    def filter(self, record: logging.LogRecord) -> bool:
        return self.fragment not in record.getMessage()


@contextmanager
def without_mindspore_message(fragment: str) -> Iterator[None]:
    """Drop MindSpore log records whose text contains ``fragment`` while the block runs.

    MindSpore logs through one Python logger of its own; ``mindspore.log`` offers no public handle on it,
    hence ``_get_logger`` (if that ever disappears, the message simply shows again).
    """
    try:
        from mindspore.log import _get_logger

        logger = _get_logger()
    except (ImportError, AttributeError):  # pragma: no cover - a future MindSpore
        yield
        return
    drop = _DropContaining(fragment)
    logger.addFilter(drop)
    try:
        yield
    finally:
        logger.removeFilter(drop)
