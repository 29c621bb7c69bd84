"""``predict``: any supported input through a preset, padded batches, the network, and back to a mask."""
from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import Any, Iterator, Optional, Tuple, Union

import numpy as np

from .._progress import progress_bar
from ..networks import SIZE_MULTIPLE
from .engine import InferenceBackend, backend_name, create_backend, forward
from .postprocess import keep_largest_component, labels_from_probabilities, probabilities_from_logits
from .presets import InputPreset, PresetError, get_preset, preset_for_model
from .readers import LoadedInput, read_input


InputLike = Union[str, "os.PathLike[str]", np.ndarray, LoadedInput]


@dataclass
class Prediction:
    """``mask``: uint8 labels (``Z x H x W`` for volumes, ``H x W`` for a 2-D image; 1 = foreground for a
    one-channel model). ``probabilities``: float32 ``[Z x] C x H x W`` (sigmoid or softmax)."""

    mask: np.ndarray
    probabilities: np.ndarray
    preset: str
    source: Optional[LoadedInput] = None
    preset_kind: str = "volume"  # "image" for 2-D presets (a trained model's own preset has no registry name)

    @property
    def foreground_fraction(self) -> float:
        return float(np.count_nonzero(self.mask)) / max(self.mask.size, 1)


def _as_input(x: InputLike) -> LoadedInput:
    if isinstance(x, LoadedInput):
        return x
    if isinstance(x, (str, os.PathLike)):
        return read_input(x)
    return LoadedInput("array", "array", np.asarray(x))


def network_input(source: LoadedInput, preset: InputPreset, *, allow_thin: bool = False) -> np.ndarray:
    """The preset applied to the input, after checking that the input is the kind the preset takes."""
    where = f" ({source.path})" if source.path is not None else ""
    if preset.kind == "volume" and source.kind == "image":
        raise PresetError(f"the input{where} is a 2-D image without HU values, but the '{preset.name}' preset "
                          "takes a CT volume in HU (NIfTI, DICOM, .npy); for 8-bit slices such as the PNGs the "
                          "published preprocessing wrote, use --preset image")
    if preset.kind == "image" and source.kind == "volume":
        raise PresetError(f"the input{where} is a CT volume, but the '{preset.name}' preset takes one 2-D "
                          "image; use --preset lits2017 (the published weights) or standard")
    return preset(source.data, allow_thin=allow_thin)


def padded_size(height: int, width: int, fixed: Optional[Tuple[int, ...]] = None) -> Tuple[int, int]:
    """Height and width rounded up to a multiple of 16, or the model's fixed input size."""
    if fixed is not None:
        if height > fixed[2] or width > fixed[3]:
            raise PresetError(f"the input slices are {height} x {width}, larger than the {fixed[2]} x {fixed[3]} "
                              "the model was exported for; export it again with a larger --size")
        return int(fixed[2]), int(fixed[3])
    return (math.ceil(height / SIZE_MULTIPLE) * SIZE_MULTIPLE, math.ceil(width / SIZE_MULTIPLE) * SIZE_MULTIPLE)


def _batches(slices: np.ndarray, batch_size: int, size: Tuple[int, int]) -> Iterator[Tuple[np.ndarray, int]]:
    """Zero-padded batches of one fixed shape ``batch_size x C x H' x W'`` and how many slices are real."""
    n, channels, height, width = slices.shape
    for start in range(0, n, batch_size):
        chunk = slices[start:start + batch_size]
        batch = np.zeros((batch_size, channels) + size, np.float32)
        batch[: len(chunk), :, :height, :width] = chunk
        yield batch, len(chunk)


def predict(model: Any, x: InputLike, *, preset: Union[str, InputPreset, None] = None, threshold: float = 0.5,
            batch_size: int = 4, keep_largest: bool = False, allow_thin: bool = False, progress: bool = False,
            backend: Optional[str] = None, **backend_options: Any) -> Prediction:
    """Segment ``x`` with ``model``.

    Args:
        model: a MindSpore network (``unet3plus.create_network(...)``; a ``UNet3Plus`` runs as its
            ``optimize_for_inference`` copy unless ``optimize=False`` is passed, and is itself left as it
            was), a path to an exported ``.onnx`` file, or an ``InferenceBackend``.
        x: a file path (PNG/JPEG, ``.npy``, NIfTI, DICOM file or series folder), a ``LoadedInput``, or an
            array: a CT volume ``[Z x] H x W`` in HU for volume presets, an image for the ``image`` preset.
        preset: ``"lits2017"`` (what the published weights expect), ``"standard"``, ``"image"``, or an
            ``InputPreset``. Default: the input the network was trained with (``net.model_config.input``,
            which ``create_network`` sets from the checkpoint), else ``"lits2017"``.
        threshold: foreground where the sigmoid probability exceeds it (one-channel models); multi-channel
            models take the arg-max of the softmax.
        batch_size: slices per forward pass; slices are zero-padded to a multiple of 16 and cropped back.
        keep_largest: keep only the largest connected foreground region (3-D for volumes).
        allow_thin: accept volumes with fewer than 3 slices (edge slices repeated).
        progress: show a progress bar (stderr).
        backend: ``"mindspore"`` or ``"onnxruntime"`` (default: chosen from ``model``), or a registered name.
    """
    preset = get_preset(preset) if preset is not None else (preset_for_model(model) or get_preset("lits2017"))
    if batch_size < 1:
        raise PresetError(f"batch_size must be at least 1, got {batch_size}")
    source = _as_input(x)
    slices = network_input(source, preset, allow_thin=allow_thin)
    if not isinstance(model, InferenceBackend) and backend_name(model, backend) == "mindspore":
        backend_options = {"optimize": True, **backend_options}  # folded copy: same logits, faster
    runner: InferenceBackend = create_backend(model, backend, **backend_options)
    fixed = runner.fixed_shape
    if fixed is not None and fixed[1] != slices.shape[1]:
        raise PresetError(f"the model takes {fixed[1]} channels but the '{preset.name}' preset gives {slices.shape[1]}")
    batch = int(fixed[0]) if fixed is not None else min(batch_size, len(slices))
    height, width = slices.shape[2:]
    size = padded_size(height, width, fixed)
    runner.prepare(math.ceil(len(slices) / batch))
    outputs = []
    with progress_bar(len(slices), "predict", enabled=progress, unit="slice") as bar:
        for padded, real in _batches(slices, batch, size):
            logits = forward(runner, padded)[:real, :, :height, :width]
            outputs.append(probabilities_from_logits(logits))
            bar.update(real)
    probabilities = np.concatenate(outputs)
    if preset.size is not None and preset.kind == "image":  # back to the input's own size
        from ..data.transforms import resize_image

        own_size = tuple(np.asarray(source.data).shape[:2])
        probabilities = resize_image(probabilities[0], own_size)[np.newaxis]
    mask = labels_from_probabilities(probabilities, threshold)
    if keep_largest:
        mask = keep_largest_component(mask)
    if preset.kind == "image":
        mask, probabilities = mask[0], probabilities[0]
    return Prediction(mask=mask, probabilities=probabilities, preset=preset.name, source=source,
                      preset_kind=preset.kind)
