"""Load a checkpoint into a UNet3+ strictly, with the transfers fine-tuning asks for, and say what happened.

Rules (checked before any parameter is touched, so a failed load leaves the network unchanged):

* Both formats load: the published training-step file (network weights under ``network.``, Adam state
  and step counters beside them, which are skipped) and a network-only file (bare names). String
  entries (the model config, a run's state) are metadata, never weights.
* Without ``transfer`` the checkpoint must fit exactly: a missing, unexpected or shape-mismatched
  parameter is an error under ``strict`` listing every problem.
* ``transfer=True`` (asked for explicitly: fine-tuning) allows, each logged as a warning: a classifier
  layer for another number of classes stays freshly initialised; a first convolution for other input
  channels is adapted from the RGB weights (sum for one channel; repeat and scale by 3/C otherwise, as
  timm does); a variant head the checkpoint lacks stays initialised, one the network lacks is dropped.
  Which layers are "first convolution" and "classifier" comes from the pretrained config's
  ``first_conv`` / ``classifier`` (timm's fields).
"""
from __future__ import annotations

import hashlib
import logging
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Dict, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np

from ..errors import InputError
from .model_config import CLASSIFIER, FIRST_CONV
from .registry import PUBLISHED_PARAMETER_NAMES, TRAINING_STEP_PREFIX

if TYPE_CHECKING:
    from mindspore import nn

OPTIMIZER_PREFIXES = ("moment1.", "moment2.")
OPTIMIZER_SCALARS = ("global_step", "learning_rate", "beta1_power", "beta2_power")
RGB_CHANNELS = 3
_LISTED = 5  # names shown per category in error messages (with the count of the rest)
_PYTHON_ONLY_FIX = (" From Python: build the network the checkpoint describes (unet3plus.create_network(checkpoint=...)), "
                    "pass transfer=True to fine-tune it into another head/input (re-initialised head, adapted first "
                    "convolution), or strict=False to load what matches and keep the rest initialised.")
METADATA = "metadata (model config or run state), not a weight"

logger = logging.getLogger(__name__)


class CheckpointError(InputError):
    """A checkpoint cannot be read or does not fit the network; the message counts every problem.

    ``cli_message`` is the same without fixes that only the Python API offers (the CLI prints it).
    """

    @property
    def cli_message(self) -> str:
        return str(self).replace(_PYTHON_ONLY_FIX, "")


@dataclass
class LoadReport:
    """What ``load_checkpoint`` did, parameter by parameter.

    ``loaded``: network parameters copied as they are; ``adapted``: copied after a transfer (name ->
    how); ``newly_initialised``: network parameters left at their fresh initialisation (name -> why);
    ``skipped``: checkpoint entries not used (checkpoint name -> why).
    """

    source: str
    checkpoint_format: str  # "training-step" (published, `network.` prefix) or "network-only"
    loaded: List[str] = field(default_factory=list)
    adapted: Dict[str, str] = field(default_factory=dict)
    newly_initialised: Dict[str, str] = field(default_factory=dict)
    skipped: Dict[str, str] = field(default_factory=dict)

    @property
    def complete(self) -> bool:
        """True when every network parameter came from the checkpoint unchanged."""
        return not self.adapted and not self.newly_initialised

    def summary(self) -> str:
        lines = [f"loaded {len(self.loaded)} parameter(s) from {self.source} ({self.checkpoint_format} format)"]
        lines += [f"  adapted {name}: {how}" for name, how in self.adapted.items()]
        lines += [f"  newly initialised {name}: {why}" for name, why in self.newly_initialised.items()]
        reasons: Dict[str, int] = {}
        for why in self.skipped.values():
            reasons[why] = reasons.get(why, 0) + 1
        lines += [f"  skipped {count} checkpoint entr{'y' if count == 1 else 'ies'}: {why}"
                  for why, count in reasons.items()]
        return "\n".join(lines)

    __str__ = summary


