"""The one place where a batch goes through the network: backends behind a tiny interface.

``predict`` only ever calls :func:`forward`. A backend is a callable ``N x C x H x W float32 -> logits``
plus ``fixed_shape`` (``(N, C, H, W)`` when the model only accepts one input shape, like an exported ONNX
file; ``None`` otherwise). Faster paths (folded BatchNorm, other runtimes) plug in with
:func:`register_backend` and are then selectable by name in ``predict(..., backend=name)`` and the CLI.
"""
from __future__ import annotations

import importlib.util
import logging
import os
from typing import Any, Callable, Dict, Optional, Tuple

import numpy as np

from .._optional import install_hint, require
from ..errors import InputError
from .interface import InferenceBackend
from .onnx_runtime import OnnxRuntimeBackend

logger = logging.getLogger(__name__)

BackendFactory = Callable[..., "InferenceBackend"]
GRAPH_MIN_BATCHES = 4  # "auto" compiles from this many batches on (see MindSporeBackend)
BACKEND_VARIABLE = "UNET3PLUS_BACKEND"  # the CLI's default --backend (else "auto")


class MindSporeBackend(InferenceBackend):
    """A MindSpore ``nn.Cell`` in eval mode.

    ``optimize=True`` runs ``optimize_for_inference(net)`` instead of ``net``: a BatchNorm-folded copy of a
    ``UNet3Plus`` (same logits to ~1e-5, faster; ``benchmarks/RESULTS.md``), leaving ``net`` and its training
    mode untouched; other cells, and networks with the classification-guided module, run as they are.
    Otherwise ``net`` itself runs, and this puts it in eval mode (``net.set_train(False)``), as it must for
    inference; ``predict`` and the CLI pass ``optimize=True``.

    ``mode``: ``"graph"`` runs a ``mindspore.jit``-compiled forward (a few seconds to compile per input
    shape, then faster per batch), ``"pynative"`` runs eagerly, ``"auto"`` compiles when at least
    ``GRAPH_MIN_BATCHES`` batches follow (``predict`` keeps every batch the same shape, so compiling happens
    once). Measured by ``benchmarks/bench_predict_backends.py`` on 2 CPU cores, 128 x 128 slices, batch 4:
    compiling costs about 3 s and graph mode runs a batch about 1.9x faster, so it pays from ~4 batches.
    """

    def __init__(self, net: Any, mode: str = "auto", *, optimize: bool = False) -> None:
        if mode not in ("auto", "graph", "pynative"):
            raise InputError(f"unknown MindSpore mode {mode!r}; choose auto, graph or pynative")
        import mindspore as ms

        self.model_config = getattr(net, "model_config", None)
        if optimize and can_fold(net):
            from ..networks.fusion import optimize_for_inference

            net = optimize_for_inference(net)  # an eval-only copy; the caller's network is not touched
        else:
            net.set_train(False)
        self.net, self.mode, self._ms = net, mode, ms
        self._compiled = None
        self._use_graph = mode == "graph"

    def prepare(self, n_batches: int) -> None:
        if self.mode == "auto":
            self._use_graph = n_batches >= GRAPH_MIN_BATCHES

    def _graph_forward(self):
        if self._compiled is None:
            net = self.net

            def forward(batch):
                return net(batch)

            self._compiled = self._ms.jit(forward)
        return self._compiled

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        tensor = self._ms.Tensor(np.ascontiguousarray(batch, dtype=np.float32))
        run = self._graph_forward() if self._use_graph else self.net
        output = run(tensor)
        if isinstance(output, (tuple, list)):  # variants with side outputs: the first is the main logits
            output = output[0]
        return output.asnumpy()


def can_fold(net: Any) -> bool:
    """``optimize_for_inference`` handles a ``UNet3Plus`` without the classification-guided module."""
    from ..networks import UNet3Plus

    return isinstance(net, UNet3Plus) and not net.has_cgm


