"""``predict``: any supported input through a preset, padded batches, the network, and back to a mask."""
from __future__ import annotations

import contextlib
import itertools
import math
import os
from pathlib import Path
from typing import Any, Callable, Iterator, NamedTuple, Optional, Tuple, Union

import numpy as np

from .._atomic import atomic_path
from .._progress import progress_bar
from ..io.prediction import Prediction
from ..io.readers import read_input
from ..io.volume import Volume
from ..networks import SIZE_MULTIPLE
from ..transforms.postprocess import keep_largest_component, labels_from_probabilities, probabilities_from_logits
from ..transforms.presets import (InputPreset, PresetError, check_volume, input_kind, model_config_of,
                                  resolve_preset)
from .backends import backend_name, create_backend
from .cropping import PlannedRun, check_strategy, windowed_network
from .interface import InferenceBackend, forward

PIXELS_PER_BATCH = 512 * 512  # default batch: one 512 x 512 slice, four 256 x 256 ones
MAX_DEFAULT_BATCH = 4


InputLike = Union[str, "os.PathLike[str]", np.ndarray, Volume]


def as_input(x: InputLike) -> Volume:
    if isinstance(x, Volume):
        return x
    if isinstance(x, (str, os.PathLike)):
        return read_input(x)
    return Volume("array", "array", np.asarray(x))


def check_kind(source: Volume, preset: InputPreset) -> None:
    """An error unless the input is the kind the preset takes (a CT volume, or one 2-D image)."""
    where = f" ({source.path})" if source.path is not None else ""
    if preset.kind == "volume" and source.kind == "image":
        raise PresetError(f"the input{where} is a 2-D image without HU values, but the '{preset.name}' preset "
                          "takes a CT volume in HU (NIfTI, DICOM, .npy); for 8-bit slices such as the PNGs the "
                          "published preprocessing wrote, use --preset image")
    if preset.kind == "image" and source.kind == "volume":
        raise PresetError(f"the input{where} is a CT volume, but the '{preset.name}' preset takes one 2-D "
                          "image; use --preset lits2017 (the published weights) or standard")


def network_input(source: Volume, preset: InputPreset, *, allow_thin: bool = False) -> np.ndarray:
    """The preset applied to the whole input (``predict`` streams volumes instead; see ``slice_source``)."""
    check_kind(source, preset)
    return preset(source.data, allow_thin=allow_thin)


class SliceSource(NamedTuple):
    """What ``slice_source`` gives: the slice count, their ``(H, W)``, ``prepare(start, stop)`` and the
    checked volume as stored where the preset streams it (None otherwise)."""

    n_slices: int
    size: Tuple[int, int]
    prepare: Callable[[int, int], np.ndarray]
    volume: Optional[np.ndarray]


def slice_source(source: Volume, preset: InputPreset, *, allow_thin: bool = False) -> SliceSource:
    """How many slices the input gives, their ``(H, W)``, and ``prepare(start, stop)``: the network input for
    slices ``start:stop``. Volume presets with slice offsets prepare each run from the volume as stored
    (int16 CT stays int16), which comes along (the body box is found on it); other presets are applied
    once to the whole input."""
    check_kind(source, preset)
    if preset.kind == "volume" and preset.offsets is not None:
        volume = check_volume(source.data, preset.name, allow_thin=allow_thin)
        return SliceSource(volume.shape[0], volume.shape[1:], lambda start, stop: preset.slices(volume, start, stop),
                           volume)
    stack = preset(source.data, allow_thin=allow_thin)
    return SliceSource(stack.shape[0], stack.shape[2:], lambda start, stop: stack[start:stop], None)


def padded_size(height: int, width: int, fixed: Optional[Tuple[int, ...]] = None) -> Tuple[int, int]:
    """Height and width rounded up to a multiple of 16, or the model's fixed input size."""
    if fixed is not None:
        if height > fixed[2] or width > fixed[3]:
            raise PresetError(f"the input slices are {height} x {width}, larger than the {fixed[2]} x {fixed[3]} "
                              "the model was exported for; export it again with a larger --size")
        return int(fixed[2]), int(fixed[3])
    return (math.ceil(height / SIZE_MULTIPLE) * SIZE_MULTIPLE, math.ceil(width / SIZE_MULTIPLE) * SIZE_MULTIPLE)


def _probability_dtype(dtype: Any) -> np.dtype:
    try:
        dtype = np.dtype(dtype)
    except TypeError as error:
        raise PresetError(f"probabilities_dtype {dtype!r} is not a dtype; use float32 or float16") from error
    if dtype not in (np.float32, np.float16):
        raise PresetError(f"probabilities can be float32 or float16, not {dtype}")
    return dtype


def _npy_path(where: Union[str, "os.PathLike[str]"]) -> Path:
    path = Path(where)
    if path.suffix != ".npy":
        raise PresetError(f"probabilities are written to a .npy file, not {path.name}; give a path ending .npy")
    return path


