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
# What the automatic backend weighs (export_pays), measured by benchmarks/bench_export_payoff.py on 2 cores of an
# AMD EPYC (RESULTS.md, 2026-12-05): seconds as (fixed, per megapixel of one batch, N x H x W).
EXPORT_SECONDS = (3.7, 10.0)  # the ONNX export and its check against MindSpore, once per network and shape
BATCH_SECONDS = {"pynative": (0.35, 4.7), "graph": (0.0, 2.9), "onnxruntime": (0.0, 1.8)}  # per batch, folded
GRAPH_COMPILE_SECONDS = 2.0  # MindSpore's graph, once per shape
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
        self._use_graph = compiles(self.mode, n_batches)

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


def compiles(mode: str, n_batches: int) -> bool:
    """Whether a ``MindSporeBackend`` of ``mode`` runs ``n_batches`` as a compiled graph."""
    return mode == "graph" or (mode == "auto" and n_batches >= GRAPH_MIN_BATCHES)


def export_pays(n_batches: int, batch_shape: Tuple[int, ...], mode: str = "auto") -> Tuple[bool, str]:
    """Whether exporting to ONNX for ``batch_shape`` (N x C x H x W) repays itself over ``n_batches``, and why.

    The rule of the automatic backend: export when ``EXPORT_SECONDS + n x ONNX Runtime's seconds per batch``
    is less than what MindSpore takes for the same batches (``mode``: PyNative under ``GRAPH_MIN_BATCHES``
    batches, else ``GRAPH_COMPILE_SECONDS`` + n x graph seconds per batch). Each term is fixed seconds plus
    seconds per megapixel of a batch (``BATCH_SECONDS``), measured on 2 CPU cores: one 512 x 512 slice
    (0.26 megapixels) repays an export from 15 batches, four 128 x 128 slices from 33 batches. Faster or
    slower CPUs scale both sides alike, so the break-even holds roughly anywhere.
    """
    megapixels = batch_shape[0] * batch_shape[2] * batch_shape[3] / 1e6

    def seconds(cost: Tuple[float, float]) -> float:
        return cost[0] + cost[1] * megapixels

    if compiles(mode, n_batches):
        mindspore = GRAPH_COMPILE_SECONDS + n_batches * seconds(BATCH_SECONDS["graph"])
    else:
        mindspore = n_batches * seconds(BATCH_SECONDS["pynative"])
    onnx = seconds(EXPORT_SECONDS) + n_batches * seconds(BATCH_SECONDS["onnxruntime"])
    return onnx < mindspore, (f"{n_batches} batch(es) of {' x '.join(map(str, batch_shape))}: about {mindspore:.1f} s "
                              f"in MindSpore, {onnx:.1f} s with a new ONNX export")


def can_fold(net: Any) -> bool:
    """``optimize_for_inference`` handles a ``UNet3Plus`` without the classification-guided module."""
    from ..networks import UNet3Plus

    return isinstance(net, UNet3Plus) and not net.has_cgm


