"""The fine-tuning step both frameworks run in ``bench_train_step.py``: BCE + Dice loss, Adam, batch of images.

Same loss on both sides: mean binary cross-entropy on the logits plus (1 - soft Dice) of the sigmoid over
the whole batch, smoothing 1. Targets are a fixed random mask.
"""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import Callable

import numpy as np

from _common import sample_batch


def sample_masks(batch: int, size: int, seed: int = 1) -> np.ndarray:
    return (np.random.default_rng(seed).random((batch, 1, size, size)) > 0.7).astype(np.float32)


def mindspore_train_backend(args: argparse.Namespace) -> Callable[[], np.ndarray]:
    """One ``TrainOneStepCell`` call (GRAPH mode unless ``--mode pynative``) with the memory settings of the
    package's trainer (``unet3plus.training.memory``) unless ``--mindspore-memory-defaults``; other levers
    from the flags."""
    import unet3plus  # noqa: F401
    import mindspore as ms
    from mindspore import nn, ops

    from unet3plus.training.memory import configure_memory_pool, release_free_heap

    from _common import load_mindspore_network

    if args.mode == "graph":
        ms.set_context(mode=ms.GRAPH_MODE)
        if args.jit_level:
            ms.set_context(jit_config={"jit_level": args.jit_level})
    if args.memory_optimize_level:
        ms.set_context(memory_optimize_level=args.memory_optimize_level)
    if args.max_device_memory:
        ms.set_context(max_device_memory=args.max_device_memory)
    if args.memory_pool:
        ms.runtime.set_memory(**dict(item.split("=") for item in args.memory_pool.split(",")))
    elif not args.mindspore_memory_defaults:
        configure_memory_pool()  # what the package's trainer does
    net = load_mindspore_network(Path(args.checkpoint), train=True, lean_backward=not args.stock_conv)

    class BceDiceLoss(nn.Cell):
        def construct(self, logits, target):
            bce = ops.binary_cross_entropy_with_logits(logits, target, ops.ones_like(target), ops.ones_like(target))
            probability = ops.sigmoid(logits)
            dice = (2 * (probability * target).sum() + 1) / (probability.sum() + target.sum() + 1)
            return bce + 1 - dice

    x = ms.Tensor(sample_batch(args.batch, args.size))
    y = ms.Tensor(sample_masks(args.batch, args.size))
    with_loss = nn.WithLossCell(net, BceDiceLoss())
    if args.phase != "step":  # where the memory goes: forward only, + backward to the input, + weight grads
        weights = net.trainable_params()

        @ms.jit
        def partial_step(image, mask):
            if args.phase == "forward":
                return with_loss(image, mask)
            if args.phase == "grad-input":
                return ms.grad(with_loss, grad_position=0)(image, mask).sum()
            gradients = ms.grad(with_loss, grad_position=None, weights=weights)(image, mask)
            return ops.addn([gradient.sum() for gradient in gradients])  # all used: none pruned

        return lambda: partial_step(x, y).asnumpy()
    step = nn.TrainOneStepCell(with_loss, nn.Adam(net.trainable_params(), 1e-4))
    step.set_train()
    compiled = []

    def run() -> np.ndarray:
        loss = step(x, y).asnumpy()
        if not compiled and not args.mindspore_memory_defaults:
            release_free_heap()  # as the package's trainer does after its first (compiling) step
        compiled.append(True)
        return loss

    return run


def torch_train_backend(args: argparse.Namespace) -> Callable[[], np.ndarray]:
    """The same step in PyTorch eager on the twin network (``--channels-last``: NHWC memory format)."""
    import torch
    import torch.nn.functional as F

    from _common import network_entries
    from torch_unet3plus import load_torch_network

    net = load_torch_network(network_entries(Path(args.checkpoint))).train()
    if args.channels_last:
        net = net.to(memory_format=torch.channels_last)
    optimizer = torch.optim.Adam(net.parameters(), 1e-4)
    x = torch.from_numpy(sample_batch(args.batch, args.size))
    if args.channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    y = torch.from_numpy(sample_masks(args.batch, args.size))

    def step() -> np.ndarray:
        optimizer.zero_grad(set_to_none=True)
        logits = net(x)
        probability = torch.sigmoid(logits)
        dice = (2 * (probability * y).sum() + 1) / (probability.sum() + y.sum() + 1)
        loss = F.binary_cross_entropy_with_logits(logits, y) + 1 - dice
        loss.backward()
        optimizer.step()
        return loss.detach().numpy()

    return step