@contextlib.contextmanager
def _probability_store(where: Union[bool, str, "os.PathLike[str]"], shape: Tuple[int, ...],
                       dtype: np.dtype) -> Iterator[Optional[np.ndarray]]:
    """None (not asked), an array in memory (``True``), or a ``.npy`` file mapped into memory that gets its
    final name only once complete (a path)."""
    if where is False or where is None:
        yield None
    elif where is True:
        yield np.empty(shape, dtype)
    else:
        with atomic_path(_npy_path(where)) as temporary:
            store = np.lib.format.open_memmap(temporary, mode="w+", dtype=dtype, shape=shape)
            yield store
            store.flush()
            del store


def _scores(runner: InferenceBackend, prepare: Callable[[int, int], np.ndarray], n_slices: int, batch: int,
            size: Tuple[int, int], preset: InputPreset) -> Iterator[Tuple[int, np.ndarray, None]]:
    """``(start, probabilities, None)`` for each batch of slices (the labels are left to the caller), through one
    zero-padded buffer of a fixed shape ``batch x C x H' x W'`` (padding rows and margins stay zero), cropped
    back to the real slices."""
    padded = None
    for start in range(0, n_slices, batch):
        chunk = prepare(start, min(start + batch, n_slices))
        real, channels, height, width = chunk.shape
        if padded is None:
            fixed = runner.fixed_shape
            if fixed is not None and fixed[1] != channels:
                raise PresetError(f"the model takes {fixed[1]} channels but the '{preset.name}' preset gives "
                                  f"{channels}")
            padded = np.zeros((batch, channels) + size, np.float32)
        padded[:real, :, :height, :width] = chunk
        padded[real:] = 0.0
        yield start, probabilities_from_logits(forward(runner, padded)[:real, :, :height, :width]), None