class CachedOnnxBackend(InferenceBackend):
    """A MindSpore network run by ONNX Runtime, from an export made once per input shape and kept in the
    cache folder (``runtime.onnx_cache``: keyed by the network's SHA-256, the shape and the versions,
    checked against MindSpore when made, verified by hash when reused), where that pays.

    Takes any batch shape (``fixed_shape`` is None): the first batch of each ``C x H x W`` picks the export;
    smaller batches of that size are zero-padded to it. A cached export of that shape is always used; a new
    one is made only when :func:`export_pays` for the batches :meth:`prepare` announced plus those this
    backend already ran in MindSpore at that shape (so many small jobs end up exporting too; without
    ``prepare`` it exports). Otherwise, and if exporting fails (with a warning), the network runs in
    MindSpore (``fallback_options``). Each choice is logged at INFO with its reason.
    """

    def __init__(self, net: Any, *, cache_dir: Any = None, **fallback_options: Any) -> None:
        require("onnxruntime", "onnx", "The ONNX Runtime backend")
        self.net, self.cache_dir, self.fallback_options = net, cache_dir, fallback_options
        self.model_config = getattr(net, "model_config", None)
        self._network: Optional[str] = None
        self._sessions: Dict[Tuple[int, ...], OnnxRuntimeBackend] = {}
        self._fallback: Optional[MindSporeBackend] = None
        self._export_failed = False
        self._n_batches: Optional[int] = None  # announced by prepare; None: not told
        self._declined: Dict[Tuple[int, ...], int] = {}  # shape -> the job (prepare call) that ran it in MindSpore
        self._mindspore_batches: Dict[Tuple[int, ...], int] = {}  # shape -> batches run in MindSpore so far
        self._job = 0

    def prepare(self, n_batches: int) -> None:
        self._n_batches, self._job = n_batches, self._job + 1
        if self._fallback is not None:
            self._fallback.prepare(n_batches)

    def _mindspore(self) -> MindSporeBackend:
        if self._fallback is None:
            self._fallback = MindSporeBackend(self.net, **self.fallback_options)
            self._fallback.prepare(self._n_batches or 0)
        return self._fallback

    def _session(self, shape: Tuple[int, ...]) -> Optional[OnnxRuntimeBackend]:
        session = self._sessions.get(shape[1:])
        if session is not None and session.fixed_shape[0] >= shape[0]:
            return session
        if self._export_failed or self._declined.get(shape) == self._job:
            return None
        from .onnx_cache import cached_onnx, existing_onnx, network_sha256

        if self._network is None:
            self._network = network_sha256(self.net)
        path = existing_onnx(self._network, shape, cache_dir=self.cache_dir)
        if path is None and self._n_batches is not None:
            pays, why = export_pays(self._n_batches + self._mindspore_batches.get(shape, 0), shape,
                                    self.fallback_options.get("mode", "auto"))
            if not pays:
                logger.info("running MindSpore, not exporting to ONNX: %s", why)
                self._declined[shape] = self._job
                return None
            logger.info("exporting to ONNX pays: %s", why)
        elif path is not None:
            logger.info("running ONNX Runtime on the cached ONNX export for input %s", " x ".join(map(str, shape)))
        try:
            path = path or cached_onnx(self.net, shape, cache_dir=self.cache_dir, network=self._network)
            session = self._sessions[shape[1:]] = OnnxRuntimeBackend(path)
            return session
        except Exception as error:  # any export failure: the slower backend still gives the right answer
            logger.warning("ONNX export failed (%s); running MindSpore instead (--backend mindspore skips the "
                           "export)", " ".join(str(error).split()) or type(error).__name__)
            self._export_failed = True
            return None

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        shape = tuple(batch.shape)
        session = self._session(shape)
        if session is None:
            self._mindspore_batches[shape] = self._mindspore_batches.get(shape, 0) + 1
            return self._mindspore()(batch)
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
    """The ``"auto"`` backend: for an ``.onnx`` path ONNX Runtime on the file; for a network, when onnxruntime
    is installed, ONNX Runtime on a cached export where one exists or where making it pays (``export_pays``),
    else MindSpore with ``mindspore_options`` (``mode="auto"`` compiles a graph whenever that pays). Logs its
    choices (INFO; the CLI shows them)."""
    if str(model).lower().endswith(".onnx"):
        return OnnxRuntimeBackend(model)
    mindspore_options.setdefault("optimize", True)  # a folded copy when MindSpore runs it: same logits, faster
    if onnxruntime_available() and _exportable(model):
        from .onnx_cache import onnx_cache_dir

        logger.info("backend: auto, ONNX Runtime on an ONNX export kept in %s where one exists or the job repays "
                    "making it, else MindSpore (--backend mindspore never exports)", onnx_cache_dir(cache_dir))
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