class CachedOnnxBackend(InferenceBackend):
    """A MindSpore network run by ONNX Runtime, from an export made once per input shape and kept in the
    cache folder (``unet3plus.export.cache``: keyed by the network's SHA-256, the shape and the versions,
    checked against MindSpore when made, verified by hash when reused).

    Takes any batch shape (``fixed_shape`` is None): the first batch of each ``C x H x W`` picks the export;
    smaller batches of that size are zero-padded to it. If exporting fails, it warns and runs the network
    in MindSpore (``fallback_options``) instead.
    """

    def __init__(self, net: Any, *, cache_dir: Any = None, **fallback_options: Any) -> None:
        require("onnxruntime", "onnx", "The ONNX Runtime backend")
        self.net, self.cache_dir, self.fallback_options = net, cache_dir, fallback_options
        self.model_config = getattr(net, "model_config", None)
        self._network: Optional[str] = None
        self._sessions: Dict[Tuple[int, ...], OnnxRuntimeBackend] = {}
        self._fallback: Optional[MindSporeBackend] = None
        self._n_batches = 0

    def prepare(self, n_batches: int) -> None:
        self._n_batches = n_batches
        if self._fallback is not None:
            self._fallback.prepare(n_batches)

    def _session(self, shape: Tuple[int, ...]) -> Optional[OnnxRuntimeBackend]:
        session = self._sessions.get(shape[1:])
        if session is not None and session.fixed_shape[0] >= shape[0]:
            return session
        from .onnx_cache import cached_onnx, network_sha256

        try:
            if self._network is None:
                self._network = network_sha256(self.net)
            path = cached_onnx(self.net, shape, cache_dir=self.cache_dir, network=self._network)
            session = self._sessions[shape[1:]] = OnnxRuntimeBackend(path)
            return session
        except Exception as error:  # any export failure: the slower backend still gives the right answer
            logger.warning("ONNX export failed (%s); running MindSpore instead (--backend mindspore skips the "
                           "export)", " ".join(str(error).split()) or type(error).__name__)
            self._fallback = MindSporeBackend(self.net, **self.fallback_options)
            self._fallback.prepare(self._n_batches)
            return None

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        session = None if self._fallback is not None else self._session(tuple(batch.shape))
        if session is None:
            return self._fallback(batch)
        real = batch.shape[0]
        if real < session.fixed_shape[0]:
            batch = np.concatenate([batch, np.zeros((session.fixed_shape[0] - real,) + batch.shape[1:], batch.dtype)])
        return session(batch)[:real]


def onnxruntime_available() -> bool:
    return importlib.util.find_spec("onnxruntime") is not None


def _exportable(model: Any) -> bool:
    from ..networks import UNet3Plus

    return isinstance(model, UNet3Plus)


def fastest_backend(model: Any, *, cache_dir: Any = None, **mindspore_options: Any) -> InferenceBackend:
    """The ``"auto"`` backend: ONNX Runtime when it is installed (on a cached export for a network, on the
    file for an ``.onnx`` path), else MindSpore with ``mindspore_options`` (``mode="auto"`` compiles a graph
    whenever that pays). Logs its choice (INFO; the CLI shows it)."""
    if str(model).lower().endswith(".onnx"):
        return OnnxRuntimeBackend(model)
    mindspore_options.setdefault("optimize", True)  # a folded copy when MindSpore runs it: same logits, faster
    if onnxruntime_available() and _exportable(model):
        from .onnx_cache import onnx_cache_dir

        logger.info("backend: onnxruntime, on an ONNX export made once per input shape and kept in %s (--backend "
                    "mindspore runs MindSpore instead)", onnx_cache_dir(cache_dir))
        return CachedOnnxBackend(model, cache_dir=cache_dir, **mindspore_options)
    why = "onnxruntime is not installed" if not onnxruntime_available() else f"a {type(model).__name__} is not exported"
    logger.info("backend: mindspore (%s%s)", why,
                f"; {install_hint('onnx')} for the faster ONNX Runtime backend" if "installed" in why else "")
    return MindSporeBackend(model, **mindspore_options)


def default_backend_name() -> str:
    """The CLI's default ``--backend``: ``UNET3PLUS_BACKEND`` if set, else ``"auto"``."""
    return os.environ.get(BACKEND_VARIABLE) or "auto"


_BACKENDS: Dict[str, BackendFactory] = {
    "auto": fastest_backend,
    "mindspore": MindSporeBackend,
    "onnxruntime": OnnxRuntimeBackend,
}


def register_backend(name: str, factory: BackendFactory) -> None:
    """Make ``create_backend(model, name)`` (and ``predict(..., backend=name)``) build ``factory(model, **options)``."""
    _BACKENDS[name] = factory


def list_backends() -> Tuple[str, ...]:
    return tuple(_BACKENDS)


def backend_name(model: Any, backend: Optional[str] = None) -> str:
    """The backend ``create_backend`` picks: ``backend`` if given, else ONNX Runtime for an ``.onnx`` path and
    MindSpore for anything else."""
    if backend is not None:
        return backend
    return "onnxruntime" if str(model).lower().endswith(".onnx") else "mindspore"


def create_backend(model: Any, backend: Optional[str] = None, **options: Any) -> InferenceBackend:
    """A backend for ``model``: an ``InferenceBackend`` passes through; a Cell gets MindSpore (by default),
    a path to an ``.onnx`` file gets ONNX Runtime."""
    if isinstance(model, InferenceBackend):
        return model
    backend = backend_name(model, backend)
    if backend not in _BACKENDS:
        raise InputError(f"unknown backend {backend!r}; choose one of {', '.join(_BACKENDS)}")
    return _BACKENDS[backend](model, **options)