def default_batch_size(height: int, width: int) -> int:
    """Slices per forward pass when none is asked for: as many as fit in ``PIXELS_PER_BATCH`` (at most
    ``MAX_DEFAULT_BATCH``). The network's activations, not the pipeline, set peak memory, and a 512 x 512
    CT ran as fast one slice at a time as four (``benchmarks/bench_volume.py``: 1.39 against 2.84 GiB)."""
    return max(1, min(MAX_DEFAULT_BATCH, PIXELS_PER_BATCH // max(height * width, 1)))


def predict(model: Any, x: InputLike, *, preset: Union[str, InputPreset, None] = None, threshold: float = 0.5,
            batch_size: Optional[int] = None, keep_largest: bool = False, allow_thin: bool = False, progress: bool = False,
            backend: Optional[str] = None, probabilities: Union[bool, str, "os.PathLike[str]"] = False,
            probabilities_dtype: Any = np.float32, resample: bool = False, strategy: str = "default",
            **backend_options: Any) -> Prediction:
    """Segment ``x`` with ``model``.

    A volume goes through the network a batch at a time: each batch's slice context is prepared from the
    volume as read (int16 CT stays int16) and only the uint8 mask is kept, so memory grows with the input
    and its mask, not with float32 copies of them.

    Args:
        model: a MindSpore network (``unet3plus.create_network(...)``; a ``UNet3Plus`` runs as its
            ``optimize_for_inference`` copy unless ``optimize=False`` is passed, and is itself left as it
            was), a path to an exported ``.onnx`` file, or an ``InferenceBackend``.
        x: a file path (PNG/JPEG, ``.npy``, NIfTI, DICOM file or series folder), a ``Volume``, or an
            array: a CT volume ``[Z x] H x W`` in HU for volume presets, an image for the ``image`` preset.
        preset: ``"lits2017"`` (what the published weights expect), ``"standard"``, ``"image"``, or an
            ``InputPreset``. Default: the input the network was trained with (``net.model_config.input``,
            which ``create_network`` sets from the checkpoint), else ``"lits2017"``.
        threshold: foreground where the sigmoid probability exceeds it (one-channel models); multi-channel
            models take the arg-max of the softmax.
        batch_size: slices per forward pass; slices are zero-padded to a multiple of 16 and cropped back.
            Default (None): :func:`default_batch_size`, 1 at 512 x 512 and up to 4 for smaller slices.
        keep_largest: keep only the largest connected foreground region (3-D for volumes).
        allow_thin: accept volumes with fewer than 3 slices (edge slices repeated).
        progress: show a progress bar (stderr).
        backend: ``"mindspore"`` or ``"onnxruntime"`` (default: chosen from ``model``), or a registered name.
        probabilities: ``False`` (default): ``Prediction.probabilities`` is None. ``True``: kept in memory.
            A path ending ``.npy``: written there batch by batch (``[Z x] C x H x W``; the file gets its
            name only when complete) and returned memory-mapped, so they never need to fit in memory.
        probabilities_dtype: ``float32`` (default) or ``float16`` (half the memory or disk).
        strategy: for CT volumes (``docs/whole-ct.md``). ``"exact"``: every whole slice, the reference, the same
            answer across releases. ``"default"``: slices without a body are background and, on CTs of
            enough slices whose body is clearly smaller than the slice, the network sees only the body box
            plus a margin, with the full slice's up-sampling, on the fp32 engine this machine runs fastest
            (``runtime.engine_choice``; Dice >= 0.999 against exact). ``"fast"``: a
            coarse pass over a body slice every 16 mm finds the organ's slices, and only those and their
            neighbours run (at most 1% Dice below exact). Skipped parts' probabilities are background.
        resample: slices whose in-plane spacing lies outside the model's training range are resampled into it
            before the network and the mask comes back on the input's grid (``transforms.spacing``).
    """
    if batch_size is not None and batch_size < 1:
        raise PresetError(f"batch_size must be at least 1, got {batch_size}")
    dtype = _probability_dtype(probabilities_dtype)
    check_strategy(strategy)
    if probabilities not in (False, None, True):
        _npy_path(probabilities)  # a wrong name fails before any work
    source = as_input(x)
    source, restore = _spacing_hook(source, model, resample, probabilities)
    preset = resolve_preset(model_config_of(model), input_kind(source), preset)
    n_slices, (height, width), prepare, volume = slice_source(source, preset, allow_thin=allow_thin)
    if not isinstance(model, InferenceBackend) and backend_name(model, backend) == "mindspore":
        backend_options = {"optimize": True, **backend_options}  # folded copy: same logits, faster
    runner: InferenceBackend = create_backend(model, backend, **backend_options)
    class_names = _class_names(model_config_of(model) or getattr(runner, "model_config", None))
    fixed = runner.fixed_shape
    size = padded_size(height, width, fixed)
    if batch_size is None:
        batch_size = default_batch_size(*size)
    batch = int(fixed[0]) if fixed is not None else min(batch_size, n_slices)
    runner.prepare(math.ceil(n_slices / batch))
    image = preset.kind == "image"  # one image: its (small) scores are resized back, so they are kept
    mask = np.empty((n_slices, height, width), np.uint8)
    with progress_bar(n_slices, "predict", enabled=progress, unit="slice") as bar:
        if strategy == "exact" or volume is None:
            batches = _scores(runner, prepare, n_slices, batch, size, preset)
        else:
            batches = iter(PlannedRun(windowed_network(runner, backend), runner, prepare, volume, size, batch,
                                      strategy, threshold, class_names, (source.spacing or (None,))[0]))
        first = next(batches)
        channels = first[1].shape[1]
        with _probability_store(True if image else probabilities, (n_slices, channels, height, width),
                                np.dtype(np.float32) if image else dtype) as store:
            for start, scores, labels in itertools.chain([first], batches):
                if labels is None:
                    labels = labels_from_probabilities(scores, threshold)
                mask[start:start + len(scores)] = labels
                if store is not None:
                    store[start:start + len(scores)] = scores
                bar.update(len(scores))
    if image:
        return _image_prediction(store, source, preset, threshold, keep_largest, probabilities, dtype, class_names)
    if probabilities is True:
        kept = store
    elif probabilities is False or probabilities is None:
        kept = None
    else:
        kept = np.load(_npy_path(probabilities), mmap_mode="r")
    if keep_largest:
        mask = keep_largest_component(mask)
    return restore(Prediction(mask=mask, probabilities=kept, preset=preset.name, source=source,
                              preset_kind=preset.kind, channels=channels, class_names=class_names))


def _spacing_hook(source: Volume, model: Any, resample: bool, probabilities: Any) -> Tuple[Volume, Callable]:
    """The input at the training spacing and the way back (``transforms.spacing``: the one place it is decided)."""
    from ..transforms.spacing import to_training_spacing

    if resample and probabilities not in (False, None, True):
        raise PresetError("resample keeps the probabilities in memory to bring them back to the input's grid; pass "
                          "probabilities=True rather than a .npy path")
    return to_training_spacing(source, model_config_of(model), resample=resample)


def _class_names(model_config: Any) -> Tuple[str, ...]:
    """The config's class names (background first) for the writers' labels; empty without a config, so that
    ``io.prediction.foreground_class_names`` falls back to the published weights' names."""
    return tuple(str(name) for name in getattr(model_config, "class_names", None) or ())


def _image_prediction(scores: np.ndarray, source: Volume, preset: InputPreset, threshold: float,
                      keep_largest: bool, probabilities: Union[bool, str, "os.PathLike[str]"],
                      dtype: np.dtype, class_names: Tuple[str, ...] = ()) -> Prediction:
    """One 2-D image's prediction from its ``1 x C x H x W`` scores, resized back to the input's own size
    where the preset resized it."""
    if preset.size is not None:
        from ..transforms.geometry import resize_image

        own_size = tuple(np.asarray(source.data).shape[:2])
        scores = resize_image(scores[0], own_size)[np.newaxis]
    mask = labels_from_probabilities(scores, threshold)
    if keep_largest:
        mask = keep_largest_component(mask)
    kept = None
    if probabilities is True:
        kept = scores[0].astype(dtype)
    elif probabilities not in (False, None):
        with atomic_path(_npy_path(probabilities)) as temporary:
            np.save(temporary, scores[0].astype(dtype))
        kept = np.load(_npy_path(probabilities), mmap_mode="r")
    return Prediction(mask=mask[0], probabilities=kept, preset=preset.name, source=source, preset_kind=preset.kind,
                      channels=scores.shape[1], class_names=class_names)
