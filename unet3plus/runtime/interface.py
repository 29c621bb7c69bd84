"""The interface every backend implements, and :func:`forward`, the single call every batch goes through."""
from __future__ import annotations

from typing import Any, Optional, Tuple

import numpy as np

from ..errors import InputError


class InferenceBackend:
    """Base class: ``backend(batch) -> logits`` as NumPy arrays."""

    fixed_shape: Optional[Tuple[int, int, int, int]] = None
    model_config: Optional[Any] = None  # the network's ``ModelConfig`` where the backend runs one (None for .onnx files)

    def __call__(self, batch: np.ndarray) -> np.ndarray:  # pragma: no cover - interface
        raise NotImplementedError

    def prepare(self, n_batches: int) -> None:
        """Told how many batches follow, before the first (lets a backend decide whether compiling pays)."""



def forward(backend: InferenceBackend, batch: np.ndarray) -> np.ndarray:
    """Logits for one batch ``N x C x H x W``: the single call every prediction goes through."""
    logits = np.asarray(backend(batch), dtype=np.float32)
    if logits.ndim != 4 or logits.shape[0] != batch.shape[0] or logits.shape[2:] != batch.shape[2:]:
        raise InputError(f"the model returned logits of shape {logits.shape} for a batch of shape {batch.shape}; "
                         "expected N x classes x H x W")
    return logits
