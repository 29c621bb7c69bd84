"""int8 ONNX models: ONNX Runtime static quantization (QDQ), and how closely they follow the fp32 model.

Static quantization fixes every activation's int8 scale from calibration inputs, so those inputs must look
like what the model will see: the user's own files (``--calibration``), or the preset's typical inputs
(synthetic CT-like volumes or images, ``data/synthetic.py``, through the preset the model was trained
with). The agreement report compares fp32 and int8 logits and masks on held-out inputs: other files, or
other synthetic seeds, never the calibration slices themselves.

Needs the ``onnx`` package (``pip install -e ".[quantize]"`` in the checkout) besides onnxruntime.

Quantizing takes tens of seconds at 512 x 512, so each step logs a start line (INFO, logger
``unet3plus.export.quantize``; the CLI shows them) and calibration, its one long loop, can show a progress bar.
"""
from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, List, Optional, Sequence, Tuple, Union

import numpy as np

from .._atomic import atomic_path, create_partial, staging_folder
from .._optional import require
from .._progress import progress_bar
from ..errors import InputError

logger = logging.getLogger(__name__)

PathLike = Union[str, "os.PathLike[str]"]
QUANTIZE_EXTRA = "quantize"
QDQ_OPSET = 13  # the first with per-channel (axis) QuantizeLinear / DequantizeLinear


@dataclass(frozen=True)
class QuantizationReport:
    """int8 against fp32 on held-out inputs: the largest and mean absolute logit differences, and the Dice
    of the int8 masks against the fp32 masks (foreground classes pooled over all held-out slices; 1.0 when
    both are empty)."""

    max_logit_error: float
    mean_logit_error: float
    mask_dice: float
    held_out_slices: int
    calibration_slices: int

    def describe(self) -> str:
        return (f"int8 vs fp32 on {self.held_out_slices} held-out slices (calibrated on {self.calibration_slices}): "
                f"max logit error {self.max_logit_error:.3g}, mean {self.mean_logit_error:.3g}, "
                f"mask Dice {self.mask_dice:.4f}")


def quantization_module():
    """``onnxruntime.quantization``, or the error that names the extra to install."""
    require("onnx", QUANTIZE_EXTRA, "int8 quantization")  # onnxruntime.quantization imports onnx
    return require("onnxruntime.quantization", QUANTIZE_EXTRA, "int8 quantization")


def padded_batches(slices: np.ndarray, shape: Sequence[int]) -> List[np.ndarray]:
    """``slices`` (``Z x C x H x W``, H and W at most the model's) as zero-padded batches of ``shape``."""
    batch_size, channels, height, width = (int(d) for d in shape)
    if slices.shape[1] != channels or slices.shape[2] > height or slices.shape[3] > width:
        raise InputError(f"calibration slices of shape {slices.shape[1:]} do not fit the model's input "
                         f"{channels} x {height} x {width}; pass inputs of the model's kind and size")
    batches = []
    for start in range(0, len(slices), batch_size):
        chunk = slices[start:start + batch_size]
        batch = np.zeros((batch_size, channels, height, width), np.float32)
        batch[: len(chunk), :, : slices.shape[2], : slices.shape[3]] = chunk
        batches.append(batch)
    return batches


def typical_slices(preset: Any, size: Tuple[int, int], n_slices: int, seed: int = 0) -> np.ndarray:
    """``n_slices`` network inputs like those the preset prepares from real data: synthetic CT-like liver
    volumes in HU for volume presets, synthetic organ images (8-bit) for image presets."""
    from ..data.synthetic import synthetic_liver_volume, synthetic_organs

    height, width = size
    if preset.kind == "volume":
        slices, volume_seed = [], seed
        while sum(len(s) for s in slices) < n_slices:
            hu, _ = synthetic_liver_volume((min(n_slices, 24) + 2, height, width), seed=volume_seed)
            slices.append(preset(hu, allow_thin=True)[1:-1])  # a liver-bearing middle, edges dropped
            volume_seed += 1
        return np.concatenate(slices)[:n_slices]
    images, _ = synthetic_organs(n_slices, (height, width), channels=3, seed=seed)
    return np.concatenate([preset(np.round(image * 255).astype(np.uint8)) for image in images])


