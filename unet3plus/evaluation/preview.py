"""One PNG to check a volume's result at a glance (TotalSegmentator's ``--preview``), drawn with Pillow.

Top row: the axial, coronal and sagittal planes through the centroid of the largest structure, each scaled to
its physical aspect (a coronal plane of 5 mm slices is five times taller per slice than a 1 mm one), with the
masks filled and outlined in the classes' colours (``io.dicom.display_colour``, the DICOM SEG's colours) and a
legend. Below: a montage of axial slices evenly spaced over the slices that hold a structure. Planes are shown
as radiologists read them: axial and coronal with the patient's right on the left, superior at the top,
sagittal with anterior on the left (the training orientation, ``io.nifti``, makes this the same for every input).
"""
from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any, List, Sequence, Tuple

import numpy as np

from .._atomic import atomic_path
from .._optional import require
from ..errors import InputError
from ..io.dicom import display_colour
from ..io.prediction import Prediction, foreground_class_names
from ..io.volume import Volume
from ..io.writers import contour, display_slice

logger = logging.getLogger(__name__)

__all__ = ["check_previewable", "render_preview", "write_preview"]

PANEL = 300  # each plane is scaled to fit a PANEL x PANEL box
LEGEND_WIDTH = 220
MONTAGE_COLUMNS, MONTAGE_SLICES = 6, 12
FILL_OPACITY = 0.35
TEXT_HEIGHT = 16
BACKGROUND = (0, 0, 0)
TEXT = (255, 255, 255)


def check_previewable(source: Volume, volume_slices: int) -> None:
    """One line unless the input is a volume: a 2-D image's overlay PNG already is its whole picture."""
    if source.kind == "image" or volume_slices < 2:
        raise InputError(f"{source.path or source.name} is one 2-D slice, which has no coronal or sagittal plane; "
                         "its <name>_overlay.png shows the result, so drop --preview for this input")


def _spacing(source: Volume) -> Tuple[float, float, float]:
    spacing = source.spacing
    if spacing is None or len(spacing) != 3 or not all(math.isfinite(v) and v > 0 for v in spacing):
        logger.warning("%s states no voxel spacing; its preview assumes 1 mm voxels, so its proportions may be "
                       "wrong", source.path or source.name)
        return 1.0, 1.0, 1.0
    return tuple(float(v) for v in spacing)  # type: ignore[return-value]


