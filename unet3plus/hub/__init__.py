"""Weights: the published-model registry, verified downloads, model configs, strict loading, ``create_network``."""
from .builder import create_network
from .card import CardError, read_card
from .download import (ChecksumError, DownloadError, OfflineError, CacheDirError, TransferSettings,
                       download_checkpoint, pretrained_checkpoint, resolve_cache_dir)
from .loading import CheckpointError, LoadReport, adapt_first_conv, load_checkpoint
from .model_config import (Architecture, InputConfig, ModelConfig, ModelConfigError, read_model_config,
                           save_network)
from .registry import (LITS2017, PretrainedConfig, get_model_entry,
                       get_pretrained_config, list_models, published_model_config)

__all__ = [
    "Architecture", "CacheDirError", "CardError", "CheckpointError", "ChecksumError", "DownloadError",
    "InputConfig", "LITS2017", "LoadReport", "ModelConfig", "ModelConfigError", "OfflineError",
    "PretrainedConfig", "TransferSettings", "adapt_first_conv", "create_network",
    "download_checkpoint", "get_model_entry", "get_pretrained_config", "list_models", "load_checkpoint",
    "pretrained_checkpoint", "published_model_config", "read_card", "read_model_config", "resolve_cache_dir",
    "save_network",
]
