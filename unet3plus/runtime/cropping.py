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

from .._optional import install_hint
from ..errors import InputError
from ..networks import SIZE_MULTIPLE
from ..io.prediction import label_names
from ..metrics.overlap import dice_per_case
from ..transforms.body import (CropPlan, body_boxes, coarse_slices, coarse_step, consecutive_runs, crop_plan,
                               organ_slices)
from ..transforms.postprocess import labels_from_probabilities, probabilities_from_logits
from . import openvino_runtime
from .engine_choice import choose_engine, machine_key
from .interface import InferenceBackend, forward

logger = logging.getLogger(__name__)

STRATEGIES = ("exact", "default", "fast")
BF16_MIN_DICE = 0.99  # --fast keeps bf16 only if its first batch with foreground agrees with fp32 this well
Run = Callable[[np.ndarray, np.ndarray], np.ndarray]  # (batch, window vector) -> logits
# A backend's cropped form, kept while the backend lives: the CLI predicts many inputs with one backend, and
# each would otherwise compile its graphs (or hash the network for its exports) again.
_WINDOWED: "weakref.WeakKeyDictionary[InferenceBackend, WindowedNetwork]" = weakref.WeakKeyDictionary()


def check_strategy(strategy: str) -> str:
    if strategy not in STRATEGIES:
        raise InputError(f"unknown predict strategy {strategy!r}; choose one of {', '.join(STRATEGIES)}")
    return strategy