def _centre(mask: np.ndarray, n_labels: int) -> Tuple[int, int, int]:
    """The voxel nearest the centroid of the largest structure (the volume's centre when there is none)."""
    counts = np.bincount(mask.ravel(), minlength=n_labels + 1)[1:]
    if not counts.any():
        return tuple(n // 2 for n in mask.shape)  # type: ignore[return-value]
    positions = np.argwhere(mask == int(counts.argmax()) + 1)
    return tuple(int(round(v)) for v in positions.mean(axis=0))  # type: ignore[return-value]


def _fitted(rows: int, columns: int, row_mm: float, column_mm: float, box: int) -> Tuple[int, int]:
    """``(width, height)`` in pixels of a plane of physical size ``rows * row_mm`` by ``columns * column_mm``
    scaled to fit a ``box`` square."""
    height_mm, width_mm = rows * row_mm, columns * column_mm
    scale = box / max(height_mm, width_mm)
    return max(1, int(round(width_mm * scale))), max(1, int(round(height_mm * scale)))


def _plane(image_module: Any, hu: np.ndarray, labels: np.ndarray, millimetres: Tuple[float, float], box: int,
           n_labels: int):
    """The plane as an RGB picture of physical aspect within ``box``: grey HU (bilinear), the labels
    (nearest) filled and outlined in their colours."""
    size = _fitted(*hu.shape, *millimetres, box)
    grey = image_module.fromarray(display_slice(hu, 0, hounsfield=True)).resize(size, image_module.BILINEAR)
    shown = np.asarray(image_module.fromarray(labels.astype(np.uint8)).resize(size, image_module.NEAREST))
    rgb = np.repeat(np.asarray(grey, np.float32)[:, :, None], 3, axis=2)
    for label in range(1, n_labels + 1):
        region = shown == label
        if not region.any():
            continue
        colour = np.asarray(display_colour(label), np.float32)
        rgb[region] = (1 - FILL_OPACITY) * rgb[region] + FILL_OPACITY * colour
        rgb[contour(region)] = colour
    return image_module.fromarray(np.uint8(np.rint(rgb)))


def _paste_centred(canvas: Any, picture: Any, left: int, top: int, box: int) -> None:
    canvas.paste(picture, (left + (box - picture.width) // 2, top + (box - picture.height) // 2))


def _montage_slices(mask: np.ndarray) -> List[int]:
    """Up to MONTAGE_SLICES slice indices evenly spaced from the first to the last slice holding a structure."""
    holding = np.flatnonzero(mask.reshape(mask.shape[0], -1).any(axis=1))
    low, high = (int(holding[0]), int(holding[-1])) if holding.size else (0, mask.shape[0] - 1)
    return sorted({int(round(v)) for v in np.linspace(low, high, min(MONTAGE_SLICES, high - low + 1))})


def _legend(draw: Any, left: int, top: int, names: Sequence[str], counts: np.ndarray, font: Any) -> None:
    draw.text((left, top), "classes", fill=TEXT, font=font)
    for label, name in enumerate(names, start=1):
        y = top + TEXT_HEIGHT * (label + 0.5)
        draw.rectangle((left, y, left + 12, y + 12), fill=display_colour(label))
        draw.text((left + 18, y), name + ("" if counts[label - 1] else " (none)"), fill=TEXT, font=font)


def _font() -> Any:
    """Pillow's own font at a readable size (its bitmap default where it has no sizes, Pillow < 10.1)."""
    font_module = require("PIL.ImageFont", "image", "Drawing the preview")
    try:
        return font_module.load_default(size=TEXT_HEIGHT - 3)
    except TypeError:
        return font_module.load_default()


def render_preview(prediction: Prediction) -> Any:
    """The preview of a volume's prediction as a Pillow RGB image (see the module docstring)."""
    image_module = require("PIL.Image", "image", "Drawing the preview")
    draw_module = require("PIL.ImageDraw", "image", "Drawing the preview")
    source = prediction.source
    mask = np.asarray(prediction.mask)
    if source is None:
        raise InputError("the prediction holds no input image; predict from a file or a Volume to preview it")
    check_previewable(source, mask.shape[0] if mask.ndim == 3 else 1)
    hu = np.asarray(source.data)
    names = foreground_class_names(prediction)
    slice_mm, row_mm, column_mm = _spacing(source)
    z, y, x = _centre(mask, len(names))
    planes = [(f"axial z={z}", hu[z], mask[z], (row_mm, column_mm)),
              (f"coronal y={y}", hu[::-1, y, :], mask[::-1, y, :], (slice_mm, column_mm)),  # superior at the top
              (f"sagittal x={x}", hu[::-1, :, x], mask[::-1, :, x], (slice_mm, row_mm))]
    chosen = _montage_slices(mask)
    width = 3 * PANEL + LEGEND_WIDTH
    thumb = width // MONTAGE_COLUMNS
    montage_rows = math.ceil(len(chosen) / MONTAGE_COLUMNS)
    top = 2 * TEXT_HEIGHT + 8  # the title, then the planes' labels (descenders clear of the planes)
    canvas = image_module.new("RGB", (width, top + PANEL + TEXT_HEIGHT + montage_rows * (thumb + TEXT_HEIGHT)),
                              BACKGROUND)
    draw, font = draw_module.Draw(canvas), _font()
    sides = "; patient's right on the left" if source.affine is not None else ""
    draw.text((4, 4), f"{source.name}: {hu.shape[0]} slices of {hu.shape[1]} x {hu.shape[2]}, "
                      f"{slice_mm:.3g} x {row_mm:.3g} x {column_mm:.3g} mm (z, y, x){sides}", fill=TEXT, font=font)
    for index, (title, plane_hu, plane_mask, millimetres) in enumerate(planes):
        _paste_centred(canvas, _plane(image_module, plane_hu, plane_mask, millimetres, PANEL, len(names)),
                       index * PANEL, top, PANEL)
        draw.text((index * PANEL + 4, top - TEXT_HEIGHT - 2), title, fill=TEXT, font=font)
    _legend(draw, 3 * PANEL + 10, top, names, np.bincount(mask.ravel(), minlength=len(names) + 1)[1:], font)
    montage_top = top + PANEL + TEXT_HEIGHT
    for index, k in enumerate(chosen):
        left = (index % MONTAGE_COLUMNS) * thumb
        row_top = montage_top + (index // MONTAGE_COLUMNS) * (thumb + TEXT_HEIGHT)
        draw.text((left + 4, row_top), f"z={k}", fill=TEXT, font=font)
        _paste_centred(canvas, _plane(image_module, hu[k], mask[k], (row_mm, column_mm), thumb - 4, len(names)),
                       left, row_top + TEXT_HEIGHT, thumb)
    return canvas


def write_preview(prediction: Prediction, path: Path) -> Path:
    """``<stem>_preview.png``, written atomically."""
    picture = render_preview(prediction)
    with atomic_path(Path(path)) as temporary:
        picture.save(temporary, format="PNG")
    return Path(path)
