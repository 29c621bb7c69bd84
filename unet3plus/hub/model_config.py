"""The model config every checkpoint the package writes carries: what rebuilds the network and what feeds it.

It is one JSON string entry (``unet3plus_model_config``) inside the ``.ckpt`` itself, written with
``mindspore.save_checkpoint(..., append_dict=...)``, so the file's SHA-256 covers the config as well as
the weights. ``mindspore.load_param_into_net`` lists the entry among the checkpoint entries it did not
load (it is not a Parameter) and loads every weight; ``unet3plus.load_checkpoint`` skips it by name.

The published checkpoint predates this and has none: its config comes from the registry
(``registry.published_model_config``), as timm's ``pretrained_cfg`` does. ``first_conv`` and
``classifier`` name the layers a transfer adapts or re-initialises (timm's fields of the same names).
"""
from __future__ import annotations

import dataclasses
import json
import logging
import math
import os
import re
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from itertools import accumulate
from pathlib import Path
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple, Union

from ..errors import InputError

logger = logging.getLogger(__name__)

CONFIG_ENTRY = "unet3plus_model_config"
SCHEMA_VERSION = 1
FIRST_CONV = "conv1.conv.0"
CLASSIFIER = ("outconv1", "ds_head2", "ds_head3", "ds_head4", "ds_head5", "cgm.conv")
ARCHITECTURE_KEYS = ("in_channels", "n_classes", "deep_supervision", "cgm")
NORMALIZATIONS = ("auto", "none", "minmax", "zscore")  # the intensity modes transforms.intensity implements
CHANNEL_ORDERS = ("RGB", "BGR")
MAX_CONFIG_CHARS = 1 << 20  # a real config is a few KiB; bounds what json.loads is handed
MAX_CONFIG_DEPTH = 32  # a real config nests 3 deep; deeper JSON would end in a RecursionError
MAX_INTENSITY = 1e9  # bound of window values (CT HU are within +-4e3)


class ModelConfigError(InputError):
    """A checkpoint's model config cannot be read, or disagrees with the checkpoint's own weights."""


@dataclass(frozen=True)
class Architecture:
    """The ``UNet3Plus`` keyword arguments that change its parameters."""

    in_channels: int = 3
    n_classes: int = 1
    deep_supervision: bool = False
    cgm: bool = False

    def kwargs(self) -> Dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class InputConfig:
    """How raw input becomes network input.

    ``preset`` names an inference preset (``lits2017``, ``standard``, ``image``); otherwise the other
    fields describe the training pipeline's 2-D image preparation (``unet3plus.data.DataOptions``):
    ``normalize`` (auto/none/minmax/zscore), ``size`` (H, W every image is resized to, bilinear; None
    keeps the input's size), ``channel_order`` of the images as read (Pillow: RGB), ``repeat_grayscale``
    (grey images repeated to 3 channels) and an HU ``window`` for CT models. ``spacing_range``: the in-plane
    pixel spacing (mm, min and max) of the training slices, where known (``transforms.spacing`` warns about
    inputs far outside it and ``predict(resample=True)`` resamples to it).
    """

    preset: Optional[str] = None
    normalize: str = "auto"
    size: Optional[Tuple[int, int]] = None
    channel_order: str = "RGB"
    repeat_grayscale: bool = True
    window: Optional[Tuple[float, float]] = None
    spacing_range: Optional[Tuple[float, float]] = None

    def describe(self) -> str:
        spacing = (f", trained on {self.spacing_range[0]:g}-{self.spacing_range[1]:g} mm in-plane spacing"
                   if self.spacing_range else "")
        if self.preset:
            return f"preset {self.preset}{spacing}"
        size = f"resized to {self.size[0]} x {self.size[1]}" if self.size else "kept at their own size"
        return (f"2-D images ({self.channel_order}), normalize={self.normalize}, {size}, grey "
                f"{'repeated to 3 channels' if self.repeat_grayscale else 'kept as 1 channel'}"
                + (f", HU window {list(self.window)}" if self.window else "") + spacing)


