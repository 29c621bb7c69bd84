"""Validate on whole volumes, as users will judge the model: each case predicted whole, scored in 3-D.

A slice-level mean hides that a case with a small liver counts as much as its empty slices; per-case
volume Dice (per class, MONAI conventions: a case without a class is left out of that class's mean)
is what LiTS and the Decathlon report. Prediction is ``unet3plus.runtime.predict`` itself (its
batching, padding, preset and thresholding), so validation sees exactly what ``unet3plus predict`` does.
"""
from __future__ import annotations

import math
from dataclasses import asdict
from typing import Any, Dict

import numpy as np

from ..runtime.predict import predict
from ..data.volumes import VolumeDataset
from ..metrics import SegmentationMetrics
from ..runtime import create_backend


def validate_cases(net: Any, data: VolumeDataset, batch_size: int) -> Dict[str, Any]:
    """The fields of ``SegmentationMetrics.result()`` over ``data``'s cases (one row per case), plus ``cases`` (names)
    and ``loss`` (NaN: the loss is a per-slice training quantity, not computed on whole volumes)."""
    backend = create_backend(net, "mindspore")  # one backend: the eval copy is built (and compiled) once
    metrics = SegmentationMetrics(data.options.n_labels, include_background=False)
    names = []
    for case_index in data.case_indices():
        hu, labels = data.read_case(case_index)
        mask = predict(backend, hu, preset=data.options.input_preset, batch_size=batch_size).mask
        metrics.update(mask[None].astype(np.int64), labels[None])
        names.append(data.cases[case_index].name)
    return dict(asdict(metrics.result()), cases=names, loss=math.nan)
