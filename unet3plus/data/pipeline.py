"""The MindSpore ``GeneratorDataset`` pipeline: seeded shuffling, per-worker sharding, augmentation,
batching and parallel workers.

Randomness is a pure function of ``(seed, epoch, index)``: the sample order of an epoch comes from
``(seed, epoch)`` and each sample's augmentation from ``(seed, epoch, index)``. So results do not depend
on the number of workers, data-parallel workers see disjoint shards of the same permutation, and a
resumed run continues exactly where an uninterrupted one would be. Build one loader per epoch.
"""
from __future__ import annotations

import logging
from typing import Iterator, Optional, Tuple

import numpy as np

from .augment import Augmentation
from .dataset import SegmentationDataset
from .io import DatasetError

COLUMNS = ["image", "label"]
logger = logging.getLogger(__name__)


class EpochSampler:
    """Indices of one epoch for one shard: a seeded permutation (or the natural order), padded by
    wrapping around so that every shard gets the same number of samples."""

    def __init__(self, size: int, *, epoch: int = 0, shuffle: bool = True, seed: int = 0,
                 num_shards: int = 1, shard_id: int = 0) -> None:
        if not 0 <= shard_id < num_shards:
            raise ValueError(f"shard_id must be in 0..{num_shards - 1}, got {shard_id}")
        self.size, self.epoch, self.shuffle, self.seed = size, epoch, shuffle, seed
        self.num_shards, self.shard_id = num_shards, shard_id

    def indices(self) -> np.ndarray:
        order = (np.random.default_rng([self.seed, self.epoch]).permutation(self.size) if self.shuffle
                 else np.arange(self.size))
        per_shard = -(-self.size // self.num_shards)
        order = np.resize(order, per_shard * self.num_shards)  # wraps around to pad
        return order[self.shard_id::self.num_shards]

    def __iter__(self) -> Iterator[int]:
        return iter(self.indices().tolist())

    def __len__(self) -> int:
        return -(-self.size // self.num_shards)


class AugmentedSource:
    """Random-access source for ``GeneratorDataset``: the dataset item, augmented with its own seed."""

    def __init__(self, dataset: SegmentationDataset, augmentation: Optional[Augmentation], seed: int, epoch: int):
        self.dataset, self.augmentation, self.seed, self.epoch = dataset, augmentation, seed, epoch

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> Tuple[np.ndarray, np.ndarray]:
        image, labels = self.dataset[int(index)]
        if self.augmentation is not None:
            rng = np.random.default_rng([self.seed, self.epoch, int(index)])
            image, labels = self.augmentation(image, labels, rng)
        return image, labels


def check_batch_size(dataset_size: int, batch_size: int, num_shards: int = 1, what: str = "training") -> None:
    """A clear error when a batch cannot be filled (each shard needs at least one full batch)."""
    per_shard = -(-dataset_size // num_shards)
    if batch_size < 1:
        raise DatasetError(f"batch size must be >= 1, got {batch_size}")
    if batch_size > per_shard:
        workers = f" per worker ({num_shards} workers)" if num_shards > 1 else ""
        raise DatasetError(f"batch size {batch_size} is larger than the {per_shard} {what} images{workers}; "
                           f"lower the batch size (--batch-size {per_shard}) or add data")


def make_loader(dataset: SegmentationDataset, batch_size: int, *, epoch: int = 0, shuffle: bool = True,
                augmentation: Optional[Augmentation] = None, seed: int = 0, num_workers: int = 1,
                num_shards: int = 1, shard_id: int = 0, drop_remainder: bool = True,
                multiprocessing: bool = False):
    """A batched ``mindspore.dataset.GeneratorDataset`` for one epoch, columns ``image`` and ``label``.

    ``num_workers`` > 1 maps samples in parallel (threads, or processes with ``multiprocessing``);
    ``num_shards``/``shard_id`` give data-parallel worker ``shard_id`` its share. A shuffled dataset with
    an ``epoch_sampler`` method draws its own samples (logged per epoch), otherwise ``EpochSampler``.
    """
    import mindspore.dataset as ds

    check_batch_size(len(dataset), batch_size, num_shards)
    if shuffle and hasattr(dataset, "epoch_sampler"):  # e.g. a VolumeDataset's foreground sampling
        sampler = dataset.epoch_sampler(epoch=epoch, seed=seed, num_shards=num_shards, shard_id=shard_id)
        if shard_id == 0:
            logger.info(sampler.describe())
    else:
        sampler = EpochSampler(len(dataset), epoch=epoch, shuffle=shuffle, seed=seed,
                               num_shards=num_shards, shard_id=shard_id)
    source = AugmentedSource(dataset, augmentation, seed, epoch)
    generator = ds.GeneratorDataset(source, column_names=COLUMNS, sampler=sampler,
                                    num_parallel_workers=max(1, num_workers),
                                    python_multiprocessing=multiprocessing and num_workers > 1)
    return generator.batch(batch_size, drop_remainder=drop_remainder)
