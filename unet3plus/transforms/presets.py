"""Input presets: turn what a user has (a CT volume in HU, or a 2-D image) into the network's input.

The published LiTS2017 weights were trained on PNGs written by the published preprocessing script, and
the network expects that script's quirks, reproduced here as the ``lits2017`` preset:

* HU clipped to [-200, 200], then the float stack written with ``cv2.imwrite`` saturated to 8 bits:
  negative HU all became 0, so the network saw ``round(clip(HU, 0, 200)) / 255``;
* the three channels of the image for slice ``z`` are, as read back (BGR written, RGB read, stack built
  one slice off), slices ``[z, z-1, z-2]``;
* the published script took the first slice's ``z-2`` from the *end* of its crop (a wrap-around). Here
  the **edge rule** is instead: a neighbour index below 0 (or beyond the last slice) is clamped to the
  nearest existing slice, so slice 0 gets ``[0, 0, 0]`` and slice 1 gets ``[1, 0, 0]``.

``standard`` is the preset for new models: slices ``[z-1, z, z+1]``, window [-200, 200] scaled to
[0, 1], same edge rule. ``image`` takes 2-D images (for example the PNGs the published script wrote):
integers divided by their type's maximum, grey repeated to three channels.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Dict, Optional, Sequence, Tuple, Union

import numpy as np

from ..errors import InputError
from .geometry import resize_image
from .intensity import prepare_image

if TYPE_CHECKING:
    from ..hub.model_config import InputConfig, ModelConfig

logger = logging.getLogger(__name__)

CONTEXT_SLICES = 3


class PresetError(InputError):
    """Input that the chosen preset cannot turn into network input."""


@dataclass(frozen=True)
class InputPreset:
    """A named recipe from raw input to network input ``N x C x H x W`` float32.

    ``kind`` is ``"volume"`` (CT in HU, ``Z x H x W``) or ``"image"`` (one 2-D image ``H x W [x C]``).
    ``size``: the fixed ``(H, W)`` the preset resizes to (predictions are resized back), or None.
    ``offsets``: for volume presets built by :func:`volume_preset`, the slice context (channel ``c`` of slice
    ``z`` is slice ``z + offsets[c]``, clamped) and ``_prepare`` maps HU to intensity voxel by voxel, so any
    run of slices can be prepared on its own (:meth:`slices`) and ``predict`` streams a volume batch by
    batch. With ``offsets=None`` ``_prepare`` takes the whole float32 volume and returns the whole stack.
    """

    name: str
    kind: str
    description: str
    _prepare: Callable[..., np.ndarray]
    size: Optional[Tuple[int, int]] = None
    offsets: Optional[Tuple[int, ...]] = None

    def __call__(self, data: np.ndarray, *, allow_thin: bool = False) -> np.ndarray:
        if self.kind == "volume":
            volume = check_volume(data, self.name, allow_thin=allow_thin)
            if self.offsets is None:
                return self._prepare(volume.astype(np.float32, copy=False))
            return self.slices(volume, 0, volume.shape[0])
        return self._prepare(check_image(data, self.name))

    def slices(self, volume: np.ndarray, start: int, stop: int) -> np.ndarray:
        """Network input ``(stop - start) x C x H x W`` for slices ``start:stop`` of a volume that passed
        :func:`check_volume`: what ``self(volume)[start:stop]`` gives, computed from only the slices their
        context reaches (so a whole volume never needs a float32 copy)."""
        if self.offsets is None:
            raise PresetError(f"the '{self.name}' preset prepares whole volumes only (it has no slice offsets)")
        indices = neighbour_indices(volume.shape[0], self.offsets, start, stop)
        first, last = int(indices.min()), int(indices.max()) + 1
        intensity = self._prepare(np.asarray(volume[first:last], dtype=np.float32))
        return np.ascontiguousarray(intensity[indices - first], dtype=np.float32)


def volume_preset(name: str, description: str, intensity: Callable[[np.ndarray], np.ndarray],
                  offsets: Sequence[int]) -> InputPreset:
    """A CT preset: ``intensity`` (float32 HU -> float32, voxel by voxel) on the slices ``z + offsets``."""
    return InputPreset(name, "volume", description, intensity, offsets=tuple(int(o) for o in offsets))


def check_volume(volume: np.ndarray, preset: str, *, allow_thin: bool = False) -> np.ndarray:
    """A finite ``Z x H x W`` volume with enough slices for the 3-slice context (or an error), in its own
    dtype: int16 CT stays int16 (presets convert slices to float32 as they prepare them)."""
    volume = np.asarray(volume)
    if volume.ndim == 2:
        volume = volume[np.newaxis]
    if volume.ndim != 3:
        raise PresetError(f"the '{preset}' preset takes a CT volume Z x H x W in HU, got an array of shape "
                          f"{volume.shape}; for 2-D images (PNG/JPEG) use --preset image")
    if volume.size == 0:
        raise PresetError(f"the volume is empty (shape {volume.shape}); check that the file holds image data")
    if not np.issubdtype(volume.dtype, np.number) or np.issubdtype(volume.dtype, np.complexfloating):
        raise PresetError(f"the volume has dtype {volume.dtype}; expected real numbers (HU)")
    bad = _count_non_finite(volume)
    if bad:
        raise PresetError(f"the volume holds {bad} NaN/Inf value(s); replace them (e.g. with "
                          "-1024 HU, air) before predicting")
    if volume.shape[0] < CONTEXT_SLICES and not allow_thin:
        raise PresetError(f"the volume has {volume.shape[0]} slice(s), fewer than the {CONTEXT_SLICES} the "
                          f"'{preset}' preset's slice context needs; pass a thicker volume, or allow_thin=True "
                          "(--allow-thin) to repeat the edge slices")
    return volume


def check_image(image: np.ndarray, preset: str) -> np.ndarray:
    """A finite ``H x W`` or ``H x W x C`` image (or an error)."""
    image = np.asarray(image)
    if image.ndim == 3 and image.shape[2] not in (1, 3, 4):
        raise PresetError(f"the '{preset}' preset takes one 2-D image (H x W or H x W x 1/3/4), got shape "
                          f"{image.shape}, which looks like a volume; use --preset lits2017 or standard for CT")
    if image.ndim not in (2, 3):
        raise PresetError(f"the '{preset}' preset takes one 2-D image, got an array of shape {image.shape}")
    if image.size == 0:
        raise PresetError(f"the image is empty (shape {image.shape}); check the file")
    if np.issubdtype(image.dtype, np.floating) and not np.isfinite(image).all():
        raise PresetError(f"the image holds {int((~np.isfinite(image)).sum())} NaN/Inf value(s); fix the file")
    return image


def _count_non_finite(volume: np.ndarray, slab: int = 16) -> int:
    """NaN/Inf count, a slab of slices at a time (no volume-sized temporary); integers have none."""
    if not np.issubdtype(volume.dtype, np.floating):
        return 0
    return sum(int(np.count_nonzero(~np.isfinite(volume[z:z + slab]))) for z in range(0, volume.shape[0], slab))


def neighbour_indices(n_slices: int, offsets: Sequence[int], start: int = 0, stop: Optional[int] = None) -> np.ndarray:
    """``(stop - start) x len(offsets)`` slice indices ``z + offset`` for ``z`` in ``start:stop`` (default: the
    whole volume), clamped into the volume (the edge rule)."""
    stop = n_slices if stop is None else stop
    return np.clip(np.arange(start, stop)[:, None] + np.asarray(offsets)[None, :], 0, n_slices - 1)


def _lits2017_intensity(volume: np.ndarray) -> np.ndarray:
    # cv2.imwrite saturates float -> uint8 with rounding (saturate_cast): HU below 0 became 0.
    return (np.rint(np.clip(volume, 0.0, 200.0)) / np.float32(255.0)).astype(np.float32)


def _window(low: float, high: float) -> Callable[[np.ndarray], np.ndarray]:
    def intensity(volume: np.ndarray) -> np.ndarray:
        return ((np.clip(volume, low, high) - np.float32(low)) / np.float32(high - low)).astype(np.float32)

    return intensity


def window_preset(low: float, high: float) -> InputPreset:
    """``standard`` with another HU window ``[low, high]`` scaled to [0, 1] (slices ``[z-1, z, z+1]``)."""
    if not (np.isfinite(low) and np.isfinite(high) and high > low):
        raise PresetError(f"the HU window needs finite LOW < HIGH, got [{low}, {high}]")
    return volume_preset(f"window[{low:g},{high:g}]", f"CT in HU: slices [z-1, z, z+1], window "
                         f"[{low:g}, {high:g}] scaled to [0, 1], edge slices repeated", _window(low, high), (-1, 0, 1))


def _image(image: np.ndarray) -> np.ndarray:
    if np.issubdtype(image.dtype, np.integer):
        scaled = image.astype(np.float32) / np.float32(np.iinfo(image.dtype).max)
    else:
        scaled = image.astype(np.float32)
    if scaled.ndim == 2:
        scaled = scaled[:, :, None]
    if scaled.shape[2] == 4:
        scaled = scaled[:, :, :3]  # drop alpha
    if scaled.shape[2] == 1:
        scaled = np.repeat(scaled, 3, axis=2)
    return np.ascontiguousarray(scaled.transpose(2, 0, 1)[np.newaxis])


PRESETS: Dict[str, InputPreset] = {
    preset.name: preset for preset in (
        volume_preset("lits2017", "CT in HU as the published LiTS2017 weights saw it: slices [z, z-1, z-2], "
                      "round(clip(HU, 0, 200)) / 255, edge slices repeated", _lits2017_intensity, (0, -1, -2)),
        volume_preset("standard", "CT in HU for new models: slices [z-1, z, z+1], window [-200, 200] scaled "
                      "to [0, 1], edge slices repeated", _window(-200.0, 200.0), (-1, 0, 1)),
        InputPreset("image", "image", "one 2-D image (e.g. a PNG written by the published preprocessing): "
                    "integers / dtype max, grey repeated to 3 channels", _image),
    )
}


def preset_from_input_config(config: "InputConfig", in_channels: int) -> InputPreset:
    """The preset that feeds a trained network what its training pipeline fed it (its checkpoint's input
    config): a named preset, or the data pipeline's own image preparation and resize."""
    if config.preset:
        return get_preset(config.preset)
    if config.window is not None:  # trained on CT volumes with an HU window (unet3plus train --volumes --window)
        return window_preset(*config.window)
    def prepare(image: np.ndarray) -> np.ndarray:
        if image.ndim == 3 and image.shape[2] == 4 and in_channels != 4:
            image = image[:, :, :3]  # drop alpha, as the image preset does
        slices = prepare_image(image, config.normalize, in_channels, config.repeat_grayscale)
        if slices.shape[0] != in_channels:
            raise PresetError(f"the image has {slices.shape[0]} channel(s) but the model was trained on "
                              f"{in_channels}; convert the image (the model's input: {config.describe()})")
        if config.size is not None:
            slices = resize_image(slices, tuple(config.size))
        return np.ascontiguousarray(slices[np.newaxis], np.float32)

    return InputPreset("checkpoint", "image", f"the checkpoint's training input: {config.describe()}", prepare,
                       tuple(config.size) if config.size else None)