def adapt_first_conv(weight: np.ndarray, in_channels: int) -> np.ndarray:
    """Turn an RGB first-conv weight ``(out, 3, kh, kw)`` into one for ``in_channels`` inputs.

    One channel: the sum over RGB (a grey image replicated to RGB gives the same response). Otherwise the
    RGB weights repeat cyclically and are scaled by ``3 / in_channels`` to keep the activation scale.
    """
    if weight.ndim != 4 or weight.shape[1] != RGB_CHANNELS:
        raise ValueError(f"expected an RGB conv weight (out, 3, kh, kw), got shape {weight.shape}")
    if in_channels == 1:
        return weight.sum(axis=1, keepdims=True)
    repeats = math.ceil(in_channels / RGB_CHANNELS)
    return np.tile(weight, (1, repeats, 1, 1))[:, :in_channels] * (RGB_CHANNELS / in_channels)


def is_training_state(name: str) -> bool:
    """Adam moments and step counters saved beside the weights by the published training script."""
    return name.startswith(OPTIMIZER_PREFIXES) or name in OPTIMIZER_SCALARS


def read_checkpoint(path_or_dict: Union[str, "os.PathLike[str]", Mapping[str, Any]]
                    ) -> Tuple[Dict[str, np.ndarray], List[str], str]:
    """Return ``({name: array}, training-state names left unread, description)``.

    From a file, training state (two thirds of the published file) is never converted: MindSpore's
    ``choice_func`` skips it, which roughly halves the load time.
    """
    if isinstance(path_or_dict, Mapping):
        entries = {str(name): _to_numpy(value) for name, value in path_or_dict.items()}
        return entries, [], "a parameter dict"
    path = Path(path_or_dict)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist or is not a file; pass the path of a .ckpt file")
    data = _read_verified_bytes(path, getattr(path_or_dict, "sha256", None))
    unread: List[str] = []

    def wanted(name: str) -> bool:
        if is_training_state(name):
            unread.append(name)
            return False
        return True

    return parse_checkpoint_bytes(data, str(path), wanted), unread, str(path)


def _read_verified_bytes(path: Path, sha256: Optional[str]) -> bytes:
    """The file's bytes, read once; with ``sha256`` (a ``VerifiedPath`` from the download cache) they must
    still have that hash, so what is parsed is exactly what was verified, whatever happened to the path since."""
    try:
        data = path.read_bytes()
    except OSError as error:
        raise CheckpointError(f"cannot read checkpoint {path} ({error.strerror or error}); check the path and "
                              "its permissions") from error
    if not data:
        raise CheckpointError(f"checkpoint {path} is empty (0 bytes), the trace of an interrupted copy or "
                              "download; delete it and copy or download it again")
    if sha256 is not None and hashlib.sha256(data).hexdigest() != sha256:
        raise CheckpointError(f"checkpoint {path} changed after its SHA-256 was verified (another process wrote "
                              "it); nothing was loaded: run again to verify it afresh")
    return data


_NUMPY_TYPES = {"Int8": np.int8, "UInt8": np.uint8, "Int16": np.int16, "UInt16": np.uint16, "Int32": np.int32,
                "UInt32": np.uint32, "Int64": np.int64, "UInt64": np.uint64, "Float16": np.float16,
                "Float32": np.float32, "Float64": np.float64, "Bool": np.bool_}


def parse_checkpoint_bytes(data: bytes, source: str, wanted=lambda name: True) -> Dict[str, Any]:
    """``{name: array}`` from the bytes of a MindSpore ``.ckpt`` (a protobuf ``Checkpoint``), parsed in
    memory; entries ``wanted(name)`` rejects are never converted. Consecutive pieces of one tensor join."""
    from google.protobuf.message import DecodeError
    from mindspore.train.checkpoint_pb2 import Checkpoint

    if data[-17:-10] == b"crc_num":  # MindSpore's optional CRC trailer
        data = data[:-17]
    proto = Checkpoint()
    try:
        proto.ParseFromString(data)
    except DecodeError:
        proto.Clear()
    if not proto.value:
        raise CheckpointError(f"cannot read checkpoint {source}: it is not a MindSpore checkpoint or it is "
                              "damaged (truncated?); delete it and copy or download it again")
    pieces: Dict[str, List[Any]] = {}
    for element in proto.value:
        if wanted(element.tag) and element.HasField("tensor"):
            pieces.setdefault(element.tag, []).append(element.tensor)
    entries = {}
    for name, tensors in pieces.items():
        kind = tensors[0].tensor_type
        if kind == "str":  # metadata (model config, run state): MindSpore stores text as UTF-32
            entries[name] = b"".join(tensor.tensor_content for tensor in tensors).decode("utf-32-le")
            continue
        if kind not in _NUMPY_TYPES:
            raise CheckpointError(f"checkpoint {source}: entry {name} has type {kind!r}, which this reader does not "
                                  "convert (a damaged file, or not float32 weights); pass a float32 UNet3+ checkpoint")
        dims = [] if list(tensors[0].dims) == [0] else list(tensors[0].dims)
        content = b"".join(tensor.tensor_content for tensor in tensors)
        try:
            entries[name] = np.frombuffer(content, _NUMPY_TYPES[kind]).reshape(dims).copy()
        except ValueError as error:
            raise CheckpointError(f"checkpoint {source}: entry {name} does not hold {dims} {kind} values; the file "
                                  "is damaged: delete it and copy or download it again") from error
    return entries


