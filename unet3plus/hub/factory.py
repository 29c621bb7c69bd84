"""``create_network``: the one entry point behind ``import unet3plus``, ``hub_conf.py`` and mindspore_hub."""
from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any, Mapping, Optional, Union

from ..errors import InputError
from .download import pretrained_checkpoint
from .loading import load_checkpoint
from .registry import get_model_entry

if TYPE_CHECKING:
    from mindspore import nn


def create_network(name: str = "unet3plus_lits2017", *args: Any, pretrained: Optional[bool] = None,
                   checkpoint: Union[str, "os.PathLike[str]", Mapping[str, Any], None] = None,
                   strict: bool = True, cache_dir: Union[str, "os.PathLike[str]", None] = None,
                   progress: Optional[bool] = None, **kwargs: Any) -> "nn.Cell":
    """Build a UNet3+ by name and load its weights.

    Args:
        name: case-insensitive; ``"unet3plus_lits2017"`` (published LiTS2017 weights, loaded by default),
            ``"unet3plus"`` (architecture only) or ``"unet3+"`` (what ``mindspore_hub.load`` passes; hub
            loads the weights itself, so none are downloaded here unless ``pretrained=True``).
        *args, **kwargs: passed to ``UNet3Plus`` (``in_channels``, ``n_classes``, variant options).
        pretrained: download (verified, cached) and load the published weights; ``None`` means the name's default.
        checkpoint: a local checkpoint path or parameter dict to load instead of the published asset.
        strict: every published weight must load (see ``unet3plus.load_checkpoint``); transfers for other
            ``in_channels``/``n_classes`` and extra heads are allowed and reported.
        cache_dir, progress: see ``unet3plus.hub.download_checkpoint``.

    Returns:
        the network (a ``mindspore.nn.Cell``); ``net.load_report`` says what was loaded (``None`` if nothing).
    """
    from ..networks import UNet3Plus

    entry = get_model_entry(name)
    if checkpoint is not None and pretrained:
        raise InputError("pass either pretrained=True (the published weights) or checkpoint=<path>, not both")
    net = UNet3Plus(*args, **kwargs)
    report = None
    if checkpoint is not None:
        report = load_checkpoint(net, checkpoint, strict=strict)
    elif entry.pretrained_by_default if pretrained is None else pretrained:
        path = pretrained_checkpoint(entry.config, cache_dir=cache_dir, progress=progress)
        report = load_checkpoint(net, path, strict=strict)
    net.load_report = report
    return net
