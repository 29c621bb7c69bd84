"""Where the body is in a CT and which part of each slice the network must see: the one decision every
``predict`` strategy takes its crops and skipped slices from (``runtime/cropping.py`` runs the plan).

Why cropping keeps the mask: the volume presets map everything below their window (air, and in
``lits2017`` fat too) to 0, which is what a convolution's zero padding feeds in, and the cropped network
up-samples with the full slice's matrices (``networks.fusion.PositionedUNet3Plus``). What remains is the
padding's effect on the deeper layers, which a margin of 32 px around the body keeps out of it
(``docs/whole-ct.md``; measurements in ``benchmarks/RESULTS.md``).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional, Sequence, Tuple

import numpy as np

from .._optional import require

BODY_HU = -500  # above this a voxel is body (or couch); air is about -1000 HU
MIN_BODY_FRACTION = 0.01  # a slice whose largest body region covers less of it holds no body
MARGIN = 32  # pixels of context around the body box (32 px changed at most 2 voxels of a CT, 48 px none)
SIZE_STEP = 16  # crop sizes are rounded up to this: one shape per CT size, so one compiled graph or export each
CROP_MIN_SLICES = 8  # fewer body slices than this: full slices (a new crop shape costs an export or a compile)
CROP_MAX_FRACTION = 0.8  # crop only where it keeps at most this share of the padded slice's pixels
ORGAN_MARGIN_SLICES = 2  # --fast: slices of context beyond the coarse pass's first and last organ slice
COARSE_STEP_MM = 16.0  # --fast's coarse pass: a body slice every 16 mm (every 8th at 2 mm, every 3rd at 5 mm)
COARSE_STEP_SLICES = 4  # ... or every 4th where the file states no slice spacing
_STRIDE = 4  # the body is found on every 4th pixel; its box grows by a stride on each side to make up for it

Box = Tuple[int, int, int, int]  # top, bottom, left, right (bottom and right exclusive)


def body_boxes(volume: np.ndarray) -> np.ndarray:
    """``Z x 4`` int64 ``(top, bottom, left, right)`` of each slice's body: the bounding box of the largest
    connected region above ``BODY_HU`` (the couch and stray pixels are other regions); ``-1`` where a slice
    has no region of ``MIN_BODY_FRACTION`` of its pixels. ``volume`` is ``Z x H x W`` in HU, in any dtype
    (int16 stays int16: one boolean slice at a time, on every ``_STRIDE``-th pixel)."""
    ndimage = require("scipy.ndimage", "postprocess", "Finding the body in a CT")
    volume = np.asarray(volume)
    n_slices, height, width = volume.shape
    boxes = np.full((n_slices, 4), -1, np.int64)
    smallest = MIN_BODY_FRACTION * height * width / _STRIDE ** 2
    for z in range(n_slices):
        labels, count = ndimage.label(volume[z, ::_STRIDE, ::_STRIDE] > BODY_HU)
        if count == 0:
            continue
        sizes = np.bincount(labels.ravel())[1:]
        largest = int(sizes.argmax())
        if sizes[largest] < smallest:
            continue
        region = labels == largest + 1
        rows, columns = np.flatnonzero(region.any(1)), np.flatnonzero(region.any(0))
        boxes[z] = (max(0, (rows[0] - 1) * _STRIDE), min(height, (rows[-1] + 1) * _STRIDE),
                    max(0, (columns[0] - 1) * _STRIDE), min(width, (columns[-1] + 1) * _STRIDE))
    return boxes


@dataclass(frozen=True)
class CropPlan:
    """What the network runs on: ``batches`` of slice indices (consecutive), each with the ``(top, left)`` of
    its crop of shape ``crop`` in the slice zero-padded to ``size``; slices in no batch are background."""

    size: Tuple[int, int]
    crop: Tuple[int, int]
    batches: Tuple[Tuple[Tuple[int, ...], Tuple[int, int]], ...]

    @property
    def cropped(self) -> bool:
        return self.crop != self.size

    @property
    def slices(self) -> np.ndarray:
        return np.asarray([z for indices, _ in self.batches for z in indices], np.int64)

    @property
    def crop_fraction(self) -> float:
        """The share of a padded slice's pixels that the network sees on each slice it runs."""
        return self.crop[0] * self.crop[1] / (self.size[0] * self.size[1])


