"""In-plane spacing: the range a model was trained on, the warning for inputs far outside it, and ``resample``.

A model learns organs at the pixel size of its training slices; a 2.5 mm slice shows the liver at a third of the
size a 0.75 mm one does. The model config records the training data's in-plane spacing range
(``InputConfig.spacing_range``). An input whose row or column spacing lies outside ``[min / FAR, max * FAR]``
gets one warning naming ``--resample``; with it, each slice is resampled (bilinear, order 1) to the nearest
spacing inside the range before the network, as nnU-Net resamples every case to its training spacing, and the
mask comes back to the input's own grid by nearest-neighbour sampling of its labels (so every output, from the
NIfTI mask to the statistics, is on the input's grid). Slices are never resampled along z: the network sees
slices and their neighbours, not a 3-D grid.
"""
from __future__ import annotations

import dataclasses
import logging
import math
from typing import Any, Callable, Iterable, Optional, Tuple

import numpy as np

from ..errors import InputError
from .geometry import resize_image, sample_nearest, sampling_grid

logger = logging.getLogger(__name__)

__all__ = ["FAR", "check_resamplable", "far_outside", "inplane_spacing", "spacing_range", "to_training_spacing"]

FAR = 2.0  # an input is far from the training spacing below min / FAR or above max * FAR


def inplane_spacing(source: Any) -> Optional[Tuple[float, float]]:
    """``(row, column)`` mm of a volume's slices, None where unknown (2-D images, arrays, a NaN in the header)."""
    spacing = getattr(source, "spacing", None)
    if getattr(source, "kind", None) != "volume" or spacing is None or len(spacing) < 2:
        return None
    row, column = (float(v) for v in spacing[-2:])
    return (row, column) if all(math.isfinite(v) and v > 0 for v in (row, column)) else None


def spacing_range(spacings: Iterable[Optional[Tuple[float, ...]]]) -> Optional[Tuple[float, float]]:
    """``(min, max)`` of the in-plane (last two) values of ``Z x H x W`` spacings, the finite positive ones
    only; None when none is known. What training on volumes records in the model config."""
    values = [float(v) for spacing in spacings if spacing is not None for v in tuple(spacing)[-2:]
              if math.isfinite(float(v)) and float(v) > 0]
    return (round(min(values), 4), round(max(values), 4)) if values else None


def _training_range(model_config: Any) -> Optional[Tuple[float, float]]:
    value = getattr(getattr(model_config, "input", None), "spacing_range", None)
    return (float(value[0]), float(value[1])) if value else None


def far_outside(spacing: Tuple[float, float], trained: Tuple[float, float]) -> bool:
    """Whether a row or column spacing lies outside ``[min / FAR, max * FAR]`` of the training range."""
    return any(value < trained[0] / FAR or value > trained[1] * FAR for value in spacing)


def check_resamplable(source: Any) -> None:
    """One line unless ``source`` is a volume with a known in-plane spacing (what ``resample`` needs)."""
    if inplane_spacing(source) is None:
        raise InputError(f"{source.path or source.name} has no in-plane spacing in mm (a 2-D image, an array, or "
                         "a header without it), so it cannot be resampled; drop --resample for this input")


def _resampled_size(shape: Tuple[int, int], spacing: Tuple[float, float],
                    target: Tuple[float, float]) -> Tuple[int, int]:
    return tuple(max(1, int(round(n * s / t))) for n, s, t in zip(shape, spacing, target))  # type: ignore


def to_training_spacing(source: Any, model_config: Any, *, resample: bool = False
                        ) -> Tuple[Any, Callable[[Any], Any]]:
    """``(input for the network, restore)``: ``source`` itself and a no-op, or with ``resample`` and a spacing
    outside the training range, ``source`` with each slice resampled to the nearest spacing inside it, and
    ``restore(prediction)`` that puts the prediction's mask (nearest) and probabilities (bilinear) back on
    ``source``'s grid, with ``source`` as its input. Without ``resample``, an input far outside the range is
    warned about once."""
    spacing, trained = inplane_spacing(source), _training_range(model_config)
    if resample:
        check_resamplable(source)
    if spacing is None or trained is None:
        return source, _unchanged
    if not resample:
        if far_outside(spacing, trained):
            logger.warning("%s: in-plane spacing %.3g x %.3g mm is far from the %.3g-%.3g mm the model was trained "
                           "on, so structures appear at a size it has not seen; pass --resample (predict(..., "
                           "resample=True)) to resample the slices to the training spacing",
                           source.path or source.name, *spacing, *trained)
        return source, _unchanged
    target = tuple(min(max(value, trained[0]), trained[1]) for value in spacing)
    if target == spacing:
        return source, _unchanged
    data = np.asarray(source.data)
    size = _resampled_size(data.shape[1:], spacing, target)
    exact = tuple(n * s / m for n, s, m in zip(data.shape[1:], spacing, size))
    logger.info("%s: resampling %d x %d slices at %.3g x %.3g mm to %d x %d at %.3g x %.3g mm",
                source.path or source.name, *data.shape[1:], *spacing, *size, *exact)
    resampled = dataclasses.replace(source, data=resize_image(data.astype(np.float32, copy=False), size),
                                    spacing=(source.spacing[0],) + exact, affine=None, nifti=None)
    return resampled, lambda prediction: _restore(prediction, source)


def _unchanged(prediction: Any) -> Any:
    return prediction


def _restore(prediction: Any, source: Any) -> Any:
    """The prediction on ``source``'s grid: labels by nearest neighbour, probabilities bilinear."""
    own = tuple(np.asarray(source.data).shape[1:])
    mask = np.asarray(prediction.mask)
    rows, columns = sampling_grid(own, (0.0, 0.0) + tuple(float(n) for n in mask.shape[1:]))
    rows, columns = np.clip(rows, 0, mask.shape[1] - 1), np.clip(columns, 0, mask.shape[2] - 1)
    back = np.stack([sample_nearest(labels, rows, columns) for labels in mask])
    probabilities = prediction.probabilities
    if probabilities is not None:
        probabilities = np.stack([resize_image(np.asarray(p, np.float32), own) for p in probabilities]).astype(
            probabilities.dtype, copy=False)
    return dataclasses.replace(prediction, mask=back, probabilities=probabilities, source=source)