@dataclass(frozen=True)
class ModelConfig:
    """Everything needed to rebuild a network from its weights and to feed it what it was trained on.

    ``input`` is None when unknown (a checkpoint without config); ``provenance`` is free-form facts
    (package and MindSpore versions, base weights' SHA-256, epochs, best validation metric, data summary,
    UTC time).
    """

    architecture: Architecture = field(default_factory=Architecture)
    input: Optional[InputConfig] = None
    label_map: Optional[Dict[int, int]] = None
    class_names: Tuple[str, ...] = ()
    provenance: Dict[str, Any] = field(default_factory=dict)
    first_conv: str = FIRST_CONV
    classifier: Tuple[str, ...] = CLASSIFIER
    schema_version: int = SCHEMA_VERSION

    def replace(self, **changes: Any) -> "ModelConfig":
        return dataclasses.replace(self, **changes)

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], where: str = "the config") -> "ModelConfig":
        """Every known field is checked against ``SCHEMA`` (a bad one raises ``ModelConfigError`` naming it);
        unknown ones (a newer package wrote them) are logged and ignored."""
        unknown: List[str] = []
        known = _known(cls, data, "", unknown, where)
        architecture = Architecture(**_known(Architecture, known.pop("architecture", {}), "architecture.",
                                             unknown, where))
        raw_input = known.pop("input", None)
        input_config = None
        if raw_input is not None:
            values = _known(InputConfig, raw_input, "input.", unknown, where)
            for key in ("size", "window", "spacing_range"):
                if values.get(key) is not None:
                    values[key] = tuple(values[key])
            input_config = InputConfig(**values)
        label_map = known.pop("label_map", None)
        if label_map is not None:
            label_map = {int(source): target for source, target in label_map.items()}
        for key in ("class_names", "classifier"):
            if key in known:
                known[key] = tuple(known[key])
        config = cls(architecture=architecture, input=input_config, label_map=label_map, **known)
        _check_consistency(config, where)
        if unknown or config.schema_version > SCHEMA_VERSION:
            logger.warning("%s was written by a newer unet3plus (schema %s, this one reads %s); ignoring unknown "
                           "field(s) %s. Upgrade unet3plus to use them.", where, config.schema_version,
                           SCHEMA_VERSION, ", ".join(unknown) or "none")
        return config

    def summary_rows(self) -> List[Tuple[str, str]]:
        """``(field, value)`` rows for ``unet3plus info`` and the hub card."""
        arch = self.architecture
        rows = [("schema version", str(self.schema_version)),
                ("in_channels / n_classes", f"{arch.in_channels} / {arch.n_classes}"),
                ("variants", ", ".join(k for k in ("deep_supervision", "cgm") if getattr(arch, k)) or "none"),
                ("input", self.input.describe() if self.input else "unknown"),
                ("classes", ", ".join(self.class_names) or "unnamed"),
                ("label map", json.dumps(self.label_map) if self.label_map else "none")]
        rows += [(key.replace("_", " "), json.dumps(value) if isinstance(value, (dict, list)) else str(value))
                 for key, value in self.provenance.items()]
        return rows


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)  # JSON true is not 1, 1.0 is not 1


def _is_bool(value: Any) -> bool:
    return isinstance(value, bool)


def _is_mapping(value: Any) -> bool:
    return isinstance(value, Mapping)


def _is_number(value: Any) -> bool:
    """Finite and within MAX_INTENSITY (also keeps a 400-digit JSON integer from becoming -inf as float)."""
    return (_is_int(value) or isinstance(value, float) and math.isfinite(value)) and abs(value) <= MAX_INTENSITY


def _int_from(low: int, high: Optional[int] = None) -> Callable[[Any], bool]:
    return lambda value: _is_int(value) and low <= value and (high is None or value <= high)


def _is_name(value: Any) -> bool:
    return isinstance(value, str) and 0 < len(value) <= 200


def _names(value: Any) -> bool:
    return isinstance(value, (list, tuple)) and all(_is_name(item) for item in value)


def _pair(value: Any, item: Callable[[Any], bool]) -> bool:
    return isinstance(value, (list, tuple)) and len(value) == 2 and all(item(part) for part in value)


def _size(value: Any) -> bool:
    return _pair(value, lambda side: _is_int(side) and 16 <= side <= 4096 and side % 16 == 0)


def _window(value: Any) -> bool:
    return _pair(value, _is_number) and value[0] < value[1]


def _spacing_range(value: Any) -> bool:
    return _pair(value, lambda mm: _is_number(mm) and 0 < mm <= 1000) and value[0] <= value[1]


LABEL_KEY = re.compile(r"^-?\d{1,12}$")


def _label_map(value: Any) -> bool:
    return _is_mapping(value) and all(
        (isinstance(key, str) and LABEL_KEY.match(key) or _is_int(key)) and _int_from(0)(target)
        for key, target in value.items())


def _optional(check: Callable[[Any], bool]) -> Callable[[Any], bool]:
    return lambda value: value is None or check(value)


@dataclass(frozen=True)
class Rule:
    """What a field must hold: ``check`` decides, ``expects`` says it in the error message."""

    expects: str
    check: Callable[[Any], bool]