def crop_plan(boxes: np.ndarray, size: Tuple[int, int], batch: int, multiple: int, *, crop: bool = True,
              slices: Optional[Sequence[int]] = None, n_slices: Optional[int] = None,
              shape: Optional[Tuple[int, int]] = None) -> CropPlan:
    """The plan for slices with a body (``boxes`` from :func:`body_boxes`; of ``slices`` only, when given):
    runs of consecutive slices in batches of ``batch``, each cut to the union of its bodies' boxes plus
    ``MARGIN``, with offsets and sizes multiples of ``multiple`` (the network's: 16), and one crop shape for
    the whole CT (the largest, rounded up to ``SIZE_STEP``). Full slices instead unless ``crop`` and
    :func:`crop_pays`. ``shape``: this crop shape instead (a plan for some of the slices of a CT whose
    plan for all chose it; ``crop`` then says whether that plan cropped)."""
    chosen = np.flatnonzero(boxes[:, 0] >= 0)
    if slices is not None:
        chosen = np.intersect1d(chosen, np.asarray(slices, np.int64))
    groups = [run[start:start + batch] for run in consecutive_runs(chosen) for start in range(0, len(run), batch)]
    whole = CropPlan(tuple(size), tuple(size), tuple((tuple(int(z) for z in g), (0, 0)) for g in groups))
    if shape is not None and (not crop or tuple(shape) == tuple(size)):
        return whole
    if shape is not None:  # a group whose bodies together do not fit goes slice by slice (each one fits)
        groups = [part for group in groups for part in (
            [group] if _fits(_box(boxes, group, size, multiple), shape) else [group[i:i + 1] for i in range(len(group))])]
    unions = [_box(boxes, group, size, multiple) for group in groups]
    if shape is None:
        if not unions:
            return whole
        needed = (max(b[1] - b[0] for b in unions), max(b[3] - b[2] for b in unions))
        shape = tuple(min(full, math.ceil(need / SIZE_STEP) * SIZE_STEP) for need, full in zip(needed, size))
        if not (crop and crop_pays(len(chosen), shape, size, n_slices)):
            return whole
    batches = tuple((tuple(int(z) for z in group), (_offset(box[0], box[1], shape[0], size[0], multiple),
                                                     _offset(box[2], box[3], shape[1], size[1], multiple)))
                    for group, box in zip(groups, unions))
    return CropPlan(tuple(size), tuple(int(s) for s in shape), batches)


def consecutive_runs(indices: np.ndarray) -> list:
    """Sorted ``indices`` split into runs of consecutive values."""
    return np.split(indices, np.flatnonzero(np.diff(indices) != 1) + 1) if len(indices) else []


def _box(boxes: np.ndarray, group: np.ndarray, size: Tuple[int, int], multiple: int) -> Box:
    """The union of ``group``'s body boxes plus ``MARGIN``, widened to multiples of ``multiple``, in the slice."""
    top, bottom = boxes[group, 0].min() - MARGIN, boxes[group, 1].max() + MARGIN
    left, right = boxes[group, 2].min() - MARGIN, boxes[group, 3].max() + MARGIN
    return (int(max(0, top // multiple * multiple)), int(min(size[0], -(-bottom // multiple) * multiple)),
            int(max(0, left // multiple * multiple)), int(min(size[1], -(-right // multiple) * multiple)))


def _fits(box: Box, shape: Tuple[int, int]) -> bool:
    return box[1] - box[0] <= shape[0] and box[3] - box[2] <= shape[1]


def crop_pays(n_body_slices: int, crop: Tuple[int, int], size: Tuple[int, int],
              n_slices: Optional[int] = None) -> bool:
    """The rule: crop a CT with at least ``CROP_MIN_SLICES`` body slices (a volume of fewer slices in all, a
    handful of images, never) whose crop keeps at most ``CROP_MAX_FRACTION`` of the slice's pixels."""
    enough = n_body_slices >= CROP_MIN_SLICES and (n_slices is None or n_slices >= CROP_MIN_SLICES)
    return enough and crop[0] * crop[1] <= CROP_MAX_FRACTION * size[0] * size[1]


def _offset(start: int, stop: int, crop: int, full: int, multiple: int) -> int:
    """Where a crop of ``crop`` pixels holding ``start:stop`` begins: centred on it, inside ``0:full``, a
    multiple of ``multiple`` (``start``, ``crop`` and ``full`` are)."""
    spare = (crop - (stop - start)) // 2 // multiple * multiple
    return int(min(max(0, start - spare), full - crop))


def coarse_step(slice_spacing: Optional[float]) -> int:
    """Slices between two of ``--fast``'s coarse pass: ``COARSE_STEP_MM`` apart in the body, so that a liver
    (15-20 cm long) is seen about ten times whatever the slice thickness."""
    if slice_spacing is None or not slice_spacing > 0:
        return COARSE_STEP_SLICES
    return max(1, round(COARSE_STEP_MM / slice_spacing))


def coarse_slices(boxes: np.ndarray, step: int) -> np.ndarray:
    """``--fast``'s first pass: every ``step``-th slice that holds a body (the last one too)."""
    body = np.flatnonzero(boxes[:, 0] >= 0)
    if len(body) == 0:
        return body
    return np.unique(np.concatenate([body[::step], body[-1:]]))


def organ_slices(coarse: np.ndarray, found: np.ndarray, n_slices: int, step: int) -> np.ndarray:
    """``--fast``'s second pass: the slices between the first and last coarse slice where the network found
    foreground (``found``, a boolean per ``coarse`` slice), widened to the neighbouring coarse slices and
    ``ORGAN_MARGIN_SLICES`` more, so the organ's true ends (between two coarse slices) are inside."""
    hits = coarse[np.asarray(found, bool)]
    if len(hits) == 0:
        return np.zeros(0, np.int64)
    first = max(0, int(hits.min()) - step - ORGAN_MARGIN_SLICES)
    last = min(n_slices - 1, int(hits.max()) + step + ORGAN_MARGIN_SLICES)
    return np.arange(first, last + 1)
