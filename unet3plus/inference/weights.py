"""The network every weight-needing command uses: a local checkpoint, else the published weights."""
from __future__ import annotations

import os
from typing import Any, Optional, Union

from ..hub.loading import read_checkpoint, split_checkpoint
from ..hub.registry import FIRST_CONV_WEIGHT, HEAD_WEIGHT

PathLike = Union[str, "os.PathLike[str]"]


def inference_network(checkpoint: Optional[PathLike] = None, *, model: str = "unet3plus_lits2017",
                      cache_dir: Optional[PathLike] = None, progress: Optional[bool] = None) -> Any:
    """An eval-mode UNet3+: from ``checkpoint`` (strictly loaded; ``in_channels``/``n_classes`` read from
    its first and last convolution, variant heads from their names, so fine-tuned models load as trained) or, without one, the published
    weights of ``model`` (downloaded once, SHA-256 verified)."""
    from ..hub import create_network, load_checkpoint
    from ..networks import UNet3Plus

    if checkpoint is None:
        net = create_network(model, pretrained=True, cache_dir=cache_dir, progress=progress)
    else:
        entries, unread, _ = read_checkpoint(checkpoint)
        network_entries, _, _ = split_checkpoint(entries, unread)
        shape_of = lambda name, axis, default: (  # noqa: E731
            int(network_entries[name].shape[axis]) if name in network_entries else default)
        # Fine-tuned variants carry their extra heads (ds_head*, cgm.*): build the same variant to load them.
        net = UNet3Plus(in_channels=shape_of(FIRST_CONV_WEIGHT, 1, 3), n_classes=shape_of(HEAD_WEIGHT, 0, 1),
                        deep_supervision=any(name.startswith("ds_head") for name in network_entries),
                        cgm=any(name.startswith("cgm.") for name in network_entries))
        net.load_report = load_checkpoint(net, checkpoint, strict=True)  # the path, so errors name it
    net.set_train(False)
    return net
