"""Import optional dependencies with an error that names the extra to install."""
from __future__ import annotations

import importlib
from types import ModuleType

from .errors import MissingDependencyError


def require(module: str, extra: str, purpose: str) -> ModuleType:
    """Import ``module`` or raise ``MissingDependencyError`` saying how to install the extra.

    The package is installed from its checkout, so the advice is ``pip install -e ".[extra]"`` run there
    (``pip install 'unet3plus[extra]'`` would look for a release on PyPI that does not exist)."""
    try:
        return importlib.import_module(module)
    except ImportError as error:
        raise MissingDependencyError(
            f"{purpose} needs the optional package '{module.split('.')[0]}', which is not installed: "
            f"{install_hint(extra)}"
        ) from error


def install_hint(extra: str) -> str:
    """The one way every message names an extra's install command."""
    return f"pip install -e '.[{extra}]' in the unet3plus checkout"
