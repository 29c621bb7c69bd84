"""``predict --preview``: three planes through the largest structure at their physical aspect, masks in the classes'
colours, a montage of the slices holding structures; 2-D inputs are refused in one line."""
from __future__ import annotations

import numpy as np
import pytest

from unet3plus.errors import InputError
from unet3plus.evaluation.preview import (LEGEND_WIDTH, MONTAGE_COLUMNS, PANEL, TEXT_HEIGHT, check_previewable,
                                          render_preview, write_preview)
from unet3plus.io.dicom import display_colour
from unet3plus.io.prediction import Prediction
from unet3plus.io.volume import Volume

Image = pytest.importorskip("PIL.Image")
pytest.importorskip("scipy")

TOP = 2 * TEXT_HEIGHT + 8  # the panels start below the title and their labels


def prediction():
    hu = np.full((10, 40, 60), 100, np.int16)  # grey everywhere, so each plane's drawn extent shows
    mask = np.zeros(hu.shape, np.uint8)
    mask[2:8, 10:30, 10:40] = 1
    mask[4:6, 15:20, 15:20] = 2
    source = Volume("case", "volume", hu, spacing=(3.0, 1.0, 1.0), affine=np.diag([-1.0, -1.0, 3.0, 1.0]))
    return Prediction(mask=mask, probabilities=None, preset="standard", source=source, channels=3,
                      class_names=("background", "liver", "tumour"))


def drawn_size(pixels, panel):
    """``(width, height)`` of the non-black part of top panel ``panel`` (0 axial, 1 coronal, 2 sagittal)."""
    box = pixels[TOP:TOP + PANEL, panel * PANEL:(panel + 1) * PANEL].any(axis=2)
    rows, columns = np.flatnonzero(box.any(axis=1)), np.flatnonzero(box.any(axis=0))
    return columns[-1] - columns[0] + 1, rows[-1] - rows[0] + 1


def test_planes_keep_their_physical_aspect_and_show_the_class_colours():
    picture = render_preview(prediction())
    pixels = np.asarray(picture)
    thumb = (3 * PANEL + LEGEND_WIDTH) // MONTAGE_COLUMNS
    # one montage row: the six slices 2..7 that hold a structure
    assert picture.size == (3 * PANEL + LEGEND_WIDTH, TOP + PANEL + TEXT_HEIGHT + thumb + TEXT_HEIGHT)
    assert drawn_size(pixels, 0) == (PANEL, 200)  # axial: 60 x 40 mm
    assert drawn_size(pixels, 1) == (PANEL, 150)  # coronal: 60 mm wide, 10 slices x 3 mm = 30 mm tall
    assert drawn_size(pixels, 2) == (PANEL, 225)  # sagittal: 40 mm wide, 30 mm tall
    panels = pixels[TOP:TOP + PANEL, :3 * PANEL].reshape(-1, 3)
    for label in (1, 2):  # outlines in the DICOM SEG colours, inside the planes (not only in the legend)
        assert (panels == display_colour(label)).all(axis=1).any()


def test_written_png_and_2d_inputs_refused(tmp_path):
    path = write_preview(prediction(), tmp_path / "case_preview.png")
    with Image.open(path) as image:
        assert image.mode == "RGB" and image.width == 3 * PANEL + LEGEND_WIDTH
    with pytest.raises(InputError, match="drop --preview"):
        check_previewable(Volume("photo", "image", np.zeros((8, 8), np.uint8)), 1)
