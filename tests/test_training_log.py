"""What a training run tells the user: class names as configured, and empty cells for metrics not computed."""
from __future__ import annotations

import csv
import math
from types import SimpleNamespace

from unet3plus.training.class_report import class_names, per_class_text
from unet3plus.training.history import read_metrics_csv, write_metrics_csv


def test_configured_class_names_name_the_per_class_scores():
    options = SimpleNamespace(n_labels=3, classes=None)
    assert class_names(options) == ["class 1", "class 2"]
    assert per_class_text([0.5, 0.25], options, ["background", "kidney", "cyst"]) == "kidney 0.5000, cyst 0.2500"
    assert class_names(SimpleNamespace(n_labels=2, classes=None), ["background", "liver"]) == ["liver"]


def test_a_metric_not_computed_is_an_empty_cell_and_reads_back_as_nan(tmp_path):
    path = tmp_path / "metrics.csv"
    write_metrics_csv([{"epoch": 1, "train_loss": 0.5, "val_loss": math.nan, "val_dice": 0.8}], path)
    row = next(csv.DictReader(open(path)))
    assert row["val_loss"] == "" and row["val_dice"] == "0.8"
    back = read_metrics_csv(path)[0]
    assert math.isnan(back["val_loss"]) and back["val_dice"] == 0.8
