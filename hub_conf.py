"""torch.hub-style entry point of this repository: ``create_network(name, *args, pretrained=..., **kwargs)``.

Works from a plain checkout (the repository root is put on ``sys.path``) and with ``unet3plus`` installed.
See ``unet3plus.create_network`` for the names and arguments.
"""
import os
import sys

_REPO_ROOT = os.path.dirname(os.path.abspath(__file__))
if _REPO_ROOT not in sys.path:
    sys.path.insert(0, _REPO_ROOT)

from unet3plus import create_network  # noqa: E402

__all__ = ["create_network"]
