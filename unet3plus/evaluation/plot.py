"""A small Pillow strip-and-box plot of per-case scores (no plotting library needed)."""
from __future__ import annotations

from typing import Dict, List, Sequence, Tuple

import numpy as np

from .._optional import require

COLOURS = ((31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189))
PANEL_SIZE = (420, 340)
MARGIN = (60, 30, 20, 40)  # left, top, right, bottom


def distribution_plot(panels: Sequence[Tuple[str, Dict[str, np.ndarray]]]):
    """One panel per ``(title, {group: values})``: for each group a box (quartiles, median, min-max
    whiskers) and every finite value as a point, spread sideways so that equal values stay visible."""
    image_module = require("PIL.Image", "image", "Plotting the score distributions")
    draw_module = require("PIL.ImageDraw", "image", "Plotting the score distributions")
    width, height = PANEL_SIZE
    canvas = image_module.new("RGB", (width * len(panels), height), "white")
    draw = draw_module.Draw(canvas)
    for index, (title, groups) in enumerate(panels):
        _panel(draw, index * width, title, groups)
    return canvas


def _panel(draw, offset: int, title: str, groups: Dict[str, np.ndarray]) -> None:
    width, height = PANEL_SIZE
    left, top, right, bottom = offset + MARGIN[0], MARGIN[1], offset + width - MARGIN[2], height - MARGIN[3]
    finite = [np.asarray(v, float)[np.isfinite(v)] for v in groups.values()]
    pooled = np.concatenate(finite) if finite else np.zeros(0)
    low, high = (0.0, max(float(pooled.max()), 1.0)) if pooled.size else (0.0, 1.0)
    to_y = lambda value: bottom - (value - low) / (high - low) * (bottom - top)  # noqa: E731
    draw.rectangle((left, top, right, bottom), outline="black")
    draw.text((left, 8), title, fill="black")
    draw.text((left - 50, top - 5), f"{high:.3g}", fill="black")
    draw.text((left - 50, bottom - 10), f"{low:.3g}", fill="black")
    slot = (right - left) / max(len(groups), 1)
    for number, ((name, values), kept) in enumerate(zip(groups.items(), finite)):
        colour = COLOURS[number % len(COLOURS)]
        centre = left + slot * (number + 0.5)
        missing = len(values) - kept.size
        draw.text((centre - slot / 2 + 4, bottom + 5), f"{name} (n={kept.size}" + (f", {missing} n/a)" if missing
                                                                                   else ")"), fill=colour)
        if not kept.size:
            continue
        q1, median, q3 = np.percentile(kept, (25, 50, 75))
        half = slot / 4
        draw.line((centre, to_y(kept.min()), centre, to_y(kept.max())), fill=colour)
        draw.rectangle((centre - half, to_y(q3), centre + half, to_y(q1)), outline=colour, width=2)
        draw.line((centre - half, to_y(median), centre + half, to_y(median)), fill=colour, width=3)
        for position, value in enumerate(kept):
            x = centre + half * 1.6 * ((position * 0.618) % 1.0 - 0.5)
            y = to_y(value)
            draw.ellipse((x - 3, y - 3, x + 3, y + 3), outline="black", fill=colour)


__all__: List[str] = ["distribution_plot"]
