"""An exported ONNX file run by ONNX Runtime (no MindSpore needed to run it)."""
from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any, Tuple, Union

import numpy as np

from .._optional import require
from ..errors import InputError
from .interface import InferenceBackend


class OnnxRuntimeBackend(InferenceBackend):
    """An exported ONNX file run by ONNX Runtime on the CPU (no MindSpore needed to run it).

    ``model_path``: an ``.onnx`` path, the model's bytes, or a path carrying the SHA-256 it was verified
    against (``hub.download.VerifiedPath``, as the ONNX cache returns): that file is read once, its bytes
    must still have that hash, and ONNX Runtime gets those bytes, so a file swapped after the check cannot
    change what runs."""

    def __init__(self, model_path: Any, providers=("CPUExecutionProvider",)) -> None:
        onnxruntime = require("onnxruntime", "onnx", "Running the ONNX model")
        model, shown = session_source(model_path)
        try:
            options = onnxruntime.SessionOptions()
            # Idle worker threads spinning for work cost more than they save on few cores (0.87x measured).
            options.add_session_config_entry("session.intra_op.allow_spinning", "0")
            self.session = onnxruntime.InferenceSession(model, sess_options=options, providers=list(providers))
        except Exception as error:
            raise InputError(f"cannot load ONNX model {shown}: {error}. Export one with "
                             "'unet3plus export --format onnx'.") from error
        model_input = self.session.get_inputs()[0]
        self.input_name = model_input.name
        shape = model_input.shape
        if len(shape) == 4 and all(isinstance(d, int) for d in shape):
            self.fixed_shape = tuple(shape)

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        return self.session.run(None, {self.input_name: np.ascontiguousarray(batch, dtype=np.float32)})[0]


def session_source(model: Any) -> Tuple[Union[str, bytes], str]:
    """``(what ONNX Runtime loads, how messages name it)``: bytes as given, a verified path's checked bytes,
    else the path."""
    if isinstance(model, (bytes, bytearray, memoryview)):
        return bytes(model), "(model bytes)"
    expected = getattr(model, "sha256", None)
    if expected is None:
        return str(model), str(model)
    try:
        data = Path(model).read_bytes()
    except OSError as error:
        raise InputError(f"cannot read ONNX model {model} ({error.strerror or error}); run again to export it "
                         "afresh") from error
    if hashlib.sha256(data).hexdigest() != expected:
        raise InputError(f"ONNX model {model} changed after its SHA-256 was verified (another process wrote it); "
                         "nothing was loaded: run again to verify it afresh")
    return data, str(model)
