"""The one way from weights to a network (timm's ``_builder.py``): ``create_network``.

Used by ``import unet3plus``, ``hub_conf.py``, ``mindspore_hub_conf.py``, the CLI, ``predict``,
``evaluate``, ``export`` and the trainer. A checkpoint's model config (``model_config.py``) says which
architecture to build, and the weights load strictly into exactly that. Anything else is a transfer and
happens only when asked for: ``transfer=True``, or the published weights with other ``n_classes`` /
``in_channels`` / variants (the fine-tuning start); each adapted or re-initialised layer is logged.
"""
from __future__ import annotations

import logging
import os
from typing import TYPE_CHECKING, Any, Dict, Mapping, Optional, Union

from ..errors import InputError
from .card import card_checkpoint, is_card, is_url, read_card, shown_location
from .download import (ChecksumError, check_local_sha256, download_checkpoint, expected_sha256,
                       pretrained_checkpoint, sha256_of)
from .loading import load_entries, read_checkpoint, split_checkpoint
from .model_config import (ARCHITECTURE_KEYS, CONFIG_ENTRY, Architecture, ModelConfig, check_against_weights,
                           default_class_names, infer_architecture, parse_config_entry)
from .registry import get_model_entry, published_model_config

if TYPE_CHECKING:
    from mindspore import nn

logger = logging.getLogger(__name__)

PathLike = Union[str, "os.PathLike[str]"]
CheckpointSource = Union[PathLike, Mapping[str, Any]]
DEFAULT_MODEL = "unet3plus_lits2017"
POSITIONAL = ("in_channels", "n_classes")  # UNet3Plus's positional parameters


def create_network(name: Optional[PathLike] = None, *args: Any, pretrained: Optional[bool] = None,
                   checkpoint: Optional[CheckpointSource] = None, sha256: Optional[str] = None,
                   transfer: bool = False, ignore_config: bool = False, strict: bool = True,
                   cache_dir: Optional[PathLike] = None, progress: Optional[bool] = None, **kwargs: Any) -> "nn.Cell":
    """Build a UNet3+ and load its weights.

    Args:
        name: case-insensitive registry name: ``"unet3plus_lits2017"`` (the default: published LiTS2017
            weights, loaded by default; with a local ``checkpoint`` that is the published file, exactly as
            online, else a warning that the file is not that model), ``"unet3plus"`` (architecture only) or ``"unet3+"`` (what ``mindspore_hub.load``
            passes; hub loads the weights itself). Or a MindSpore Hub card (``.md`` path or http(s) URL):
            its asset is fetched through the verified cache and built as its config says.
        *args, **kwargs: ``UNet3Plus`` arguments (``in_channels``, ``n_classes``, ``deep_supervision``,
            ``cgm``, ...). With weights, an architecture argument that contradicts their config is an error
            unless ``transfer=True`` (or the published weights, whose use here is a fine-tuning start).
        pretrained: load the published weights (downloaded once, SHA-256 verified); None: the name's default.
        checkpoint: a checkpoint path, http(s) URL (needs ``sha256``) or parameter dict to build from.
        sha256: expected SHA-256 of ``checkpoint`` (required for a URL; checked for a local file too) or of a
            hub card's asset (must equal the card's ``asset-sha256``).
        transfer: allow the architecture arguments to differ from the weights' (re-initialised classifier,
            adapted first convolution, variant heads added or dropped; each logged as a warning).
        ignore_config: build from the weights' shapes, ignoring the checkpoint's config entry.
        strict: every weight must fit (see ``unet3plus.load_checkpoint``).
        cache_dir, progress: see ``unet3plus.hub.download_checkpoint``.

    Returns:
        the network; ``net.load_report`` says what was loaded (None if nothing) and ``net.model_config``
        how it was built and what input it expects (``input`` None when unknown).
    """
    if len(args) > len(POSITIONAL):
        raise InputError(f"create_network takes at most {len(POSITIONAL)} positional network arguments "
                         f"({', '.join(POSITIONAL)}), got {len(args)}; pass the others by keyword")
    requested = dict(zip(POSITIONAL, args), **kwargs)
    fetch = dict(cache_dir=cache_dir, progress=progress)
    if name is not None and (is_card(name) or is_url(str(name))):  # a URL in the name's place can only be a card
        if checkpoint is not None or pretrained:
            raise InputError(f"{shown_location(str(name))} is a hub card, which names its own weights; drop "
                             "checkpoint=/pretrained=")
        card = read_card(name)
        if sha256 is not None and expected_sha256(sha256) != card.asset_sha256:
            raise ChecksumError(f"the SHA-256 given ({expected_sha256(sha256)}) is not the asset-sha256 of hub card "
                                f"{card.shown} ({card.asset_sha256 or 'none'}); check which model you meant, or "
                                "drop --sha256 / sha256=")
        source = card_checkpoint(card, **fetch)
        return build_from_checkpoint(source, transfer=transfer, ignore_config=ignore_config, strict=strict,
                                     **requested)
    entry = get_model_entry(str(name or DEFAULT_MODEL))
    if checkpoint is not None:
        if pretrained:
            raise InputError("pass either pretrained=True (the published weights) or checkpoint=<path>, not both")
        source = resolve_checkpoint(checkpoint, sha256, **fetch)
        if entry.pretrained_by_default and _is_published_file(source, entry, named=name is not None):
            return build_from_checkpoint(source, config=published_model_config(entry.config), transfer=True,
                                         strict=strict, **requested)  # the published model, as online
        return build_from_checkpoint(source, transfer=transfer, ignore_config=ignore_config, strict=strict,
                                     **requested)
    if entry.pretrained_by_default if pretrained is None else pretrained:
        path = pretrained_checkpoint(entry.config, **fetch)
        return build_from_checkpoint(path, config=published_model_config(entry.config), transfer=True,
                                     strict=strict, **requested)
    from ..networks import UNet3Plus

    net = UNet3Plus(**requested)
    net.load_report = None
    net.model_config = ModelConfig(architecture=_architecture_of(net),
                                   class_names=default_class_names(net.n_classes))
    return net


