"""The plain call is fast: ``net(x)`` on an eval-mode network in PyNative mode runs one compiled graph.

MindSpore's default PyNative mode dispatches every operator from Python, which for UNet3+ costs 2-3x over
the same forward compiled as one graph (``benchmarks/bench_inference.py``). ``CompiledEvalForward`` makes
the call users type (``net.set_train(False); net(x)``) take the compiled path: ``mindspore.jit`` of the
cell's own ``construct``, which MindSpore compiles once per input shape and dtype and keeps (a new shape
compiles again, an old one is reused). Training steps in between are seen by the next call, and loading
other weights rebuilds the graph (see ``_compiled_construct``). It leaves alone:

* training mode (``net.set_train(True)``) and GRAPH mode: the ordinary ``Cell.__call__``;
* a cell with forward/backward hooks registered on it: eager, so that the hooks run;
* ``net.compiled_eval = False``: the switch that turns it off (eager PyNative, as MindSpore does by default).

The first call for a shape pays the compilation: one measurement on 2 cores of an AMD EPYC (shared machine),
1 x 3 x 512 x 512, first call 4.3 s (compile + run), later calls 1.5 s, eager 3.0 s (same logits to 1e-6).
"""
from __future__ import annotations

from typing import Any

import mindspore as ms
from mindspore import Tensor

_HOOK_ATTRIBUTES = ("_forward_pre_hook", "_forward_hook", "_backward_pre_hook", "_backward_hook")


class CompiledEvalForward:
    """Mixin for an ``nn.Cell``: eval-mode PyNative calls go through a cached ``mindspore.jit`` of ``construct``."""

    compiled_eval: bool = True  # set False on a network (or a subclass) to keep MindSpore's eager calls

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if self._takes_compiled_path(args, kwargs):
            self._check_input(args[0])  # the same clear errors as eager, before any compilation
            return self._compiled_construct()(args[0])
        return super().__call__(*args, **kwargs)

    def _takes_compiled_path(self, args: tuple, kwargs: dict) -> bool:
        return (self.compiled_eval and not self.training and not kwargs and len(args) == 1
                and isinstance(args[0], Tensor) and ms.get_context("mode") == ms.PYNATIVE_MODE
                and not any(getattr(self, name, None) for name in _HOOK_ATTRIBUTES))

    def _compiled_construct(self):
        # A compiled graph keeps the storage its parameters had when it was built: in-place updates (optimizer
        # steps, ops.assign) reach it, but Parameter.set_data (load_checkpoint, load_param_into_net) gives a
        # parameter new storage that it would never see. So the graph is rebuilt when any storage moved, from a
        # new function object: MindSpore caches the compiled graphs of ``jit(cell.construct)`` per cell.
        storage = tuple(parameter.data_ptr() for parameter in self.get_parameters())
        cached = self.__dict__.get("_compiled_eval_construct")
        if cached is None or cached[0] != storage:
            cached = (storage, _compiled_forward_of(self))
            self.__dict__["_compiled_eval_construct"] = cached  # past Cell.__setattr__: not a cell attribute
        return cached[1]


def _compiled_forward_of(cell: Any):
    def forward(x):
        return cell.construct(x)

    return ms.jit(forward)
