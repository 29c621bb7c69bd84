"""Per-structure numbers of a prediction, named as TotalSegmentator's ``--statistics`` names them.

Each class gets ``volume`` (ml) and ``intensity`` (mean HU of the input image inside the mask), plus its voxel
count, the HU standard deviation and a bounding box; lesion-like classes (``io.dicom.is_lesion_name``: the rule
that codes their DICOM SEG segment) also get their lesions, the 3-D connected components of the class with full
connectivity (``metrics.lesions.connected_components``, as ``evaluate`` counts them), each with its volume and
centroid. Everything is measured on the input's own voxels and spacing: positions are in the scanner's RAS mm
of the input's affine (the NIfTI mask's), or mm from the first voxel where the input has spacing but no affine.
"""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Dict, List, Optional

import numpy as np

from .._atomic import atomic_path
from .._optional import require
from ..errors import InputError
from ..io.dicom import is_lesion_name
from ..io.prediction import Prediction, foreground_class_names
from ..io.volume import Volume
from ..metrics.lesions import connected_components

__all__ = ["check_measurable", "statistics_summary", "structure_statistics", "write_statistics"]

DECIMALS = 4


def check_measurable(source: Volume) -> None:
    """One line unless ``source`` is a CT volume with a spacing in mm on every axis: volumes in ml and mean HU
    mean nothing for a 2-D picture or an array without a grid, so those are refused rather than guessed."""
    where = source.path or source.name
    if source.kind != "volume":
        raise InputError(f"{where} is a 2-D image or an array without voxel spacing, so its structures have no "
                         "volume in ml nor HU; --statistics needs a CT volume (NIfTI or DICOM), drop it for this "
                         "input")
    spacing = source.spacing
    if spacing is None or len(spacing) != 3 or not all(math.isfinite(v) and v > 0 for v in spacing):
        raise InputError(f"{where} states no voxel spacing in mm on every axis ({spacing}), so volumes in ml cannot "
                         "be measured; fix its header (NIfTI pixdim, DICOM PixelSpacing and slice spacing) or drop "
                         "--statistics")


def _voxel_to_mm(source: Volume) -> np.ndarray:
    """The map from (column, row, slice) indices to mm: the input's RAS affine, else its spacing from voxel 0."""
    if source.affine is not None:
        return np.asarray(source.affine, float)
    step_z, step_row, step_column = source.spacing
    return np.diag([step_column, step_row, step_z, 1.0])


def _to_mm(affine: np.ndarray, zyx: np.ndarray) -> List[float]:
    """Positions (``N x 3`` slice, row, column indices) in mm, rounded."""
    points = np.asarray(zyx, float).reshape(-1, 3)[:, ::-1]
    return np.round(points @ affine[:3, :3].T + affine[:3, 3], DECIMALS).tolist()


def _rounded(value: float) -> float:
    return round(float(value), DECIMALS)


def _structure(region: np.ndarray, corner: np.ndarray, hu: np.ndarray, voxel_ml: float, affine: np.ndarray,
               spacing: np.ndarray) -> Dict[str, Any]:
    """The numbers of one class from its voxels ``region`` inside the box whose first voxel is ``corner``."""
    voxels = int(np.count_nonzero(region))
    if not voxels:
        return {"volume": 0.0, "intensity": None, "voxels": 0, "intensity_std": None, "bounding_box_mm": None,
                "size_mm": None}
    inside = np.asarray(hu[region], np.float64)
    indices = np.argwhere(region)
    low, high = indices.min(axis=0) + corner, indices.max(axis=0) + corner
    corners = np.array([[z, y, x] for z in (low[0], high[0]) for y in (low[1], high[1]) for x in (low[2], high[2])])
    world = np.asarray(_to_mm(affine, corners))
    return {"volume": _rounded(voxels * voxel_ml), "intensity": _rounded(inside.mean()), "voxels": voxels,
            "intensity_std": _rounded(inside.std()),
            "bounding_box_mm": {"min": world.min(axis=0).tolist(), "max": world.max(axis=0).tolist()},
            "size_mm": np.round(((high - low + 1) * spacing)[::-1], DECIMALS).tolist()}