class WindowedNetwork:
    """A folded network run on crops through ``PositionedUNet3Plus``: one compiled graph (MindSpore) or one
    cached, verified ONNX export (run by ONNX Runtime or OpenVINO) per batch shape, which every crop offset goes
    through (the matrices are an input; see ``lean_conv.upsample_then_conv3x3`` for why they must be)."""

    def __init__(self, folded: Any, *, onnx: bool, cache_dir: Any = None) -> None:
        self.folded, self.onnx, self.cache_dir = folded, onnx, cache_dir
        self.model_config = getattr(folded, "model_config", None)
        self._runs: Dict[Tuple[Tuple[int, ...], str], Run] = {}
        self.engines: Dict[Tuple[int, ...], str] = {}  # batch shape -> the engine its fp32 run is on
        self._exports: Dict[Tuple[int, ...], Any] = {}
        self._bf16_failed = False  # OpenVINO could not compile it in bf16: fp32 from then on
        self._windows: Dict[Tuple[Tuple[int, int], ...], np.ndarray] = {}

    @property
    def compiled_shapes(self) -> Tuple[Tuple[int, ...], ...]:
        """The batch shapes a graph or export was made for (one per crop shape)."""
        return tuple(dict.fromkeys(shape for shape, _ in self._runs))

    @property
    def can_run_bf16(self) -> bool:
        """Whether ``bf16=True`` runs in bf16: an ONNX export to compile and OpenVINO with bf16 on this CPU."""
        return self.onnx and not self._bf16_failed and openvino_runtime.bf16_engine_available()

    def __call__(self, batch: np.ndarray, size: Tuple[int, int], offset: Tuple[int, int], *,
                 bf16: bool = False) -> np.ndarray:
        """Logits of ``batch`` (``N x C x h x w``), the crop at ``offset`` of slices zero-padded to ``size``;
        ``bf16``: in bf16 where :attr:`can_run_bf16`, else in fp32 (on the engine in :attr:`engines`)."""
        from ..networks.fusion import window_vector

        crop = tuple(batch.shape[2:])
        key = (tuple(size), tuple(offset), crop)
        if key not in self._windows:
            self._windows[key] = window_vector(size, offset, crop)
        batch, windows = np.ascontiguousarray(batch, dtype=np.float32), self._windows[key]
        precision = "bf16" if bf16 and self.can_run_bf16 else "fp32"
        run = self._runs.get((batch.shape, precision))
        return run(batch, windows) if run is not None else self._make(batch.shape, precision, batch, windows)

    def _make(self, shape: Tuple[int, ...], precision: str, batch: np.ndarray, windows: np.ndarray) -> np.ndarray:
        """Makes and keeps the run for ``shape`` at ``precision``; ``batch``'s logits (the first of that shape)."""
        from ..networks.fusion import PositionedUNet3Plus

        cell = PositionedUNet3Plus(self.folded, shape[2:])
        export = self._export(cell, shape) if self.onnx else None
        if export is None:
            run = self._runs[(shape, precision)] = _mindspore_run(cell)
            self.engines[shape] = "MindSpore"
            return run(batch, windows)
        if precision == "bf16":
            run = _openvino_run(export, "bf16")
            if run is not None:
                self._runs[(shape, precision)] = run
                return run(batch, windows)
            self._bf16_failed = True
            fp32 = self._runs.get((shape, "fp32"))
            if fp32 is not None:
                return fp32(batch, windows)
        return self._fp32(export, shape, batch, windows)

    def _fp32(self, export: Any, shape: Tuple[int, ...], batch: np.ndarray, windows: np.ndarray) -> np.ndarray:
        """Keeps the fp32 run of ``shape`` on ONNX Runtime, or on OpenVINO where it is installed and was the faster
        on this CPU (``engine_choice``: timed once per export and machine, then remembered); ``batch``'s logits."""
        import onnxruntime

        makers = {"ONNX Runtime": lambda: _onnx_runtime_run(export)}
        versions = {"onnxruntime": onnxruntime.__version__}
        if openvino_runtime.engine_available():
            makers["OpenVINO"] = lambda: _openvino_run(export, "f32")
            versions["openvino"] = openvino_runtime.engine_version()
        name, run, logits = choose_engine(makers, machine_key(export.sha256, versions), batch, windows,
                                          cache_dir=self.cache_dir, what=f"{shape[2]} x {shape[3]} crops")
        self._runs[(shape, "fp32")], self.engines[shape] = run, name
        return logits

    def _export(self, cell: Any, shape: Tuple[int, ...]) -> Any:
        """The verified cached ONNX export of the cropped network for ``shape``, or None where exporting
        failed (MindSpore then runs it)."""
        from ..networks.fusion import window_vector
        from .onnx_cache import cached_onnx

        if shape not in self._exports:
            example = window_vector((shape[2] + 2 * SIZE_MULTIPLE, shape[3] + 2 * SIZE_MULTIPLE),
                                    (SIZE_MULTIPLE, SIZE_MULTIPLE), shape[2:])  # a real offset: checks it is used
            try:
                self._exports[shape] = cached_onnx(cell, shape, cache_dir=self.cache_dir, extra_inputs=(example,))
            except Exception as error:  # any export failure: MindSpore still gives the right answer
                logger.warning("ONNX export of the cropped network failed (%s); running MindSpore instead",
                               " ".join(str(error).split()) or type(error).__name__)
                self._exports[shape] = None
        return self._exports[shape]


def _openvino_run(export: Any, precision: str) -> Optional[Run]:
    try:
        return openvino_runtime.OpenVinoModel(export, precision)
    except Exception as error:  # e.g. an OpenVINO this process started under another oneDNN cap
        logger.warning("OpenVINO cannot compile the cropped network in %s (%s); running %s instead", precision,
                       " ".join(str(error).split())[-300:] or type(error).__name__,
                       "fp32" if precision == "bf16" else "ONNX Runtime")
        return None


def _onnx_runtime_run(export: Any) -> Run:
    from .onnx_runtime import OnnxRuntimeBackend

    session = OnnxRuntimeBackend(export).session
    names = [model_input.name for model_input in session.get_inputs()]
    return lambda batch, windows: session.run(None, {names[0]: batch, names[1]: windows})[0]


