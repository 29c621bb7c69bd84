"""Import optional dependencies with an error that names the extra to install."""
from __future__ import annotations

import importlib
from types import ModuleType

from .errors import MissingDependencyError


def require(module: str, extra: str, purpose: str) -> ModuleType:
    """Import ``module`` or raise ``MissingDependencyError`` saying ``pip install 'unet3plus[extra]'``."""
    try:
        return importlib.import_module(module)
    except ImportError as error:
        raise MissingDependencyError(
            f"{purpose} needs the optional package '{module.split('.')[0]}', which is not installed: "
            f"pip install 'unet3plus[{extra}]'"
        ) from error
