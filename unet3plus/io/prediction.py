"""What ``predict`` returns and the writers write: the mask, optional probabilities, and the input's geometry."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from .volume import Volume


@dataclass
class Prediction:
    """``mask``: uint8 labels (``Z x H x W`` for volumes, ``H x W`` for a 2-D image; 1 = foreground for a
    one-channel model). ``probabilities``: ``[Z x] C x H x W`` (sigmoid or softmax), only when ``predict`` was
    asked for them (``probabilities=True`` or a ``.npy`` path; float32, or float16 on request), else None:
    a whole CT's float32 probabilities are 4 bytes a voxel per channel, more than the CT itself.
    ``channels``: the model's output channels (1 = one sigmoid channel). ``class_names``: one name per label
    value, background first, from the model config (empty when the model has none); see
    :func:`foreground_class_names`."""

    mask: np.ndarray
    probabilities: Optional[np.ndarray]
    preset: str
    source: Optional[Volume] = None
    preset_kind: str = "volume"  # "image" for 2-D presets (a trained model's own preset has no registry name)
    channels: int = 0
    class_names: Tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not self.channels:
            self.channels = int(self.probabilities.shape[-3]) if self.probabilities is not None else 1

    @property
    def foreground_fraction(self) -> float:
        return float(np.count_nonzero(self.mask)) / max(self.mask.size, 1)


PUBLISHED_CLASS_NAMES = ("liver", "tumour")  # the LiTS labels of the published weights, which carry no config


def foreground_class_names(prediction: Prediction) -> Tuple[str, ...]:
    """The names of label values 1..n of ``prediction`` (n: its output channels less background; 1 for a sigmoid
    model), the one source of class names for every writer: the model config's names, else the published
    weights' LiTS names (a model without config), then ``class N`` where neither names a label. Repeated names
    get a `` (N)`` suffix, so that each label keeps its own entry in a name-to-value table."""
    return label_names(prediction.class_names, prediction.channels)


def label_names(class_names: Sequence[str], channels: int) -> Tuple[str, ...]:
    """:func:`foreground_class_names` from a config's ``class_names`` (background first; may be empty) and the
    network's output ``channels``, for code that has no ``Prediction`` yet."""
    n_labels = max(channels - 1, 1)
    known: Sequence[str] = class_names[1:] if class_names else PUBLISHED_CLASS_NAMES
    names: List[str] = []
    for value in range(1, n_labels + 1):
        name = (str(known[value - 1]).strip() if value <= len(known) else "") or f"class {value}"
        names.append(f"{name} ({value})" if name in names else name)
    return tuple(names)


def label_table(prediction: Prediction) -> Dict[str, int]:
    """``{"background": 0, name: value, ...}`` for the label JSON beside a mask (nnU-Net's ``dataset.json``
    ``labels``), so that a viewer or script reads which value is which class without the checkpoint."""
    background = str(prediction.class_names[0]).strip() if prediction.class_names else ""
    table = {background or "background": 0}
    for value, name in enumerate(foreground_class_names(prediction), start=1):
        table[name if name not in table else f"{name} ({value})"] = value
    return table