def _to_numpy(value: Any) -> Any:
    if isinstance(value, str):  # a metadata entry (append_dict), kept as text
        return value
    if hasattr(value, "asnumpy"):
        return value.asnumpy()
    return np.asarray(value)


def split_checkpoint(entries: Mapping[str, np.ndarray], unread: List[str] = ()
                     ) -> Tuple[Dict[str, np.ndarray], Dict[str, str], str]:
    """Separate network weights from training state: ``(network entries, skipped -> reason, format)``."""
    skipped = {name: "optimizer/training state (not part of the network)" for name in unread}
    skipped.update({name: METADATA for name, value in entries.items() if isinstance(value, str)})
    entries = {name: value for name, value in entries.items() if not isinstance(value, str)}
    if not any(name.startswith(TRAINING_STEP_PREFIX) for name in entries):
        network = {}
        for name, value in entries.items():
            if is_training_state(name):
                skipped[name] = "optimizer/training state (not part of the network)"
            else:
                network[name] = value
        return network, skipped, "network-only"
    network = {}
    for name, value in entries.items():
        if name.startswith(TRAINING_STEP_PREFIX):
            network[name[len(TRAINING_STEP_PREFIX):]] = value
        elif is_training_state(name):
            skipped[name] = "optimizer/training state (not part of the network)"
        else:
            skipped[name] = "outside the network (no 'network.' prefix) in a training-step checkpoint"
    return network, skipped, "training-step"


def load_checkpoint(net: "nn.Cell", path_or_dict: Union[str, "os.PathLike[str]", Mapping[str, Any]], *,
                    strict: bool = True, transfer: bool = False, first_conv: str = FIRST_CONV,
                    classifier: Sequence[str] = CLASSIFIER) -> LoadReport:
    """Load a UNet3+ checkpoint (file path or ``{name: Parameter/Tensor/array}``) into ``net``.

    Raises ``CheckpointError`` (a ``ValueError``) listing missing, unexpected and shape-mismatched
    parameters; with ``strict=False`` those are skipped/left initialised and reported instead.
    ``transfer=True`` allows the fine-tuning transfers (see the module docstring), each logged as a warning.
    To build the network a checkpoint describes, use ``unet3plus.create_network(checkpoint=...)``.
    """
    entries, unread, source = read_checkpoint(path_or_dict)
    return load_entries(net, entries, unread, source, strict=strict, transfer=transfer, first_conv=first_conv,
                        classifier=classifier)


