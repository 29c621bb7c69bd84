"""From a Volume to network input and from logits back to masks: input presets (and the one
:func:`resolve_preset` every path calls), 2-D intensity and geometry operations, post-processing."""
from .postprocess import (keep_largest_component, labels_from_logits, labels_from_probabilities,
                          probabilities_from_logits)
from .presets import PRESETS, InputPreset, PresetError, get_preset, list_presets, resolve_preset

__all__ = ["PRESETS", "InputPreset", "PresetError", "get_preset", "keep_largest_component", "labels_from_logits",
           "labels_from_probabilities", "list_presets", "probabilities_from_logits", "resolve_preset"]
