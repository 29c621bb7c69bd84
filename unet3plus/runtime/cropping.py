"""``predict``'s default and ``fast`` strategies: the network runs only where ``transforms.body`` plans it (the body
box of each batch of slices, slices without a body skipped), with the full slice's up-sampling
(``networks.fusion.PositionedUNet3Plus``), and the answers are pasted into the full grid.

``exact`` is not here: it is ``predict``'s plain loop over every whole slice, the reference the other modes
are measured against (``docs/whole-ct.md``).
"""
from __future__ import annotations

import concurrent.futures
import logging
import weakref
from typing import Any, Callable, Dict, Iterator, Optional, Tuple

import numpy as np

from ..errors import InputError
from ..networks import SIZE_MULTIPLE
from ..transforms.body import CropPlan, body_boxes, coarse_slices, consecutive_runs, crop_plan, organ_slices
from ..transforms.postprocess import labels_from_probabilities, probabilities_from_logits
from .interface import InferenceBackend, forward

logger = logging.getLogger(__name__)

STRATEGIES = ("exact", "default", "fast")
FAST_STEP = 4  # --fast's coarse pass looks at every 4th body slice
# A backend's cropped form, kept while the backend lives: the CLI predicts many inputs with one backend, and
# each would otherwise compile its graphs (or hash the network for its exports) again.
_WINDOWED: "weakref.WeakKeyDictionary[InferenceBackend, WindowedNetwork]" = weakref.WeakKeyDictionary()


def check_strategy(strategy: str) -> str:
    if strategy not in STRATEGIES:
        raise InputError(f"unknown predict strategy {strategy!r}; choose one of {', '.join(STRATEGIES)}")
    return strategy


class WindowedNetwork:
    """A folded network run on crops through ``PositionedUNet3Plus``: one compiled graph (MindSpore) or one
    cached, verified ONNX export (ONNX Runtime) per batch shape, which every crop offset goes through (the
    matrices are an input; see ``lean_conv.upsample_then_conv3x3`` for why they must be)."""

    def __init__(self, folded: Any, *, onnx: bool, cache_dir: Any = None) -> None:
        self.folded, self.onnx, self.cache_dir = folded, onnx, cache_dir
        self.model_config = getattr(folded, "model_config", None)
        self._runs: Dict[Tuple[int, ...], Callable[[np.ndarray, np.ndarray], np.ndarray]] = {}
        self._windows: Dict[Tuple[Tuple[int, int], ...], np.ndarray] = {}

    @property
    def compiled_shapes(self) -> Tuple[Tuple[int, ...], ...]:
        """The batch shapes a graph or export was made for (one per crop shape)."""
        return tuple(self._runs)

    def __call__(self, batch: np.ndarray, size: Tuple[int, int], offset: Tuple[int, int]) -> np.ndarray:
        """Logits of ``batch`` (``N x C x h x w``), the crop at ``offset`` of slices zero-padded to ``size``."""
        from ..networks.fusion import window_vector

        crop = tuple(batch.shape[2:])
        key = (tuple(size), tuple(offset), crop)
        if key not in self._windows:
            self._windows[key] = window_vector(size, offset, crop)
        run = self._runs.get(batch.shape) or self._make(tuple(batch.shape))
        return run(np.ascontiguousarray(batch, dtype=np.float32), self._windows[key])

    def _make(self, shape: Tuple[int, ...]) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
        from ..networks.fusion import PositionedUNet3Plus

        cell = PositionedUNet3Plus(self.folded, shape[2:])
        run = self._onnx_run(cell, shape) if self.onnx else None
        self._runs[shape] = run or _mindspore_run(cell)
        return self._runs[shape]

    def _onnx_run(self, cell: Any, shape: Tuple[int, ...]) -> Optional[Callable[[np.ndarray, np.ndarray], np.ndarray]]:
        from ..networks.fusion import window_vector
        from .onnx_cache import cached_onnx
        from .onnx_runtime import OnnxRuntimeBackend

        example = window_vector((shape[2] + 2 * SIZE_MULTIPLE, shape[3] + 2 * SIZE_MULTIPLE),
                                (SIZE_MULTIPLE, SIZE_MULTIPLE), shape[2:])  # a real offset: checks the input is used
        try:
            session = OnnxRuntimeBackend(cached_onnx(cell, shape, cache_dir=self.cache_dir,
                                                     extra_inputs=(example,))).session
        except Exception as error:  # any export failure: MindSpore still gives the right answer
            logger.warning("ONNX export of the cropped network failed (%s); running MindSpore instead",
                           " ".join(str(error).split()) or type(error).__name__)
            return None
        names = [model_input.name for model_input in session.get_inputs()]
        return lambda batch, windows: session.run(None, {names[0]: batch, names[1]: windows})[0]


def _mindspore_run(cell: Any) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
    import mindspore as ms

    def forward_cell(x, windows):
        return cell(x, windows)

    compiled = ms.jit(forward_cell)
    return lambda batch, windows: compiled(ms.Tensor(batch), ms.Tensor(windows)).asnumpy()


