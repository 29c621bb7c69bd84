"""Running the network: backends behind one ``forward`` (MindSpore, ONNX Runtime, the automatic choice), the
ONNX/MINDIR writer and the verified ONNX export cache the automatic backend runs on."""
from .backends import MindSporeBackend, create_backend, list_backends, register_backend
from .interface import InferenceBackend, forward
from .onnx_runtime import OnnxRuntimeBackend

__all__ = ["InferenceBackend", "MindSporeBackend", "OnnxRuntimeBackend", "create_backend", "forward", "list_backends",
           "register_backend"]
