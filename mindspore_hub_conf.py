"""MindSpore Hub entry point: ``mindspore_hub.load`` imports this file by path and calls
``create_network(model_name.lower(), *args, **kwargs)`` (for this model's card: ``"unet3+"``).

That name builds the architecture only (with the keyword arguments the card tells its reader to pass,
e.g. ``n_classes=3`` for a card written by ``unet3plus publish``), because hub then loads the card's
checkpoint itself with ``load_param_into_net``; ``create_network("unet3plus_lits2017")`` or
``create_network("<card>.md")`` download, verify and load the weights with the package alone.
"""
import os
import sys

_REPO_ROOT = os.path.dirname(os.path.abspath(__file__))
if _REPO_ROOT not in sys.path:
    sys.path.insert(0, _REPO_ROOT)

from unet3plus import create_network  # noqa: E402

__all__ = ["create_network"]
