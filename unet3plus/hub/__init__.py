"""Pretrained weights: the published-model registry, verified downloads, strict loading, ``create_network``."""
from .download import (ChecksumError, DownloadError, OfflineError, CacheDirError, TransferSettings,
                       download_checkpoint, pretrained_checkpoint, resolve_cache_dir)
from .factory import create_network
from .loading import CheckpointError, LoadReport, adapt_first_conv, load_checkpoint
from .registry import (LITS2017, PretrainedConfig, get_model_entry,
                       get_pretrained_config, list_models)

__all__ = [
    "CacheDirError", "CheckpointError", "ChecksumError", "DownloadError", "LITS2017", "LoadReport", "OfflineError",
    "PretrainedConfig", "TransferSettings", "adapt_first_conv", "create_network",
    "download_checkpoint", "get_model_entry", "get_pretrained_config", "list_models", "load_checkpoint",
    "pretrained_checkpoint", "resolve_cache_dir",
]