def quantize_onnx(fp32_path: PathLike, int8_path: PathLike,
                  calibration: Sequence[Union[np.ndarray, Tuple[np.ndarray, ...]]], *, overwrite: bool = False,
                  per_channel: bool = True,
                  op_types: Optional[Sequence[str]] = None, progress: bool = False) -> Path:
    """Write the QDQ int8 version of the fp32 ONNX model ``fp32_path``, calibrated (min/max) on the
    ``calibration`` batches (each of the model's input shape; for a model of several inputs, a tuple with one
    array per input, e.g. a cropped network's window vector). Written atomically. ``progress``: a bar over
    the calibration batches (stderr)."""
    quantization = quantization_module()
    int8_path = Path(int8_path)
    if int8_path.suffix.lower() != ".onnx":
        raise InputError(f"{int8_path} should end in .onnx; rename it")
    if int8_path.exists() and not overwrite:
        raise InputError(f"{int8_path} already exists; choose another --out or pass --overwrite")
    if not calibration:
        raise InputError("no calibration inputs; pass --calibration FILES or leave it out for the preset's typical inputs")
    import onnxruntime

    input_names = [model_input.name for model_input in
                   onnxruntime.InferenceSession(str(fp32_path), providers=["CPUExecutionProvider"]).get_inputs()]

    class Reader(quantization.CalibrationDataReader):
        def __init__(self, bar: Any) -> None:
            self._batches: Iterator[np.ndarray] = iter(calibration)
            self._bar, self._given = bar, 0

        def get_next(self):
            batch = next(self._batches, None)
            if self._given:  # the previous batch has been run through the model by now
                self._bar.update(1)
            self._given += 1
            if batch is None:
                return None
            inputs = batch if isinstance(batch, tuple) else (batch,)
            return {name: np.ascontiguousarray(value, np.float32) for name, value in zip(input_names, inputs)}

    prepared = create_partial(int8_path)  # only the int8 file is kept
    try:
        with atomic_path(int8_path) as temporary, \
                progress_bar(len(calibration), "calibrate", enabled=progress, unit="batch") as bar:
            # Shape inference and graph optimisation first (BatchNorm folded into the convolutions), as ONNX
            # Runtime recommends: fewer tensors to quantise, and the scales of what really runs.
            _with_opset(fp32_path, prepared.path)
            quantization.shape_inference.quant_pre_process(str(prepared.path), str(prepared.path),
                                                           skip_symbolic_shape=True)
            quantization.quantize_static(
                str(prepared.path), str(temporary), Reader(bar), quant_format=quantization.QuantFormat.QDQ,
                per_channel=per_channel, activation_type=quantization.QuantType.QUInt8,
                weight_type=quantization.QuantType.QInt8, calibrate_method=quantization.CalibrationMethod.MinMax,
                op_types_to_quantize=list(op_types) if op_types else None)
    finally:
        prepared.discard()
    return int8_path


def _with_opset(source: PathLike, target: PathLike, opset: int = QDQ_OPSET) -> None:
    """``source`` converted to ``opset``: MindSpore writes opset 11, whose DequantizeLinear has no ``axis``
    (per-channel weight scales need 13)."""
    import onnx
    from onnx import version_converter

    model = onnx.load(str(source))
    current = max((entry.version for entry in model.opset_import if entry.domain in ("", "ai.onnx")), default=opset)
    if current < opset:
        model = version_converter.convert_version(model, opset)
    onnx.save(model, str(target))


def compare_models(fp32_path: PathLike, int8_path: PathLike, batches: Sequence[np.ndarray], *,
                   real_slices: Optional[int] = None, calibration_slices: int = 0,
                   threshold: float = 0.5) -> QuantizationReport:
    """Agreement of the int8 model with the fp32 model on ``batches`` (the first ``real_slices`` slices
    count; the rest is padding)."""
    from ..runtime import OnnxRuntimeBackend, forward
    from ..transforms.postprocess import labels_from_logits

    fp32, int8 = OnnxRuntimeBackend(fp32_path), OnnxRuntimeBackend(int8_path)
    reference = np.concatenate([forward(fp32, batch) for batch in batches])
    quantized = np.concatenate([forward(int8, batch) for batch in batches])
    n = len(reference) if real_slices is None else real_slices
    reference, quantized = reference[:n], quantized[:n]
    error = np.abs(quantized - reference)
    return QuantizationReport(float(error.max()), float(error.mean()),
                              mask_dice(labels_from_logits(reference, threshold), labels_from_logits(quantized, threshold)),
                              n, calibration_slices)


