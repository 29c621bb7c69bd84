"""Named training recipes: the settings of a published training, applied with ``--recipe NAME``.

``lits2017`` is the MindSpore model zoo's ``research/cv/UNet3+`` training of the published weights
(``default_config.yaml``, ``train.py``, ``src/dataset.py``, ``dataset_preprocess.py``), with these
differences, each on purpose:

* split by **patient** (20% of the cases held out), not 80/20 by slice: the published slice split put
  slices of the same patient on both sides, which inflates validation scores;
* validation every epoch on whole held-out volumes (per-case 3-D Dice), not slice Dice from epoch 180;
* slices are cut from the volumes on the fly (the ``lits2017`` preset reproduces the published PNGs,
  see ``unet3plus.transforms.presets``) instead of being written as PNGs first; the first slice's
  context repeats slice 0 instead of wrapping around to the end of the crop; volumes and labels are
  paired by name, not by directory listing order;
* one process on the CPU (or ``msrun`` data-parallel), float32; the published run used Ascend devices.

What is kept: Adam at a learning rate of 3e-4 without weight decay, batch 2, 200 epochs, the published
0.5 * BCE + Dice loss on one sigmoid channel, liver including tumour as one class (LiTS label 2 -> 1),
slices from the first to the last labelled slice of each volume, uniform sampling of those slices (no
foreground oversampling), random horizontal and vertical flips (p = 0.5 each) and nothing else, seed 1.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict

from ..data import Augmentation
from ..errors import InputError

FLIPS_ONLY = Augmentation(flip_probability=0.5, rotate90=False, scale_range=(1.0, 1.0), brightness=0.0, contrast=0.0)


@dataclass(frozen=True)
class Recipe:
    """``train``: ``TrainConfig`` fields; ``data``: ``VolumeOptions`` fields. Explicit options win."""

    name: str
    train: Dict[str, Any] = field(default_factory=dict)
    data: Dict[str, Any] = field(default_factory=dict)


RECIPES: Dict[str, Recipe] = {
    "lits2017": Recipe(
        "lits2017",
        train=dict(epochs=200, batch_size=2, lr=3e-4, weight_decay=0.0, loss="bce_dice", seed=1, val_split=0.2,
                   augmentation=FLIPS_ONLY),
        data=dict(classes=("liver",), label_map={2: 1}, preset="lits2017", slices="labelled",
                  foreground_fraction=0.0),
    ),
}


def get_recipe(name: str) -> Recipe:
    if name not in RECIPES:
        raise InputError(f"unknown recipe {name!r}; choose one of {', '.join(RECIPES)}")
    return RECIPES[name]