# The one schema of a checkpoint's model config (JSON as written by ``ModelConfig.to_json``); a missing field
# takes its dataclass default. Cross-field rules (class names, label map targets) are in _check_consistency.
SCHEMA: Dict[str, Rule] = {
    "schema_version": Rule(f"a positive integer (this unet3plus writes {SCHEMA_VERSION})", _int_from(1)),
    "architecture": Rule("an object", _is_mapping),
    "architecture.in_channels": Rule("an integer from 1 to 1024", _int_from(1, 1024)),
    "architecture.n_classes": Rule("an integer from 1 to 1024", _int_from(1, 1024)),
    "architecture.deep_supervision": Rule("true or false", _is_bool),
    "architecture.cgm": Rule("true or false", _is_bool),
    "input": Rule("an object or null", _optional(_is_mapping)),
    "input.preset": Rule("a preset name or null", _optional(_is_name)),
    "input.normalize": Rule(f"one of {', '.join(NORMALIZATIONS)}", lambda value: value in NORMALIZATIONS),
    "input.size": Rule("null or [H, W], two integers, each a multiple of 16 from 16 to 4096", _optional(_size)),
    "input.channel_order": Rule(f"one of {', '.join(CHANNEL_ORDERS)}", lambda value: value in CHANNEL_ORDERS),
    "input.repeat_grayscale": Rule("true or false", _is_bool),
    "input.window": Rule(f"null or [low, high], two numbers within +-{MAX_INTENSITY:g} with low < high",
                         _optional(_window)),
    "input.spacing_range": Rule("null or [min, max] in-plane spacing in mm, two numbers from 0 to 1000 with "
                                "min <= max", _optional(_spacing_range)),
    "label_map": Rule("null or an object mapping integer mask values to label values >= 0", _optional(_label_map)),
    "class_names": Rule("a list of names (strings)", _names),
    "provenance": Rule("an object", _is_mapping),
    "first_conv": Rule("a layer name", _is_name),
    "classifier": Rule("a list of layer names", _names),
}
FIX = ("the file is damaged or was edited: get an intact copy (its SHA-256 covers the config), or pass "
       "ignore_config=True to rebuild the network from the weights' shapes")


def _shown(value: Any) -> str:
    """The value as the JSON it came from, cut to fit one line."""
    try:
        text = json.dumps(value, default=str)
    except (TypeError, ValueError):  # a dict of Python-only keys handed to from_dict
        text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def config_error(where: str, name: str, value: Any, expects: str) -> "ModelConfigError":
    return ModelConfigError(f"{where}: model config field '{name}' holds {_shown(value)}, expected {expects}; {FIX}")


def _known(cls: type, data: Any, prefix: str, unknown: List[str], where: str) -> Dict[str, Any]:
    """The fields of ``cls`` in ``data``, each checked against ``SCHEMA``; other names go to ``unknown``."""
    if not isinstance(data, Mapping):
        raise config_error(where, prefix.rstrip(".") or "(top level)", data, "an object")
    names = {f.name for f in dataclasses.fields(cls)}
    unknown += [prefix + str(key) for key in data if key not in names]
    known = {key: value for key, value in data.items() if key in names}
    for key, value in known.items():
        rule = SCHEMA[prefix + key]
        if not rule.check(value):
            raise config_error(where, prefix + key, value, rule.expects)
    return known


def label_values(n_classes: int) -> int:
    """How many label values a network with ``n_classes`` outputs predicts (a sigmoid predicts 0 and 1)."""
    return max(2, n_classes)


def _check_consistency(config: "ModelConfig", where: str) -> None:
    n_labels = label_values(config.architecture.n_classes)
    if config.class_names and len(config.class_names) != n_labels:
        raise config_error(where, "class_names", list(config.class_names),
                           f"{n_labels} names (one per label value, background first) for "
                           f"n_classes={config.architecture.n_classes}")
    if config.label_map and any(target >= n_labels for target in config.label_map.values()):
        raise config_error(where, "label_map", {str(k): v for k, v in config.label_map.items()},
                           f"target label values from 0 to {n_labels - 1} (what n_classes="
                           f"{config.architecture.n_classes} predicts)")


def check_json_bounds(text: str, where: str) -> None:
    """Size and nesting are bounded before ``json.loads`` sees the text (deep nesting would recurse)."""
    if len(text) > MAX_CONFIG_CHARS:
        raise ModelConfigError(f"{where}: its model config entry '{CONFIG_ENTRY}' is {len(text)} characters, more "
                               f"than the {MAX_CONFIG_CHARS} a config may hold; {FIX}")
    brackets = re.sub(r"[^\[\]{}]", "", re.sub(r'"(?:[^"\\]|\\.)*"', "", text))  # outside strings only
    depth = max(accumulate(1 if char in "[{" else -1 for char in brackets), default=0)
    if depth > MAX_CONFIG_DEPTH:
        raise ModelConfigError(f"{where}: its model config entry '{CONFIG_ENTRY}' nests {depth} levels deep, more "
                               f"than the {MAX_CONFIG_DEPTH} a config may; {FIX}")