def _is_published_file(source: CheckpointSource, entry: Any, *, named: bool) -> bool:
    """Whether a local checkpoint is the published file of ``entry`` (its registry SHA-256); a named model whose
    file is not gets a warning saying so, and the file loads as a checkpoint of its own."""
    if isinstance(source, Mapping):
        return False
    actual = sha256_of(source)
    if actual == entry.config.sha256:
        return True
    if named:
        logger.warning("%s is not the published %s weights (SHA-256 %s..., published %s...); loading it as a "
                       "checkpoint of its own (its config, or its weights' shapes)", source, entry.name, actual[:12],
                       entry.config.sha256[:12])
    return False


def resolve_checkpoint(checkpoint: CheckpointSource, sha256: Optional[str] = None, *,
                       cache_dir: Optional[PathLike] = None, progress: Optional[bool] = None) -> CheckpointSource:
    """A dict as is; a local path as is, or checked against ``sha256`` when one is given; an http(s) URL through the
    verified cache (its SHA-256 is required)."""
    if isinstance(checkpoint, Mapping):
        return checkpoint
    if not is_url(str(checkpoint)):
        return checkpoint if sha256 is None else check_local_sha256(checkpoint, sha256)
    if not sha256:
        raise InputError(f"refusing the remote checkpoint {shown_location(str(checkpoint))} without its SHA-256 (nothing unverified is "
                         "loaded); pass sha256=<the publisher's asset-sha256>, or load its hub card instead: "
                         "create_network('<card url>.md')")
    return download_checkpoint(str(checkpoint), sha256, cache_dir=cache_dir, progress=progress)


def build_from_checkpoint(checkpoint: CheckpointSource, *, config: Optional[ModelConfig] = None,
                          transfer: bool = False, ignore_config: bool = False, strict: bool = True,
                          **requested: Any) -> "nn.Cell":
    """Read ``checkpoint`` once, build the architecture its config says (``config`` supplies one for a
    file that carries none, such as the published checkpoint) and load it.

    ``requested`` are ``UNet3Plus`` keyword arguments; architecture ones that differ from the config need
    ``transfer``.
    """
    from ..networks import UNet3Plus

    entries, unread, where = read_checkpoint(checkpoint)
    network_entries, _, _ = split_checkpoint(entries, unread)
    shapes = {name: tuple(value.shape) for name, value in network_entries.items()}
    if config is None:
        config = _config_of(entries, shapes, where, ignore_config)
    differences = {key: (getattr(config.architecture, key), value) for key, value in requested.items()
                   if key in ARCHITECTURE_KEYS and getattr(config.architecture, key) != value}
    if differences and not transfer:
        listed = ", ".join(f"{key}={new!r} but the checkpoint's config says {key}={old!r}"
                           for key, (old, new) in differences.items())
        raise InputError(f"{where}: {listed}; drop the argument(s) to build the network the checkpoint describes, "
                         "or pass transfer=True to fine-tune it into the other architecture")
    net = UNet3Plus(**dict(config.architecture.kwargs(), **requested))
    net.load_report = load_entries(net, entries, unread, where, strict=strict, transfer=transfer,
                                   first_conv=config.first_conv, classifier=config.classifier)
    if differences:
        architecture = _architecture_of(net)
        same_classes = architecture.n_classes == config.architecture.n_classes
        config = config.replace(architecture=architecture,
                                class_names=config.class_names if same_classes else default_class_names(net.n_classes),
                                label_map=config.label_map if same_classes else None)
    net.model_config = config
    return net


def _config_of(entries: Mapping[str, Any], shapes: Dict[str, tuple], where: str, ignore_config: bool) -> ModelConfig:
    text = entries.get(CONFIG_ENTRY)
    if text is not None and not ignore_config:
        config = parse_config_entry(text, where)
        check_against_weights(config, shapes, where)
        return config
    architecture = infer_architecture(shapes)
    logger.warning("%s has no model config%s: built %s from its weights' shapes; its input preprocessing is "
                   "unknown, so inputs get the default preparation of their kind (lits2017 for CT, image for 2-D images) "
                   "unless a preset is chosen", where,
                   " (ignored)" if text is not None else " (an older checkpoint or another tool's)",
                   ", ".join(f"{key}={value}" for key, value in architecture.kwargs().items()))
    return ModelConfig(architecture=architecture, class_names=default_class_names(architecture.n_classes))


def _architecture_of(net: Any) -> Architecture:
    return Architecture(in_channels=net.in_channels, n_classes=net.n_classes,
                        deep_supervision=bool(net.deep_supervision), cgm=bool(net.has_cgm))