def _lesions(region: np.ndarray, corner: np.ndarray, voxel_ml: float, affine: np.ndarray) -> Dict[str, Any]:
    """The class's connected components, largest first, each with its volume and centroid."""
    components, count = connected_components(region)
    if not count:
        return {"lesion_count": 0, "lesions": []}
    ids = components.ravel()
    sizes = np.bincount(ids, minlength=count + 1)[1:]
    grid = np.indices(region.shape).reshape(3, -1)
    centroids = np.stack([np.bincount(ids, weights=axis, minlength=count + 1)[1:] for axis in grid], axis=1)
    centroids = centroids / sizes[:, None] + corner
    order = np.argsort(-sizes, kind="stable")
    positions = _to_mm(affine, centroids[order])
    return {"lesion_count": int(count),
            "lesions": [{"volume": _rounded(sizes[k] * voxel_ml), "voxels": int(sizes[k]), "centroid_mm": position}
                        for k, position in zip(order, positions)]}


def structure_statistics(prediction: Prediction) -> Dict[str, Dict[str, Any]]:
    """``{class name: {"volume": ml, "intensity": mean HU, "voxels", "intensity_std", "bounding_box_mm",
    "size_mm"[, "lesion_count", "lesions"]}}`` for each foreground class of ``prediction`` (names from the model
    config, ``io.prediction.foreground_class_names``); an empty class has volume 0 and null intensity."""
    ndimage = require("scipy.ndimage", "postprocess", "Measuring structures")
    source = prediction.source
    if source is None:
        raise InputError("the prediction holds no input image; predict from a file or a Volume to measure it")
    check_measurable(source)
    mask = np.asarray(prediction.mask)
    hu = np.asarray(source.data)
    if mask.shape != hu.shape:
        raise InputError(f"the mask {mask.shape} is not on the input's grid {hu.shape}; measure the prediction "
                         "predict returned for this input")
    spacing = np.asarray(source.spacing, float)
    voxel_ml = float(np.prod(spacing)) / 1000.0
    affine = _voxel_to_mm(source)
    names = foreground_class_names(prediction)
    boxes = ndimage.find_objects(mask, max_label=len(names))
    statistics: Dict[str, Dict[str, Any]] = {}
    for label, (name, box) in enumerate(zip(names, boxes), start=1):
        box = box or (slice(0, 0),) * 3
        region = mask[box] == label
        corner = np.array([part.start for part in box])
        statistics[name] = _structure(region, corner, hu[box], voxel_ml, affine, spacing)
        if is_lesion_name(name):
            statistics[name].update(_lesions(region, corner, voxel_ml, affine))
    return statistics


def write_statistics(prediction: Prediction, path: Path,
                     statistics: Optional[Dict[str, Dict[str, Any]]] = None) -> Path:
    """``<stem>_statistics.json`` (the ``statistics`` given, else measured now), written atomically."""
    statistics = structure_statistics(prediction) if statistics is None else statistics
    with atomic_path(Path(path)) as temporary:
        temporary.write_text(json.dumps(statistics, indent=2) + "\n", encoding="utf-8")
    return Path(path)


def statistics_summary(statistics: Dict[str, Dict[str, Any]]) -> str:
    """One line: each class's ml and mean HU, and the lesion count of lesion classes."""
    parts = []
    for name, numbers in statistics.items():
        text = f"{name} {numbers['volume']:.1f} ml"
        if numbers["intensity"] is not None:
            text += f", mean {numbers['intensity']:.0f} HU"
        if "lesion_count" in numbers:
            text += f", {numbers['lesion_count']} lesion{'s' if numbers['lesion_count'] != 1 else ''}"
        parts.append(text)
    return "; ".join(parts)
