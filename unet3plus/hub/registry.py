"""What has been published: one frozen record per pretrained model, and the names that select it."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import FrozenSet, Mapping, Optional, Tuple

from ..networks.unet3plus import ENCODER_WIDTHS, decoder_branches
from .model_config import CLASSIFIER, FIRST_CONV, Architecture, InputConfig, ModelConfig


@dataclass(frozen=True)
class PretrainedConfig:
    """A published checkpoint and the network it belongs to.

    ``sha256`` is the only integrity check; ``size`` (bytes) is for display and progress bars only.
    """

    name: str
    url: str
    sha256: str
    filename: str
    size: int
    in_channels: int
    n_classes: int
    input_preset: str
    license: str
    card: Mapping[str, str] = field(default_factory=dict)
    spacing_range: Optional[Tuple[float, float]] = None  # in-plane mm of the training slices (min, max)


@dataclass(frozen=True)
class ModelEntry:
    """A name accepted by ``create_network``: which published model, and whether weights load by default."""

    name: str
    config: PretrainedConfig
    pretrained_by_default: bool


PROJECT_URL = "https://github.com/unet3plus/unet3plus"  # the hub card's repo-link

LITS2017 = PretrainedConfig(
    name="unet3plus_lits2017",
    url="https://download.mindspore.cn/models/r1.10/unet3plus_ascend_v1100_lits2017_research_cv_acc97.7.ckpt",
    sha256="bcad7cb89d81da57d53b49928f6d0af96bb5d26552170bc4900402b8171d02b0",
    filename="unet3plus_ascend_v1100_lits2017_research_cv_acc97.7.ckpt",
    # ~19.4 MB: the byte count of a checkpoint in this exact format (171 float32 weights + Adam state).
    size=20_295_962,
    in_channels=3,
    n_classes=1,
    input_preset="lits2017",
    license="Apache-2.0",
    # LiTS's typical in-plane spacing (its CTs run from about 0.55 to 1.0 mm), stated from the dataset's
    # description, not measured on the published training split, which was not released
    spacing_range=(0.55, 1.0),
    card=MappingProxyType({
        "model-name": "UNet3+",
        "backbone-name": "UNet3+",
        "module-type": "cv",
        "fine-tunable": "True",
        "model-version": "1.10",
        "train-dataset": "lits2017",
        "evaluation": "acc97.7",
        "author": "MindSpore team",
        "update-time": "2023-2-17",
        "user-id": "MindSpore",
        "used-for": "inference",
        "mindspore-version": "1.10",
        "hub-uid": "mindspore/1.10/unet3plus_lits2017",
        "task": "binary liver segmentation of CT slices (logits, apply a sigmoid)",
        "paper": "Huang et al., UNet 3+, ICASSP 2020, arXiv:2004.08790",
    }),
)

_ENTRIES: Tuple[ModelEntry, ...] = (
    ModelEntry("unet3plus_lits2017", LITS2017, True),  # the published LiTS2017 liver weights
    ModelEntry("unet3plus", LITS2017, False),  # the architecture only (random initialisation)
    # What mindspore_hub.load passes (the card's model-name, lowercased); hub then loads the weights itself.
    ModelEntry("unet3+", LITS2017, False),
)
MODELS: Mapping[str, ModelEntry] = MappingProxyType({entry.name: entry for entry in _ENTRIES})


def list_models() -> Tuple[str, ...]:
    """Names accepted by ``create_network`` (case-insensitive)."""
    return tuple(MODELS)


def get_model_entry(name: str) -> ModelEntry:
    """Look ``name`` up case-insensitively; an unknown name raises a ``ValueError`` listing the valid ones."""
    from ..errors import InputError

    key = str(name).strip().lower()
    if key not in MODELS:
        raise InputError(f"unknown model name {name!r}; valid names (case-insensitive): {', '.join(MODELS)}")
    return MODELS[key]


def get_pretrained_config(name: str = "unet3plus_lits2017") -> PretrainedConfig:
    return get_model_entry(name).config


def published_model_config(config: PretrainedConfig = LITS2017) -> ModelConfig:
    """The model config of a published checkpoint (which carries none): timm's ``pretrained_cfg``."""
    return ModelConfig(
        architecture=Architecture(in_channels=config.in_channels, n_classes=config.n_classes),
        input=InputConfig(preset=config.input_preset, spacing_range=config.spacing_range), class_names=("background", "liver"),
        provenance={"published_as": config.name, "weights_sha256": config.sha256, "url": config.url,
                    "evaluation": config.card.get("evaluation"), "train_dataset": config.card.get("train-dataset")})


def hub_card_path(name: str = "unet3plus_lits2017") -> Path:
    """The MindSpore Hub card shipped for a published model (copy it beside a checkout to use hub)."""
    return Path(__file__).with_name("cards") / f"{get_model_entry(name).config.name}.md"


def published_parameter_names() -> FrozenSet[str]:
    """The 171 network parameter names of the published checkpoint (without the ``network.`` prefix).

    Derived from the architecture's naming scheme, not from a network instance, so that opt-in variants
    that add parameters never change it: a network parameter outside this set that the checkpoint lacks
    is a new head, one inside it is a missing weight.
    """
    names = []
    batch_norm = ("gamma", "beta", "moving_mean", "moving_variance")
    for level in range(1, len(ENCODER_WIDTHS) + 1):
        for conv_index, bn_index in ((0, 1), (3, 4)):
            names.append(f"conv{level}.conv.{conv_index}.weight")
            names += [f"conv{level}.conv.{bn_index}.{suffix}" for suffix in batch_norm]
    for stage in range(len(ENCODER_WIDTHS) - 1, 0, -1):
        for branch in decoder_branches(stage):
            names.append(f"{branch.name}_conv.weight")
            names += [f"{branch.name}_bn.{suffix}" for suffix in batch_norm]
        names.append(f"conv{stage}d_1.weight")
        names += [f"bn{stage}d_1.{suffix}" for suffix in batch_norm]
    names.append("outconv1.weight")
    return frozenset(names)


PUBLISHED_PARAMETER_NAMES: FrozenSet[str] = published_parameter_names()
FIRST_CONV_WEIGHT = FIRST_CONV + ".weight"  # adapted when a transfer changes in_channels
HEAD_WEIGHT = CLASSIFIER[0] + ".weight"  # re-initialised when a transfer changes n_classes
TRAINING_STEP_PREFIX = "network."  # the published file saved the whole train step
