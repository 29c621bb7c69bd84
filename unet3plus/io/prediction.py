"""What ``predict`` returns and the writers write: the mask, optional probabilities, and the input's geometry."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np

from .volume import Volume


@dataclass
class Prediction:
    """``mask``: uint8 labels (``Z x H x W`` for volumes, ``H x W`` for a 2-D image; 1 = foreground for a
    one-channel model). ``probabilities``: ``[Z x] C x H x W`` (sigmoid or softmax), only when ``predict`` was
    asked for them (``probabilities=True`` or a ``.npy`` path; float32, or float16 on request), else None:
    a whole CT's float32 probabilities are 4 bytes a voxel per channel, more than the CT itself.
    ``channels``: the model's output channels (1 = one sigmoid channel)."""

    mask: np.ndarray
    probabilities: Optional[np.ndarray]
    preset: str
    source: Optional[Volume] = None
    preset_kind: str = "volume"  # "image" for 2-D presets (a trained model's own preset has no registry name)
    channels: int = 0

    def __post_init__(self) -> None:
        if not self.channels:
            self.channels = int(self.probabilities.shape[-3]) if self.probabilities is not None else 1

    @property
    def foreground_fraction(self) -> float:
        return float(np.count_nonzero(self.mask)) / max(self.mask.size, 1)
