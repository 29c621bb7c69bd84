"""One data-parallel worker, launched by ``msrun`` from test_distributed.py (not collected by pytest).

It trains on a tiny synthetic set and then records, beside the run, what this rank ended with: its
parameters and every file the trainer wrote through ``atomic_path`` (the only way it writes files). With
``UNET3PLUS_TEST_VOLUMES`` (a folder of volumes) it then trains on those volumes too, in the same job, into
``<out>-volumes`` with records prefixed ``volumes-``: one launch and one process start serve both tests.
"""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import numpy as np

import unet3plus  # noqa: F401  (runtime defaults before MindSpore's first kernel)
from unet3plus import _atomic
from unet3plus._atomic import atomic_path
from unet3plus.data import DataOptions, SegmentationDataset, VolumeDataset, VolumeOptions, synthetic_organs
from unet3plus.training import checkpoints, history, trainer
from stock_gradients import use_stock_gradients

use_stock_gradients()  # the loop under data parallelism is tested here, not the kernels (stock_gradients.py)

out_dir, record_dir = Path(sys.argv[1]), Path(sys.argv[2])
checkpoint = sys.argv[3] if len(sys.argv) > 3 else None
written = []


def recording_atomic_path(path, **kwargs):
    written.append(Path(path).name.replace(".staged.ckpt", ".ckpt"))  # best/last are staged, then renamed
    return atomic_path(path, **kwargs)


for module in (checkpoints, history, trainer, _atomic):  # _atomic: for writers that import it when called
    module.atomic_path = recording_atomic_path


def train_and_record(data, out: Path, prefix: str, epochs: int, checkpoint=None, volumes: bool = False) -> None:
    written.clear()
    run = trainer.Trainer(data, None, trainer.TrainConfig(out, epochs=epochs, batch_size=2, progress=False,
                                                          checkpoint=checkpoint))
    result = run.fit()
    rank = run.dist.rank
    if volumes:  # the slices this rank trained on in epoch 0, as the loader's sampler drew them
        drawn = run.train_data.epoch_sampler(epoch=0, seed=0, num_shards=run.dist.world_size, shard_id=rank).indices()
        (record_dir / f"{prefix}rank{rank}_drawn.json").write_text(json.dumps([run.train_data.names[i] for i in drawn]))
    np.savez(record_dir / f"{prefix}rank{rank}_weights.npz", **{p.name: p.asnumpy() for p in run.net.get_parameters()})
    (record_dir / f"{prefix}rank{rank}.json").write_text(json.dumps({
        "rank": rank, "world_size": run.dist.world_size, "written": list(written), "history": result.history}))


images, masks = synthetic_organs(10, (32, 32), seed=0, empty_fraction=0)
names = [f"patient{i // 2}_slice{i % 2}" for i in range(10)]
train_and_record(SegmentationDataset.from_arrays(images, masks, DataOptions(in_channels=1), names=names),
                 out_dir, "", epochs=2, checkpoint=checkpoint)
volumes = os.environ.get("UNET3PLUS_TEST_VOLUMES")
if volumes:
    train_and_record(VolumeDataset.from_folder(volumes, options=VolumeOptions(classes=("liver", "tumour"))),
                     Path(f"{out_dir}-volumes"), "volumes-", epochs=1, volumes=True)
