"""The metrics log (CSV, one row per epoch) and a PNG plot of the curves, drawn with Pillow."""
from __future__ import annotations

import csv
import math
from pathlib import Path
from typing import Dict, List, Sequence

from .._atomic import atomic_path
from .._optional import require

COLUMNS = ("epoch", "train_loss", "val_loss", "val_dice", "val_iou", "val_global_dice", "lr", "seconds")


def write_metrics_csv(rows: Sequence[Dict[str, float]], path: Path) -> None:
    """Rewrite the whole log atomically (it is small), so a kill never leaves a torn row."""
    with atomic_path(path) as temporary:
        with open(temporary, "w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=COLUMNS, extrasaction="ignore")
            writer.writeheader()
            for row in rows:
                writer.writerow({k: _cell(v) for k, v in row.items()})


def _cell(value):
    """A metric that was not computed (NaN, e.g. volume runs' val_loss) is an empty cell, not "nan"."""
    if isinstance(value, float):
        return "" if math.isnan(value) else f"{value:.6g}"
    return value


def read_metrics_csv(path: Path) -> List[Dict[str, float]]:
    with open(path, newline="") as handle:
        return [{k: float(v) if v != "" else math.nan for k, v in row.items()} for row in csv.DictReader(handle)]


PANELS = (("loss", ("train_loss", "val_loss")), ("validation Dice / IoU", ("val_dice", "val_iou")))
COLOURS = ((31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40))


def plot_curves(rows: Sequence[Dict[str, float]], path: Path, size=(900, 360)) -> None:
    """Two panels (losses; Dice and IoU) against epochs, saved atomically as PNG."""
    image_module = require("PIL.Image", "train", "Plotting the training curves")
    draw_module = require("PIL.ImageDraw", "train", "Plotting the training curves")
    width, height = size
    canvas = image_module.new("RGB", size, "white")
    draw = draw_module.Draw(canvas)
    epochs = [row["epoch"] for row in rows]
    panel_width = width // len(PANELS)
    for panel, (title, keys) in enumerate(PANELS):
        left, top = panel * panel_width + 50, 30
        right, bottom = (panel + 1) * panel_width - 15, height - 40
        series = {k: [row.get(k, math.nan) for row in rows] for k in keys}
        finite = [v for values in series.values() for v in values if math.isfinite(v)]
        low, high = (min(finite), max(finite)) if finite else (0.0, 1.0)
        if high - low < 1e-12:
            low, high = low - 0.5, high + 0.5
        first, last = (min(epochs), max(epochs)) if epochs else (0, 1)
        span = max(last - first, 1)
        draw.rectangle((left, top, right, bottom), outline="black")
        draw.text((left, 8), title, fill="black")
        draw.text((left - 45, top), f"{high:.3g}", fill="black")
        draw.text((left - 45, bottom - 10), f"{low:.3g}", fill="black")
        draw.text((left, bottom + 5), f"epoch {first:g}", fill="black")
        draw.text((right - 60, bottom + 5), f"{last:g}", fill="black")
        for number, (key, values) in enumerate(series.items()):
            colour = COLOURS[number % len(COLOURS)]
            points = [(left + (e - first) / span * (right - left), bottom - (v - low) / (high - low) * (bottom - top))
                      for e, v in zip(epochs, values) if math.isfinite(v)]
            if len(points) > 1:
                draw.line(points, fill=colour, width=2)
            for x, y in points:
                draw.ellipse((x - 2, y - 2, x + 2, y + 2), fill=colour)
            draw.text((right - 110, top + 8 + 14 * number), key, fill=colour)
    with atomic_path(path) as temporary:
        canvas.save(temporary, format="PNG")
