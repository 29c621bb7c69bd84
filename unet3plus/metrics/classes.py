"""Which voxels make up each scored class: one label each, or label sets such as LiTS's liver (1 and 2)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import List, Sequence, Tuple

import numpy as np

__all__ = ["ScoredClass", "binary_classes", "check_label_values", "label_classes", "lits_classes"]


@dataclass(frozen=True)
class ScoredClass:
    """A class scored on the voxels whose label is in ``labels``; ``lesions`` also counts its connected
    components as lesions (detection precision and recall)."""

    name: str
    labels: Tuple[int, ...]
    lesions: bool = False

    def region(self, label_map: np.ndarray) -> np.ndarray:
        label_map = np.asarray(label_map)
        if len(self.labels) == 1:
            return label_map == self.labels[0]
        return np.isin(label_map, self.labels)


def lits_classes() -> List[ScoredClass]:
    """The LiTS benchmark's convention: liver = every label >= 1 (tumour included), tumour = label 2, whose
    connected components are the lesions."""
    return [ScoredClass("liver", (1, 2)), ScoredClass("tumour", (2,), lesions=True)]


def binary_classes() -> List[ScoredClass]:
    """One foreground class, label 1 (what a one-channel model predicts)."""
    return [ScoredClass("foreground", (1,))]


def label_classes(n_classes: int, names: Sequence[str] = ()) -> List[ScoredClass]:
    """Classes ``1 .. n_classes - 1`` (0 is background), each its own label; ``names`` optional."""
    if n_classes < 2:
        raise ValueError(f"n_classes counts background too and must be >= 2, got {n_classes}")
    names = list(names) or [f"class{k}" for k in range(1, n_classes)]
    if len(names) != n_classes - 1:
        raise ValueError(f"{len(names)} names for {n_classes - 1} foreground classes; give one per class")
    return [ScoredClass(name, (k,)) for k, name in zip(range(1, n_classes), names)]


def check_label_values(label_map: np.ndarray, classes: Sequence[ScoredClass]) -> None:
    """ValueError when ``label_map`` holds a value no class (nor background 0) covers."""
    allowed = {0}.union(*(c.labels for c in classes))
    present = _values_present(np.asarray(label_map))
    unknown = [v for v in present.tolist() if v not in allowed]
    if unknown:
        raise ValueError(f"label values {unknown[:5]} are outside the classes' labels {sorted(allowed)}")


def _values_present(label_map: np.ndarray) -> np.ndarray:
    """The distinct values; a histogram for small non-negative integers (far faster than sorting a CT)."""
    if label_map.dtype == bool:
        label_map = label_map.view(np.uint8)
    if label_map.size and label_map.dtype.kind in "iu" and label_map.min() >= 0 and label_map.max() < 65536:
        return np.flatnonzero(np.bincount(label_map.ravel()))
    return np.unique(label_map)