PUBLISHED_PRESET = "lits2017"  # what the published weights expect, and a volume's default without a model config


def model_config_of(model: Any) -> Optional["ModelConfig"]:
    """The ``ModelConfig`` a network, backend or folded copy carries (None for an ``.onnx`` path or a bare cell)."""
    return getattr(model, "model_config", None) if model is not None and not isinstance(model, (str, Path)) else None


def input_kind(volume: Any) -> str:
    """``"volume"`` (CT in HU: NIfTI, DICOM, ``.npy`` arrays other than uint8) or ``"image"`` (image files and
    uint8 arrays, which hold 8-bit pictures rather than HU) for a :class:`~unet3plus.io.Volume`."""
    if volume.kind == "mask":
        raise PresetError(f"{volume.path} is a DICOM Segmentation (a mask), not an image; point predict at the CT "
                          "images it was drawn on (or score it with unet3plus evaluate --predictions)")
    if volume.kind == "array":
        return "image" if np.asarray(volume.data).dtype == np.uint8 else "volume"
    return volume.kind


def resolve_preset(model_config: Optional["ModelConfig"], input_kind: Optional[str] = None,
                   override: Union[str, InputPreset, None] = None) -> InputPreset:
    """The one decision of how an input reaches the network; predict, evaluate, export, quantize and the command
    line all call it.

    ``override`` (a name or preset, ``--preset``) wins, with a warning when it differs from what the model was
    trained on. Otherwise the model's own training input (``model_config.input``) when it takes this
    ``input_kind`` ("volume" or "image"; None: any), else the default of the kind: ``image`` for 2-D images,
    ``lits2017`` (the published weights' input) for CT volumes.
    """
    trained = None
    if model_config is not None and model_config.input is not None:
        trained = preset_from_input_config(model_config.input, model_config.architecture.in_channels)
    if override is not None:
        chosen = get_preset(override)
        if trained is not None and chosen.name != trained.name:
            logger.warning("preset %s overrides the input the model was trained with (%s)", chosen.name,
                           trained.description)
        return chosen
    if trained is not None and input_kind in (None, trained.kind):
        return trained
    chosen = get_preset("image" if input_kind == "image" else PUBLISHED_PRESET)
    if trained is not None:
        logger.warning("the model was trained on %s input (%s); %s inputs get the '%s' preset (--preset or preset= "
                       "chooses another)", trained.kind, trained.description, input_kind, chosen.name)
    return chosen


def get_preset(preset) -> InputPreset:
    """Look a preset up by name (an ``InputPreset`` passes through)."""
    if isinstance(preset, InputPreset):
        return preset
    if preset not in PRESETS:
        raise PresetError(f"unknown input preset {preset!r}; choose one of {', '.join(PRESETS)}")
    return PRESETS[preset]


def list_presets() -> Tuple[str, ...]:
    return tuple(PRESETS)
