"""Foreground-aware epoch sampling for volume datasets (most CT slices show no liver, let alone tumour).

Like nnU-Net (a third of its patches forced onto foreground), a set fraction of each epoch's samples is
drawn from slices that hold foreground; optionally a set share from empty slices; the rest uniformly
from all slices. Deterministic from ``(seed, epoch)`` and sharded like ``EpochSampler``, so the result
does not depend on the number of workers and a resumed run draws what an uninterrupted one would.

With several foreground classes, "any foreground" mostly means the large class: a tumour on 5% of the
liver's slices gets 5% of the forced samples. ``class-balanced`` sampling does what nnU-Net does: each
forced sample first picks a class, uniformly among the classes some slice holds, then a slice holding it.
"""
from __future__ import annotations

import logging
from typing import Dict, Iterator, List, Mapping, Optional, Tuple

import numpy as np

from .io import DatasetError

logger = logging.getLogger(__name__)

ANY_FOREGROUND, CLASS_BALANCED = "any-foreground", "class-balanced"
SAMPLINGS = (ANY_FOREGROUND, CLASS_BALANCED)


def default_sampling(n_foreground_classes: int) -> str:
    """Class-balanced with several foreground classes (a small class is not drowned by a large one)."""
    return CLASS_BALANCED if n_foreground_classes > 1 else ANY_FOREGROUND


def check_sampling(sampling: str) -> None:
    if sampling not in SAMPLINGS:
        raise DatasetError(f"sampling must be one of {', '.join(SAMPLINGS)}, got {sampling!r}")


def check_fractions(foreground_fraction: float, empty_fraction: Optional[float]) -> None:
    if not 0.0 <= foreground_fraction <= 1.0:
        raise DatasetError(f"the foreground fraction must be in [0, 1], got {foreground_fraction}")
    if empty_fraction is not None and not (0.0 <= empty_fraction <= 1.0 - foreground_fraction + 1e-9):
        raise DatasetError(f"the empty-slice share must be in [0, 1 - foreground fraction] = "
                           f"[0, {1.0 - foreground_fraction:g}], got {empty_fraction}")


class ForegroundSampler:
    """One epoch's item indices for one shard.

    Args:
        has_foreground: per item, whether its slice holds foreground.
        foreground_fraction: share of samples drawn from foreground slices.
        empty_fraction: share drawn from empty slices (None: no forced share, the rest is uniform).
        size: samples per epoch over all shards (default: the number of items).
        classes: per foreground class name, per item whether its slice holds that class; given, the
            foreground share is class-balanced (a class no slice holds is left out of the draw); None:
            any foreground slice alike (the draws of the binary case, unchanged).
    """

    def __init__(self, has_foreground: np.ndarray, *, foreground_fraction: float = 1.0 / 3.0,
                 empty_fraction: Optional[float] = None, epoch: int = 0, seed: int = 0, num_shards: int = 1,
                 shard_id: int = 0, size: Optional[int] = None,
                 classes: Optional[Mapping[str, np.ndarray]] = None) -> None:
        check_fractions(foreground_fraction, empty_fraction)
        if not 0 <= shard_id < num_shards:
            raise ValueError(f"shard_id must be in 0..{num_shards - 1}, got {shard_id}")
        self.has_foreground = np.asarray(has_foreground, bool)
        self.classes = None if classes is None else {name: np.asarray(held, bool) for name, held in classes.items()}
        if self.classes is not None and any(held.shape != self.has_foreground.shape for held in self.classes.values()):
            raise ValueError(f"each class needs one flag per item ({len(self.has_foreground)})")
        self.foreground_fraction, self.empty_fraction = foreground_fraction, empty_fraction
        self.epoch, self.seed, self.num_shards, self.shard_id = epoch, seed, num_shards, shard_id
        self.size = len(self.has_foreground) if size is None else size
        self._epoch_indices = self._draw()

    def _draw(self) -> np.ndarray:
        rng = np.random.default_rng([self.seed, self.epoch])
        foreground = np.flatnonzero(self.has_foreground)
        empty = np.flatnonzero(~self.has_foreground)
        n_foreground = int(round(self.foreground_fraction * self.size)) if foreground.size else 0
        n_empty = int(round(self.empty_fraction * self.size)) if self.empty_fraction and empty.size else 0
        n_empty = min(n_empty, self.size - n_foreground)
        everything = np.arange(len(self.has_foreground))
        # each pool is walked in a shuffled order (repeating only when it is smaller than its share)
        pools = self._foreground_pools(rng, foreground, n_foreground) + [
            (empty, n_empty), (everything, self.size - n_foreground - n_empty)]
        picks = np.concatenate([np.resize(rng.permutation(pool), count) for pool, count in pools]).astype(np.int64)
        return picks[rng.permutation(len(picks))]

    def _foreground_pools(self, rng: np.random.Generator, foreground: np.ndarray,
                          n_foreground: int) -> List[Tuple[np.ndarray, int]]:
        """``(items, draws)`` of the forced-foreground share: all foreground slices, or class-balanced, one
        pool per class some slice holds, each draw picking its class uniformly."""
        held = [pool for pool in (np.flatnonzero(flags) for flags in (self.classes or {}).values()) if pool.size]
        if not held:
            return [(foreground, n_foreground)]
        counts = rng.multinomial(n_foreground, np.full(len(held), 1.0 / len(held)))
        return list(zip(held, counts))

    def epoch_indices(self) -> np.ndarray:
        """The whole epoch's samples, all shards together."""
        return self._epoch_indices

    def indices(self) -> np.ndarray:
        per_shard = len(self)
        return np.resize(self._epoch_indices, per_shard * self.num_shards)[self.shard_id::self.num_shards]

    def realised(self) -> Dict[str, float]:
        """Fractions of this epoch's samples that show foreground and that are empty."""
        shown = self.has_foreground[self._epoch_indices]
        return {"foreground": float(shown.mean()), "empty": float(1.0 - shown.mean())}

    def class_shares(self) -> Dict[str, float]:
        """Per class, the fraction of this epoch's samples whose slice holds it (empty without ``classes``)."""
        return {name: float(held[self._epoch_indices].mean()) for name, held in (self.classes or {}).items()}

    def describe(self) -> str:
        fractions = self.realised()
        setting = f"at least {self.foreground_fraction:.1%} foreground"
        if self.classes is not None:
            setting += " (class-balanced)"
        if self.empty_fraction is not None:
            setting += f", {self.empty_fraction:.1%} empty"
        shares = ", ".join(f"{name} {share:.1%}" for name, share in self.class_shares().items())
        return (f"epoch {self.epoch + 1} samples: {fractions['foreground']:.1%} with foreground, "
                f"{fractions['empty']:.1%} empty, of {self.size} ({setting}; "
                f"{self.has_foreground.mean():.1%} of the slices hold foreground)"
                f"{f'; samples holding each class: {shares}' if shares else ''}")

    def __iter__(self) -> Iterator[int]:
        return iter(self.indices().tolist())

    def __len__(self) -> int:
        return -(-self.size // self.num_shards)
