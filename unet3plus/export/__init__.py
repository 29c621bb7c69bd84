"""Export a network for other runtimes: ONNX or MINDIR files (``runtime.exporting``) and int8 ONNX models
(:mod:`.quantize`). ``unet3plus export`` is the command line of both."""
from ..runtime.exporting import DEFAULT_INPUT_SHAPE, FORMATS, compare_onnx, export_network, verification_batch

__all__ = ["DEFAULT_INPUT_SHAPE", "FORMATS", "compare_onnx", "export_network", "verification_batch"]