def mask_dice(reference: np.ndarray, other: np.ndarray) -> float:
    """Mean Dice over the foreground labels present in either mask (1.0 when neither has any)."""
    from ..metrics.overlap import confusion_counts, dice_from_counts

    reference, other = np.asarray(reference, np.int64).ravel(), np.asarray(other, np.int64).ravel()
    labels = [int(label) for label in np.union1d(np.unique(reference), np.unique(other)) if label != 0]
    if not labels:
        return 1.0
    counts = confusion_counts(other[None], reference[None], max(labels) + 1, include_background=False)
    dice = dice_from_counts(counts, ignore_empty=False)[0]  # column k: label k + 1
    return float(np.mean([dice[label - 1] for label in labels]))


def calibration_and_held_out(net: Any, shape: Sequence[int], files: Sequence[PathLike] = (), *,
                             n_calibration: int = 16, n_held_out: int = 8, preset: Any = None,
                             seed: int = 0) -> Tuple[np.ndarray, np.ndarray]:
    """``(calibration slices, held-out slices)`` for a model of input ``shape``: from ``files`` through the
    preset (the last file held out when there are several, else the last quarter of the slices), or the
    preset's typical inputs with different seeds."""
    from ..runtime.predict import as_input, network_input
    from ..transforms.presets import model_config_of, resolve_preset

    preset = resolve_preset(model_config_of(net), None, preset)
    size = (int(shape[2]), int(shape[3]))
    if not files:
        return (typical_slices(preset, size, n_calibration, seed),
                typical_slices(preset, size, n_held_out, seed + 1000))
    prepared = [network_input(as_input(path), preset, allow_thin=True) for path in files]
    if len(prepared) > 1:
        return np.concatenate(prepared[:-1]), prepared[-1]
    slices = prepared[0]
    if len(slices) < 2:
        raise InputError("one calibration input with a single slice cannot be split into calibration and "
                         "held-out slices; pass more --calibration files")
    cut = max(1, len(slices) - max(1, len(slices) // 4))
    return slices[:cut], slices[cut:]


def quantize_network(net: Any, int8_path: PathLike, input_shape: Sequence[int], *,
                     calibration_files: Sequence[PathLike] = (), n_calibration: int = 16, n_held_out: int = 8,
                     preset: Any = None, overwrite: bool = False, fp32_path: Optional[PathLike] = None,
                     progress: bool = False) -> QuantizationReport:
    """Export ``net`` (its BatchNorm-folded inference form where it has one) for ``input_shape``, write its
    int8 QDQ version to ``int8_path`` and report the agreement on held-out inputs. ``fp32_path``: also keep
    the fp32 export there (else it is temporary). Logs a start line per step; ``progress``: a calibration bar."""
    from ..runtime.backends import can_fold
    from ..runtime.exporting import export_network

    quantization_module()  # before the export: a missing extra fails at once
    int8_path = Path(int8_path)
    if int8_path.exists() and not overwrite:
        raise InputError(f"{int8_path} already exists; choose another --out or pass --overwrite")
    began = time.perf_counter()
    logger.info("int8 step 1 of 4: preparing the calibration and held-out slices (%s) ...",
                f"from {len(calibration_files)} file(s)" if calibration_files
                else f"{n_calibration} + {n_held_out} synthetic ones through the model's input preset")
    calibration, held_out = calibration_and_held_out(net, input_shape, calibration_files, n_calibration=n_calibration,
                                                     n_held_out=n_held_out, preset=preset)
    shape = " x ".join(str(int(d)) for d in input_shape)
    if can_fold(net):  # the form predict runs: BatchNorm folded into the convolutions, fewer tensors to quantise
        from ..networks.fusion import optimize_for_inference

        net = optimize_for_inference(net)
    with staging_folder(int8_path.parent, "quantize") as folder:  # and those of killed runs are removed
        fp32 = Path(fp32_path) if fp32_path is not None else folder / "fp32.onnx"
        logger.info("int8 step 2 of 4: exporting the fp32 network to ONNX for input %s ...", shape)
        export_network(net, fp32, "onnx", input_shape, overwrite=True)
        batches = padded_batches(calibration, input_shape)
        logger.info("int8 step 3 of 4: calibrating on %d slice(s) in %d batch(es) of %s, then quantizing ...",
                    len(calibration), len(batches), shape)
        quantize_onnx(fp32, int8_path, batches, overwrite=overwrite, progress=progress)
        logger.info("int8 step 4 of 4: comparing int8 with fp32 on %d held-out slice(s) ...", len(held_out))
        report = compare_models(fp32, int8_path, padded_batches(held_out, input_shape), real_slices=len(held_out),
                                calibration_slices=len(calibration))
    logger.info("quantized in %.1f s", time.perf_counter() - began)
    return report
