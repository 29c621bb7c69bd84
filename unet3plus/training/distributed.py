"""Data-parallel training with MindSpore's own launcher (``msrun``): rank, barrier, statistics sync.

``msrun --worker_num=2 --local_worker_num=2 --master_addr=127.0.0.1 --master_port=PORT -m ...`` starts one
process per worker and tells each its role through ``MS_ROLE``/``MS_WORKER_NUM``; ``init()`` then picks the
backend (``mccl`` on CPU, ``hccl`` on Ascend, ``nccl`` on GPU). In data-parallel mode ``TrainOneStepCell``
averages gradients across workers, so trainable weights stay identical; BatchNorm running statistics
are computed on each worker's own shard, so :meth:`Distributed.average_batchnorm_statistics` averages
them after every epoch to keep checkpoints and validation identical on all workers.

Errors under msrun: a command joins the job first (:meth:`Distributed.setup`; msrun's scheduler process serves
the job there and leaves), and a worker that stops with an error tells the job so (:func:`leave_after_error`),
so that msrun stops the job at once and the console shows the worker's one-line error, not the scheduler's
"timed out node" traceback half a minute later.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import List, Optional, Sequence, TypeVar

import numpy as np

from ..errors import UserFacingError

T = TypeVar("T")
_joined: Optional["Distributed"] = None  # this process' place in the msrun job, once it has joined


class JobFailed(UserFacingError, RuntimeError):
    """msrun's scheduler process: the job ended because a worker stopped (its own error says why)."""


def launched_by_msrun() -> bool:
    """True in the processes msrun starts: the workers and the scheduler, which runs the same script
    and must call ``init()`` too (there it serves the job and exits the process when the job ends)."""
    return os.environ.get("MS_ROLE") in ("MS_WORKER", "MS_SCHED") and int(os.environ.get("MS_WORKER_NUM", "1")) > 1


def leave_after_error() -> None:
    """Mark this worker's exit as failed, as MindSpore does for an uncaught exception (a caught error that the
    CLI prints as one line is not one): msrun's scheduler then ends the job at once instead of waiting for
    this worker's heartbeat to time out. Nothing outside an msrun job."""
    if _joined is None:
        return
    try:
        from mindspore._c_expression import set_cluster_exit_with_exception
    except ImportError:  # a MindSpore without it: the job still ends, after the heartbeat timeout
        return
    set_cluster_exit_with_exception()


@dataclass
class Distributed:
    """This process' place in the job: ``rank`` of ``world_size``; rank 0 alone writes files."""

    rank: int = 0
    world_size: int = 1

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_writer(self) -> bool:
        return self.rank == 0

    @classmethod
    def setup(cls, enable: bool = None, *, data_parallel: bool = True) -> "Distributed":
        """Join the msrun job (when launched by msrun, or when ``enable``) and, for training
        (``data_parallel``), switch to data-parallel; ``predict`` only needs the rank to shard its inputs."""
        global _joined
        if enable is None:
            enable = launched_by_msrun()
        if not enable:
            return cls()
        import mindspore as ms
        from mindspore.communication import get_group_size, get_rank, init

        if _joined is None:  # once per process: a command may join before the trainer asks again
            try:
                init()
            except RuntimeError as error:
                if os.environ.get("MS_ROLE") != "MS_SCHED":
                    raise
                raise JobFailed("the msrun job stopped: a worker ended with an error (see its line above, or "
                                "worker_*.log in msrun's --log_dir)") from error
            _joined = cls(rank=get_rank(), world_size=get_group_size())
        if data_parallel:
            ms.set_auto_parallel_context(parallel_mode=ms.ParallelMode.DATA_PARALLEL, gradients_mean=True)
        return cls(rank=_joined.rank, world_size=_joined.world_size)

    def shard(self, items: Sequence[T]) -> List[T]:
        """This worker's share of ``items``: every ``world_size``-th from ``rank`` (all of them alone)."""
        return list(items[self.rank::self.world_size])

    def total(self, count: int) -> int:
        """``count`` summed over the workers (this worker's own count when alone)."""
        return int(round(float(self.all_reduce_mean(np.array([count], np.float32))[0]) * self.world_size))

    def barrier(self) -> None:
        """Wait until every worker gets here (an all-reduce of a scalar)."""
        if self.enabled:
            self.all_reduce_mean(np.zeros(1, np.float32))

    def all_reduce_mean(self, value: np.ndarray) -> np.ndarray:
        if not self.enabled:
            return value
        import mindspore as ms
        from mindspore import ops

        total = ops.AllReduce()(ms.Tensor(np.asarray(value, np.float32))).asnumpy()
        return total / self.world_size

    def average_batchnorm_statistics(self, net) -> None:
        """Replace every BatchNorm running mean/variance by its average over the workers."""
        if not self.enabled:
            return
        import mindspore as ms

        for parameter in net.get_parameters():
            if "moving_mean" in parameter.name or "moving_variance" in parameter.name:
                parameter.set_data(ms.Tensor(self.all_reduce_mean(parameter.asnumpy())))