def windowed_network(model: Any, backend: Optional[str]) -> Optional[WindowedNetwork]:
    """The cropped form of ``model`` on the engine its backend would use (ONNX Runtime for the automatic
    backend, MindSpore for ``mindspore``), or None where there is no network to crop (an ``.onnx`` file, a
    custom backend, a network the folding does not handle): such models run whole slices."""
    from ..networks.fusion import InferenceUNet3Plus, optimize_for_inference
    from .backends import CachedOnnxBackend, MindSporeBackend, can_fold, onnxruntime_available

    if isinstance(model, (CachedOnnxBackend, MindSporeBackend)) and model in _WINDOWED:
        return _WINDOWED[model]
    onnx, cache_dir = False, None
    if isinstance(model, CachedOnnxBackend):
        net, onnx, cache_dir = model.net, True, model.cache_dir
    elif isinstance(model, MindSporeBackend):
        net = model.net
    elif isinstance(model, InferenceBackend) or isinstance(model, (str, bytes)) or hasattr(model, "__fspath__"):
        return None
    else:
        net, onnx = model, backend == "auto" and onnxruntime_available()
        if backend not in (None, "auto", "mindspore"):
            return None
    if not isinstance(net, InferenceUNet3Plus):
        if not can_fold(net):
            return None
        net = optimize_for_inference(net)
    windowed = WindowedNetwork(net, onnx=onnx, cache_dir=cache_dir)
    if isinstance(model, (CachedOnnxBackend, MindSporeBackend)):
        _WINDOWED[model] = windowed
    return windowed


class PlannedRun:
    """Scores of a CT by the ``default`` or ``fast`` strategy, as ``(start, probabilities)`` runs of whole slices
    (those the plan skips come as background), in any order; ``plans`` holds the plans it ran."""

    def __init__(self, windowed: Optional[WindowedNetwork], runner: InferenceBackend,
                 prepare: Callable[[int, int], np.ndarray], volume: np.ndarray, size: Tuple[int, int], batch: int,
                 strategy: str, threshold: float) -> None:
        self.windowed, self.runner, self.prepare, self.volume = windowed, runner, prepare, volume
        self.size, self.batch, self.strategy, self.threshold = tuple(size), batch, strategy, threshold
        self.plans: list = []
        self._channels: Optional[int] = None

    def __iter__(self) -> Iterator[Tuple[int, np.ndarray]]:
        n_slices = self.volume.shape[0]
        boxes = body_boxes(self.volume)
        everything = crop_plan(boxes, self.size, self.batch, SIZE_MULTIPLE, crop=self.windowed is not None,
                               n_slices=n_slices)
        fast = self.strategy == "fast" and bool(everything.batches)
        if not everything.batches:  # no body anywhere: the first slice, whole, tells the classes
            everything = CropPlan(self.size, self.size, (((0,), (0, 0)),))
        done = np.zeros(n_slices, bool)
        if fast:
            coarse = coarse_slices(boxes, FAST_STEP)
            found = []
            for start, scores in self._run(self._subplan(boxes, everything, coarse)):
                found.append(labels_from_probabilities(scores, self.threshold).reshape(len(scores), -1).any(1))
                done[start:start + len(scores)] = True
                yield start, scores
            found = np.concatenate(found) if found else np.zeros(0, bool)
            ran = np.flatnonzero(done)
            organ = organ_slices(ran, found, n_slices, FAST_STEP)
            plan = self._subplan(boxes, everything, np.setdiff1d(organ, ran))
        else:
            plan = everything
        for start, scores in self._run(plan):
            done[start:start + len(scores)] = True
            yield start, scores
        for run in consecutive_runs(np.flatnonzero(~done)):
            for first in range(0, len(run), self.batch):  # a batch at a time, for memory
                yield int(run[first]), self._background(len(run[first:first + self.batch]))

    def _subplan(self, boxes: np.ndarray, everything: CropPlan, slices: np.ndarray) -> CropPlan:
        """The plan for ``slices`` only, with the whole CT's crop shape (one graph or export serves both)."""
        return crop_plan(boxes, self.size, self.batch, SIZE_MULTIPLE, crop=everything.cropped, slices=slices,
                         shape=everything.crop)

    def _background(self, n: int) -> np.ndarray:
        scores = np.zeros((n, self._channels or 1) + self.volume.shape[1:], np.float32)
        if (self._channels or 1) > 1:
            scores[:, 0] = 1.0
        return scores

    def _run(self, plan: CropPlan) -> Iterator[Tuple[int, np.ndarray]]:
        """The plan's batches, each prepared in a background thread while the one before runs."""
        self.plans.append(plan)
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            pending = None
            for index in range(len(plan.batches) + 1):
                ready = pending.result() if pending is not None else None
                if index < len(plan.batches):
                    pending = pool.submit(self._input, plan, *plan.batches[index])
                if ready is not None:
                    yield ready[0], self._scores(plan, *ready)

    def _input(self, plan: CropPlan, indices: Tuple[int, ...], offset: Tuple[int, int]
               ) -> Tuple[int, np.ndarray, Tuple[int, int], int]:
        """``(start, padded crop batch, offset, real slices)`` of one planned batch."""
        chunk = self.prepare(indices[0], indices[-1] + 1)
        real, channels, height, width = chunk.shape
        top, left = offset
        padded = np.zeros((self.batch, channels) + plan.crop, np.float32)
        rows, columns = min(height, top + plan.crop[0]) - top, min(width, left + plan.crop[1]) - left
        if rows > 0 and columns > 0:
            padded[:real, :, :rows, :columns] = chunk[:, :, top:top + rows, left:left + columns]
        return indices[0], padded, offset, real

    def _scores(self, plan: CropPlan, start: int, padded: np.ndarray, offset: Tuple[int, int], real: int) -> np.ndarray:
        if plan.cropped:
            logits = np.asarray(self.windowed(padded, plan.size, offset), np.float32)
        else:
            logits = forward(self.runner, padded)
        crop_scores = probabilities_from_logits(logits[:real])
        self._channels = crop_scores.shape[1]
        height, width = self.volume.shape[1:]
        if not plan.cropped:
            return crop_scores[:, :, :height, :width]
        scores = self._background(real)
        top, left = offset
        rows, columns = min(height, top + plan.crop[0]) - top, min(width, left + plan.crop[1]) - left
        scores[:, :, top:top + rows, left:left + columns] = crop_scores[:, :, :rows, :columns]
        return scores
