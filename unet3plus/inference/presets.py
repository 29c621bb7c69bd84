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

from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Dict, Optional, Sequence, Tuple

import numpy as np

from ..errors import InputError

if TYPE_CHECKING:
    from ..hub.model_config import InputConfig

CONTEXT_SLICES = 3


class PresetError(InputError):
    """Input that the chosen preset cannot turn into network input."""


@dataclass(frozen=True)
class InputPreset:
    """A named recipe from raw input to network input ``N x C x H x W`` float32.

    ``kind`` is ``"volume"`` (CT in HU, ``Z x H x W``) or ``"image"`` (one 2-D image ``H x W [x C]``).
    ``size``: the fixed ``(H, W)`` the preset resizes to (predictions are resized back), or None.
    """

    name: str
    kind: str
    description: str
    _prepare: Callable[..., np.ndarray]
    size: Optional[Tuple[int, int]] = None

    def __call__(self, data: np.ndarray, *, allow_thin: bool = False) -> np.ndarray:
        if self.kind == "volume":
            return self._prepare(check_volume(data, self.name, allow_thin=allow_thin))
        return self._prepare(check_image(data, self.name))


def check_volume(volume: np.ndarray, preset: str, *, allow_thin: bool = False) -> np.ndarray:
    """A finite ``Z x H x W`` float32 volume with enough slices for the 3-slice context (or an error)."""
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
    volume = volume.astype(np.float32, copy=False)
    bad = ~np.isfinite(volume)
    if bad.any():
        raise PresetError(f"the volume holds {int(bad.sum())} NaN/Inf value(s); replace them (e.g. with "
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


def neighbour_indices(n_slices: int, offsets: Sequence[int]) -> np.ndarray:
    """``n_slices x len(offsets)`` slice indices ``z + offset``, clamped into the volume (the edge rule)."""
    return np.clip(np.arange(n_slices)[:, None] + np.asarray(offsets)[None, :], 0, n_slices - 1)


def _stack(volume: np.ndarray, offsets: Tuple[int, ...]) -> np.ndarray:
    return volume[neighbour_indices(volume.shape[0], offsets)]  # Z x C x H x W


def _lits2017(volume: np.ndarray) -> np.ndarray:
    # cv2.imwrite saturates float -> uint8 with rounding (saturate_cast): HU below 0 became 0.
    intensity = np.rint(np.clip(volume, 0.0, 200.0)) / np.float32(255.0)
    return np.ascontiguousarray(_stack(intensity.astype(np.float32), (0, -1, -2)))


def _windowed(volume: np.ndarray, low: float, high: float) -> np.ndarray:
    intensity = (np.clip(volume, low, high) - np.float32(low)) / np.float32(high - low)
    return np.ascontiguousarray(_stack(intensity.astype(np.float32), (-1, 0, 1)))


def _standard(volume: np.ndarray) -> np.ndarray:
    return _windowed(volume, -200.0, 200.0)


def window_preset(low: float, high: float) -> InputPreset:
    """``standard`` with another HU window ``[low, high]`` scaled to [0, 1] (slices ``[z-1, z, z+1]``)."""
    if not (np.isfinite(low) and np.isfinite(high) and high > low):
        raise PresetError(f"the HU window needs finite LOW < HIGH, got [{low}, {high}]")
    return InputPreset(f"window[{low:g},{high:g}]", "volume", f"CT in HU: slices [z-1, z, z+1], window "
                       f"[{low:g}, {high:g}] scaled to [0, 1], edge slices repeated",
                       lambda volume: _windowed(volume, low, high))


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
        InputPreset("lits2017", "volume", "CT in HU as the published LiTS2017 weights saw it: slices "
                    "[z, z-1, z-2], round(clip(HU, 0, 200)) / 255, edge slices repeated", _lits2017),
        InputPreset("standard", "volume", "CT in HU for new models: slices [z-1, z, z+1], window "
                    "[-200, 200] scaled to [0, 1], edge slices repeated", _standard),
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
    from ..data.dataset import prepare_image
    from ..data.transforms import resize_image

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


def preset_for_model(model) -> Optional[InputPreset]:
    """The preset a network built by ``create_network`` was trained with (None when its config does not say)."""
    config = getattr(getattr(model, "net", model), "model_config", None)
    if config is None or config.input is None:
        return None
    return preset_from_input_config(config.input, config.architecture.in_channels)


def get_preset(preset) -> InputPreset:
    """Look a preset up by name (an ``InputPreset`` passes through)."""
    if isinstance(preset, InputPreset):
        return preset
    if preset not in PRESETS:
        raise PresetError(f"unknown input preset {preset!r}; choose one of {', '.join(PRESETS)}")
    return PRESETS[preset]


def list_presets() -> Tuple[str, ...]:
    return tuple(PRESETS)
