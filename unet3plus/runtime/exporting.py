"""Write a network as ONNX (ONNX Runtime and other runtimes; what the ONNX cache holds) or MINDIR (MindSpore Lite, Ascend).

ONNX export works on MindSpore 2.10 because the network's align-corners bilinear up-sampling is written
as two constant-matrix products (``networks.blocks.resize_bilinear_align_corners``), which export as
MatMul, instead of the ResizeBilinearV2 operator that MindSpore cannot export. The shapes are fixed at
export time (``input_shape``); ``predict`` pads slices and batches to them.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Optional, Sequence, Tuple, Union

import numpy as np

from .._atomic import atomic_path
from ..errors import InputError
from ..networks import SIZE_MULTIPLE

FORMATS = {"mindir": ".mindir", "onnx": ".onnx"}
DEFAULT_INPUT_SHAPE = (1, 3, 512, 512)  # one LiTS slice


def export_network(net: Any, path: Union[str, "os.PathLike[str]"], file_format: str = "onnx",
                   input_shape: Sequence[int] = DEFAULT_INPUT_SHAPE, *, overwrite: bool = False,
                   extra_inputs: Sequence[np.ndarray] = ()) -> Path:
    """Write ``net`` (eval mode) for inputs of ``input_shape`` (N x C x H x W, H and W multiples of 16).

    The file appears under its final name only when complete; an existing file is an error unless
    ``overwrite``. ``extra_inputs``: examples of further inputs ``net`` takes after the image (their shapes
    are fixed, their values are not: they stay graph inputs).
    """
    import mindspore as ms

    file_format = file_format.lower()
    if file_format not in FORMATS:
        raise InputError(f"unknown export format {file_format!r}; choose one of {', '.join(FORMATS)}")
    shape = tuple(int(d) for d in input_shape)
    if len(shape) != 4 or min(shape) < 1 or shape[2] % SIZE_MULTIPLE or shape[3] % SIZE_MULTIPLE:
        raise InputError(f"input shape {shape} must be N x C x H x W with H and W multiples of {SIZE_MULTIPLE}")
    path = Path(path)
    if path.suffix.lower() != FORMATS[file_format]:
        raise InputError(f"{path} should end in {FORMATS[file_format]} for format {file_format}; rename it")
    if path.exists() and not overwrite:
        raise InputError(f"{path} already exists; choose another --out or pass --overwrite")
    net.set_train(False)
    example = (ms.Tensor(np.zeros(shape, np.float32)),) + tuple(ms.Tensor(extra) for extra in extra_inputs)
    # Through a wrapper cell: exporting a network whose compiled plain call (networks/compiled.py) has run
    # fails inside MindSpore 2.10 ("i: 6 out of range" at a BatchNorm); the wrapper's graph is a new one.
    exported = _export_cell(net)
    with atomic_path(path) as temporary:
        if file_format == "onnx":  # ms.export(file_format="ONNX") is deprecated in favour of ms.onnx.export
            ms.onnx.export(exported, *example, file_name=str(temporary))
        else:
            ms.export(exported, *example, file_name=str(temporary), file_format=file_format.upper())
        if not temporary.is_file() or temporary.stat().st_size == 0:
            raise RuntimeError(f"MindSpore did not write {temporary}")
    return path


def _export_cell(net: Any) -> Any:
    """``net`` inside a cell of its own (see ``export_network``)."""
    from mindspore import nn

    class ExportCell(nn.Cell):
        def __init__(self, inner: Any) -> None:
            super().__init__()
            self.inner = inner

        def construct(self, x, *extra):
            return self.inner(x, *extra)

    cell = ExportCell(net)
    cell.set_train(False)
    return cell


def compare_onnx(net: Any, onnx_path: Union[str, "os.PathLike[str]"], batch: Optional[np.ndarray] = None,
                 seed: int = 0, extra_inputs: Sequence[np.ndarray] = ()) -> Tuple[float, np.ndarray]:
    """Max absolute difference between MindSpore's and ONNX Runtime's logits for ``batch`` (default: a
    random batch of the exported shape) and any ``extra_inputs``, and the ONNX Runtime logits."""
    import mindspore as ms

    from .onnx_runtime import OnnxRuntimeBackend

    backend = OnnxRuntimeBackend(onnx_path)
    if batch is None:
        batch = np.random.default_rng(seed).random(backend.fixed_shape, dtype=np.float32)
    inputs = (np.ascontiguousarray(batch, dtype=np.float32),) + tuple(extra_inputs)
    names = [model_input.name for model_input in backend.session.get_inputs()]
    onnx_logits = backend.session.run(None, dict(zip(names, inputs)))[0]
    net.set_train(False)
    ms_logits = net(*(ms.Tensor(value) for value in inputs)).asnumpy()
    return float(np.abs(onnx_logits - ms_logits).max()), onnx_logits


def verification_batch(net: Any, shape: Sequence[int], seed: int = 0) -> np.ndarray:
    """Random raw images fed through the preset the model was trained with (its input config), cropped or
    padded to ``shape``: the value range the network really sees, not uniform noise."""
    from ..transforms.presets import model_config_of, resolve_preset

    preset = resolve_preset(model_config_of(net))
    rng = np.random.default_rng(seed)
    batch_size, _, height, width = shape
    if preset.kind == "volume":
        prepared = preset(rng.uniform(-300.0, 400.0, (batch_size, height, width)).astype(np.float32), allow_thin=True)
    else:
        prepared = np.concatenate([preset(rng.integers(0, 256, (height, width), dtype=np.uint8))
                                   for _ in range(batch_size)])
    batch = np.zeros(tuple(shape), np.float32)
    h, w = min(height, prepared.shape[2]), min(width, prepared.shape[3])
    batch[:, :, :h, :w] = prepared[:batch_size, :, :h, :w]
    return batch