def default_class_names(n_classes: int) -> Tuple[str, ...]:
    """One name per label value, background first (so a one-output sigmoid model has two)."""
    return ("background", "foreground") if n_classes == 1 else ("background",) + tuple(
        f"class_{index}" for index in range(1, n_classes))


def provenance(**facts: Any) -> Dict[str, Any]:
    """Versions and UTC time, plus ``facts`` (None values dropped)."""
    import mindspore

    from .._version import __version__

    record = {"unet3plus_version": __version__, "mindspore_version": mindspore.__version__,
              "created_utc": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")}
    record.update({key: value for key, value in facts.items() if value is not None})
    return record


def parse_config_entry(text: Any, where: str) -> ModelConfig:
    """The config from the entry's text, checked against ``SCHEMA``; a bad entry raises one line naming the
    file, the field and the fix."""
    text = str(text)
    check_json_bounds(text, where)
    try:
        data = json.loads(text)
    except (ValueError, RecursionError) as error:
        raise ModelConfigError(
            f"{where} has an unreadable model config entry '{CONFIG_ENTRY}' ({type(error).__name__}: "
            f"{' '.join(str(error).split())[:200]}); {FIX}") from None
    return ModelConfig.from_dict(data, where)


def read_model_config(path: Union[str, "os.PathLike[str]"]) -> Optional[ModelConfig]:
    """The model config stored in a checkpoint file, or None if it has none. Builds no network and
    converts no weight (only the config entry is read)."""
    import mindspore as ms

    path = Path(path)
    if not path.is_file():
        raise ModelConfigError(f"checkpoint {path} does not exist or is not a file; pass the path of a .ckpt file")
    seen: List[str] = []

    def only_the_config(name: str) -> bool:
        seen.append(name)
        return name == CONFIG_ENTRY

    try:
        entries = ms.load_checkpoint(str(path), choice_func=only_the_config)
    except Exception as error:  # MindSpore raises assorted errors with C++ traces
        if seen and CONFIG_ENTRY not in seen:  # a readable file without the entry: MindSpore refuses an empty result
            return None
        raise ModelConfigError(f"cannot read checkpoint {path} ({type(error).__name__}); it is not a MindSpore "
                               "checkpoint or it is damaged: get an intact copy") from error
    if CONFIG_ENTRY not in entries:
        return None
    return parse_config_entry(entries[CONFIG_ENTRY], f"checkpoint {path}")


def infer_architecture(shapes: Mapping[str, Sequence[int]]) -> Architecture:
    """The architecture a config-less checkpoint's network entries (bare names) were saved from."""
    first, head = shapes.get(FIRST_CONV + ".weight"), shapes.get(CLASSIFIER[0] + ".weight")
    return Architecture(in_channels=int(first[1]) if first is not None else 3,
                        n_classes=int(head[0]) if head is not None else 1,
                        deep_supervision=any(name.startswith("ds_head") for name in shapes),
                        cgm=any(name.startswith("cgm.") for name in shapes))


def check_against_weights(config: ModelConfig, shapes: Mapping[str, Sequence[int]], where: str) -> None:
    """A config that disagrees with its own checkpoint's weights is an error (never a mis-built network)."""
    from_weights = infer_architecture(shapes)
    differences = [f"{key}: config {getattr(config.architecture, key)}, weights {getattr(from_weights, key)}"
                   for key in ARCHITECTURE_KEYS
                   if getattr(config.architecture, key) != getattr(from_weights, key)]
    if differences:
        raise ModelConfigError(
            f"{where}: its model config disagrees with its own weights ({'; '.join(differences)}); the file was "
            "assembled wrongly: re-save it from the trained network (unet3plus publish), or pass "
            "ignore_config=True to build what the weights say")


def save_network(net: Any, path: Union[str, "os.PathLike[str]"], config: ModelConfig) -> Path:
    """Write the network's parameters and ``config`` into one checkpoint, atomically (network-only format:
    bare names, loadable with ``unet3plus.create_network(checkpoint=...)`` or ``load_param_into_net``)."""
    import mindspore as ms

    from .._atomic import atomic_path

    path = Path(path)
    with atomic_path(path) as temporary:
        ms.save_checkpoint(net, str(temporary), append_dict={CONFIG_ENTRY: config.to_json()})
    return path
