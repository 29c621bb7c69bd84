"""An exported ONNX file run by ONNX Runtime (no MindSpore needed to run it)."""
from __future__ import annotations

from typing import Any

import numpy as np

from .._optional import require
from ..errors import InputError
from .interface import InferenceBackend


class OnnxRuntimeBackend(InferenceBackend):
    """An exported ONNX file run by ONNX Runtime on the CPU (no MindSpore needed to run it)."""

    def __init__(self, model_path: Any, providers=("CPUExecutionProvider",)) -> None:
        onnxruntime = require("onnxruntime", "onnx", "Running the ONNX model")
        try:
            options = onnxruntime.SessionOptions()
            # Idle worker threads spinning for work cost more than they save on few cores (0.87x measured).
            options.add_session_config_entry("session.intra_op.allow_spinning", "0")
            self.session = onnxruntime.InferenceSession(str(model_path), sess_options=options,
                                                        providers=list(providers))
        except Exception as error:
            raise InputError(f"cannot load ONNX model {model_path}: {error}. Export one with "
                             "'unet3plus export --format onnx'.") from error
        model_input = self.session.get_inputs()[0]
        self.input_name = model_input.name
        shape = model_input.shape
        if len(shape) == 4 and all(isinstance(d, int) for d in shape):
            self.fixed_shape = tuple(shape)

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        return self.session.run(None, {self.input_name: np.ascontiguousarray(batch, dtype=np.float32)})[0]
