"""Inference: input presets, readers for images/NIfTI/DICOM, prediction, post-processing and writers."""
from .engine import (InferenceBackend, MindSporeBackend, OnnxRuntimeBackend, create_backend, forward,
                     list_backends, register_backend)
from .postprocess import (keep_largest_component, labels_from_logits, labels_from_probabilities,
                          probabilities_from_logits)
from .predict import Prediction, predict
from .presets import PRESETS, InputPreset, PresetError, get_preset, list_presets
from .readers import LoadedInput, ReadError, read_input
from .writers import overlay, write_prediction

__all__ = [
    "InferenceBackend", "InputPreset", "LoadedInput", "MindSporeBackend", "OnnxRuntimeBackend", "PRESETS",
    "Prediction", "PresetError", "ReadError", "create_backend", "forward", "get_preset", "keep_largest_component",
    "labels_from_logits", "labels_from_probabilities", "list_backends", "list_presets", "overlay", "predict",
    "probabilities_from_logits", "read_input", "register_backend", "write_prediction",
]
