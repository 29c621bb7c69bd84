"""Check every case of a volume dataset before the first step, and report ALL problems in one error.

A training run that dies on case 97 after an hour of case 1..96 wastes the hour; so each case is read
once, up front (one volume at a time, never all in memory), and every problem found is listed.
"""
from __future__ import annotations

from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from ..io.layouts import VolumeCase
from ..transforms.presets import CONTEXT_SLICES
from .dataset import apply_label_map
from .io import DatasetError
from .volume_io import NON_INTEGER_TOLERANCE, CaseInfo, CaseReader

MAX_PROBLEMS_LISTED = 20
CHECK_CHUNK_SLICES = 32


def _check_case(case: VolumeCase, options, problems: List[str]) -> Optional[CaseInfo]:
    """The case's ``CaseInfo``, or None after appending its problems."""
    try:
        reader = CaseReader(case)
        shape = reader.shape
    except Exception as error:  # nibabel/pydicom raise many types for broken files
        problems.append(f"cannot read {case.image} ({_short(error)})")
        return None
    found = len(problems)
    if reader.label_shape != shape:
        problems.append(f"{case.image} is {_zhw(shape)} but its labels {case.labels} are {_zhw(reader.label_shape)} "
                        "(Z x H x W); they must match voxel for voxel")
    elif reader.affines_differ():
        problems.append(f"{case.image} and its labels {case.labels} have different affines (voxel-to-world "
                        "geometry); resample the labels onto the volume's grid")
    if shape[0] < CONTEXT_SLICES:
        problems.append(f"{case.image} has {shape[0]} slice(s), fewer than the {CONTEXT_SLICES} of the preset's "
                        "slice context; leave this case out")
    if len(problems) > found:
        return None
    bad, values, foreground, slice_classes, fractional = 0, set(), [], [], set()
    try:  # in chunks of slices: a 900-slice CT is never held whole (nor its labels as int64)
        for start in range(0, shape[0], CHECK_CHUNK_SLICES):
            bad += int(np.count_nonzero(~np.isfinite(reader.hu(start, start + CHECK_CHUNK_SLICES))))
            stored = reader.label_values(start, start + CHECK_CHUNK_SLICES)
            if not np.issubdtype(stored.dtype, np.integer) and len(fractional) < 10:  # interpolated labels
                off = np.abs(stored - np.rint(stored)) > NON_INTEGER_TOLERANCE
                fractional.update(float(v) for v in np.unique(stored[off])[:10])
            labels = apply_label_map(np.rint(stored).astype(np.int64), options.label_map)
            values.update(np.unique(labels).tolist())
            flat = labels.reshape(labels.shape[0], -1)
            foreground.append(flat.max(axis=1) > 0)
            slice_classes.append(np.stack([(flat == value).any(axis=1)
                                           for value in range(1, len(options.classes) + 1)], axis=1))
    except Exception as error:
        problems.append(f"cannot read the voxels of {case.image} or {case.labels} ({_short(error)})")
        return None
    if bad:
        problems.append(f"{case.image} holds {bad} NaN/Inf voxel(s); replace them (e.g. with -1024 HU, air)")
    if fractional:
        shown = ", ".join(f"{v:g}" for v in sorted(fractional)[:5])
        problems.append(f"{case.labels} holds non-integer label value(s) ({shown}); labels are class numbers: "
                        "export them as integers (resample labels with nearest neighbour, not linear)")
    values = sorted(values)
    outside = [int(v) for v in values if not 0 <= v <= len(options.classes)]
    if outside:
        problems.append(f"{case.labels} has label value(s) {outside[:10]} outside 0..{len(options.classes)} "
                        f"(background + {', '.join(options.classes)}); map them with --label-map "
                        f"(e.g. {outside[0]}:1) or name more --classes")
    foreground = np.concatenate(foreground)
    if not foreground.any() and not options.allow_empty_cases:
        problems.append(f"{case.labels} is all background (an empty label set); fix the export or allow empty "
                        "cases (--allow-empty-cases)")
    if len(problems) > found:
        return None
    return CaseInfo(case, shape, foreground, frozenset(int(v) for v in values if v > 0), np.concatenate(slice_classes))


def check_cases(cases: Sequence[VolumeCase], options) -> List[CaseInfo]:
    """``CaseInfo`` per case, or a ``DatasetError`` listing every problem of the whole dataset."""
    if not cases:
        raise DatasetError("the volume dataset has no cases; point --volumes at a folder holding them")
    problems: List[str] = []
    infos = [_check_case(case, options, problems) for case in cases]
    if not problems:
        problems += _dataset_problems(infos, options)
    if problems:
        listed = "; ".join(f"({i}) {p}" for i, p in enumerate(problems[:MAX_PROBLEMS_LISTED], 1))
        more = f"; and {len(problems) - MAX_PROBLEMS_LISTED} more" if len(problems) > MAX_PROBLEMS_LISTED else ""
        raise DatasetError(f"{len(problems)} problem(s) in the volume dataset of {len(cases)} case(s): {listed}{more}. "
                           "Fix or remove these cases; nothing was trained or written.")
    return infos


def _dataset_problems(infos, options) -> List[str]:
    problems = []
    sizes: Dict[Tuple[int, int], str] = {}
    for info in infos:
        sizes.setdefault(info.shape[1:], info.name)
    if len(sizes) > 1:
        listed = ", ".join(f"{h}x{w} ({name})" for (h, w), name in list(sizes.items())[:5])
        problems.append(f"the cases come in {len(sizes)} slice sizes ({listed}); training batches need one size: "
                        "resample the volumes in-plane to one grid first")
    present = set().union(*(info.classes_present for info in infos))
    missing = [name for value, name in enumerate(options.classes, 1) if value not in present]
    if missing:
        problems.append(f"no case has any voxel of class(es) {', '.join(missing)}; check --classes and --label-map")
    return problems


def _zhw(shape) -> str:
    return "x".join(str(s) for s in shape)


def _short(error: Exception) -> str:
    return " ".join(str(error).split())[:200] or type(error).__name__
