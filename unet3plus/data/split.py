"""Split a dataset by patient/group, not by slice: all slices of one patient land on the same side.

The published recipe split LiTS slices at random, so slices of one patient were in both train and test,
which inflates test scores. Here the group is read from the file name.
"""
from __future__ import annotations

import re
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

from .io import DatasetError

# "volume-12_slice_045" -> "volume-12", "patient01_005" -> "patient01", "case3-17" -> "case3"
_TRAILING_INDEX = re.compile(r"[\s._-]*(?:slice|slc|sl|frame|img|image)?[\s._-]*\d+$", re.IGNORECASE)


def default_group_key(name: str) -> str:
    """The name without its trailing slice number (the whole name when nothing is left)."""
    group = _TRAILING_INDEX.sub("", name)
    return group or name


def group_key_from_pattern(pattern: str) -> Callable[[str], str]:
    """A key function from a regular expression: its first group, or the whole match if it has none."""
    compiled = re.compile(pattern)

    def key(name: str) -> str:
        match = compiled.search(name)
        if match is None:
            raise DatasetError(f"file name '{name}' does not match the group pattern {pattern!r}; fix the "
                               "pattern so every name contains the patient/group id")
        return match.group(1) if compiled.groups else match.group(0)

    return key


def split_by_group(names: Sequence[str], val_fraction: float = 0.2, seed: int = 0,
                   group_key: Optional[Callable[[str], str]] = None) -> Tuple[List[int], List[int]]:
    """Indices ``(train, val)`` such that no group has members on both sides.

    About ``val_fraction`` of the groups (at least one; at least one left for training) go to
    validation, chosen by a seeded shuffle.
    """
    if not 0.0 < val_fraction < 1.0:
        raise DatasetError(f"val_fraction must be between 0 and 1, got {val_fraction}")
    key = group_key or default_group_key
    members: Dict[str, List[int]] = {}
    for index, name in enumerate(names):
        members.setdefault(key(name), []).append(index)
    groups = sorted(members)
    if len(groups) < 2:
        raise DatasetError(f"all {len(names)} files belong to one group ({groups[0]!r}), so a group-aware "
                           "split is impossible; give a group pattern (--group-pattern) or validation folders "
                           "(--val-images/--val-masks)")
    order = np.random.default_rng(seed).permutation(len(groups))
    n_val = min(len(groups) - 1, max(1, int(round(val_fraction * len(groups)))))
    val_groups = {groups[i] for i in order[:n_val]}
    train = [i for g in groups if g not in val_groups for i in members[g]]
    val = [i for g in groups if g in val_groups for i in members[g]]
    return sorted(train), sorted(val)
