"""What ``evaluate`` gives: per-case LiTS scores and their aggregates as a table, CSV, JSON and a PNG plot.

Each case row also has its predicted and reference volume in ml (3-D cases with a spacing in mm), and the
JSON names the surface-distance conventions (``conventions``): the same masks score differently under others.

Every file is written atomically and an existing file is replaced only with ``overwrite=True``.
"""
from __future__ import annotations

import csv
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional

import numpy as np

from .._atomic import atomic_path
from ..errors import InputError
from ..metrics import METRICS, ClassScores, MetricsReport
from ..metrics.report import LESION_RATES

DISTANCES = ("assd", "rmsd", "mssd", "hd95")
PLOTTED = (("dice", "Dice"), ("assd", "ASSD"))


@dataclass
class Evaluation:
    """The :class:`~unet3plus.metrics.MetricsReport` of all cases; ``units`` of the distances (``mm`` or
    ``px`` for 2-D images without a spacing)."""

    report: MetricsReport
    units: str = "mm"

    # -- rows ---------------------------------------------------------------------------------------
    def _column(self, class_name: str, field: str) -> str:
        name = f"{field}_{self.units}" if field in DISTANCES else field
        return name if len(self.report.class_names) == 1 else f"{class_name}_{name}"

    def _class_cells(self, scores: ClassScores, ndim: int) -> Dict[str, object]:
        cells: Dict[str, object] = {m: scores.metric(m) for m in METRICS}
        cells.update(status=scores.status, predicted_voxels=scores.predicted_voxels,
                     reference_voxels=scores.reference_voxels)
        if ndim == 3 and self.units == "mm":  # a volume needs three axes in mm
            cells.update(predicted_ml=scores.predicted_ml, reference_ml=scores.reference_ml)
        if scores.lesions is not None:
            cells.update(lesions_reference=scores.lesions.reference_lesions,
                         lesions_predicted=scores.lesions.predicted_lesions,
                         **{f"lesion_{rate}": getattr(scores.lesions, rate) for rate in LESION_RATES})
        return cells

    def rows(self) -> List[Dict[str, object]]:
        """One row per case (columns ``<class>_<metric>`` when there are several classes), then ``mean``
        (mean per case), ``n`` (cases each mean covers) and ``global`` (pooled Dice, Jaccard, lesion rates)."""
        rows = []
        for case in self.report.cases:
            row: Dict[str, object] = {"case": case.name}
            for scores in case.classes:
                cells = self._class_cells(scores, len(case.spacing))
                row.update({self._column(scores.name, k): v for k, v in cells.items()})
            rows.append(row)
        mean, count, pooled = {"case": "mean"}, {"case": "n"}, {"case": "global"}
        for name in self.report.class_names:
            for metric in METRICS:
                mean[self._column(name, metric)] = self.report.mean(name, metric)
                count[self._column(name, metric)] = self.report.n_cases_for(name, metric)
            pooled[self._column(name, "dice")] = self.report.global_dice(name)
            pooled[self._column(name, "jaccard")] = self.report.global_jaccard(name)
            lesions = self.report.pooled_lesions(name)
            if lesions is not None:
                pooled.update({self._column(name, f"lesion_{rate}"): getattr(lesions, rate) for rate in LESION_RATES})
        return rows + [mean, count, pooled]

    # -- text ---------------------------------------------------------------------------------------
    def table(self) -> str:
        """Per class: one line per case with every metric, the mean per case and the global Dice."""
        lines = []
        for name in self.report.class_names:
            header = ["case"] + [f"{m} ({self.units})" if m in DISTANCES else m for m in METRICS] + ["status"]
            lines.append(f"class {name}")
            lines.append(f"{header[0]:<24}" + "".join(f"{h:>12}" for h in header[1:-1]) + f"  {header[-1]}")
            for case in self.report.cases:
                cells = "".join(f"{_number(case[name].metric(m)):>12}" for m in METRICS)
                lines.append(f"{_short(case.name):<24}{cells}  {case[name].status}")
            means = "".join(f"{_number(self.report.mean(name, m)):>12}" for m in METRICS)
            counts = ", ".join(f"{k} {v}" for k, v in self.report.statuses(name).items())
            lines.append(f"{'mean per case':<24}{means}  ({counts}; undefined values left out of the means)")
            line = f"global Dice {self.report.global_dice(name):.4f}, Jaccard {self.report.global_jaccard(name):.4f}"
            lesions = self.report.pooled_lesions(name)
            if lesions is not None:
                line += (f"; lesions {lesions.found_iou}/{lesions.reference_lesions} found at IoU > 0.5 "
                         f"(recall {_number(lesions.recall_iou)}, precision {_number(lesions.precision_iou)}), "
                         f"{lesions.found_overlap} at any overlap (recall {_number(lesions.recall_overlap)}, "
                         f"precision {_number(lesions.precision_overlap)})")
            lines.append(line)
        return "\n".join(lines)

    # -- files --------------------------------------------------------------------------------------
    def write_csv(self, path: Path, *, overwrite: bool = False) -> Path:
        rows = self.rows()
        columns = list(dict.fromkeys(key for row in rows for key in row))
        with _output(path, overwrite) as temporary, open(temporary, "w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=columns, restval="")
            writer.writeheader()
            writer.writerows(rows)
        return Path(path)

    def as_dict(self) -> Dict[str, object]:
        """Everything, JSON-ready: undefined values are ``null`` (the ``status`` says why)."""
        cases = [{"case": case.name, "spacing": list(case.spacing),
                  "classes": {s.name: self._class_cells(s, len(case.spacing)) for s in case.classes}}
                 for case in self.report.cases]
        return _json_ready({"units": self.units, "metrics": list(METRICS), "conventions": self.report.conventions(),
                            "classes": self.report.class_names, "cases": cases, "summary": self.report.summary()})

    def write_json(self, path: Path, *, overwrite: bool = False) -> Path:
        with _output(path, overwrite) as temporary:
            Path(temporary).write_text(json.dumps(self.as_dict(), indent=2, allow_nan=False) + "\n")
        return Path(path)

    def write_plot(self, path: Path, *, overwrite: bool = False) -> Path:
        """A PNG with the per-case distributions of Dice and ASSD for every class (box and points)."""
        from .plot import distribution_plot

        panels = [(f"{title} ({self.units})" if metric in DISTANCES else title,
                   {name: self.report.values(name, metric) for name in self.report.class_names})
                  for metric, title in PLOTTED]
        image = distribution_plot(panels)
        with _output(path, overwrite) as temporary:
            image.save(temporary, format="PNG")
        return Path(path)


def check_outputs_free(paths: List[Optional[Path]], overwrite: bool) -> None:
    """Before any work: an existing output file is an error unless ``overwrite``."""
    for path in paths:
        if path is not None and Path(path).exists() and not overwrite:
            raise InputError(f"{path} already exists; pass --overwrite to replace it, or choose another path")


def _output(path: Path, overwrite: bool):
    check_outputs_free([Path(path)], overwrite)
    return atomic_path(path)


def _json_ready(value):
    if isinstance(value, dict):
        return {str(k): _json_ready(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_ready(v) for v in value]
    if isinstance(value, (float, np.floating)):
        return None if math.isnan(value) else float(value)
    if isinstance(value, np.integer):
        return int(value)
    return value


def _number(value: float) -> str:
    return "n/a" if math.isnan(value) else f"{value:.4f}"


def _short(name: str, width: int = 23) -> str:
    return name if len(name) <= width else name[: width - 1] + "~"
