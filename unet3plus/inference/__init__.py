"""Inference: input presets, readers for images/NIfTI/DICOM, prediction, post-processing and writers."""
from .presets import PRESETS, InputPreset, PresetError, get_preset, list_presets
from .readers import LoadedInput, ReadError, read_input

__all__ = ["InputPreset", "LoadedInput", "PRESETS", "PresetError", "ReadError", "get_preset", "list_presets",
           "read_input"]