def load_entries(net: "nn.Cell", entries: Mapping[str, Any], unread: Sequence[str], source: str, *,
                 strict: bool = True, transfer: bool = False, first_conv: str = FIRST_CONV,
                 classifier: Sequence[str] = CLASSIFIER) -> LoadReport:
    """``load_checkpoint`` for entries already read with ``read_checkpoint`` (read once, load once)."""
    import mindspore as ms

    network_entries, skipped, checkpoint_format = split_checkpoint(entries, list(unread))
    report = LoadReport(source=source, checkpoint_format=checkpoint_format, skipped=skipped)
    layer_of = lambda name: name.rsplit(".", 1)[0]  # noqa: E731

    to_assign: List[Tuple[Any, np.ndarray]] = []
    missing: List[str] = []
    mismatched: List[str] = []
    net_names = set()
    for name, param in net.parameters_and_names():
        name = param.name  # the name checkpoints use (Cell paths and Parameter names agree here)
        net_names.add(name)
        target_shape = tuple(param.shape)
        if name not in network_entries:
            if transfer and name not in PUBLISHED_PARAMETER_NAMES:
                report.newly_initialised[name] = "variant head the checkpoint lacks"
            else:
                missing.append(name)
                report.newly_initialised[name] = "missing from the checkpoint"
            continue
        value = network_entries[name]
        if tuple(value.shape) == target_shape:
            to_assign.append((param, value))
            report.loaded.append(name)
        elif transfer and layer_of(name) in classifier and value.shape[1:] == target_shape[1:]:
            report.newly_initialised[name] = (
                f"classifier for {target_shape[0]} class(es); the checkpoint's has {value.shape[0]}")
            skipped[_checkpoint_name(name, checkpoint_format)] = "classifier replaced (different n_classes)"
        elif (transfer and layer_of(name) == first_conv and value.ndim == 4 and value.shape[1] == RGB_CHANNELS
              and (value.shape[0],) + value.shape[2:] == (target_shape[0],) + target_shape[2:]):
            to_assign.append((param, adapt_first_conv(value, target_shape[1])))
            rule = "summed over RGB" if target_shape[1] == 1 else f"RGB repeated, scaled by 3/{target_shape[1]}"
            report.adapted[name] = f"first convolution for {target_shape[1]} input channel(s) ({rule})"
        else:
            mismatched.append(f"{name}: checkpoint {tuple(value.shape)} vs network {target_shape}")
            report.newly_initialised[name] = "shape differs from the checkpoint"
            skipped[_checkpoint_name(name, checkpoint_format)] = "shape differs from the network"
    unexpected = []
    for name in sorted(set(network_entries) - net_names):
        if transfer and name not in PUBLISHED_PARAMETER_NAMES:
            skipped[_checkpoint_name(name, checkpoint_format)] = "variant head this network lacks (transfer)"
        else:
            unexpected.append(name)
            skipped[_checkpoint_name(name, checkpoint_format)] = "not a parameter of this network"

    if strict and (missing or unexpected or mismatched):
        raise CheckpointError(_strict_message(source, missing, unexpected, mismatched))
    for param, value in to_assign:
        param.set_data(ms.Tensor(np.ascontiguousarray(value), dtype=param.dtype))
    if transfer:
        for name, how in report.adapted.items():
            logger.warning("transfer from %s: adapted %s, %s", source, name, how)
        for name, why in report.newly_initialised.items():
            logger.warning("transfer from %s: %s is newly initialised (%s)", source, name, why)
    return report


def _checkpoint_name(name: str, checkpoint_format: str) -> str:
    return TRAINING_STEP_PREFIX + name if checkpoint_format == "training-step" else name


def _strict_message(source: str, missing: List[str], unexpected: List[str], mismatched: List[str]) -> str:
    def listing(title: str, items: List[str]) -> str:
        shown = ", ".join(items[:_LISTED]) + (f", ... ({len(items) - _LISTED} more)" if len(items) > _LISTED else "")
        return f"{len(items)} {title}: {shown}"

    if len(missing) == len(PUBLISHED_PARAMETER_NAMES) and not mismatched:
        return (f"checkpoint {source} holds none of the {len(missing)} UNet3+ weights ("
                + listing("entries", unexpected) + "); it is not a UNet3+ checkpoint: pass the checkpoint of a "
                "UNet3+ (the published one, or a best.ckpt/last.ckpt of unet3plus train)")
    problems = [listing(title, items) for title, items in (
        ("missing (published weights the checkpoint lacks)", missing),
        ("unexpected (checkpoint entries the network lacks)", unexpected),
        ("shape-mismatched", mismatched)) if items]
    return (f"checkpoint {source} does not fit the network: " + "; ".join(problems)
            + ". The checkpoint was made for another network configuration: use the options it was trained with."
            + _PYTHON_ONLY_FIX)
