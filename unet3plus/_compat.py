"""What differs between the MindSpore releases this package supports (2.7 to 2.10), in one place.

``import unet3plus`` calls :func:`check_mindspore_version` before MindSpore is imported (it reads the
installed distribution's metadata), so an unsupported release fails at once with one line naming the
range, instead of somewhere deep in a forward pass. CI runs the whole suite on 2.10.0 and the tests
marked ``compat`` on 2.7.2 (``.ci/run``).
"""
from __future__ import annotations

import importlib.metadata
import re
from typing import Optional, Tuple

from .errors import UserFacingError

SUPPORTED_MINDSPORE = ((2, 7), (2, 11))  # [lowest, first unsupported)
SUPPORTED_RANGE_TEXT = "mindspore>=2.7,<2.11"


class UnsupportedMindSporeError(UserFacingError, ImportError):
    """The installed MindSpore is outside the supported range."""


def installed_mindspore_version() -> Optional[str]:
    """The installed MindSpore's version from its package metadata (None if it cannot be told)."""
    try:
        return importlib.metadata.version("mindspore")
    except importlib.metadata.PackageNotFoundError:
        return None


def _release(version: str) -> Tuple[int, int]:
    match = re.match(r"(\d+)\.(\d+)", version)
    if not match:
        raise UnsupportedMindSporeError(f"cannot read MindSpore version {version!r}; "
                                        f"unet3plus supports {SUPPORTED_RANGE_TEXT}")
    return int(match.group(1)), int(match.group(2))


def check_mindspore_version(version: Optional[str] = None) -> None:
    """Raise one line naming the supported range unless ``version`` (default: installed) is in it."""
    version = installed_mindspore_version() if version is None else version
    if version is None:  # no "mindspore" distribution (a source build): the imports will tell
        return
    lowest, first_unsupported = SUPPORTED_MINDSPORE
    if not lowest <= _release(version) < first_unsupported:
        raise UnsupportedMindSporeError(
            f"unet3plus supports MindSpore 2.7 to 2.10, but {version} is installed; "
            f"pip install '{SUPPORTED_RANGE_TEXT}'")
