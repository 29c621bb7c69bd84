"""OpenVINO, the optional engine ``predict --fast`` runs in bf16 on CPUs with bf16 units (AVX-512 BF16, AMX),
and that ``predict``'s cropped strategies run in fp32 where it is the faster engine on this machine
(``runtime.engine_choice``).

Why OpenVINO and not ONNX Runtime for bf16: ONNX Runtime's CPU provider has no bf16 convolutions; OpenVINO
runs the same verified ONNX export with ``INFERENCE_PRECISION_HINT=bf16``: 2.04x ONNX Runtime's fp32 on a
336 x 416 crop on 2 AMD EPYC cores with AVX-512 BF16 (``benchmarks/bench_engines.py``, ``benchmarks/RESULTS.md``).
Install it with ``pip install -e '.[openvino]'``; nothing needs it.
"""
from __future__ import annotations

import functools
import logging
from typing import Any

import numpy as np

from .._runtime import without_package_isa_cap
from .onnx_runtime import session_source

logger = logging.getLogger(__name__)


@functools.lru_cache(maxsize=1)
def engine_available() -> bool:
    """True where OpenVINO is installed (the ``openvino`` extra)."""
    try:
        import openvino  # noqa: F401
    except ImportError:
        return False
    return True


def engine_version() -> str:
    import openvino

    return getattr(openvino, "__version__", None) or openvino.get_version()


@functools.lru_cache(maxsize=1)
def bf16_engine_available() -> bool:
    """True where OpenVINO is installed and reports bf16 on this CPU (``OPTIMIZATION_CAPABILITIES``)."""
    if not engine_available():
        return False
    import openvino

    try:
        with without_package_isa_cap():  # OpenVINO's CPU plugin starts here, seeing the CPU's real units
            return "BF16" in openvino.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES")
    except Exception as error:  # an OpenVINO that cannot see the CPU is one that is not used
        logger.debug("OpenVINO cannot report the CPU's capabilities: %s", error)
        return False


class OpenVinoModel:
    """An ONNX model (bytes, a path, or a verified path whose checked bytes are what is compiled) compiled by
    OpenVINO for the CPU at ``precision`` (``"bf16"`` or ``"f32"``); called with the model's inputs in order."""

    def __init__(self, model: Any, precision: str = "bf16") -> None:
        import openvino

        data, _ = session_source(model)
        with without_package_isa_cap():
            core = openvino.Core()
            source = core.read_model(data) if isinstance(data, bytes) else core.read_model(str(data))
            # The hint is always set: on CPUs with AMX, OpenVINO's default for "CPU" is bf16, not f32.
            self.compiled = core.compile_model(source, "CPU", {"INFERENCE_PRECISION_HINT": precision,
                                                              "PERFORMANCE_HINT": "LATENCY"})
        self.request = self.compiled.create_infer_request()
        self.precision = precision

    def __call__(self, *inputs: np.ndarray) -> np.ndarray:
        results = self.request.infer([np.ascontiguousarray(x, dtype=np.float32) for x in inputs])
        return np.asarray(results[self.compiled.output(0)], np.float32)