def _mindspore_run(cell: Any) -> Run:
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
    """Scores of a CT by the ``default`` or ``fast`` strategy, as ``(start, probabilities, labels)`` runs of whole
    slices (those the plan skips come as background), in any order; ``plans`` holds the plans it ran. The labels
    come along because only the crop needs its arg-max (the rest is background), which halves that work."""

    def __init__(self, windowed: Optional[WindowedNetwork], runner: InferenceBackend,
                 prepare: Callable[[int, int], np.ndarray], volume: np.ndarray, size: Tuple[int, int], batch: int,
                 strategy: str, threshold: float, class_names: Tuple[str, ...] = (),
                 slice_spacing: Optional[float] = None) -> None:
        self.windowed, self.runner, self.prepare, self.volume = windowed, runner, prepare, volume
        self.size, self.batch, self.strategy, self.threshold = tuple(size), batch, strategy, threshold
        self.class_names, self.slice_spacing = class_names, slice_spacing
        self.plans: list = []
        # --fast runs the crops in bf16 where OpenVINO has bf16 on this CPU, once a batch agreed with fp32
        self.bf16 = strategy == "fast" and windowed is not None and windowed.can_run_bf16
        self.bf16_agreement: Optional[Dict[str, float]] = None
        self._channels: Optional[int] = None

    def __iter__(self) -> Iterator[Tuple[int, np.ndarray, np.ndarray]]:
        n_slices = self.volume.shape[0]
        boxes = body_boxes(self.volume)
        everything = crop_plan(boxes, self.size, self.batch, SIZE_MULTIPLE, crop=self.windowed is not None,
                               n_slices=n_slices)
        fast = self.strategy == "fast" and bool(everything.batches)
        if not everything.batches:  # no body anywhere: the first slice, whole, tells the classes
            everything = CropPlan(self.size, self.size, (((0,), (0, 0)),))
        done = np.zeros(n_slices, bool)
        if fast and not self.bf16:
            logger.info("--fast: fp32 throughout: %s", self._why_not_bf16())
        if fast:
            step = coarse_step(self.slice_spacing)
            coarse = coarse_slices(boxes, step)
            found = []
            for start, scores, labels in self._run(self._subplan(boxes, everything, coarse)):
                found.append(labels.reshape(len(labels), -1).any(1))
                done[start:start + len(scores)] = True
                yield start, scores, labels
            found = np.concatenate(found) if found else np.zeros(0, bool)
            ran = np.flatnonzero(done)
            organ = organ_slices(ran, found, n_slices, step)
            plan = self._subplan(boxes, everything, np.setdiff1d(organ, ran))
        else:
            plan = everything
        for start, scores, labels in self._run(plan):
            done[start:start + len(scores)] = True
            yield start, scores, labels
        for run in consecutive_runs(np.flatnonzero(~done)):
            for first in range(0, len(run), self.batch):  # a batch at a time, for memory
                n = len(run[first:first + self.batch])
                yield int(run[first]), self._background(n), np.zeros((n,) + self.volume.shape[1:], np.uint8)

    def _why_not_bf16(self) -> str:
        if self.windowed is None or not self.windowed.onnx:
            return "bf16 runs through OpenVINO on the ONNX export, and this network runs on MindSpore"
        if not openvino_runtime.engine_available():
            return (f"OpenVINO is not installed ({install_hint('openvino')} for bf16 on CPUs with AVX-512 BF16 "
                    "or AMX)")
        return "OpenVINO reports no bf16 units on this CPU"

    def _subplan(self, boxes: np.ndarray, everything: CropPlan, slices: np.ndarray) -> CropPlan:
        """The plan for ``slices`` only, with the whole CT's crop shape (one graph or export serves both)."""
        return crop_plan(boxes, self.size, self.batch, SIZE_MULTIPLE, crop=everything.cropped, slices=slices,
                         shape=everything.crop)

    def _background(self, n: int) -> np.ndarray:
        scores = np.zeros((n, self._channels or 1) + self.volume.shape[1:], np.float32)
        if (self._channels or 1) > 1:
            scores[:, 0] = 1.0
        return scores

    def _run(self, plan: CropPlan) -> Iterator[Tuple[int, np.ndarray, np.ndarray]]:
        """The plan's batches, each prepared in a background thread while the one before runs."""
        self.plans.append(plan)
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            pending = None
            for index in range(len(plan.batches) + 1):
                ready = pending.result() if pending is not None else None
                if index < len(plan.batches):
                    pending = pool.submit(self._input, plan, *plan.batches[index])
                if ready is not None:
                    yield (ready[0],) + self._scores(plan, *ready)

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

    def _scores(self, plan: CropPlan, start: int, padded: np.ndarray, offset: Tuple[int, int], real: int
                ) -> Tuple[np.ndarray, np.ndarray]:
        """``(probabilities, labels)`` of one batch's slices, whole: the crop's pasted into background."""
        if plan.cropped:
            logits = np.asarray(self._cropped_logits(padded, plan.size, offset, real), np.float32)
        else:
            logits = forward(self.runner, padded)
        height, width = self.volume.shape[1:]
        top, left = offset
        rows, columns = min(height, top + plan.crop[0]) - top, min(width, left + plan.crop[1]) - left
        crop_scores = probabilities_from_logits(logits[:real, :, :rows, :columns])
        self._channels = crop_scores.shape[1]
        crop_labels = labels_from_probabilities(crop_scores, self.threshold)
        if not plan.cropped:
            return crop_scores, crop_labels
        scores, labels = self._background(real), np.zeros((real, height, width), np.uint8)
        scores[:, :, top:top + rows, left:left + columns] = crop_scores
        labels[:, top:top + rows, left:left + columns] = crop_labels
        return scores, labels

    def _cropped_logits(self, padded: np.ndarray, size: Tuple[int, int], offset: Tuple[int, int], real: int
                        ) -> np.ndarray:
        """The crop's logits: fp32, or in ``fast`` bf16 once the first batch where bf16 finds foreground agreed
        with fp32 at Dice >= ``BF16_MIN_DICE`` per class (that batch keeps its fp32 answer; a worse agreement
        turns bf16 off for the rest of the CT). Both are logged: the calibration is this CT, on this CPU."""
        if not self.bf16:
            return self.windowed(padded, size, offset)
        logits = self.windowed(padded, size, offset, bf16=True)
        if not self.windowed.can_run_bf16:  # OpenVINO failed to compile it (warned): these logits are fp32
            self.bf16 = False
            return logits
        if self.bf16_agreement is not None:
            return logits
        labels = labels_from_probabilities(probabilities_from_logits(logits[:real]), self.threshold)
        if not labels.any():
            return logits
        reference = self.windowed(padded, size, offset)
        expected = labels_from_probabilities(probabilities_from_logits(reference[:real]), self.threshold)
        scores = dice_per_case(labels[None], expected[None], max(2, logits.shape[1]), include_background=False,
                               ignore_empty=False)[0]  # a class only one of them finds scores 0
        self.bf16_agreement = dict(zip(label_names(self.class_names, logits.shape[1]), map(float, scores)))
        shown = ", ".join(f"{name} {score:.4f}" for name, score in self.bf16_agreement.items())
        if min(self.bf16_agreement.values()) >= BF16_MIN_DICE:
            logger.info("--fast: bf16 (OpenVINO) against fp32 on the first batch with foreground (%d slices): Dice %s; "
                        "bf16 for the rest", real, shown)
        else:
            self.bf16 = False
            logger.warning("--fast: bf16 (OpenVINO) against fp32 on the first batch with foreground (%d slices): Dice %s, "
                           "below %.2f; fp32 for the rest", real, shown, BF16_MIN_DICE)
        return reference
