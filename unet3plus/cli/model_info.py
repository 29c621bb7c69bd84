"""``unet3plus info CKPT``: the model config inside a checkpoint (read without building a network)."""
from __future__ import annotations

from pathlib import Path


def print_checkpoint_info(path: str) -> int:
    from ..hub.download import sha256_of
    from ..hub.model_config import read_model_config

    config = read_model_config(path)
    rows = [("checkpoint", str(Path(path))), ("sha256", sha256_of(path))]
    if config is None:
        rows.append(("model config", "none (an older checkpoint or another tool's: create_network infers the "
                                     "architecture from the weights; the input preparation is unknown)"))
    else:
        rows += config.summary_rows()
    width = max(len(key) for key, _ in rows)
    for key, value in rows:
        print(f"{key.ljust(width)}  {value}")
    return 0
